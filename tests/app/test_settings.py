"""Tests for the layered settings loader (app/settings.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from app.settings import (
    DEFAULT_CONFIG_FILE,
    AgentPhoneSettings,
    AmiSettings,
    Settings,
    load_settings,
)
from cti.errors import ConfigError, CtiError


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # load_settings() falls back to config/ctiserver.yaml under the working directory: run
    # every test where there is none unless the test writes one.
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def config_error(
    path: Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: tuple[str, ...] = (),
) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=environ, overrides=overrides)
    return info.value


# -- the layers ------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert (settings.ami.host, settings.ami.port, settings.ami.username) == (
        "127.0.0.1",
        5038,
        "ctiserver",
    )
    assert settings.ami.secret.get_secret_value() == "ctiserver-demo-secret"
    assert (settings.agi.port, settings.http.port) == (4573, 8080)
    assert (settings.log.level, settings.log.format) == ("INFO", "json")
    assert [a.endpoint for a in settings.pbx.agents] == [f"agent{n}" for n in range(1001, 1006)]
    assert settings.pbx.root is None
    assert settings.config_dir == Path("config")


def test_environment_is_read_only_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTISERVER__AMI__PORT", "6000")
    assert load_settings().ami.port == 5038
    assert load_settings(environ={"CTISERVER__AMI__PORT": "6000"}).ami.port == 6000


def test_file_layer(tmp_path: Path) -> None:
    path = write(
        tmp_path / "etc" / "cti.yaml",
        """\
ami:
  host: pbx.example.net
  port: 5039
  secret: file-secret
log:
  level: DEBUG
pbx:
  root: /srv/asterisk-root
  agents:
    - {endpoint: agent2001, password: pw-2001, contact: "sip:agent2001@127.0.0.1:5081"}
""",
    )
    settings = load_settings(path)
    assert (settings.ami.host, settings.ami.port) == ("pbx.example.net", 5039)
    assert settings.ami.secret.get_secret_value() == "file-secret"
    assert settings.ami.username == "ctiserver"  # not in the file: default
    assert settings.log.level == "DEBUG"
    assert settings.pbx.root == Path("/srv/asterisk-root")
    assert settings.pbx.agents == (
        AgentPhoneSettings.model_validate(
            {
                "endpoint": "agent2001",
                "password": "pw-2001",
                "contact": "sip:agent2001@127.0.0.1:5081",
            }
        ),
    )
    assert settings.config_dir == tmp_path / "etc"


def test_the_default_file_is_used_when_present(workdir: Path) -> None:
    write(workdir / DEFAULT_CONFIG_FILE, "http:\n  port: 9090\n")
    settings = load_settings()
    assert settings.http.port == 9090
    assert settings.config_dir == Path("config")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_file_means_defaults(tmp_path: Path, text: str) -> None:
    settings = load_settings(write(tmp_path / "empty.yaml", text))
    assert settings.ami == AmiSettings()
    assert settings.config_dir == tmp_path


def test_environment_layer() -> None:
    settings = load_settings(
        environ={
            "CTISERVER__AMI__PORT": "6000",
            "CTISERVER__AMI__PING_INTERVAL": "2.5",
            "CTISERVER__LOG__FORMAT": "text",
            "CTISERVER__Http__Host": "0.0.0.0",  # names are not case-sensitive
            "CTISERVER_AMI_PORT": "1",  # not our prefix: ignored
            "HOME": "/root",
        }
    )
    assert (settings.ami.port, settings.ami.ping_interval) == (6000, 2.5)
    assert settings.log.format == "text"
    assert settings.http.host == "0.0.0.0"


def test_environment_and_command_line_values_are_text() -> None:
    # Digits stay digits (a YAML reading would turn 0123 into 83), words stay words.
    digits = load_settings(environ={"CTISERVER__AMI__SECRET": "0123"})
    assert digits.ami.secret.get_secret_value() == "0123"
    spaced = load_settings(environ={"CTISERVER__AMI__SECRET": "  "})
    assert spaced.ami.secret.get_secret_value() == "  "  # blank is kept as it is
    odd = load_settings(environ={"CTISERVER__AMI__SECRET": "a: b: c"})
    assert odd.ami.secret.get_secret_value() == "a: b: c"
    off = load_settings(overrides=("ami.events=off",))
    assert off.ami.events == "off"


def test_command_line_layer() -> None:
    settings = load_settings(overrides=("ami.port=7000", "pbx.rtp_start=20000", "log.level=ERROR"))
    assert (settings.ami.port, settings.pbx.rtp_start, settings.log.level) == (7000, 20000, "ERROR")


def test_later_layers_win(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "ami:\n  port: 5039\n  host: file.example\n")
    env = {"CTISERVER__AMI__PORT": "6000"}

    assert load_settings(path).ami.port == 5039
    from_env = load_settings(path, environ=env)
    assert (from_env.ami.port, from_env.ami.host) == (6000, "file.example")
    from_cli = load_settings(path, environ=env, overrides=("ami.port=7000",))
    assert (from_cli.ami.port, from_cli.ami.host) == (7000, "file.example")
    last_set_wins = load_settings(path, overrides=("ami.port=7000", "ami.port=7001"))
    assert last_set_wins.ami.port == 7001


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.ami.port = 1  # type: ignore[misc]  # assigning to a frozen model is the test


# -- errors ----------------------------------------------------------------------------------


def test_unknown_key_names_file_line_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "ami:\n  host: pbx\n  prot: 5038\n")
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:3", "ami.prot")
    assert str(error) == f"{path}:3: ami.prot: unknown key (check its spelling and section)"
    assert isinstance(error, CtiError)
    assert isinstance(error.__cause__, ValidationError)


def test_unknown_section(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "http:\n  port: 8081\namii:\n  port: 1\n")
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:3", "amii")


def test_wrong_type_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "# comment\nami:\n  port: lots\n")
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:3", "ami.port")
    assert "valid integer" in str(error)


@pytest.mark.parametrize(
    ("text", "key", "line", "expected"),
    [
        ("http:\n  port: 70000\n", "http.port", 2, "less than or equal to 65535"),
        ("log:\n  level: TRACE\n", "log.level", 2, "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("agi:\n  host: 'two words'\n", "agi.host", 2, "host name or IP address"),
        ("ami:\n  connect_timeout: 0\n", "ami.connect_timeout", 2, "greater than 0"),
        ("ami: 5\n", "ami", 1, "valid dictionary"),
        ("pbx:\n  instance: Demo!\n", "pbx.instance", 2, "pattern"),
    ],
)
def test_invalid_values(tmp_path: Path, text: str, key: str, line: int, expected: str) -> None:
    path = write(tmp_path / "cti.yaml", text)
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:{line}", key)
    assert expected in str(error)


def test_errors_inside_a_list_name_the_item(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cti.yaml",
        """\
pbx:
  agents:
    - endpoint: agent1
      password: one
    - endpoint: "bad name!"
      password: two
    - endpoint: agent3
""",
    )
    error = config_error(path)
    assert "2 problems" in str(error)
    lines = str(error).splitlines()[1:]
    assert lines[0].strip().startswith(f"{path}:5: pbx.agents.1.endpoint: String should match")
    # A missing key has no line of its own: the item it is missing from is named.
    assert lines[1].strip() == f"{path}:7: pbx.agents.2.password: Field required"


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "ami:\n  host: a\n   port: 1\n")
    error = config_error(path)
    assert error.source == f"{path}:3"
    assert str(error).startswith(f"{path}:3: invalid YAML: ")
    assert isinstance(error.__cause__, yaml.YAMLError)


def test_unclosed_flow_sequence_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "http:\n  port: 1\nami:\n  host: [a\n  port: 1\n")
    assert config_error(path).source == f"{path}:5"


@pytest.mark.parametrize("text", ["- ami\n- http\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "cti.yaml", text)
    error = config_error(path)
    assert str(error) == f"{path}: expected a mapping of sections at the top level"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    error = config_error(path)
    assert error.source == str(path)
    assert "cannot read" in str(error)
    assert "No such file" in str(error)
    assert isinstance(error.__cause__, OSError)


def test_a_directory_is_not_readable_as_a_file(tmp_path: Path) -> None:
    error = config_error(tmp_path)
    assert error.source == str(tmp_path)
    assert "cannot read" in str(error)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("ami:\n  username: Jos\xe9\n".encode("latin-1"))
    error = config_error(path)
    assert error.source == str(path)
    assert "not UTF-8" in str(error)


@pytest.mark.parametrize("item", ["ami.port", "=5", "  =5", ""])
def test_bad_set_syntax(item: str) -> None:
    error = config_error(overrides=(item,))
    assert error.source == "--set"
    assert str(error) == f"--set: expected KEY=VALUE, got {item!r}"


def test_a_bad_set_value_names_the_option() -> None:
    error = config_error(overrides=("ami.port=abc",))
    assert (error.source, error.key) == ("--set ami.port", "ami.port")


def test_a_bad_environment_value_names_the_variable() -> None:
    error = config_error(environ={"CTISERVER__AMI__PORT": "abc"})
    assert (error.source, error.key) == ("environment variable CTISERVER__AMI__PORT", "ami.port")
    unknown = config_error(environ={"CTISERVER__AMI__PROT": "1"})
    assert (unknown.source, unknown.key) == (
        "environment variable CTISERVER__AMI__PROT",
        "ami.prot",
    )


def test_a_variable_that_goes_below_a_value_names_the_variable(tmp_path: Path) -> None:
    # The file gave ami.port a value: the variable cannot treat it as a section.
    path = write(tmp_path / "cti.yaml", "ami:\n  port: 5039\n")
    error = config_error(path, environ={"CTISERVER__AMI__PORT__X": "1"})
    assert error.source == "environment variable CTISERVER__AMI__PORT__X"
    assert "ami.port.x goes below a value that is not a section" in str(error)
    # Without a file value, the variable creates {"x": 1} where a number belongs.
    error = config_error(environ={"CTISERVER__AMI__PORT__X": "1"})
    assert (error.source, error.key) == ("environment variable CTISERVER__AMI__PORT__X", "ami.port")


def test_several_problems_in_one_message(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cti.yaml",
        "ami:\n  port: lots\n  prot: 5038\nhttp:\n  port: 70000\n",
    )
    error = config_error(path, environ={"CTISERVER__AGI__PORT": "x"})
    assert (error.source, error.key) == (None, None)
    lines = str(error).splitlines()
    assert lines[0] == "4 problems:"
    assert [line.strip().split(": ")[:2] for line in lines[1:]] == [
        [f"{path}:2", "ami.port"],
        [f"{path}:3", "ami.prot"],
        ["environment variable CTISERVER__AGI__PORT", "agi.port"],
        [f"{path}:5", "http.port"],
    ]


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_never_appear_in_repr_or_str(tmp_path: Path) -> None:
    path = write(
        tmp_path / "cti.yaml",
        "ami:\n  secret: hunter2-ami\n"
        "pbx:\n  agents:\n    - {endpoint: a1, password: pw-agent-1}\n",
    )
    settings = load_settings(path)
    assert settings.ami.secret.get_secret_value() == "hunter2-ami"
    assert settings.pbx.agents[0].password.get_secret_value() == "pw-agent-1"
    shown = [
        repr(settings),
        str(settings),
        repr(settings.ami),
        str(settings.ami),
        repr(settings.pbx.agents),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ]
    for text in shown:
        assert "hunter2-ami" not in text
        assert "pw-agent-1" not in text


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    # A misspelt key holding a secret, and a secret given where a string cannot be: the
    # messages and the chained pydantic error (what a traceback would print) stay clean.
    path = write(tmp_path / "cti.yaml", "ami:\n  secrte: hunter2-typo\n")
    error = config_error(path)
    assert "hunter2-typo" not in str(error)
    assert "hunter2-typo" not in str(error.__cause__)

    error = config_error(environ={"CTISERVER__AMI__SECRTE": "987654"})
    assert error.key == "ami.secrte"
    assert "987654" not in str(error)
    assert "987654" not in str(error.__cause__)


def test_a_key_given_twice_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "ami:\n  host: pbx\n  host: pbx2\n")
    error = config_error(path)
    assert str(error) == (
        f"{path}:3: ami.host: 'host' is given twice here (lines 2 and 3); YAML would keep only "
        "the last (expected each key once)"
    )


def test_the_yaml_11_no_trap_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "ami:\n  username: no\n")
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:2", "ami.username")
    assert str(error).endswith(
        'Input should be a valid string; YAML 1.1 reads an unquoted no as false: write "no" '
        "in quotes"
    )


def test_an_octal_looking_number_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "http:\n  port: 017777\n")
    error = config_error(path)
    assert error.source == f"{path}:2"
    assert "YAML reads 017777 as the number 8191" in str(error)


def test_an_off_where_a_word_belongs_is_explained(tmp_path: Path) -> None:
    path = write(tmp_path / "cti.yaml", "log:\n  level: off\n")
    error = config_error(path)
    assert (error.source, error.key) == (f"{path}:2", "log.level")
    assert str(error).endswith('YAML 1.1 reads an unquoted off as false: write "off" in quotes')
