"""Finding the host's Debian mirror in its apt sources (both formats)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cti.errors import SandboxError
from sandbox.mirror import detect_host_mirror, parse_deb822, parse_one_line, pick_mirror

# The build machines' own file (deb822), security archive second.
DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_deb822_file_gives_the_main_archive_not_security() -> None:
    sources = parse_deb822(DEBIAN_SOURCES)
    assert [s.uris for s in sources] == [
        ("http://deb.debian.org/debian",),
        ("http://deb.debian.org/debian-security",),
    ]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert pick_mirror(sources) == "http://deb.debian.org/debian"


def test_deb822_security_listed_first_is_still_skipped() -> None:
    security_first = "\n\n".join(reversed(DEBIAN_SOURCES.split("\n\n")))
    assert pick_mirror(parse_deb822(security_first)) == "http://deb.debian.org/debian"


def test_deb822_disabled_and_source_only_stanzas_are_ignored() -> None:
    text = """\
Types: deb
URIs: http://disabled.example/debian/
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm

Types: deb deb-src
URIs: http://mirror.example/debian/
  http://second.example/debian
Suites: bookworm
"""
    sources = parse_deb822(text)
    assert [s.uris for s in sources] == [
        ("http://src.example/debian",),
        ("http://mirror.example/debian/", "http://second.example/debian"),
    ]
    # Trailing slash dropped: debootstrap appends "/dists/...".
    assert pick_mirror(sources) == "http://mirror.example/debian"


def test_one_line_format_with_options_and_comments() -> None:
    text = """\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian/ bookworm main contrib
deb http://security.debian.org/debian-security bookworm-security main
"""
    sources = parse_one_line(text)
    assert len(sources) == 3
    assert sources[1].uris == ("http://ftp.example/debian/",)
    assert sources[1].components == ("main", "contrib")
    assert pick_mirror(sources) == "http://ftp.example/debian"


def test_nothing_usable_gives_none() -> None:
    only_security = "deb http://security.debian.org/debian-security bookworm-security main\n"
    assert pick_mirror(parse_one_line(only_security)) is None
    assert pick_mirror(parse_one_line("deb cdrom:[Debian 12]/ bookworm main\n")) is None


def test_detect_reads_sources_dir_and_list(tmp_path: Path) -> None:
    sources_dir = tmp_path / "sources.list.d"
    sources_dir.mkdir()
    (sources_dir / "debian.sources").write_text(DEBIAN_SOURCES)
    assert (
        detect_host_mirror(tmp_path / "sources.list", sources_dir) == "http://deb.debian.org/debian"
    )

    (sources_dir / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb http://legacy.example/debian bookworm main\n")
    assert (
        detect_host_mirror(tmp_path / "sources.list", sources_dir) == "http://legacy.example/debian"
    )


def test_detect_without_any_source_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as info:
        detect_host_mirror(tmp_path / "sources.list", tmp_path / "missing.d")
    message = str(info.value)
    assert "set the sandbox mirror" in message
    assert "existing Asterisk" in message
