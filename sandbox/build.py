"""Build (once per machine) the Debian root that Asterisk runs in.

Debian's stable release has no Asterisk package, and installing unstable's packages into
the host would drag in unstable's libc. So ``debootstrap --variant=minbase`` puts a small
"sid" root (about 500 MB, a minute) into the cache folder, and every sandbox instance runs
``chroot ROOT asterisk ...`` in it.

Theory of operation:
- The build goes into ``asterisk-root.tmp-<pid>`` next to the final folder and is renamed
  into place only after debootstrap succeeded and the stamp was written, so a half-built
  root is never used: a root without a stamp does not exist as far as this module knows.
- The stamp (``.ctiserver-sandbox.json`` in the root) records suite, mirror, the package
  list asked for and the versions installed. A stamp whose suite or package list differs
  from the configuration marks the root as stale, to be rebuilt.
- A lock file (``asterisk-root.lock``, flock) serialises builds: a second build waits,
  then finds the first one's root and returns it.
- Leftovers of an interrupted build are removed under the lock, after unmounting anything
  debootstrap left mounted inside them (never delete through a mounted /proc).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cti.errors import SandboxError
from sandbox.config import INSTANCES_DIR, SandboxConfig
from sandbox.mirror import detect_host_mirror

__all__ = [
    "EXISTING_ROOT_HINT",
    "STAMP_NAME",
    "Stamp",
    "build_root",
    "parse_dpkg_status",
    "probe_mirror",
    "read_stamp",
    "require_root",
    "require_tool",
    "safe_rmtree",
]

_log = logging.getLogger(__name__)

STAMP_NAME = ".ctiserver-sandbox.json"
_STAMP_FORMAT = 1
_MIN_FREE_BYTES = 1_500 * 1024 * 1024  # the root is ~500 MB plus downloaded packages
_BUILD_TIMEOUT = 1800.0

EXISTING_ROOT_HINT = (
    "or point the server at an existing Asterisk (see README), or at an existing root with "
    "the sandbox 'root' setting"
)


@dataclass(frozen=True)
class Stamp:
    format: int
    suite: str
    mirror: str
    include: tuple[str, ...]
    built_at: str
    build_seconds: float
    packages: dict[str, str]

    @property
    def asterisk_version(self) -> str | None:
        return self.packages.get("asterisk")


def read_stamp(root: Path) -> Stamp | None:
    """The root's stamp, or ``None`` if the root is absent, half-built or unreadable."""
    try:
        data = json.loads((root / STAMP_NAME).read_text(encoding="utf-8"))
        stamp = Stamp(
            format=int(data["format"]),
            suite=str(data["suite"]),
            mirror=str(data["mirror"]),
            include=tuple(str(name) for name in data["include"]),
            built_at=str(data["built_at"]),
            build_seconds=float(data["build_seconds"]),
            packages={str(k): str(v) for k, v in dict(data["packages"]).items()},
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stamp if stamp.format == _STAMP_FORMAT else None


def parse_dpkg_status(text: str) -> dict[str, str]:
    """Installed package -> version, from a dpkg ``status`` file."""
    packages: dict[str, str] = {}
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and line[0] not in " \t" and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = fields.get("Version", "")
    return packages


def require_tool(name: str, package: str) -> str:
    """Absolute path of a program on PATH, or ``SandboxError`` saying how to install it."""
    path = shutil.which(name)
    if path is None:
        raise SandboxError(
            f"'{name}' is not installed (not on PATH): run 'apt-get install -y {package}' as "
            f"root, {EXISTING_ROOT_HINT}"
        )
    return path


def require_root(doing: str) -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            f"{doing} needs root (debootstrap and chroot): run it as root, {EXISTING_ROOT_HINT}"
        )


def probe_mirror(mirror: str, suite: str) -> None:
    """``SandboxError`` unless ``mirror`` answers for ``dists/<suite>/Release``."""
    url = f"{mirror}/dists/{suite}/Release"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=15):
            pass
    except urllib.error.HTTPError as exc:
        raise SandboxError(
            f"the mirror {mirror} has no suite '{suite}' ({url}: HTTP {exc.code}); set the "
            f"sandbox mirror to a Debian mirror that carries it, {EXISTING_ROOT_HINT}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SandboxError(
            f"cannot reach the mirror {mirror} ({url}: {exc}); check the network or set the "
            f"sandbox mirror to one this machine reaches, {EXISTING_ROOT_HINT}"
        ) from exc


def _check_space(folder: Path) -> None:
    free = shutil.disk_usage(folder).free
    if free < _MIN_FREE_BYTES:
        raise SandboxError(
            f"not enough free space in {folder}: {free // 2**20} MB free, the Asterisk root "
            f"needs about {_MIN_FREE_BYTES // 2**20} MB while building; free some space or "
            f"move the cache folder, {EXISTING_ROOT_HINT}"
        )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log.info("another build holds %s; waiting for it", lock_path)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].replace("\\040", " ") for line in lines if len(line.split()) > 1]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def safe_rmtree(path: Path) -> None:
    """Remove a (possibly half-built) root, unmounting whatever is mounted inside it first."""
    if not path.exists():
        return
    for point in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)
    remaining = _mounts_under(path)
    if remaining:
        raise SandboxError(
            f"refusing to delete {path}: still mounted inside it: {', '.join(remaining)}; "
            "unmount them and retry"
        )
    shutil.rmtree(path)


def _running_instances(root: Path) -> list[str]:
    running = []
    for pid_file in (root / INSTANCES_DIR.relative_to("/")).glob("*/run/asterisk.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            if Path(f"/proc/{pid}").exists():
                running.append(pid_file.parent.parent.name)
    return running


def _explain_failure(log_text: str, mirror: str, log_path: Path) -> SandboxError:
    tail = "\n".join(log_text.strip().splitlines()[-15:])
    if "No space left on device" in log_text:
        reason = "the disk filled up while building; free some space"
    elif any(
        marker in log_text
        for marker in ("Failed getting release file", "Couldn't download", "Temporary failure")
    ):
        reason = f"downloads from {mirror} failed; check that this machine reaches it"
    elif "Couldn't find these debs" in log_text or "Couldn't find package" in log_text:
        reason = "the mirror lacks a package asked for; check the suite and the package list"
    else:
        reason = "debootstrap failed"
    return SandboxError(f"{reason}, {EXISTING_ROOT_HINT}. Log: {log_path}\n{tail}")


def _debootstrap(config: SandboxConfig, mirror: str, target: Path, log_path: Path) -> None:
    debootstrap = require_tool("debootstrap", "debootstrap")
    command = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(config.include)}",
        "--components=main",
        config.suite,
        str(target),
        mirror,
    ]
    _log.info("building the Asterisk root: %s (about a minute)", " ".join(command))
    with log_path.open("w") as log:
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=_BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(
                f"debootstrap took longer than {_BUILD_TIMEOUT:.0f} s; see {log_path}, "
                f"{EXISTING_ROOT_HINT}"
            ) from exc
    if result.returncode != 0:
        raise _explain_failure(log_path.read_text(errors="replace"), mirror, log_path)


def _finish_root(root: Path) -> None:
    """Trim the fresh root and create what every instance needs."""
    # The downloaded .debs and package lists are ~160 MB nobody reads again.
    for folder in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        for item in folder.glob("*"):
            if item.is_file():
                item.unlink()
    (root / INSTANCES_DIR.relative_to("/")).mkdir(parents=True, exist_ok=True)


def build_root(config: SandboxConfig, *, force: bool = False) -> Path:
    """Return a ready root, building it first if it is missing or stale (or ``force``)."""
    if config.root is not None:
        if force:
            raise SandboxError(f"{config.root} is a root you supplied: it is never rebuilt")
        if not (config.root / "usr/sbin/asterisk").is_file():
            raise SandboxError(
                f"{config.root} has no usr/sbin/asterisk; build a sandbox root instead "
                f"(unset 'root'), {EXISTING_ROOT_HINT}"
            )
        return config.root

    root = config.root_dir
    if not force and _is_current(root, config):
        return root
    require_tool("debootstrap", "debootstrap")
    require_tool("chroot", "coreutils")
    require_root("building the Asterisk sandbox")
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(config.cache_dir / "asterisk-root.lock"):
        if not force and _is_current(root, config):
            return root  # built by whoever held the lock before us
        mirror = config.mirror or detect_host_mirror()
        _check_space(config.cache_dir)
        probe_mirror(mirror, config.suite)
        if root.exists() and _running_instances(root):
            raise SandboxError(
                f"instances {', '.join(_running_instances(root))} run in {root}; stop them "
                "('ctiserver pbx down') before rebuilding"
            )
        for stale in config.cache_dir.glob("asterisk-root.tmp-*"):
            safe_rmtree(stale)
        return _build_locked(config, mirror, root)


def _is_current(root: Path, config: SandboxConfig) -> bool:
    stamp = read_stamp(root)
    return (
        stamp is not None
        and stamp.suite == config.suite
        and stamp.include == tuple(config.include)
        and (root / "usr/sbin/asterisk").is_file()
    )


def _build_locked(config: SandboxConfig, mirror: str, root: Path) -> Path:
    tmp = config.cache_dir / f"asterisk-root.tmp-{os.getpid()}"
    log_path = config.cache_dir / "build.log"
    started = time.monotonic()
    try:
        _debootstrap(config, mirror, tmp, log_path)
        _finish_root(tmp)
        status = (tmp / "var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
        stamp = Stamp(
            format=_STAMP_FORMAT,
            suite=config.suite,
            mirror=mirror,
            include=tuple(config.include),
            built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            build_seconds=round(time.monotonic() - started, 1),
            packages=parse_dpkg_status(status),
        )
        (tmp / STAMP_NAME).write_text(json.dumps(asdict(stamp), indent=1, sort_keys=True))
        old = config.cache_dir / f"asterisk-root.old-{os.getpid()}"
        if root.exists():
            root.rename(old)
        tmp.rename(root)
        safe_rmtree(old)
    except OSError as exc:
        raise SandboxError(
            f"building the root in {tmp} failed: {exc}, {EXISTING_ROOT_HINT}"
        ) from exc
    finally:
        if tmp.exists():
            safe_rmtree(tmp)
    _log.info("Asterisk root ready in %s (%.0f s)", root, stamp.build_seconds)
    return root
