"""Find the Debian mirror the host already uses, from its apt sources.

The build machines reach no host but their package mirror, so debootstrap must use the URI
apt uses. Both formats are read: deb822 ``*.sources`` files (``URIs:``/``Suites:``
stanzas) and one-line ``sources.list`` entries. The parsers are pure (text in, entries
out); ``detect_host_mirror`` is the one function that reads files.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cti.errors import SandboxError

__all__ = [
    "AptSource",
    "detect_host_mirror",
    "parse_deb822",
    "parse_one_line",
    "pick_mirror",
]

_USABLE_SCHEMES = ("http://", "https://", "file:", "ftp://")


@dataclass(frozen=True)
class AptSource:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822 ``.sources`` file (stanzas with ``Enabled: no`` are skipped)."""
    sources: list[AptSource] = []
    for stanza in _stanzas(text):
        if stanza.get("enabled", "yes").strip().lower() == "no":
            continue
        uris = tuple(stanza.get("uris", "").split())
        if not uris:
            continue
        sources.append(
            AptSource(
                types=tuple(stanza.get("types", "deb").split()),
                uris=uris,
                suites=tuple(stanza.get("suites", "").split()),
                components=tuple(stanza.get("components", "").split()),
            )
        )
    return sources


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    fields: dict[str, str] = {}
    key: str | None = None
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, None
        elif raw[0] in " \t" and key is not None:
            fields[key] += " " + raw.strip()  # continuation line
        elif ":" in raw:
            name, _, value = raw.partition(":")
            key = name.strip().lower()
            fields[key] = value.strip()


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line ``sources.list`` (``deb [options] URI suite [component...]``)."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):  # options, may contain spaces: [arch=amd64 signed-by=...]
            _, _, rest = rest.partition("]")
        words = rest.split()
        if kind not in ("deb", "deb-src") or len(words) < 2:
            continue
        sources.append(
            AptSource(
                types=(kind,),
                uris=(words[0],),
                suites=(words[1],),
                components=tuple(words[2:]),
            )
        )
    return sources


def _is_security(source: AptSource, uri: str) -> bool:
    return "security" in uri or all(suite.endswith("-security") for suite in source.suites)


def pick_mirror(sources: Iterable[AptSource]) -> str | None:
    """The first binary (``deb``) source that is a main archive, not the security one."""
    for source in sources:
        if "deb" not in source.types:
            continue
        for uri in source.uris:
            if uri.startswith(_USABLE_SCHEMES) and not _is_security(source, uri):
                return uri.rstrip("/")
    return None


def detect_host_mirror(
    sources_list: Path = Path("/etc/apt/sources.list"),
    sources_dir: Path = Path("/etc/apt/sources.list.d"),
) -> str:
    """The mirror URI the host's apt uses; ``SandboxError`` if there is none to be found."""
    entries: list[AptSource] = []
    files: list[Path] = []
    if sources_dir.is_dir():
        files.extend(sorted(sources_dir.glob("*.sources")))
        files.extend(sorted(sources_dir.glob("*.list")))
    if sources_list.is_file():
        files.append(sources_list)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            # An unreadable file is as good as absent; the error below says where we looked.
            continue
        entries.extend(parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text))
    mirror = pick_mirror(entries)
    if mirror is None:
        raise SandboxError(
            f"found no Debian mirror in {sources_list} or {sources_dir}/*.sources|*.list; "
            "set the sandbox mirror explicitly (e.g. http://deb.debian.org/debian), "
            "or point the server at an existing Asterisk (see README)"
        )
    return mirror
