"""The console's configuration file (agent_console/config.py): defaults, the demo file, and
every kind of mistake reported as one ConfigError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_console.config import ConsoleConfig, load_console_config
from cti.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "config" / "console.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "console.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> ConfigError:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_console_config(path)
    assert str(path) in str(caught.value)
    return caught.value


def test_no_file_gives_the_built_in_defaults() -> None:
    config = load_console_config(None)
    assert config == ConsoleConfig()
    assert config.disposition_codes() == {"resolved", "follow_up"}
    assert config.alerts.long_wait == 60.0
    assert config.alerts.service_level is True
    assert config.alerts.min_calls == 5
    assert config.supervisor_phones == {}
    assert config.mask == "•"


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_console_config(_write(tmp_path, "# nothing yet\n")) == ConsoleConfig()


def test_the_demo_file_loads() -> None:
    config = load_console_config(DEMO)
    assert "complaint" in config.disposition_codes()
    assert config.supervisor_phones["super"] == "PJSIP/agent1005"
    view = config.view()
    assert view["alerts"]["long_wait"] == 60
    assert {"code": "resolved", "label": "Resolved"} in view["dispositions"]


def test_an_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    error = _error(tmp_path, "dispositons: []\n")
    assert "dispositons" in str(error)


def test_an_unknown_key_inside_alerts_is_named_with_its_path(tmp_path: Path) -> None:
    error = _error(tmp_path, "alerts: {long_wiat: 30}\n")
    assert "alerts.long_wiat" in str(error)


def test_a_code_listed_twice_is_an_error(tmp_path: Path) -> None:
    error = _error(
        tmp_path,
        "dispositions:\n  - {code: sale, label: Sale}\n  - {code: sale, label: Again}\n",
    )
    assert "dispositions" in str(error)
    assert "listed twice: sale" in str(error)


@pytest.mark.parametrize("code", ["Sale", "has space", "x" * 41, ""])
def test_a_bad_code_is_an_error(tmp_path: Path, code: str) -> None:
    error = _error(tmp_path, f'dispositions:\n  - {{code: "{code}", label: L}}\n')
    assert "dispositions.0.code" in str(error)


def test_a_bad_supervisor_phone_is_an_error_naming_the_user(tmp_path: Path) -> None:
    error = _error(tmp_path, "supervisor_phones:\n  super: agent1005\n  boss: PJSIP/ok\n")
    assert "supervisor_phones" in str(error)
    assert "super" in str(error)
    assert "boss" not in str(error)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    error = _error(tmp_path, "alerts: {long_wait: 0}\nmask: ''\n")
    path = tmp_path / "console.yaml"
    lines = str(error).splitlines()
    assert lines[0] == "2 problems in the console configuration:"
    assert lines[1].startswith(f"  {path}:1: alerts.long_wait: 0 is not allowed (")
    assert lines[2].startswith(f"  {path}:2: mask: '' is not allowed (")


def test_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    error = _error(tmp_path, "- just\n- a list\n")
    assert str(error) == (
        f"{tmp_path / 'console.yaml'}: the top level is a list (expected a mapping of settings)"
    )


def test_bad_yaml_is_an_error(tmp_path: Path) -> None:
    error = _error(tmp_path, "dispositions: [unclosed\n")
    assert str(error).startswith(f"{tmp_path / 'console.yaml'}:2: invalid YAML: ")


def test_errors_name_the_line_and_a_key_given_twice_is_an_error(tmp_path: Path) -> None:
    error = _error(tmp_path, "mask: '*'\nalerts:\n  min_calls: 0\nmask: '#'\n")
    path = tmp_path / "console.yaml"
    assert str(error).splitlines()[1:] == [
        f"  {path}:3: alerts.min_calls: 0 is not allowed (input should be greater than or "
        "equal to 1)",
        f"  {path}:4: mask: 'mask' is given twice here (lines 1 and 4); YAML would keep only "
        "the last (expected each key once)",
    ]


def test_an_unquoted_off_as_a_label_names_the_trap(tmp_path: Path) -> None:
    error = _error(
        tmp_path, "dispositions:\n  - {code: off_hook, label: off}\n  - {code: a, label: A}\n"
    )
    assert str(error) == (
        f"{tmp_path / 'console.yaml'}:2: dispositions.0.label: False is not allowed (input "
        'should be a valid string); YAML 1.1 reads an unquoted off as false: write "off" in quotes'
    )


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_console_config(tmp_path / "absent.yaml")
