"""Writing IVR YAML in tests and reading the loader's verdict, shared by the loader and
validator tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from ivr.catalog import SoundCatalog
from ivr.loader import check_ivr_config

__all__ = ["line_of", "problems", "write"]


def write(tmp_path: Path, text: str, name: str = "ivr.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``needle``."""
    found = [n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return found[occurrence - 1]


def problems(*paths: Path, catalog: SoundCatalog | None = None) -> list[str]:
    """Every problem the loader reports for ``paths`` (the configuration must be refused)."""
    config, found = check_ivr_config(list(paths), catalog=catalog)
    assert config is None
    return [str(p) for p in found]
