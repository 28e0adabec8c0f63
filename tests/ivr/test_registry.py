"""Reloading the IVR configuration: all or nothing, never under a caller's feet."""

from __future__ import annotations

import threading

import pytest

from cti.errors import ConfigError
from ivr.model import Flow, Hangup, IvrConfig
from ivr.registry import FlowRegistry, IvrReloaded


def _config(version: str) -> IvrConfig:
    flow = Flow(name="main", start="bye", nodes={"bye": Hangup(id="bye")})
    return IvrConfig(flows={"main": flow}, routes=(), default_flow="main", version=version)


class _Source:
    """Stands in for the loader: hands out the next configuration, or raises."""

    def __init__(self) -> None:
        self.next: IvrConfig | ConfigError = _config("v1")

    def __call__(self) -> IvrConfig:
        if isinstance(self.next, ConfigError):
            raise self.next
        return self.next


def test_a_valid_reload_applies_to_what_comes_next_only() -> None:
    source, events = _Source(), list[object]()
    registry = FlowRegistry(source, publish=events.append)
    in_flight = registry.current  # what a call in progress holds
    source.next = _config("v2")

    result = registry.reload()

    assert result == IvrReloaded(ok=True, version="v2", previous="v1")
    assert registry.current.version == "v2"
    assert in_flight.version == "v1"  # the call's own snapshot is untouched
    assert events == [result]
    assert (registry.reloads, registry.failed_reloads) == (1, 0)


def test_an_invalid_reload_keeps_the_running_configuration() -> None:
    source, events = _Source(), list[object]()
    registry = FlowRegistry(source, publish=events.append)
    source.next = ConfigError("unknown node kind 'plya'", source="demo.yaml:12", key="main.x")

    result = registry.reload()

    assert not result.ok
    assert result.version == "v1"
    assert "demo.yaml:12" in result.error
    assert "plya" in result.error
    assert registry.current.version == "v1"
    assert events == [result]
    assert (registry.reloads, registry.failed_reloads) == (0, 1)


def test_the_server_never_starts_on_an_invalid_configuration() -> None:
    source = _Source()
    source.next = ConfigError("dangling reference", source="demo.yaml:3")
    with pytest.raises(ConfigError, match="dangling"):
        FlowRegistry(source)


async def test_reload_async_reads_in_a_worker_thread_and_applies_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    readers: list[int] = []
    source, events = _Source(), list[object]()

    def load() -> IvrConfig:
        readers.append(threading.get_ident())
        return source()

    registry = FlowRegistry(load, publish=events.append)
    source.next = _config("v2")
    result = await registry.reload_async()
    assert result == IvrReloaded(ok=True, version="v2", previous="v1")
    assert readers[0] == loop_thread  # the first load, at construction (start-up)
    assert readers[1] != loop_thread  # the reload's reading is off the loop
    assert registry.current.version == "v2"
    assert events == [result]

    source.next = ConfigError("bad", source="demo.yaml:3")
    refused = await registry.reload_async()
    assert not refused.ok
    assert registry.current.version == "v2"
    assert (registry.reloads, registry.failed_reloads) == (1, 1)
