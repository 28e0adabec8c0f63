"""Where the ACD keeps what Asterisk cannot hold for it: agents and callbacks.

``FileStore`` writes one small JSON file per agent and per callback and replaces it atomically
(write a temporary file, then ``os.replace``), so a ``kill -9`` leaves either the old or the
new version, never half of one. Files are not fsync'ed: the state must survive the *server*
dying, which it does (the data is in the kernel's page cache); a power cut may lose the last
changes, which the reconciliation with Asterisk after a restart repairs for calls (agents come
back in their last saved state). One file per record keeps each write small whatever the
number of agents. ``MemoryStore`` is the same in memory, for tests and embedding.

Writes leave the event loop: ``save_agent`` runs on the AMI path (twice per agent action), so
``FileStore`` only records what a file must become and one writer thread (``_Writer``) does the
file system work, in order. Several changes to one file before the thread gets to it are one
write of the latest (latest state wins: nobody needs the intermediate states); a removal is
such a change too, so a callback saved then finished is removed, never resurrected. Reads
(``load_*``, ``failed_callbacks``) and ``close`` (the service's ``aclose``) wait for what is
pending first, so nothing is lost at shutdown and a read sees every write made before it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

from acd.ports import AcdStore, AgentRecord, CallbackRecord

__all__ = ["FileStore", "MemoryStore"]

_log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")  # "%" included: it is the escape itself


def _file_name(key: str) -> str:
    # Agent ids are [A-Za-z0-9_.-] (acd.config); callback ids are generated. Anything else,
    # and a leading dot, is escaped (fixed width, so two names never meet) so that a name can
    # never leave the directory or hide as a dot file.
    escaped = _SAFE.sub(lambda m: f"%{ord(m.group()):06x}", key)
    if escaped.startswith("."):
        escaped = f"%{ord('.'):06x}" + escaped[1:]
    return escaped + ".json"


def _write(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_all(directory: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if not directory.is_dir():
        return items
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            # A damaged record must not stop the server: say so and go on without it.
            _log.error("ignoring unreadable ACD state file %s: %s", path, exc)
            continue
        if isinstance(data, dict):
            items.append(data)
    return items


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in data.items() if key in names})


class _Writer:
    """One thread that makes files what they were last asked to be, oldest request first."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Condition()
        # path -> the content it must get (None: remove it); insertion order is the order
        # of first request, and a newer request for the same path replaces the older one.
        self._pending: dict[Path, dict[str, Any] | None] = {}
        self._busy = False  # the thread is between taking a request and finishing it
        self._thread: threading.Thread | None = None
        self.written = 0

    def put(self, path: Path, data: dict[str, Any] | None) -> None:
        with self._lock:
            self._pending.pop(path, None)  # a newer request goes to the back of the line
            self._pending[path] = data
            if self._thread is None:
                # A daemon: a process that never calls close() still exits (it loses at most
                # what was pending, as a kill -9 would).
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def flush(self) -> None:
        """Return once every request made so far is on disk (or failed and was logged)."""
        with self._lock:
            self._lock.wait_for(lambda: not self._pending and not self._busy)

    def close(self) -> None:
        """``flush``, then stop the thread (a later request starts a new one)."""
        with self._lock:
            self._lock.wait_for(lambda: not self._pending and not self._busy)
            thread, self._thread = self._thread, None
            self._lock.notify_all()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._pending or self._thread is not me)
                if not self._pending:
                    return  # closed
                path, data = next(iter(self._pending.items()))
                del self._pending[path]
                self._busy = True
            try:
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    _write(path, data)
                self.written += 1
            except OSError as exc:
                _log.error("ACD: cannot write %s: %s", path, exc)
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()


class FileStore(AcdStore):
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._agents = directory / "agents"
        self._callbacks = directory / "callbacks"
        self._failed = directory / "callbacks-failed"
        for path in (self._agents, self._callbacks, self._failed):
            path.mkdir(parents=True, exist_ok=True)
        self._writer = _Writer(f"acd-store:{directory.name}")

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()

    def load_agents(self) -> list[AgentRecord]:
        self._writer.flush()
        records: list[AgentRecord] = []
        for data in _read_all(self._agents):
            try:
                records.append(_build(AgentRecord, data))
            except TypeError as exc:
                _log.error("ignoring malformed agent record %r: %s", data, exc)
        return records

    def save_agent(self, record: AgentRecord) -> None:
        self._writer.put(self._agents / _file_name(record.agent_id), dataclasses.asdict(record))

    def load_callbacks(self) -> list[CallbackRecord]:
        return self._load_callbacks(self._callbacks)

    def _load_callbacks(self, directory: Path) -> list[CallbackRecord]:
        self._writer.flush()
        records: list[CallbackRecord] = []
        for data in _read_all(directory):
            try:
                records.append(_build(CallbackRecord, data))
            except TypeError as exc:
                _log.error("ignoring malformed callback record %r: %s", data, exc)
        return records

    def save_callback(self, record: CallbackRecord) -> None:
        self._writer.put(self._callbacks / _file_name(record.call_id), dataclasses.asdict(record))

    def finish_callback(self, call_id: str, *, failed: CallbackRecord | None = None) -> None:
        if failed is not None:
            self._writer.put(self._failed / _file_name(call_id), dataclasses.asdict(failed))
        self._writer.put(self._callbacks / _file_name(call_id), None)

    def failed_callbacks(self) -> list[CallbackRecord]:
        return self._load_callbacks(self._failed)


class MemoryStore(AcdStore):
    def __init__(self) -> None:
        self.agents: dict[str, AgentRecord] = {}
        self.callbacks: dict[str, CallbackRecord] = {}
        self.failed: dict[str, CallbackRecord] = {}

    def load_agents(self) -> list[AgentRecord]:
        return [dataclasses.replace(r) for r in self.agents.values()]

    def save_agent(self, record: AgentRecord) -> None:
        self.agents[record.agent_id] = dataclasses.replace(record)

    def load_callbacks(self) -> list[CallbackRecord]:
        return [dataclasses.replace(r) for r in self.callbacks.values()]

    def save_callback(self, record: CallbackRecord) -> None:
        self.callbacks[record.call_id] = dataclasses.replace(record)

    def finish_callback(self, call_id: str, *, failed: CallbackRecord | None = None) -> None:
        if failed is not None:
            self.failed[call_id] = dataclasses.replace(failed)
        self.callbacks.pop(call_id, None)

    def failed_callbacks(self) -> list[CallbackRecord]:
        return list(self.failed.values())

    def close(self) -> None:
        pass  # nothing pending: every change is made at once
