"""The running IVR configuration, and reloading it while calls are in flows.

``FlowRegistry.current`` is an immutable ``IvrConfig``. A call takes ``current`` once, when it
arrives, and walks that object to the end, so a reload never changes a flow under a caller's
feet: calls already in a flow finish on the version they started with, new calls get the new
one. A reload that fails validation changes nothing: the running configuration stays and the
error is returned (and published) for the admin.
"""

from __future__ import annotations

import asyncio
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
        self._reloading = asyncio.Lock()

    @property
    def current(self) -> IvrConfig:
        return self._current

    def reload(self) -> IvrReloaded:
        """Read, check and apply the configuration, blocking: on the event loop, use
        ``reload_async``."""
        return self._apply(self._read())

    async def reload_async(self) -> IvrReloaded:
        """``reload`` with the reading (YAML files, the sound tree for the prompt checks) in a
        worker thread, so a reload never stalls calls; applied on the loop. Reloads asked for
        while one reads wait for it, so the last one asked is the one that runs last."""
        async with self._reloading:
            return self._apply(await asyncio.to_thread(self._read))

    def _read(self) -> IvrConfig | ConfigError:
        try:
            return self._load()
        except ConfigError as exc:
            return exc

    def _apply(self, loaded: IvrConfig | ConfigError) -> IvrReloaded:
        previous = self._current.version
        if isinstance(loaded, ConfigError):
            self.failed_reloads += 1
            result = IvrReloaded(ok=False, version=previous, previous=previous, error=str(loaded))
            _log.error("IVR reload refused, still running %s: %s", previous, loaded)
        else:
            self._current = loaded
            self.reloads += 1
            result = IvrReloaded(ok=True, version=loaded.version, previous=previous)
            _log.info("IVR configuration %s -> %s", previous, loaded.version)
        self._publish(result)
        return result
