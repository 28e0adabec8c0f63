"""Run sandbox instances of Asterisk in the cached root: build, render, up, down, status, cli.

Synchronous on purpose: this is admin tooling (``ctiserver pbx ...``) and test-fixture code
that runs outside any event loop.

Theory of operation:
- One root, many instances. An instance is a folder ``/srv/ctiserver/<instance>`` inside
  the root with its own etc, run, log, spool, lib and cache, and a process started as
  ``chroot ROOT asterisk -C /srv/ctiserver/<instance>/etc/asterisk.conf``. The -C file puts
  the control socket, pid file, astdb and logs in the instance folder, and the rendered
  ports keep instances apart on the network.
- ``up`` launches Asterisk without -f: it daemonises, so it outlives the command that
  started it. The instance is "up" once ``asterisk -rx "core waitfullybooted"`` answers.
- ``core restart now`` re-executes Asterisk with its original argv (main/asterisk.c,
  really_quit() -> execvp(_argv[0], _argv)), so a restarted instance keeps its -C file.
- The instance is identified by its pid file *and* the process's command line naming its
  asterisk.conf, so a recycled pid is never taken for (or killed as) our Asterisk.
- Asterisk runs as root inside the chroot: with -U/-G (or runuser) it drops privileges and
  cannot open astdb in folders owned by root.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cti.errors import SandboxError
from sandbox.build import EXISTING_ROOT_HINT, build_root, read_stamp, require_root, require_tool
from sandbox.config import InstanceLayout, SandboxConfig
from sandbox.render import DEFAULT_TEMPLATE_DIR, load_templates, render_instance
from sandbox.stale_invites import ALIVE_SECONDS, final_response, invite_entries, invite_headers

__all__ = ["Sandbox", "SandboxStatus"]

_log = logging.getLogger(__name__)

# Inside the chroot the host's environment means nothing (and may hold secrets).
_CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}
_NOT_RUNNING = "Unable to connect to remote asterisk"


@dataclass(frozen=True)
class SandboxStatus:
    instance: str
    root: Path
    built: bool
    running: bool
    pid: int | None
    version: str | None
    uptime_seconds: int | None
    ami_port: int
    sip_port: int


class Sandbox:
    """One instance of the Asterisk sandbox (``config.instance``) in the shared root."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.layout: InstanceLayout = config.layout

    # -- building and rendering ------------------------------------------------------------

    def build(self, *, force: bool = False) -> Path:
        """Build the shared root unless a current one exists; returns its path."""
        return build_root(self.config, force=force)

    def render(self) -> Path:
        """Write this instance's config files; returns the etc folder (host path)."""
        template_dir = self.config.template_dir or DEFAULT_TEMPLATE_DIR
        templates, partials = load_templates(template_dir)
        files = render_instance(self.config, templates, partials)
        if not self.layout.root.is_dir():
            raise SandboxError(f"no Asterisk root at {self.layout.root}: build it first")
        for name in (*self.layout.subdirs, "lib/keys"):
            # Asterisk creates none of its folders; res_crypto looks for astkeydir/keys.
            self.layout.host(self.layout.inner(name)).mkdir(parents=True, exist_ok=True)
        etc = self.layout.host(self.layout.inner("etc"))
        for stale in etc.glob("*.conf"):
            if stale.name not in files:
                stale.unlink()
        for name, text in files.items():
            tmp = etc / f".{name}.tmp"
            tmp.write_text(text, encoding="utf-8")
            # manager.conf and pjsip.conf hold secrets.
            tmp.chmod(0o600)
            tmp.replace(etc / name)
        return etc

    # -- process control -------------------------------------------------------------------

    def up(self, *, timeout: float = 60) -> None:
        """Build if needed, render, start Asterisk and wait until it is fully booted.

        An instance that is already running is left as it is (``down`` first to apply new
        settings).
        """
        require_tool("chroot", "coreutils")
        require_root("starting the Asterisk sandbox")
        self.build()
        with self._instance_lock():
            if self._live_pid() is not None:
                self._wait_booted(time.monotonic() + timeout)
                return
            self.render()
            self._check_ports_free()
            self._clear_stale_run_files()
            launched_at = time.monotonic()
            self._launch()
            self._wait_booted(launched_at + timeout, launched_at=launched_at)

    def down(self, *, timeout: float = 30) -> None:
        """Stop the instance (``core stop now``; SIGTERM, then SIGKILL, if that fails)."""
        with self._instance_lock():
            pid = self._live_pid()
            if pid is None:
                self._clear_stale_run_files()
                return
            require_root("stopping the Asterisk sandbox")
            deadline = time.monotonic() + timeout
            with contextlib.suppress(SandboxError):
                self._rx("core stop now", timeout=max(1.0, min(10.0, timeout / 2)))
            if not self._wait_gone(pid, deadline - timeout / 3):
                _log.warning(
                    "Asterisk %s (pid %d) ignored 'core stop now'; SIGTERM",
                    self.config.instance,
                    pid,
                )
                self._signal(pid, signal.SIGTERM)
                if not self._wait_gone(pid, deadline):
                    self._signal(pid, signal.SIGKILL)
                    if not self._wait_gone(pid, time.monotonic() + 5):
                        raise SandboxError(f"Asterisk (pid {pid}) survived SIGKILL")
            self._clear_stale_run_files()

    def restart(self, *, timeout: float = 60) -> int:
        """``core restart now`` and wait for the new process to boot; returns its pid."""
        old = self._live_pid()
        if old is None:
            raise SandboxError(f"instance {self.config.instance} is not running")
        self._rx("core restart now", timeout=10)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = self._live_pid()
            if pid is not None and pid != old and self._answers():
                self._wait_booted(deadline)
                return pid
            time.sleep(0.2)
        raise SandboxError(self._with_logs(f"instance {self.config.instance} did not come back"))

    def status(self) -> SandboxStatus:
        stamp = read_stamp(self.layout.root)
        built = stamp is not None or (self.layout.root / "usr/sbin/asterisk").is_file()
        pid = self._live_pid()
        # The version number alone ("22.10.1+dfsg..."): from the running process if there is
        # one, else the installed package's version without its Debian epoch ("1:").
        version = re.sub(r"^\d+:", "", stamp.asterisk_version or "") if stamp else ""
        uptime: int | None = None
        if pid is not None:
            with contextlib.suppress(SandboxError):
                running = re.match(r"Asterisk (\S+)", self._rx("core show version", timeout=5))
                version = running.group(1) if running else version
                match = re.search(
                    r"System uptime:\s*(\d+)", self._rx("core show uptime seconds", timeout=5)
                )
                uptime = int(match.group(1)) if match else None
        return SandboxStatus(
            instance=self.config.instance,
            root=self.layout.root,
            built=built,
            running=pid is not None,
            pid=pid,
            version=version or None,
            uptime_seconds=uptime,
            ami_port=self.config.ami_port,
            sip_port=self.config.sip_port,
        )

    def cli(self, command: str, timeout: float = 10) -> str:
        """Run one CLI command in the instance (``asterisk -rx``) and return its output."""
        if "\n" in command or "\r" in command:
            raise SandboxError("a CLI command is one line")
        return self._rx(command, timeout=timeout)

    def record_sip_history(self) -> None:
        """Keep PJSIP's message history (``end_stale_invites`` reads it). For test instances:
        it grows until cleared, which ``end_stale_invites`` does."""
        self.cli("pjsip set history on")

    def end_stale_invites(self) -> int:
        """Answer the INVITEs still pending to agent phones (480), so that a call already hung
        up cannot ring a phone started later on the same port (``sandbox.stale_invites`` says
        why that happens). Needs ``record_sip_history`` first; clears the history. Returns
        how many INVITEs were answered."""
        contacts = [a.contact for a in self.config.agents if a.contact]
        addresses = {c.rsplit("@", 1)[-1].split(";")[0] for c in contacts}
        listing = self.cli("pjsip show history where sip.msg.request.method = INVITE")
        entries = invite_entries(listing, addresses, since=time.time() - ALIVE_SECONDS)
        answered: set[tuple[str, str]] = set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for entry in reversed(entries):  # newest first: one per transaction is enough
                headers = invite_headers(self.cli(f"pjsip show history entry {entry.number}"))
                if headers is None:
                    continue
                key = (headers["Call-ID"], headers["Via"])
                if key in answered:
                    continue
                answered.add(key)
                sock.sendto(final_response(headers), ("127.0.0.1", self.config.sip_port))
        # Cleared after reading (entry numbers restart at 0): history never holds more than
        # what happened since the last call.
        self.cli("pjsip set history clear")
        return len(answered)

    # -- helpers ---------------------------------------------------------------------------

    def _asterisk(self, *args: str) -> list[str]:
        return [
            "chroot",
            str(self.layout.root),
            "/usr/sbin/asterisk",
            "-C",
            str(self.layout.asterisk_conf),
            *args,
        ]

    def _rx(self, command: str, *, timeout: float) -> str:
        try:
            result = subprocess.run(
                self._asterisk("-rx", command),
                env=_CHROOT_ENV,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SandboxError(
                f"'asterisk -rx {command}' gave no answer within {timeout} s"
            ) from exc
        except OSError as exc:
            raise SandboxError(f"cannot run chroot asterisk: {exc}") from exc
        output = result.stdout + result.stderr
        if result.returncode != 0 or _NOT_RUNNING in output:
            raise SandboxError(
                f"instance {self.config.instance} is not running (asterisk -rx: "
                f"{output.strip() or 'exit ' + str(result.returncode)}); start it with up()"
            )
        return result.stdout

    def _answers(self) -> bool:
        try:
            self._rx("core show uptime seconds", timeout=5)
        except SandboxError:
            return False
        return True

    def _launch(self) -> None:
        startup_log = self.layout.startup_log
        with startup_log.open("ab") as log:
            try:
                # Without -f Asterisk forks and the parent exits at once; the daemon keeps
                # running in its own session, so it outlives this command.
                result = subprocess.run(
                    self._asterisk(),
                    env=_CHROOT_ENV,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SandboxError(f"cannot start Asterisk: {exc}") from exc
        if result.returncode != 0:
            raise SandboxError(
                self._with_logs(f"asterisk exited with {result.returncode} at start")
            )

    def _wait_booted(self, deadline: float, *, launched_at: float | None = None) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SandboxError(
                    self._with_logs(f"instance {self.config.instance} did not boot in time")
                )
            if self.layout.ctl_socket.exists():
                with contextlib.suppress(SandboxError):
                    self._rx("core waitfullybooted", timeout=max(1.0, remaining))
                    return
            if (
                launched_at is not None
                and time.monotonic() - launched_at > 5
                and self._live_pid() is None
            ):
                # Still no process five seconds after launch: it died while starting.
                raise SandboxError(
                    self._with_logs(f"Asterisk instance {self.config.instance} exited at start")
                )
            time.sleep(0.2)

    def _with_logs(self, message: str) -> str:
        parts = [message]
        for path in (self.layout.startup_log, self.layout.messages_log):
            with contextlib.suppress(OSError):
                tail = path.read_text(errors="replace").strip().splitlines()[-20:]
                if tail:
                    parts.append(f"--- {path} (last lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    def _live_pid(self) -> int | None:
        """Pid of this instance's Asterisk, if one runs (checked against its command line)."""
        try:
            pid = int(self.layout.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        conf = str(self.layout.asterisk_conf).encode()
        return pid if conf in cmdline and any(b"asterisk" in arg for arg in cmdline[:1]) else None

    def _wait_gone(self, pid: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return True
            time.sleep(0.1)
        return not Path(f"/proc/{pid}").exists()

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)

    def _clear_stale_run_files(self) -> None:
        for path in (self.layout.pid_file, self.layout.ctl_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _check_ports_free(self, *, grace: float = 5.0) -> None:
        """The instance's AMI and SIP ports are free; a port still held is retried for
        ``grace`` seconds (an instance just stopped may not have let go of it yet: seen once
        in CI right after ``down()``), then refused with a message saying what to do."""
        checks = [
            (socket.SOCK_STREAM, self.config.ami_port, "AMI (ami_port)"),
            (socket.SOCK_DGRAM, self.config.sip_port, "SIP (sip_port)"),
        ]
        deadline = time.monotonic() + grace
        for kind, port, what in checks:
            while True:
                try:
                    _probe_bind(kind, port)
                    break
                except OSError as exc:
                    if time.monotonic() < deadline:
                        time.sleep(0.2)
                        continue
                    raise SandboxError(
                        f"{what} port {port} on 127.0.0.1 is in use ({exc.strerror}): another "
                        f"instance or program holds it; stop it or give instance "
                        f"'{self.config.instance}' other ports, {EXISTING_ROOT_HINT}"
                    ) from exc

    @contextlib.contextmanager
    def _instance_lock(self) -> Iterator[None]:
        lock_dir = self.config.cache_dir / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with (lock_dir / f"{self.config.instance}.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _probe_bind(kind: int, port: int) -> None:
    """Bind ``port`` on loopback and let it go (OSError when something holds it)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
