"""Tests for acd/store.py: FileStore's files (atomic replacement, damaged files skipped with
a log, failed callbacks, names that cannot leave the directory) and MemoryStore's copies."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

import acd.store as store_module
from acd.ports import AgentRecord, CallbackRecord
from acd.store import FileStore, MemoryStore


def files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def test_agent_round_trip(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    record = AgentRecord("a1", "wrap_up", "", 10.0, "PJSIP/a1", 5.0, 3, "2026-11-22", 20.0)
    store.save_agent(record)
    record.status = "ready"
    record.wrap_until = None
    store.save_agent(record)  # replaces the first version
    store.close()  # what the service's aclose does: every write on disk
    assert FileStore(tmp_path / "state").load_agents() == [record]
    assert files(tmp_path / "state") == ["agents/a1.json"]  # no temporary file left over


def test_a_write_replaces_the_file_atomically(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save_agent(AgentRecord("a1", "ready"))
    store.flush()
    before = (tmp_path / "agents" / "a1.json").stat().st_ino
    store.save_agent(AgentRecord("a1", "not_ready", "break"))
    store.flush()
    after = (tmp_path / "agents" / "a1.json").stat().st_ino
    # os.replace puts a new file in place (a new inode) instead of rewriting the old one.
    assert before != after
    assert json.loads((tmp_path / "agents" / "a1.json").read_text())["reason"] == "break"


def test_a_leftover_temporary_file_is_not_read(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save_agent(AgentRecord("a1", "ready"))
    # The save is written by the store's thread through that same temporary name: wait for it,
    # or this leftover (of an earlier crash) would be renamed into place by the write itself.
    store.flush()
    (tmp_path / "agents" / "a1.json.tmp").write_text('{"agent_id": "a1", "status": "on_c')
    assert [r.status for r in store.load_agents()] == ["ready"]


def test_damaged_files_are_skipped_with_a_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path)
    store.save_agent(AgentRecord("good", "ready"))
    agents = tmp_path / "agents"
    (agents / "torn.json").write_text('{"agent_id": "torn", "sta')
    (agents / "binary.json").write_bytes(b"\xff\xfe\x00")
    (agents / "list.json").write_text("[1, 2]")
    (agents / "missing.json").write_text('{"reason": "break"}')  # no agent_id, no status
    (agents / "extra.json").write_text('{"agent_id": "extra", "status": "ready", "new": 1}')
    with caplog.at_level(logging.ERROR, logger="acd.store"):
        records = store.load_agents()
    assert sorted(r.agent_id for r in records) == ["extra", "good"]
    logged = caplog.text
    assert "torn.json" in logged
    assert "binary.json" in logged
    assert "malformed agent record" in logged


def test_callbacks_and_failed_callbacks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FileStore(tmp_path)
    one = CallbackRecord("cb-1", "sales", "555", 100.0, 2, 0, 0.0, "", {"CRM": "7"})
    two = CallbackRecord("cb-2", "sales", "666", 90.0)
    store.save_callback(one)
    store.save_callback(two)
    assert sorted(r.call_id for r in store.load_callbacks()) == ["cb-1", "cb-2"]
    store.finish_callback("cb-2")  # done: gone, not failed
    two.attempts, two.last_status = 3, "BUSY"
    store.finish_callback("cb-1", failed=one)
    store.finish_callback("cb-unknown")  # nothing to remove: no error
    assert store.load_callbacks() == []
    assert store.failed_callbacks() == [one]
    (tmp_path / "callbacks" / "bad.json").write_text('{"call_id": "x"}')
    with caplog.at_level(logging.ERROR, logger="acd.store"):
        assert store.load_callbacks() == []
    assert "malformed callback record" in caplog.text
    assert FileStore(tmp_path).failed_callbacks()[0].data == {"CRM": "7"}


@pytest.mark.parametrize(
    "agent_id", ["../escape", "..", "a/b", "/etc/passwd", "..\\x", "%2e%2e", "a b", "é"]
)
def test_names_cannot_leave_the_directory(tmp_path: Path, agent_id: str) -> None:
    root = tmp_path / "state"
    store = FileStore(root)
    store.save_agent(AgentRecord(agent_id, "ready"))
    store.flush()
    written = [p.resolve() for p in tmp_path.rglob("*.json")]
    assert len(written) == 1
    assert written[0].parent == (root / "agents").resolve()
    assert [r.agent_id for r in store.load_agents()] == [agent_id]


def test_escaped_names_do_not_collide(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    ids = ["a/b", "a%2fb", "a_b", "a.b", "a-b"]
    for agent_id in ids:
        store.save_agent(AgentRecord(agent_id, "ready"))
    assert sorted(r.agent_id for r in store.load_agents()) == sorted(ids)


def test_leading_dots_do_not_collide(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save_agent(AgentRecord("a", "ready"))
    store.save_agent(AgentRecord(".a", "not_ready", "break"))
    assert sorted(r.agent_id for r in store.load_agents()) == [".a", "a"]


def test_memory_store_keeps_copies() -> None:
    store = MemoryStore()
    record = AgentRecord("a1", "ready")
    store.save_agent(record)
    record.status = "on_call"  # the caller's object changing later is not a save
    assert [r.status for r in store.load_agents()] == ["ready"]
    store.load_agents()[0].status = "logged_out"
    assert store.agents["a1"].status == "ready"
    callback = CallbackRecord("cb-1", "sales", "555", 1.0)
    store.save_callback(callback)
    store.finish_callback("cb-1", failed=callback)
    assert store.load_callbacks() == []
    assert [r.call_id for r in store.failed_callbacks()] == ["cb-1"]


def test_writes_leave_the_calling_thread_in_order_and_the_latest_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path)
    writer_threads: set[str] = set()
    real_write = store_module._write

    def spy(path: Path, data: dict[str, object]) -> None:
        writer_threads.add(threading.current_thread().name)
        real_write(path, data)

    monkeypatch.setattr(store_module, "_write", spy)
    for n in range(200):
        store.save_agent(AgentRecord("a1", "not_ready", f"r{n}"))
    store.save_callback(CallbackRecord("cb-1", "sales", "555", 1.0))
    store.finish_callback("cb-1")  # saved, then finished: removed, never resurrected
    store.close()
    assert threading.current_thread().name not in writer_threads
    assert writer_threads == {"acd-store:" + tmp_path.name}
    assert [r.reason for r in FileStore(tmp_path).load_agents()] == ["r199"]
    assert store.load_callbacks() == []
    assert files(tmp_path) == ["agents/a1.json"]


def test_close_writes_what_is_pending_and_a_later_write_starts_again(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.save_agent(AgentRecord("a1", "ready"))
    store.close()
    assert files(tmp_path) == ["agents/a1.json"]
    store.save_agent(AgentRecord("a2", "ready"))
    store.close()
    assert files(tmp_path) == ["agents/a1.json", "agents/a2.json"]
    store.close()  # twice: nothing to do


def test_a_failed_write_is_logged_and_does_not_stop_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FileStore(tmp_path)
    (tmp_path / "agents").rmdir()
    (tmp_path / "agents").write_text("not a directory")
    with caplog.at_level(logging.ERROR, logger="acd.store"):
        store.save_agent(AgentRecord("a1", "ready"))
        store.save_callback(CallbackRecord("cb-1", "sales", "555", 1.0))
        store.close()
    assert "cannot write" in caplog.text
    assert [r.call_id for r in store.load_callbacks()] == ["cb-1"]
