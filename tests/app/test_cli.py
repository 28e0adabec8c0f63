"""The ``ctiserver`` command line as an admin meets it: clear errors, clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.cli import main
from crm_bridge.db import head_revision
from cti import __version__


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __version__


def test_check_config_accepts_the_demo_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    demo = Path(__file__).parents[2] / "config" / "ctiserver.yaml"
    assert main(["--config", str(demo), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "settings OK" in out
    assert "IVR OK, version " in out
    assert "main: 19 nodes" in out


def test_check_config_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("ami:\n  host: 127.0.0.1\n  port: fifty\n", encoding="utf-8")
    assert main(["--config", str(bad), "check-config"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err
    assert "ami.port" in err
    assert "Traceback" not in err


def test_check_config_rejects_a_broken_ivr_flow_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flows = tmp_path / "ivr"
    flows.mkdir()
    (flows / "main.yaml").write_text(
        "default_flow: main\n"
        "flows:\n"
        "  main:\n"
        "    start: hello\n"
        "    nodes:\n"
        "      hello: {kind: play, prompts: [{tts: Hi}], next: menu}\n",
        encoding="utf-8",
    )
    settings = tmp_path / "cti.yaml"
    settings.write_text("ivr:\n  flows: [ivr]\n  customers: null\n", encoding="utf-8")
    assert main(["--config", str(settings), "check-config"]) == 2
    err = capsys.readouterr().err
    assert f"{flows / 'main.yaml'}:6" in err
    assert "menu" in err
    assert "Traceback" not in err


def test_bad_set_option_is_a_configuration_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "http.port", "check-config"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_run_serves_healthz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    http_port, agi_port, ami_port = _free_port(), _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTISERVER__")}
    demo = Path(__file__).parents[2] / "config" / "ctiserver.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli",
            "--config",
            str(demo),
            "--set",
            f"http.port={http_port}",
            "--set",
            f"agi.port={agi_port}",
            "--set",
            f"ami.port={ami_port}",  # nothing listens there: the PBX is "down"
            "--set",
            "log.format=json",
            "run",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        body = None
        code = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and body is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
            except urllib.error.HTTPError as exc:  # 503: up, but no PBX
                body, code = json.loads(exc.read()), exc.code
            except OSError:
                time.sleep(0.1)
        assert body is not None, "server did not answer /healthz"
        assert code == 503
        assert body["pbx"]["connected"] is False
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "ctiserver stopped" for entry in lines)
    assert all({"ts", "level", "logger", "msg"} <= entry.keys() for entry in lines)


def test_sandbox_config_follows_the_server_settings(tmp_path: Path) -> None:
    from app.settings import load_settings
    from app.wiring import sandbox_config

    settings = load_settings(
        environ={},
        overrides=(
            "ami.port=6038",
            "ami.username=cti2",
            "ami.secret=s3cret-x",
            "agi.host=0.0.0.0",
            "agi.port=6573",
            "pbx.instance=staging",
            f"pbx.cache_dir={tmp_path}",
            "pbx.sip_port=6060",
        ),
    )
    config = sandbox_config(settings)
    # The sandbox's manager.conf must accept exactly the user the server logs in with.
    assert (config.ami_username, config.ami_secret, config.ami_port) == ("cti2", "s3cret-x", 6038)
    # A wildcard listener is dialed on loopback by the sandbox's dialplan.
    assert (config.agi_host, config.agi_port) == ("127.0.0.1", 6573)
    assert (config.instance, config.cache_dir, config.sip_port) == ("staging", tmp_path, 6060)
    assert [a.endpoint for a in config.agents] == [f"agent{n}" for n in range(1001, 1006)]
    assert config.agents[0].password == "demo-1001"


def test_pbx_status_of_an_instance_that_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--set", f"pbx.cache_dir={tmp_path}", "--set", "pbx.instance=nothere", "pbx", "status"]
    )
    status = json.loads(capsys.readouterr().out)
    assert code == 3  # scripts can test "is it running" by the exit code
    assert status["running"] is False
    assert status["built"] is False


def test_db_upgrade_then_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    assert main(["--set", f"crm.url={url}", "db", "status"]) == 0
    head = head_revision()
    assert capsys.readouterr().out.strip().endswith(f"revision none, behind (newest {head})")
    assert main(["--set", f"crm.url={url}", "db", "upgrade"]) == 0
    assert capsys.readouterr().out.strip() == f"{url}: revision {head}, up to date"


def test_db_refuses_a_url_it_cannot_use(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--set", "crm.url=mysql://x@y/z", "db", "status"]) == 2
    assert "unsupported database 'mysql'" in capsys.readouterr().err


def test_check_config_names_file_and_line_of_a_broken_console_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = Path(__file__).parents[2] / "config"
    console = tmp_path / "console.yaml"
    console.write_text("alerts:\n  long_wait: 0\n", encoding="utf-8")
    argv = ["--config", str(demo / "ctiserver.yaml"), "--set", f"console.config={console}"]
    assert main([*argv, "check-config"]) == 2
    err = capsys.readouterr().err
    assert f"{console}:2: alerts.long_wait: 0 is not allowed" in err


def test_config_schema_writes_one_file_per_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "schema", "--out", str(tmp_path / "schema")]) == 0
    written = sorted(p.name for p in (tmp_path / "schema").iterdir())
    assert written == [
        "acd.schema.json",
        "console.schema.json",
        "ctiserver.schema.json",
        "customers.schema.json",
        "ivr.schema.json",
        "users.schema.json",
    ]
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "schema" / name)
        for name in (
            "ctiserver.schema.json",
            "acd.schema.json",
            "console.schema.json",
            "ivr.schema.json",
            "users.schema.json",
            "customers.schema.json",
        )
    ]
