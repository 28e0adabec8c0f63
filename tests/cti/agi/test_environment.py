from __future__ import annotations

import pytest

from cti.agi._lines import LineReader
from cti.agi.environment import AgiEnvironment, EnvironmentLimits, read_environment
from cti.errors import RemoteProtocolError


def parse(block: bytes) -> AgiEnvironment:
    reader = LineReader()
    reader.feed_data(block)
    reader.feed_eof()
    parser = read_environment(reader, EnvironmentLimits())
    with pytest.raises(StopIteration) as done:  # the block is complete: no "need more data"
        next(parser)
    env = done.value.value
    assert isinstance(env, AgiEnvironment)
    return env


def env_of(*lines: str) -> AgiEnvironment:
    return parse(("\n".join(lines) + "\n\n").encode())


FULL = env_of(
    "agi_network: yes",
    "agi_network_script: ivr/sales?lang=en&caller=+15551234&name=J%C3%BCrgen&flag&lang=fr",
    "agi_request: agi://127.0.0.1:4573/ivr/sales?lang=en&caller=+15551234&name=J%C3%BCrgen&flag&lang=fr",
    "agi_channel: PJSIP/trunk-0000002a",
    "agi_language: de",
    "agi_type: PJSIP",
    "agi_uniqueid: 1732300000.42",
    "agi_version: 22.10.1",
    "agi_callerid: +15551234",
    "agi_calleridname: Jürgen",
    "agi_callingpres: 67",
    "agi_callingani2: 0",
    "agi_callington: 16",
    "agi_callingtns: 0",
    "agi_dnid: 8005551000",
    "agi_rdnis: unknown",
    "agi_context: from-pstn",
    "agi_extension: 8005551000",
    "agi_priority: 3",
    "agi_enhanced: 0.0",
    "agi_accountcode: acme",
    "agi_threadid: 140245023545024",
    *(f"agi_arg_{n}: a{n}" for n in range(1, 12)),
)


def test_typed_accessors() -> None:
    env = FULL
    assert env.network
    assert env.request.startswith("agi://127.0.0.1:4573/ivr/sales?")
    assert env.channel == "PJSIP/trunk-0000002a"
    assert env.language == "de"
    assert env.type == "PJSIP"
    assert env.uniqueid == "1732300000.42"
    assert env.version == "22.10.1"
    assert env.callerid == "+15551234"
    assert env.calleridname == "Jürgen"
    assert env.callingpres == 67
    assert env.callingani2 == 0
    assert env.callington == 16
    assert env.callingtns == 0
    assert env.dnid == "8005551000"
    assert env.rdnis == "unknown"  # Asterisk's own word for "not available", passed through
    assert env.context == "from-pstn"
    assert env.extension == "8005551000"
    assert env.priority == 3
    assert env.enhanced is False
    assert env.accountcode == "acme"
    assert env.threadid == 140245023545024


def test_args_in_numeric_order() -> None:
    assert FULL.args == tuple(f"a{n}" for n in range(1, 12))  # a10, a11 after a9


def test_route_path_and_query() -> None:
    assert FULL.script.startswith("ivr/sales?")
    assert FULL.path == "ivr/sales"
    assert FULL.route == "ivr"
    assert FULL.query_items == (
        ("lang", "en"),
        ("caller", "+15551234"),  # a bare "+" is not a space
        ("name", "Jürgen"),  # percent-escapes are decoded
        ("flag", ""),
        ("lang", "fr"),
    )
    assert FULL.query["lang"] == "fr"  # last wins in the mapping


def test_script_falls_back_to_the_request_url() -> None:
    env = env_of("agi_network: yes", "agi_request: agi://10.0.0.1/queue/?q=1")
    assert env.network_script == ""
    assert (env.script, env.path, env.route) == ("queue/?q=1", "queue", "queue")


def test_no_script_at_all() -> None:
    env = env_of("agi_network: yes", "agi_request: agi://10.0.0.1:4573")
    assert (env.script, env.path, env.route, env.query_items) == ("", "", "", ())


def test_missing_keys() -> None:
    env = env_of("agi_network: yes")
    assert env.channel == ""
    assert env.priority is None
    assert env.args == ()
    assert env.get("channel", "n/a") == "n/a"


def test_values_may_contain_colons_and_be_empty() -> None:
    env = env_of("agi_arg_1: a: b:c", "agi_accountcode: ", "agi_arg_2:")
    assert env.args == ("a: b:c", "")
    assert env.accountcode == ""


def test_raw_mappings_keep_every_key() -> None:
    env = parse(b"agi_network: yes\nagi_calleridname: \xff\xfeX\nagi_x_custom: 1\n\n")
    assert env.raw["agi_calleridname"] == "\ufffd\ufffdX"
    assert env.raw_bytes["agi_calleridname"] == b"\xff\xfeX"
    assert env.raw["agi_x_custom"] == "1"
    assert env.get("x_custom") == "1"


def test_environment_is_frozen_and_hashable() -> None:
    assert hash(FULL) == hash(env_of(*(f"{k}: {v}" for k, v in FULL.raw.items())))
    with pytest.raises(AttributeError):
        FULL.items = ()  # type: ignore[misc]  # proving the dataclass is frozen


@pytest.mark.parametrize(
    "block",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"agi_network yes\n\n",
        b": value\n\n",
        b"agi_\xffkey: v\n\n",
    ],
)
def test_malformed_lines(block: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        parse(block)
