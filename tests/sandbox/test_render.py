"""Rendering the Asterisk config templates (pure: no Asterisk, no root needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cti.agi import HANDLED_VARIABLE
from cti.errors import ConfigError
from sandbox.config import AgentPhone, SandboxConfig
from sandbox.instances import Sandbox
from sandbox.render import (
    DEFAULT_TEMPLATE_DIR,
    PLACEHOLDER_RE,
    load_templates,
    render_instance,
    render_template,
)

AGENTS = (
    AgentPhone("agent1001", "pw-1001", contact="sip:agent1001@127.0.0.1:5081"),
    AgentPhone("agent2002", "pw-2002", display_name="Night Shift"),
)


def make_config(**overrides: Any) -> SandboxConfig:
    values: dict[str, Any] = {
        "ami_secret": "s3cret",
        "cache_dir": Path("/nonexistent/cache"),
        "instance": "unit",
        "ami_port": 15038,
        "sip_port": 15060,
        "rtp_start": 16000,
        "rtp_end": 16999,
        "agi_host": "127.0.0.2",
        "agi_port": 14573,
        "agents": AGENTS,
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    templates, partials = load_templates(DEFAULT_TEMPLATE_DIR)
    return render_instance(make_config(), templates, partials)


def section(text: str, name: str, type_: str | None = None) -> dict[str, list[str]]:
    """The options of ``[name]`` (the one with ``type = type_`` if several share the name)."""
    for match in re.finditer(rf"^\[{re.escape(name)}\][^\n]*\n(.*?)(?=^\[|\Z)", text, re.M | re.S):
        options: dict[str, list[str]] = {}
        for line in match.group(1).splitlines():
            line = line.split(";", 1)[0].strip()
            if "=" in line:
                key, value = re.split(r"\s*=>?\s*", line, maxsplit=1)
                options.setdefault(key, []).append(value)
        if type_ is None or options.get("type") == [type_]:
            return options
    raise AssertionError(f"no section [{name}] (type {type_})")


def context(text: str, name: str) -> str:
    """The body of section ``[name]`` (up to the next section)."""
    match = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", text, re.M | re.S)
    assert match, f"no [{name}]"
    return match.group(1)


# -- the renderer --------------------------------------------------------------------------


def test_placeholders_are_replaced_and_asterisk_variables_left_alone() -> None:
    text = "port = @@ami_port@@\nexten => _X.,1,NoOp(${EXTEN} $[1+1])\n"
    out = render_template(text, {"ami_port": "5038"}, source="t.conf")
    assert out == "port = 5038\nexten => _X.,1,NoOp(${EXTEN} $[1+1])\n"


def test_unknown_placeholder_names_file_and_placeholder() -> None:
    with pytest.raises(ConfigError) as info:
        render_template("a = @@nope@@\n", {"ami_port": "1"}, source="manager.conf")
    assert "manager.conf" in str(info.value)
    assert "@@nope@@" in str(info.value)
    assert info.value.source == "manager.conf"


def test_stray_at_signs_are_an_error_with_the_line() -> None:
    with pytest.raises(ConfigError, match="line 2: malformed placeholder"):
        render_template("a = 1\nb = @@ami_port\n", {"ami_port": "1"}, source="x.conf")


def test_values_are_not_expanded_again() -> None:
    out = render_template("@@a@@ @@b@@", {"a": "@@b@@", "b": "2"}, source="x")
    assert out == "@@b@@ 2"


# -- the real templates --------------------------------------------------------------------


def test_every_template_renders_without_leftover_placeholders(rendered: dict[str, str]) -> None:
    expected = {
        "asterisk.conf",
        "modules.conf",
        "logger.conf",
        "manager.conf",
        "http.conf",
        "pjsip.conf",
        "rtp.conf",
        "extensions.conf",
        "queues.conf",
    }
    assert expected <= set(rendered)
    for name, text in rendered.items():
        assert "@@" not in text, name
        assert not PLACEHOLDER_RE.search(text), name


def test_asterisk_conf_points_state_at_the_instance_and_data_at_the_root(
    rendered: dict[str, str],
) -> None:
    dirs = section(rendered["asterisk.conf"], "directories")
    base = "/srv/ctiserver/unit"
    assert dirs["astetcdir"] == [f"{base}/etc"]
    assert dirs["astrundir"] == [f"{base}/run"]
    assert dirs["astdbdir"] == [f"{base}/lib"]
    assert dirs["astlogdir"] == [f"{base}/log"]
    assert dirs["astspooldir"] == [f"{base}/spool"]
    # Sounds are shared, read-only, from the root's packages.
    assert dirs["astdatadir"] == ["/usr/share/asterisk"]
    options = section(rendered["asterisk.conf"], "options")
    assert "runuser" not in options  # dropping privileges breaks astdb (testbed notes)


def test_manager_user_has_least_privilege(rendered: dict[str, str]) -> None:
    text = rendered["manager.conf"]
    general = section(text, "general")
    assert general["enabled"] == ["yes"]
    assert general["bindaddr"] == ["127.0.0.1"]
    assert general["port"] == ["15038"]
    user = section(text, "ctiserver")
    assert user["secret"] == ["s3cret"]
    assert user["permit"] == ["127.0.0.1/255.255.255.255"]
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    read = set(user["read"][0].split(","))
    write = set(user["write"][0].split(","))
    assert read == {"call", "agent", "user", "system"}
    assert write == {"call", "reporting", "originate", "agent", "command"}
    # Never the classes that reload, load modules or write config.
    assert not write & {"system", "config", "all"}


def test_pjsip_has_loopback_transport_trunk_and_agents(rendered: dict[str, str]) -> None:
    text = rendered["pjsip.conf"]
    assert section(text, "transport-udp")["bind"] == ["127.0.0.1:15060"]
    trunk = section(text, "anonymous", "endpoint")
    assert trunk["context"] == ["from-trunk"]
    assert trunk["dtmf_mode"] == ["rfc4733"]
    assert trunk["allow"] == ["ulaw,alaw"]

    agent = section(text, "agent1001", "endpoint")
    assert agent["context"] == ["from-agents"]
    assert agent["auth"] == ["agent1001-auth"]
    assert agent["transport"] == ["transport-udp"]
    for option in ("send_connected_line", "timers", "direct_media"):
        assert agent[option] == ["no"], option
    auth = section(text, "agent1001-auth", "auth")
    assert auth["username"] == ["agent1001"]
    assert auth["password"] == ["pw-1001"]
    aor = section(text, "agent1001", "aor")
    assert aor["max_contacts"] == ["1"]
    assert aor["contact"] == ["sip:agent1001@127.0.0.1:5081"]

    # The second agent registers: no static contact, its own password and name.
    assert "contact" not in section(text, "agent2002", "aor")
    assert section(text, "agent2002-auth", "auth")["password"] == ["pw-2002"]
    assert section(text, "agent2002", "endpoint")["callerid"] == ['"Night Shift" <2002>']


def test_rtp_range_is_the_instances(rendered: dict[str, str]) -> None:
    general = section(rendered["rtp.conf"], "general")
    assert general["rtpstart"] == ["16000"]
    assert general["rtpend"] == ["16999"]


def test_dialplan_routes_trunk_calls_to_the_agi_with_a_fallback(rendered: dict[str, str]) -> None:
    text = rendered["extensions.conf"]
    assert "CTI_AGI_URL = agi://127.0.0.2:14573/ivr" in text
    trunk = context(text, "from-trunk")
    assert "AGI(${CTI_AGI_URL},${EXTEN})" in trunk
    # The server's handled mark is cleared before the AGI and checked after it: only a call
    # the server finished on purpose is hung up; unreachable, refused or dead mid-call (no
    # mark) all reach the fallback.
    clear = f"Set({HANDLED_VARIABLE}=)"
    check = f'GotoIf($["${{{HANDLED_VARIABLE}}}" != "1"]?cti-fallback,s,1)'
    assert trunk.index(clear) < trunk.index("AGI(${CTI_AGI_URL}") < trunk.index(check)
    fallback = context(text, "cti-fallback")
    assert "Playback(sorry&pls-hold-while-try)" in fallback
    assert "Queue(cti-fallback,,,,${CTI_FALLBACK_TIMEOUT})" in fallback
    assert "Hangup()" in fallback
    # Dialplan text must not contain ';' (a comment starts there): check the code parts.
    for line in text.splitlines():
        code = line.split(";", 1)[0]
        if code.strip().startswith(("exten", "same")):
            assert code.rstrip().endswith(")"), line
    agents = context(text, "from-agents")
    assert "exten => 1001,1,Dial(PJSIP/agent1001,30)" in agents
    assert "exten => 2002,1,Dial(PJSIP/agent2002,30)" in agents
    assert "include => from-agents" in context(text, "cti-originate")


def test_fallback_queue_has_the_agent_phones(rendered: dict[str, str]) -> None:
    queue = section(rendered["queues.conf"], "cti-fallback")
    assert queue["member"] == ["PJSIP/agent1001,0,Agent 1001", "PJSIP/agent2002,0,Night Shift"]
    assert queue["strategy"] == ["ringall"]


def test_no_agents_renders_comments_not_holes() -> None:
    templates, partials = load_templates(DEFAULT_TEMPLATE_DIR)
    out = render_instance(make_config(agents=()), templates, partials)
    assert "No agent phones configured" in out["pjsip.conf"]
    assert "member" not in section(out["queues.conf"], "cti-fallback")


def test_a_template_with_an_unknown_placeholder_fails_the_render(tmp_path: Path) -> None:
    (tmp_path / "asterisk.conf").write_text("[directories]\nastetcdir => @@etc_dir@@\n")
    (tmp_path / "extra.conf").write_text("x = @@no_such_value@@\n")
    templates, partials = load_templates(tmp_path)
    with pytest.raises(ConfigError, match=r"extra\.conf.*@@no_such_value@@"):
        render_instance(make_config(agents=()), templates, partials)


def test_missing_template_dir_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no asterisk\.conf template"):
        load_templates(tmp_path)


def test_render_writes_instance_files_into_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sandbox = Sandbox(make_config(root=root, cache_dir=tmp_path / "cache"))
    (root / "srv/ctiserver/unit/etc").mkdir(parents=True)
    stale = root / "srv/ctiserver/unit/etc/old.conf"
    stale.write_text("left from an earlier render")

    etc = sandbox.render()

    assert etc == root / "srv/ctiserver/unit/etc"
    assert (etc / "manager.conf").read_text().count("secret = s3cret") == 1
    assert (etc / "manager.conf").stat().st_mode & 0o777 == 0o600
    assert not stale.exists()
    for name in ("run", "log", "spool", "lib", "lib/keys", "cache"):
        assert (root / "srv/ctiserver/unit" / name).is_dir(), name


# -- settings that would break a config file -----------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"instance": "Bad Name"}, "instance"),
        ({"ami_secret": "has;semicolon"}, "ami_secret"),
        ({"ami_secret": "two\nlines"}, "ami_secret"),
        ({"ami_port": 70000}, "ami_port"),
        ({"rtp_start": 16001}, "rtp_start"),
        ({"sip_port": 16500}, "rtp_start"),
        ({"sip_port": 15038}, "sip_port"),
        ({"agents": (AGENTS[0], AGENTS[0])}, "agents"),
    ],
)
def test_invalid_settings_name_the_key(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(**overrides)
    assert info.value.key == key


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"endpoint": "agent 1", "password": "x"}, "agents.agent 1"),
        ({"endpoint": "agent1", "password": "a;b"}, "agents.agent1.password"),
        (
            {"endpoint": "agent1", "password": "x", "contact": "127.0.0.1:5081"},
            "agents.agent1.contact",
        ),
        (
            {"endpoint": "agent1", "password": "x", "display_name": "A,B"},
            "agents.agent1.display_name",
        ),
    ],
)
def test_invalid_agent_phone(kwargs: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        AgentPhone(**kwargs)
    assert info.value.key == key


def test_agent_number_is_the_trailing_digits() -> None:
    assert AgentPhone("agent1001", "x").number == "1001"
    assert AgentPhone("agent1001", "x").name == "Agent 1001"
    assert AgentPhone("desk", "x").number == "desk"
