"""``ctiserver users``: accounts made from the command line, passwords never on it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.cli import main


def test_add_list_disable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"crm.url=sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    args = ["--set", url, "users", "add", "ann", "--role", "agent", "--agent", "agent1001"]
    assert main([*args, "--name", "Ann Agent", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))
    assert (
        main(["--set", url, "users", "add", "sam", "--role", "supervisor", "--password-stdin"]) == 0
    )
    assert main(["--set", url, "users", "disable", "sam"]) == 0
    capsys.readouterr()
    assert main(["--set", url, "users", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ann\tagent as agent1001\tAnn Agent",
        "sam\tsupervisor\tsam (disabled)",
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["--set", url, "users", "passwd", "ann", "--password-stdin"]) == 1
    assert "at least 8" in capsys.readouterr().err
