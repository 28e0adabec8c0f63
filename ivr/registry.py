"""The running IVR configuration, and reloading it while calls are in flows.

``FlowRegistry.current`` is an immutable ``IvrConfig``. A call takes ``current`` once, when it
arrives, and walks that object to the end, so a reload never changes a flow under a caller's
feet: calls already in a flow finish on the version they started with, new calls get the new
one. A reload that fails validation changes nothing: the running configuration stays and the
error is returned (and published) for the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from cti.errors import ConfigError
from ivr.model import IvrConfig

__all__ = ["FlowRegistry", "IvrReloaded"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IvrReloaded:
    """Published after every reload attempt."""

    ok: bool
    version: str  # the version running after the attempt
    previous: str
    error: str = ""  # why a failed reload was refused

    def view(self) -> dict[str, object]:
        """The JSON answer of a reload (HTTP admin endpoints)."""
        body: dict[str, object] = {
            "ok": self.ok,
            "version": self.version,
            "previous": self.previous,
        }
        if not self.ok:
            body["error"] = self.error
        return body


class FlowRegistry:
    def __init__(
        self,
        load: Callable[[], IvrConfig],
        *,
        publish: Callable[[object], None] = lambda _event: None,
    ) -> None:
        """``load`` reads and validates the configuration; it raises ``ConfigError``. The
        first load happens here, so a server never starts on an invalid configuration."""
        self._load = load
        self._publish = publish
        self._current = load()
        self.reloads = 0
        self.failed_reloads = 0

    @property
    def current(self) -> IvrConfig:
        return self._current

    def reload(self) -> IvrReloaded:
        previous = self._current.version
        try:
            config = self._load()
        except ConfigError as exc:
            self.failed_reloads += 1
            result = IvrReloaded(ok=False, version=previous, previous=previous, error=str(exc))
            _log.error("IVR reload refused, still running %s: %s", previous, exc)
        else:
            self._current = config
            self.reloads += 1
            result = IvrReloaded(ok=True, version=config.version, previous=previous)
            _log.info("IVR configuration %s -> %s", previous, config.version)
        self._publish(result)
        return result
