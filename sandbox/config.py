"""What a sandbox instance is made of: its settings and where its files live.

``SandboxConfig`` is a frozen value the CLI (or the test fixture) fills in from validated
settings; it checks only what would otherwise produce a broken Asterisk config file (a value
with a newline or a ``;`` in it silently truncates a line) or a port clash inside one
instance. ``InstanceLayout`` names the paths of one instance, both as seen from the host
(``ROOT/srv/ctiserver/<instance>/...``) and from inside the chroot (``/srv/ctiserver/...``),
which is what the rendered config files must contain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cti.errors import ConfigError

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_INCLUDE",
    "INSTANCES_DIR",
    "AgentPhone",
    "InstanceLayout",
    "SandboxConfig",
]

DEFAULT_CACHE_DIR = Path("~/.cache/ctiserver").expanduser()

#: Packages debootstrap installs on top of minbase. The stamp records them: a root built
#: with another list is rebuilt.
DEFAULT_INCLUDE: tuple[str, ...] = (
    "asterisk",
    "asterisk-core-sounds-en-gsm",
    "asterisk-moh-opsound-gsm",
)

#: Where instances live inside the root (a chroot path).
INSTANCES_DIR = PurePosixPath("/srv/ctiserver")

_INSTANCE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_ENDPOINT_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Secrets end up after "secret =" / "password =": no whitespace, no ";" (starts a comment in
# Asterisk config files), no quotes or brackets, nothing that looks like a placeholder.
_SECRET_RE = re.compile(r"[A-Za-z0-9._~+/=!%^*:-]{1,128}")
_NAME_RE = re.compile(r"[A-Za-z0-9 ._-]{1,64}")
_CONTACT_RE = re.compile(r"sips?:[A-Za-z0-9._~+-]+@[A-Za-z0-9.\[\]:-]+(;[A-Za-z0-9=._-]+)*")
_HOST_RE = re.compile(r"[A-Za-z0-9.:-]{1,255}")
_USERNAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, source="sandbox", key=key)


def _check_port(port: int, key: str) -> None:
    _check(1 <= port <= 65535, key, f"expected a port number 1-65535, got {port!r}")


@dataclass(frozen=True)
class AgentPhone:
    """One agent phone: a PJSIP endpoint ``agentNNNN`` with digest auth.

    ``contact`` is a static contact for phones that never register (SIPp plays them in
    tests), e.g. ``"sip:agent1001@127.0.0.1:5081"``; ``None`` means the phone registers.
    """

    endpoint: str
    password: str
    contact: str | None = None
    display_name: str | None = None

    def __post_init__(self) -> None:
        key = f"agents.{self.endpoint}"
        _check(
            bool(_ENDPOINT_RE.fullmatch(self.endpoint)),
            key,
            "an endpoint name is a letter then letters, digits, '_' or '-' (e.g. agent1001)",
        )
        _check(
            bool(_SECRET_RE.fullmatch(self.password)),
            f"{key}.password",
            "1-128 characters without spaces, ';', quotes, brackets, '@' or ','",
        )
        if self.contact is not None:
            _check(
                bool(_CONTACT_RE.fullmatch(self.contact)),
                f"{key}.contact",
                f"expected a SIP URI like sip:{self.endpoint}@127.0.0.1:5081",
            )
        if self.display_name is not None:
            _check(
                bool(_NAME_RE.fullmatch(self.display_name)),
                f"{key}.display_name",
                "1-64 letters, digits, spaces, '.', '_' or '-'",
            )

    @property
    def number(self) -> str:
        """The extension other agents dial: the endpoint's trailing digits (agent1001 -> 1001)."""
        match = re.search(r"\d+$", self.endpoint)
        return match.group(0) if match else self.endpoint

    @property
    def name(self) -> str:
        return self.display_name or f"Agent {self.number}"


@dataclass(frozen=True)
class SandboxConfig:
    """Settings of one sandbox instance; several instances share one cached root."""

    ami_secret: str
    cache_dir: Path = DEFAULT_CACHE_DIR
    instance: str = "demo"
    #: An existing root (with ``/usr/sbin/asterisk``) to use instead of building one.
    root: Path | None = None
    #: Debian mirror for debootstrap; ``None`` reads the host's apt sources.
    mirror: str | None = None
    suite: str = "sid"
    include: tuple[str, ...] = DEFAULT_INCLUDE
    ami_port: int = 5038
    ami_username: str = "ctiserver"
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 10999
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agents: tuple[AgentPhone, ...] = ()
    #: Seconds a caller waits in the fallback queue when the CTI server is down.
    fallback_timeout: int = 300
    #: Folder of the config templates; ``None`` is the repository's ``config/asterisk``.
    template_dir: Path | None = field(default=None)

    def __post_init__(self) -> None:
        _check(
            bool(_INSTANCE_RE.fullmatch(self.instance)),
            "instance",
            "an instance name is a lower-case letter then up to 31 of [a-z0-9_-]",
        )
        _check(
            bool(_SECRET_RE.fullmatch(self.ami_secret)),
            "ami_secret",
            "1-128 characters without spaces, ';', quotes, brackets, '@' or ','",
        )
        _check(
            bool(_USERNAME_RE.fullmatch(self.ami_username)),
            "ami_username",
            "letters, digits, '_' or '-'",
        )
        _check(bool(_HOST_RE.fullmatch(self.agi_host)), "agi_host", "a host name or IP address")
        _check(bool(re.fullmatch(r"[a-z0-9.-]+", self.suite)), "suite", "a Debian suite name")
        for key in ("ami_port", "sip_port", "rtp_start", "rtp_end", "agi_port"):
            _check_port(getattr(self, key), key)
        _check(
            self.rtp_start < self.rtp_end and self.rtp_start % 2 == 0,
            "rtp_start",
            "RTP ports are an even start below the end (RTP takes even ports, RTCP the next)",
        )
        _check(
            not (self.rtp_start <= self.sip_port <= self.rtp_end)
            and not (self.rtp_start <= self.ami_port <= self.rtp_end),
            "rtp_start",
            "the RTP range must not contain the SIP or AMI port",
        )
        _check(self.sip_port != self.ami_port, "sip_port", "SIP and AMI need distinct ports")
        _check(self.fallback_timeout > 0, "fallback_timeout", "a positive number of seconds")
        names = [agent.endpoint for agent in self.agents]
        _check(len(set(names)) == len(names), "agents", "endpoint names must be unique")
        _check("anonymous" not in names, "agents", "'anonymous' is the trunk endpoint")

    @property
    def root_dir(self) -> Path:
        """The Asterisk root: the existing one if configured, else the cached build."""
        return self.root if self.root is not None else self.cache_dir / "asterisk-root"

    @property
    def layout(self) -> InstanceLayout:
        return InstanceLayout(root=self.root_dir, instance=self.instance)


@dataclass(frozen=True)
class InstanceLayout:
    """Paths of one instance, inside the chroot (``inner``) and on the host (``host``)."""

    root: Path
    instance: str

    @property
    def inner_dir(self) -> PurePosixPath:
        return INSTANCES_DIR / self.instance

    def inner(self, name: str) -> PurePosixPath:
        """A per-instance folder (etc, run, log, spool, lib, cache, tts) as the chroot sees
        it."""
        return self.inner_dir / name

    def host(self, inner: PurePosixPath) -> Path:
        """Where a chroot path lives on the host."""
        return self.root / inner.relative_to("/")

    @property
    def subdirs(self) -> tuple[str, ...]:
        return ("etc", "run", "log", "spool", "lib", "cache", "tts")

    @property
    def tts_inner(self) -> PurePosixPath:
        """The TTS cache as Asterisk sees it (what STREAM FILE is given, see ivr/tts.py)."""
        return self.inner("tts")

    @property
    def tts_dir(self) -> Path:
        """The TTS cache on the host: inside the root, where the chrooted Asterisk reads it."""
        return self.host(self.tts_inner)

    @property
    def asterisk_conf(self) -> PurePosixPath:
        return self.inner("etc") / "asterisk.conf"

    @property
    def pid_file(self) -> Path:
        return self.host(self.inner("run") / "asterisk.pid")

    @property
    def ctl_socket(self) -> Path:
        return self.host(self.inner("run") / "asterisk.ctl")

    @property
    def messages_log(self) -> Path:
        return self.host(self.inner("log") / "messages.log")

    @property
    def startup_log(self) -> Path:
        """stdout/stderr of the launching ``asterisk`` (before it daemonises)."""
        return self.host(self.inner("log") / "startup.log")
