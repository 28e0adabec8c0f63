"""Real SIP callers and phones played by SIPp (Debian package sip-tester): the tests' callers
and agent phones, and the demo's (``app.demo``), share this module.

Scenarios live in ``config/sipp/`` as templates: the helper fills their ``@@name@@``
placeholders (timings, the DTMF block) with the same strict renderer as the Asterisk
configs, writes the result into a fresh log folder and runs ``sipp`` there, so its trace
files (messages, unexpected messages, ``<log>`` lines) stay together and are shown when a
test fails (or kept in the state folder for the demo).

Every SIPp process gets its own signalling port (-p) and media port block (-mp, and the
three ports after it, which SIPp also binds), so several can run at once. Every wait has a
deadline: a SIPp that does not finish in time is killed and its logs are reported.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cti.errors import SandboxError
from sandbox.render import render_template

__all__ = [
    "DTMF_DIR",
    "SCENARIO_DIR",
    "SippProcess",
    "SippResult",
    "dtmf_block",
    "dtmf_pcap",
    "free_media_port",
    "free_udp_port",
    "render_scenario",
    "require_sipp",
    "run_caller",
    "run_hangup_caller",
    "start_caller",
    "start_hangup_caller",
    "start_phone",
    "start_phone_process",
]

SCENARIO_DIR = Path(__file__).resolve().parents[1] / "config" / "sipp"
DTMF_DIR = Path("/usr/share/sip-tester")
_FOREVER_MS = 24 * 3600 * 1000
_DTMF_NAMES = {**{str(d): str(d) for d in range(10)}, "*": "star", "#": "pound"}


def require_sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise SandboxError(
            "'sipp' is not installed: run 'apt-get install -y sip-tester' as root (the "
            "demo and the real-call tests play callers and phones with it)"
        )
    return path


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nobody holds right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def free_media_port(host: str = "127.0.0.1") -> int:
    """An even port with it and the next three free: SIPp binds -mp .. -mp+3 (RTP/RTCP of
    audio and video)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(30000, 39990, 4)
        if all(_bindable(base + offset, host) for offset in range(4)):
            return base
    raise SandboxError("found no free block of four UDP ports in 30000-39999 for SIPp media")


def render_scenario(name: str, values: dict[str, str]) -> str:
    folder = SCENARIO_DIR
    text = (folder / name).read_text(encoding="utf-8")
    return render_template(text, values, source=str(folder / name))


def dtmf_pcap(digit: str, index: int, out_dir: Path) -> Path:
    """A copy of SIPp's RFC 2833 recording of ``digit`` renumbered as key ``index`` of a call.

    The shipped recordings come from one session that pressed 0-9, * and #, in that order:
    they share an SSRC and their RTP timestamps grow with the key. Asterisk drops an event
    whose timestamp is not above the last finished one (process_dtmf_rfc2833() in
    res/res_rtp_asterisk.c), so played as is, "42" would lose the 2 and "55" the second 5.
    Each copy gets sequence numbers and timestamps that grow with ``index`` instead.
    """
    try:
        source = DTMF_DIR / f"dtmf_2833_{_DTMF_NAMES[digit]}.pcap"
    except KeyError:
        raise ValueError(f"no RFC 2833 recording for key {digit!r}") from None
    data = bytearray(source.read_bytes())
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data, 0)
    if magic != 0xA1B2C3D4 or linktype != 1:
        raise ValueError(f"{source}: expected a little-endian Ethernet pcap")
    offset, first_seq, first_ts = 24, None, None
    while offset < len(data):
        captured = struct.unpack_from("<IIII", data, offset)[2]
        packet = offset + 16
        ip = packet + 14
        udp = ip + (data[ip] & 0x0F) * 4
        rtp = udp + 8
        seq, timestamp = struct.unpack_from(">HI", data, rtp + 2)
        if first_seq is None or first_ts is None:
            first_seq, first_ts = seq, timestamp
        struct.pack_into(
            ">HI",
            data,
            rtp + 2,
            (seq - first_seq + 1000 + 100 * index) & 0xFFFF,
            (timestamp - first_ts + 160_000 + 16_000 * index) & 0xFFFFFFFF,
        )
        struct.pack_into(">H", data, udp + 6, 0)  # UDP checksum: 0 = none (IPv4)
        offset = packet + captured
    target = out_dir / f"dtmf_{index:02d}_{_DTMF_NAMES[digit]}.pcap"
    target.write_bytes(bytes(data))
    return target


def dtmf_block(digits: str, key_gap_ms: int, pauses: Sequence[int] | None, out_dir: Path) -> str:
    if pauses is not None and len(pauses) != len(digits):
        raise ValueError(f"{len(pauses)} pauses for {len(digits)} digits")
    waits = list(pauses) if pauses is not None else [key_gap_ms] * len(digits)
    if digits and pauses is None:
        waits[0] = 0  # the first key comes right after first_key_ms (answer_wait_ms)
    lines = []
    for index, (digit, wait) in enumerate(zip(digits, waits, strict=True)):
        pcap = dtmf_pcap(digit, index, out_dir)
        label = f"key{index}"
        if wait > 0:
            lines.append(
                f'  <recv request="BYE" timeout="{wait}" ontimeout="{label}" next="remote_bye"/>'
            )
        lines.append(f'  <label id="{label}"/>')
        lines.append(
            f'  <nop><action><exec play_pcap_audio="{pcap}"/>'
            f'<log message="key: {digit}"/></action></nop>'
        )
    if digits:
        # play_pcap_audio plays in the background: let the last key finish (~150 ms).
        lines.append(
            '  <recv request="BYE" timeout="300" ontimeout="keys_done" next="remote_bye"/>'
        )
        lines.append('  <label id="keys_done"/>')
    return "\n".join(lines)


@dataclass(frozen=True)
class SippResult:
    """How a SIPp run ended; ``events`` are the lines its scenario logged (``<log>``)."""

    command: tuple[str, ...]
    returncode: int
    log_dir: Path
    events: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def hangup(self) -> str | None:
        """Who ended the call: "caller", "remote", "cancel", "phone" (first call only)."""
        for event in self.events:
            if event.startswith("hangup: "):
                return event.split()[1]
        return None

    def count(self, prefix: str) -> int:
        return sum(1 for event in self.events if event.startswith(prefix))

    def check(self) -> SippResult:
        """``self`` if SIPp succeeded, else ``AssertionError`` with its logs."""
        if not self.ok:
            raise AssertionError(self.describe())
        return self

    def describe(self) -> str:
        parts = [f"sipp exited with {self.returncode}: {' '.join(self.command)}"]
        parts.extend(_log_tails(self.log_dir))
        return "\n".join(parts)


def _log_tails(log_dir: Path, lines: int = 60) -> list[str]:
    parts = []
    for path in sorted(log_dir.glob("*")):
        if path.suffix in (".log", ".txt") and path.stat().st_size:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
    return parts


@dataclass
class SippProcess:
    """A running SIPp (a caller or a phone); ``stop``/``wait`` give its ``SippResult``."""

    command: tuple[str, ...]
    log_dir: Path
    process: subprocess.Popen[bytes]
    scenario: str
    _result: SippResult | None = field(default=None, repr=False)

    def events(self) -> tuple[str, ...]:
        lines: list[str] = []
        for path in sorted(self.log_dir.glob(f"{self.scenario}_*_logs.log")):
            lines.extend(line.strip() for line in path.read_text(errors="replace").splitlines())
        return tuple(line for line in lines if line)

    def wait_for_event(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.startswith(prefix):
                    return event
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(
            f"no SIPp event {prefix!r} within {timeout} s; events: {self.events()}\n"
            + "\n".join(_log_tails(self.log_dir))
        )

    def wait(self, timeout: float) -> SippResult:
        """Wait for SIPp to finish by itself; kill it (and fail) after ``timeout``."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise AssertionError(
                f"sipp did not finish within {timeout} s (killed): {' '.join(self.command)}\n"
                + "\n".join(_log_tails(self.log_dir))
            ) from None
        return self._finish()

    def stop(self, timeout: float = 10) -> SippResult:
        """Ask SIPp to quit (SIGINT, as Ctrl-C does); kill it if it lingers."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        return self._finish()

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=10)

    def _finish(self) -> SippResult:
        if self._result is None:
            self._result = SippResult(
                command=self.command,
                returncode=self.process.returncode,
                log_dir=self.log_dir,
                events=self.events(),
            )
        return self._result


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


def _log_folder(scenario: str, log_dir: Path | None) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"sipp-{scenario.removesuffix('.xml')}-", dir=log_dir))


def _start(
    scenario: str,
    text: str,
    args: Sequence[str],
    *,
    host: str,
    local_port: int | None,
    media_port: int | None,
    folder: Path,
) -> SippProcess:
    """Start SIPp in ``folder``. On Linux it is also told to die with us (PR_SET_PDEATHSIG):
    a server killed with SIGKILL must not leave phones and callers running. The signal
    follows the *thread* that started it, so start SIPp from a long-lived thread (the event
    loop's), never from a worker thread."""
    sipp = require_sipp()
    stem = scenario.removesuffix(".xml")
    (folder / scenario).write_text(text, encoding="utf-8")
    command = (
        sipp,
        "-sf",
        scenario,
        "-i",
        host,
        "-p",
        str(local_port if local_port is not None else free_udp_port(host)),
        "-mi",
        host,
        "-mp",
        str(media_port if media_port is not None else free_media_port(host)),
        "-nostdin",
        "-trace_msg",
        "-trace_err",
        "-trace_logs",
        *args,
    )
    with (folder / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            command,
            cwd=folder,
            stdin=subprocess.DEVNULL,
            # SIPp redraws its statistics screen on stdout every second: nobody reads it.
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "TERM": "dumb"},
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
    return SippProcess(command=command, log_dir=folder, process=process, scenario=stem)


def _caller_args(
    sip_port: int, dnis: str, ani: str, caller_name: str, host: str, timeout: float
) -> list[str]:
    return [
        "-s",
        dnis,
        "-key",
        "ani",
        ani,
        "-key",
        "caller_name",
        caller_name,
        "-m",
        "1",
        "-l",
        "1",
        # SIPp's own deadline, a little inside ours, so it reports instead of being killed.
        "-timeout",
        f"{max(1, int(timeout) - 2)}s",
        "-timeout_error",
        f"{host}:{sip_port}",
    ]


def start_caller(
    sip_port: int,
    dnis: str,
    *,
    digits: str = "",
    first_key_ms: int = 1500,
    key_gap_ms: int = 500,
    pauses: Sequence[int] | None = None,
    hold_ms: int = 2000,
    ani: str = "5551234",
    caller_name: str = "Test Caller",
    host: str = "127.0.0.1",
    local_port: int | None = None,
    media_port: int | None = None,
    timeout: float = 60,
    log_dir: Path | None = None,
) -> SippProcess:
    """Start one call to ``dnis``: answer, wait ``first_key_ms``, press ``digits`` (RFC 2833)
    ``key_gap_ms`` apart (or after the per-key ``pauses``), stay ``hold_ms``, hang up;
    Asterisk hanging up first is fine too (``result.hangup == "remote"``)."""
    folder = _log_folder("caller_dtmf.xml", log_dir)
    text = render_scenario(
        "caller_dtmf.xml",
        {
            "answer_wait_ms": str(max(1, first_key_ms)),
            "hold_ms": str(max(1, hold_ms)),
            "dtmf": dtmf_block(digits, key_gap_ms, pauses, folder),
        },
    )
    return _start(
        "caller_dtmf.xml",
        text,
        _caller_args(sip_port, dnis, ani, caller_name, host, timeout),
        host=host,
        local_port=local_port,
        media_port=media_port,
        folder=folder,
    )


def run_caller(sip_port: int, dnis: str, *, timeout: float = 60, **options: Any) -> SippResult:
    """``start_caller`` (same keywords) and wait for the call to end, at most ``timeout`` s."""
    return start_caller(sip_port, dnis, timeout=timeout, **options).wait(timeout)


def start_hangup_caller(
    sip_port: int,
    dnis: str,
    *,
    ring_timeout_ms: int = 5000,
    talk_ms: int = 1000,
    ani: str = "5551234",
    caller_name: str = "Test Caller",
    host: str = "127.0.0.1",
    local_port: int | None = None,
    media_port: int | None = None,
    timeout: float = 60,
    log_dir: Path | None = None,
) -> SippProcess:
    """A caller who gives up: CANCEL if not answered within ``ring_timeout_ms``, else hang up
    ``talk_ms`` after the answer."""
    text = render_scenario(
        "caller_hangup.xml",
        {"ring_timeout_ms": str(max(1, ring_timeout_ms)), "talk_ms": str(max(1, talk_ms))},
    )
    folder = _log_folder("caller_hangup.xml", log_dir)
    return _start(
        "caller_hangup.xml",
        text,
        _caller_args(sip_port, dnis, ani, caller_name, host, timeout),
        host=host,
        local_port=local_port,
        media_port=media_port,
        folder=folder,
    )


def run_hangup_caller(
    sip_port: int, dnis: str, *, timeout: float = 60, **options: Any
) -> SippResult:
    """``start_hangup_caller`` (same keywords) and wait for the call to end."""
    return start_hangup_caller(sip_port, dnis, timeout=timeout, **options).wait(timeout)


def start_phone_process(
    port: int,
    *,
    ring_ms: int = 500,
    talk_ms: int | None = None,
    host: str = "127.0.0.1",
    media_port: int | None = None,
    log_dir: Path | None = None,
) -> SippProcess:
    """``start_phone`` without the bind check (for callers that must not block: check
    ``process.poll()`` a moment later yourself)."""
    text = render_scenario(
        "phone_uas.xml",
        {
            "ring_ms": str(max(1, ring_ms)),
            "talk_ms": str(_FOREVER_MS if talk_ms is None else max(1, talk_ms)),
        },
    )
    folder = _log_folder("phone_uas.xml", log_dir)
    return _start(
        "phone_uas.xml", text, [], host=host, local_port=port, media_port=media_port, folder=folder
    )


def start_phone(
    port: int,
    *,
    ring_ms: int = 500,
    talk_ms: int | None = None,
    host: str = "127.0.0.1",
    media_port: int | None = None,
    log_dir: Path | None = None,
) -> SippProcess:
    """An agent phone listening on ``host:port`` (the endpoint's static contact): rings
    ``ring_ms`` then answers every call; hangs up after ``talk_ms`` (``None``: waits for
    the other side). Runs until ``stop()``."""
    phone = start_phone_process(
        port,
        ring_ms=ring_ms,
        talk_ms=talk_ms,
        host=host,
        media_port=media_port,
        log_dir=log_dir,
    )
    # A phone that cannot bind its port exits at once: say so now, not as a call that
    # mysteriously never connects.
    time.sleep(0.2)
    if phone.process.poll() is not None:
        raise AssertionError(phone.stop().describe())
    return phone
