"""Building the root: the checks and errors that need no debootstrap run."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cti.errors import SandboxError
from sandbox.build import (
    STAMP_NAME,
    build_root,
    parse_dpkg_status,
    probe_mirror,
    read_stamp,
    require_tool,
    safe_rmtree,
)
from sandbox.config import DEFAULT_INCLUDE, SandboxConfig
from sandbox.instances import Sandbox

DPKG_STATUS = """\
Package: asterisk
Status: install ok installed
Version: 1:22.10.1+dfsg+~cs6.17.60671434-1
Description: Open Source Private Branch Exchange (PBX)
 a continuation line: Version: 0 must not count

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0

Package: libc6
Status: install ok installed
Version: 2.41-12
"""


def config(tmp_path: Path, **overrides: Any) -> SandboxConfig:
    values: dict[str, Any] = {"ami_secret": "x", "cache_dir": tmp_path / "cache"}
    values.update(overrides)
    return SandboxConfig(**values)


def write_stamp(root: Path, **overrides: object) -> None:
    stamp: dict[str, object] = {
        "format": 1,
        "suite": "sid",
        "mirror": "http://deb.debian.org/debian",
        "include": list(DEFAULT_INCLUDE),
        "built_at": "2026-01-01T00:00:00+0000",
        "build_seconds": 45.0,
        "packages": {"asterisk": "1:22.10.1"},
    }
    stamp.update(overrides)
    (root / STAMP_NAME).write_text(json.dumps(stamp))


def fake_root(root: Path) -> Path:
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/asterisk").write_text("")
    return root


def test_missing_debootstrap_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no debootstrap on PATH
    with pytest.raises(SandboxError) as info:
        build_root(config(tmp_path))
    message = str(info.value)
    assert "apt-get install -y debootstrap" in message
    assert "existing Asterisk (see README)" in message


def test_require_tool_finds_what_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "mytool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool("mytool", "mytool-pkg") == str(tool)


def test_existing_root_is_used_as_is(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "mine")
    assert build_root(config(tmp_path, root=root)) == root


def test_existing_root_without_asterisk_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SandboxError, match="no usr/sbin/asterisk"):
        build_root(config(tmp_path, root=tmp_path / "empty"))


def test_existing_root_is_never_rebuilt(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "mine")
    with pytest.raises(SandboxError, match="never rebuilt"):
        build_root(config(tmp_path, root=root), force=True)


def test_a_stamped_root_is_not_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    root = fake_root(cfg.root_dir)
    write_stamp(root)
    monkeypatch.setenv("PATH", str(tmp_path))  # a rebuild would fail: no debootstrap
    assert build_root(cfg) == root


@pytest.mark.parametrize(
    "stamp",
    [None, {"suite": "trixie"}, {"include": ["asterisk"]}, {"format": 99}],
    ids=["half-built (no stamp)", "other suite", "other packages", "old format"],
)
def test_a_root_without_a_current_stamp_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp: dict[str, object] | None
) -> None:
    cfg = config(tmp_path)
    root = fake_root(cfg.root_dir)
    if stamp is not None:
        write_stamp(root, **stamp)
    monkeypatch.setenv("PATH", str(tmp_path))
    # Rebuilding is attempted, which here stops at the missing debootstrap.
    with pytest.raises(SandboxError, match="debootstrap"):
        build_root(cfg)


def test_read_stamp(tmp_path: Path) -> None:
    assert read_stamp(tmp_path) is None
    (tmp_path / STAMP_NAME).write_text("{not json")
    assert read_stamp(tmp_path) is None
    write_stamp(tmp_path)
    stamp = read_stamp(tmp_path)
    assert stamp is not None
    assert stamp.asterisk_version == "1:22.10.1"
    assert stamp.include == DEFAULT_INCLUDE


def test_parse_dpkg_status_keeps_installed_packages_only() -> None:
    assert parse_dpkg_status(DPKG_STATUS) == {
        "asterisk": "1:22.10.1+dfsg+~cs6.17.60671434-1",
        "libc6": "2.41-12",
    }


def test_safe_rmtree_removes_a_plain_tree(tmp_path: Path) -> None:
    tree = tmp_path / "asterisk-root.tmp-1"
    (tree / "a/b").mkdir(parents=True)
    (tree / "a/b/file").write_text("x")
    safe_rmtree(tree)
    assert not tree.exists()
    safe_rmtree(tree)  # absent: nothing to do


def test_status_of_an_unbuilt_sandbox(tmp_path: Path) -> None:
    status = Sandbox(config(tmp_path)).status()
    assert not status.built
    assert not status.running
    assert status.pid is None
    assert status.version is None


def test_cli_on_a_stopped_instance_is_a_sandbox_error(tmp_path: Path) -> None:
    sandbox = Sandbox(config(tmp_path, root=fake_root(tmp_path / "root")))
    with pytest.raises(SandboxError):
        sandbox.cli("core show version")
    with pytest.raises(SandboxError, match="one line"):
        sandbox.cli("core show version\ncore stop now")


# -- the build itself, with a stand-in debootstrap -----------------------------------------


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with a scriptable ``debootstrap`` (and ``chroot``), running as "root".

    The script's behaviour comes from files next to it: ``mode`` (ok, fail, slow) and it
    appends one line per run to ``runs``.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "debootstrap"
    script.write_text(
        """#!/bin/sh
# debootstrap [options] SUITE TARGET MIRROR
here=$(dirname "$0")
for last; do :; done
eval target=\\${$(($# - 1))}
echo "run $*" >> "$here/runs"
mode=$(cat "$here/mode")
if [ "$mode" = fail ]; then
    mkdir -p "$target/proc"
    echo "I: Retrieving InRelease"
    echo "E: Failed getting release file $last/dists/sid/Release"
    exit 1
fi
[ "$mode" = slow ] && sleep 1
mkdir -p "$target/usr/sbin" "$target/var/lib/dpkg" "$target/var/cache/apt/archives"
echo binary > "$target/usr/sbin/asterisk"
echo deb > "$target/var/cache/apt/archives/asterisk.deb"
printf 'Package: asterisk\\nStatus: install ok installed\\nVersion: 1:22.10.1-1\\n' \\
    > "$target/var/lib/dpkg/status"
echo "I: Base system installed successfully."
"""
    )
    script.chmod(0o755)
    (bin_dir / "chroot").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "chroot").chmod(0o755)
    (bin_dir / "mode").write_text("ok")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr("sandbox.build.os.geteuid", lambda: 0)
    return bin_dir


@pytest.fixture
def file_mirror(tmp_path: Path) -> str:
    """A "mirror" on disk that has dists/sid/Release (enough for the reachability probe)."""
    release = tmp_path / "mirror/dists/sid/Release"
    release.parent.mkdir(parents=True)
    release.write_text("Suite: unstable\n")
    return f"file://{tmp_path / 'mirror'}"


def test_build_renames_a_finished_root_into_place_with_a_stamp(
    tmp_path: Path, fake_tools: Path, file_mirror: str
) -> None:
    cfg = config(tmp_path, mirror=file_mirror)
    root = build_root(cfg)
    assert root == tmp_path / "cache/asterisk-root"
    stamp = read_stamp(root)
    assert stamp is not None
    assert stamp.mirror == file_mirror
    assert stamp.packages == {"asterisk": "1:22.10.1-1"}
    assert not list((root / "var/cache/apt/archives").iterdir())  # downloads trimmed
    assert (root / "srv/ctiserver").is_dir()
    assert not list((tmp_path / "cache").glob("asterisk-root.tmp-*"))
    runs = (fake_tools / "runs").read_text().splitlines()
    assert len(runs) == 1
    assert "--variant=minbase" in runs[0]
    assert "--include=asterisk,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm" in runs[0]
    assert runs[0].endswith(f"sid {tmp_path}/cache/asterisk-root.tmp-{os.getpid()} {file_mirror}")

    # Built once: the next call finds the stamp; force builds again.
    assert build_root(cfg) == root
    assert len((fake_tools / "runs").read_text().splitlines()) == 1
    build_root(cfg, force=True)
    assert len((fake_tools / "runs").read_text().splitlines()) == 2
    assert not list((tmp_path / "cache").glob("asterisk-root.old-*"))


def test_failed_build_leaves_no_root_and_explains(
    tmp_path: Path, fake_tools: Path, file_mirror: str
) -> None:
    (fake_tools / "mode").write_text("fail")
    with pytest.raises(SandboxError) as info:
        build_root(config(tmp_path, mirror=file_mirror))
    message = str(info.value)
    assert f"downloads from {file_mirror} failed" in message
    assert "existing Asterisk (see README)" in message
    assert "E: Failed getting release file" in message  # the log's tail is in the error
    assert not (tmp_path / "cache/asterisk-root").exists()
    assert not list((tmp_path / "cache").glob("asterisk-root.tmp-*"))


def test_concurrent_builds_run_debootstrap_once(
    tmp_path: Path, fake_tools: Path, file_mirror: str
) -> None:
    (fake_tools / "mode").write_text("slow")
    cfg = config(tmp_path, mirror=file_mirror)
    with ThreadPoolExecutor(max_workers=3) as pool:
        roots = list(pool.map(lambda _: build_root(cfg), range(3)))
    assert roots == [cfg.root_dir] * 3
    assert len((fake_tools / "runs").read_text().splitlines()) == 1


def test_not_root_is_refused_with_a_hint(
    tmp_path: Path, fake_tools: Path, file_mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sandbox.build.os.geteuid", lambda: 1000)
    with pytest.raises(SandboxError) as info:
        build_root(config(tmp_path, mirror=file_mirror))
    assert "needs root" in str(info.value)
    assert "existing Asterisk (see README)" in str(info.value)


def test_no_space_is_refused_before_building(
    tmp_path: Path, fake_tools: Path, file_mirror: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sandbox.build.shutil.disk_usage",
        lambda _: SimpleNamespace(total=10**9, used=10**9, free=10**6),
    )
    with pytest.raises(SandboxError, match="not enough free space"):
        build_root(config(tmp_path, mirror=file_mirror))
    assert not (fake_tools / "runs").exists()


def test_unreachable_mirror_is_refused_before_building(tmp_path: Path, fake_tools: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SandboxError) as info:
        build_root(config(tmp_path, mirror=f"http://127.0.0.1:{port}/debian"))
    assert "cannot reach the mirror" in str(info.value)
    assert "existing Asterisk (see README)" in str(info.value)
    assert not (fake_tools / "runs").exists()


def test_mirror_without_the_suite_is_named(tmp_path: Path) -> None:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(SandboxError, match=r"has no suite 'sid'.*HTTP 404"):
            probe_mirror(f"http://127.0.0.1:{server.server_address[1]}/nowhere", "sid")
    finally:
        server.shutdown()
        server.server_close()


def test_up_refuses_a_port_in_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sandbox.build.os.geteuid", lambda: 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sandbox = Sandbox(config(tmp_path, root=fake_root(tmp_path / "root"), ami_port=port))
        with pytest.raises(SandboxError, match=rf"AMI \(ami_port\) port {port} .* in use"):
            sandbox.up(timeout=5)
