"""The sound catalogue: which Asterisk sound names exist, so the loader can reject a flow that
would play a missing prompt before a caller ever hears the silence.

Asterisk names a sound by its path under the language's sounds directory without the extension
(``hello-world``, ``digits/1``) and picks whichever format file exists
(main/file.c, ``ast_openstream_full`` tries each registered format's extensions). The catalogue
therefore keeps the names, not the files: ``hello-world.gsm`` and ``hello-world.ulaw`` are one
name.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from cti.errors import ConfigError

__all__ = ["SoundCatalog"]

# Symlink hops tolerated while resolving a path inside a root, as the kernel's own limit
# (MAXSYMLINKS is 40 on Linux).
_MAX_HOPS = 40


class SoundCatalog:
    """A set of sound names; ``name in catalog`` and close matches for "did you mean"."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = frozenset(names)

    @classmethod
    def from_directory(cls, path: Path, *, root: Path | None = None) -> SoundCatalog:
        """Every sound under ``path`` (recursively), named relative to it without extension.

        ``root``: the directory Asterisk runs chrooted in, if any. Packaged sound directories
        are symlinks with absolute targets (``sounds/en -> /etc/alternatives/asterisk-prompt-en
        -> /usr/share/asterisk/sounds/en_US_f_Allison`` in Debian), which only resolve inside
        that root; ``path`` may then be given as seen from the host (``root/usr/share/...``)
        or from inside the root (``/usr/share/...``).
        """
        base = _resolve_in_root(path, root) if root is not None else path
        if not base.is_dir():
            raise ConfigError("sound directory not found (expected a directory)", source=str(path))
        names: set[str] = set()
        seen: set[tuple[int, int]] = set()
        for folder, dirs, files in os.walk(base, followlinks=True):
            # A symlink loop (custom -> ..) must not make the walk endless.
            stat = os.stat(folder)
            if (stat.st_dev, stat.st_ino) in seen:
                dirs.clear()
                continue
            seen.add((stat.st_dev, stat.st_ino))
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for file in files:
                if file.startswith(".") or "." not in file:
                    continue
                relative = Path(folder, file).relative_to(base)
                names.add(relative.with_suffix("").as_posix())
        return cls(names)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def close_matches(self, name: str, limit: int = 3) -> list[str]:
        """Names that look like ``name`` (a typo, or the right name in another folder), best
        first."""
        matches = difflib.get_close_matches(name, self._names, n=limit, cutoff=0.6)
        if len(matches) < limit:
            # "1" for "digits/1": compare the last part too, which difflib scores poorly.
            tail = name.rsplit("/", 1)[-1]
            extra = sorted(n for n in self._names if n.rsplit("/", 1)[-1] == tail)
            matches += [n for n in extra if n not in matches][: limit - len(matches)]
        return matches


def _resolve_in_root(path: Path, root: Path) -> Path:
    """``path`` with every symlink followed, absolute link targets taken inside ``root``."""
    root = root.absolute()
    absolute = path.absolute()
    # Accept the path as seen from the host (root/usr/share/...) or from inside the root.
    inside = absolute.relative_to(root) if absolute.is_relative_to(root) else absolute
    parts = [p for p in inside.parts if p != "/"]
    current = root
    hops = 0
    while parts:
        current = current / parts.pop(0)
        if current.is_symlink():
            hops += 1
            if hops > _MAX_HOPS:
                raise ConfigError("too many levels of symbolic links", source=str(path))
            target = Path(os.readlink(current))
            if target.is_absolute():
                parts = list(target.relative_to("/").parts) + parts
                current = root
            else:
                parts = list(target.parts) + parts
                current = current.parent
    return current
