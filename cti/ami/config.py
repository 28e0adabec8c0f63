"""Settings and counters of the manager client (plain values, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cti.ami.auth import AuthMethod
from cti.ami.parser import AmiLimits
from cti.errors import ConfigError

__all__ = ["AmiClientConfig", "AmiStats"]


@dataclass(frozen=True, kw_only=True)
class AmiClientConfig:
    """Everything the client needs; the server maps its validated settings onto this."""

    username: str
    secret: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5038
    events: str = "on"
    """Login ``Events:`` mask: "on", "off", or a list such as "call,agent"."""
    auth: AuthMethod = "md5"
    connect_timeout: float = 5.0
    """For the TCP connect, and again for the greeting."""
    action_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    limits: AmiLimits = field(default_factory=AmiLimits)

    def __post_init__(self) -> None:
        for key in ("connect_timeout", "action_timeout", "ping_interval", "ping_timeout"):
            if not getattr(self, key) > 0:
                raise ConfigError("must be > 0", source="AmiClientConfig", key=key)
        if not 0 <= self.reconnect_min <= self.reconnect_max:
            raise ConfigError(
                "need 0 <= reconnect_min <= reconnect_max",
                source="AmiClientConfig",
                key="reconnect_min",
            )
        if not 0 < self.port < 65536:
            raise ConfigError("not a TCP port", source="AmiClientConfig", key="port")
        if self.auth not in ("md5", "plain"):
            raise ConfigError("must be 'md5' or 'plain'", source="AmiClientConfig", key="auth")


@dataclass
class AmiStats:
    """Counters since the client was built (``client.stats`` hands out a copy)."""

    connects: int = 0
    """Successful logins."""
    reconnects: int = 0
    """Successful logins after the first."""
    disconnects: int = 0
    """Logged-in sessions that ended."""
    connect_failures: int = 0
    """Attempts that ended before a login (refused, timed out, not an AMI peer)."""
    login_failures: int = 0
    events_received: int = 0
    event_handler_errors: int = 0
    actions_sent: int = 0
    actions_lost: int = 0
    """Failed with ``AmiConnectionLost``: in flight when a session dropped."""
    action_timeouts: int = 0
    ping_timeouts: int = 0
    resyncs: int = 0
    """Completed runs of the resync hooks."""
