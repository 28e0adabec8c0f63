"""What ``/healthz`` reports: the PBX connection, other components (the CRM store) and the
server's uptime.

The AMI client's state changes reach here as ``PbxConnectionChanged`` events on the bus; the
health object only remembers the latest one, so the endpoint never touches the network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Health", "PbxConnectionChanged"]


@dataclass(frozen=True)
class PbxConnectionChanged:
    connected: bool
    state: str  # "connecting", "connected", "disconnected" ...
    at: float  # wall-clock time of the change
    detail: str = ""  # why: "login refused", "connection refused", "ping timeout" ...


class Health:
    """Durations (uptime, time in the current PBX state) use a monotonic clock: a wall clock
    stepped by NTP or a VM resume must not make a server look freshly started."""

    def __init__(
        self,
        *,
        version: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._started = monotonic()
        self._version = version
        self._pbx = PbxConnectionChanged(False, "starting", 0.0)
        self._pbx_since = self._started
        self.pbx_connects = 0
        self._components: dict[str, Callable[[], dict[str, Any]]] = {}

    def add_component(self, name: str, probe: Callable[[], dict[str, Any]]) -> None:
        """Another part the server needs (the CRM store): ``probe()`` answers at once, from
        memory, with at least ``{"ok": bool}``; a component that is not ok makes the server
        degraded (503) while it lasts."""
        self._components[name] = probe

    def on_pbx(self, event: PbxConnectionChanged) -> None:
        if event.connected and not self._pbx.connected:
            self.pbx_connects += 1
        if event.connected != self._pbx.connected or event.state != self._pbx.state:
            self._pbx_since = self._monotonic()
        self._pbx = event

    @property
    def healthy(self) -> bool:
        return self._pbx.connected and all(p().get("ok") for p in self._components.values())

    def report(self) -> dict[str, Any]:
        now = self._monotonic()
        return {
            "status": "ok" if self.healthy else "degraded",
            "version": self._version,
            "uptime_s": round(now - self._started, 3),
            "pbx": {
                "connected": self._pbx.connected,
                "state": self._pbx.state,
                "since_s": round(now - self._pbx_since, 3),
                "detail": self._pbx.detail,
                "connects": self.pbx_connects,
            },
            **{name: probe() for name, probe in self._components.items()},
        }
