"""Tests for the ACD configuration loader (acd/config.py).

Each invalid configuration is a small YAML text written to tmp_path; the assertion is on the
whole problem line, "file:line: queue Q: what is wrong (what was expected)", with the line
found by searching the text so the tests do not depend on counting.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.ivr_yaml import line_of, write

from acd.config import (
    AcdConfig,
    AnnounceSpec,
    CallbackPolicy,
    QueueConfig,
    ServiceLevelSpec,
    check_acd_config,
    describe_acd_config,
    load_acd_config,
)
from acd.model import QueueSpec, RelaxStep
from cti.errors import ConfigError

DEMO = Path(__file__).resolve().parents[2] / "config" / "acd.yaml"

MINIMAL = """
queues:
  sales:
    skills: {sales: 1}
agents:
  a1: {skills: {sales: 3}, queues: [sales]}
"""


def problems(path: Path) -> list[str]:
    config, found = check_acd_config(path)
    assert config is None
    return found


def at(path: Path, needle: str, occurrence: int = 1) -> str:
    return f"{path}:{line_of(path, needle, occurrence)}"


# -- what loads -----------------------------------------------------------------------------


def test_demo_file_loads_and_serves_the_demo_ivr() -> None:
    config = load_acd_config(DEMO)
    assert set(config.queues) == {"sales", "support"}
    assert set(config.agents) == {f"agent100{i}" for i in range(1, 6)}
    for agent_id, agent in config.agents.items():
        assert agent.endpoint == f"PJSIP/{agent_id}"
    for queue in ("sales", "support"):
        assert sum(queue in a.queues for a in config.agents.values()) >= 2
    care = [a for a in config.agents.values() if "priority_care" in a.skills]
    assert 0 < len(care) < len(config.agents)
    sales, support = config.queues["sales"].spec, config.queues["support"].spec
    assert (sales.overflow, sales.overflow_target, sales.max_wait) == ("queue", "support", 120)
    assert (support.overflow, support.overflow_target, support.max_wait) == (
        "voicemail",
        "100@default",
        300,
    )
    assert sales.overflow_when_empty
    assert support.overflow_when_empty
    assert config.queue_specs() == {"sales": sales, "support": support}
    assert config.callbacks.hours is not None
    assert dt.date(2026, 12, 25) in config.callbacks.hours.holidays
    assert check_acd_config(DEMO)[1] == []  # not even a warning


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load_acd_config(write(tmp_path, MINIMAL))
    assert config == AcdConfig(
        queues={"sales": QueueConfig(QueueSpec("sales", {"sales": 1}))},
        agents=config.agents,
        not_ready_reasons=(),
        callbacks=CallbackPolicy(),
        source=str(tmp_path / "ivr.yaml"),
    )
    agent = config.agents["a1"]
    assert (agent.name, agent.endpoint, dict(agent.skills), agent.queues, agent.wrap_up) == (
        "a1",
        "PJSIP/a1",
        {"sales": 3},
        frozenset({"sales"}),
        None,
    )
    assert (config.fallback_after, config.reconcile_every, config.timezone) == (90, 30, "UTC")


def test_defaults_apply_to_every_queue_and_a_queue_overrides_key_by_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          ring_timeout: 12
          wrap_up: 7
          announce: {every: 40, position: false}
          service_level: {threshold: 30, goal: 0.9, variant: answered_only}
        fallback_after: 100
        queues:
          a: {}
          b:
            wrap_up: 3
            announce: {estimated_wait: false}
            service_level: {goal: 0.5}
        agents:
          x: {queues: [a, b]}
        """,
    )
    config = load_acd_config(path)
    a, b = config.queues["a"], config.queues["b"]
    assert (a.ring_timeout, a.wrap_up) == (12, 7)
    assert a.announce == AnnounceSpec(every=40, position=False, estimated_wait=True)
    assert a.service_level == ServiceLevelSpec(30, 0.9, "answered_only", 0)
    assert (b.ring_timeout, b.wrap_up) == (12, 3)
    assert b.announce == AnnounceSpec(every=40, position=False, estimated_wait=False)
    assert b.service_level == ServiceLevelSpec(30, 0.5, "answered_only", 0)


def test_describe_names_queues_agents_and_reasons() -> None:
    text = describe_acd_config(load_acd_config(DEMO))
    assert "sales: skills sales>=1, longest_idle, 4 agents" in text
    assert "overflow to voicemail 100@default" in text
    assert "agent1003 (Cleo Helper) at PJSIP/agent1003" in text
    assert "not-ready reasons: break, lunch, training, meeting, admin" in text


def test_load_raises_one_error_listing_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          sales: {strategy: fastest, max_wait: 0}
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_acd_config(path)
    text = str(info.value)
    assert text.startswith("2 problems in the ACD configuration:")
    assert f"{at(path, 'strategy')}: queue sales: strategy: 'fastest' is not allowed" in text
    assert f"{at(path, 'max_wait')}: queue sales: max_wait: 0 is not allowed" in text


# -- each check ------------------------------------------------------------------------------


def test_unknown_queue_of_an_agent(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("queues: [sales]", "queues: [sales, sale]"))
    assert (
        f"{at(path, 'a1:')}: agent a1: unknown queue 'sale' (expected one of sales); "
        "did you mean 'sales'?"
    ) in problems(path)


def test_overflow_to_an_unknown_queue(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace(
            "skills: {sales: 1}",
            "skills: {sales: 1}\n    max_wait: 60\n    overflow: {to: queue, target: suport}",
        ),
    )
    assert (
        f"{at(path, 'overflow:')}: queue sales: overflow to unknown queue 'suport' "
        "(expected one of sales)"
    ) in problems(path)


def test_overflow_cycle_is_reported_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          sales: {max_wait: 60, overflow: {to: queue, target: support}}
          support: {max_wait: 60, overflow: {to: queue, target: billing}}
          billing: {max_wait: 60, overflow: {to: queue, target: sales}}
          other: {max_wait: 60, overflow: {to: queue, target: sales}}
        agents:
          a: {queues: [sales, support, billing, other]}
        """,
    )
    found = problems(path)
    cycles = [p for p in found if "cycle" in p]
    assert cycles == [
        f"{at(path, 'billing:')}: queue billing: overflow cycle billing -> sales -> support -> "
        "billing (expected overflows to end somewhere other than a queue already passed)"
    ]


def test_overflow_to_itself_is_a_cycle(tmp_path: Path) -> None:
    path = write(tmp_path, "queues:\n  q: {max_wait: 60, overflow: {to: queue, target: q}}\n")
    assert any(
        p.startswith(f"{at(path, 'q:')}: queue q: overflow cycle q -> q") for p in problems(path)
    )


@pytest.mark.parametrize(
    ("overflow", "expected"),
    [
        ("{to: voicemail, target: '100'}", "a mailbox like 100@default"),
        ("{to: voicemail, target: 100@}", "a mailbox like 100@default"),
        ("{to: dialplan, target: 'support,s'}", "context,exten,priority"),
        ("{to: dialplan, target: 'support,s,0'}", "context,exten,priority"),
        ("{to: queue, target: 'two words'}", "the name of another queue"),
    ],
)
def test_overflow_targets_must_look_right(tmp_path: Path, overflow: str, expected: str) -> None:
    path = write(
        tmp_path,
        f"queues:\n  q:\n    max_wait: 9\n    overflow: {overflow}\n"
        "agents:\n  x: {queues: [q]}\n",
    )
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(f"{at(path, 'overflow:')}: queue q: target: ")
    assert expected in found[0]


def test_good_overflow_targets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          a: {max_wait: 9, overflow: {to: voicemail, target: 100@default}}
          b: {max_wait: 9, overflow: {to: dialplan, target: "support-menu,s,1"}}
          c: {overflow_when_empty: true, overflow: {to: callback}}
          d: {max_wait: 9, overflow: {to: queue, target: a}}
        agents:
          x: {queues: [a, b, c, d]}
        """,
    )
    specs = load_acd_config(path).queue_specs()
    assert [(s.overflow, s.overflow_target) for s in specs.values()] == [
        ("voicemail", "100@default"),
        ("dialplan", "support-menu,s,1"),
        ("callback", ""),
        ("queue", "a"),
    ]


def test_unknown_overflow_kind_has_a_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "queues:\n  q: {max_wait: 9, overflow: {to: voicemal, target: 1@d}}\n")
    assert (
        f"{at(path, 'q:')}: queue q: to: 'voicemal' is not allowed (expected one of queue, "
        "voicemail, callback, dialplan); did you mean 'voicemail'?"
    ) in problems(path)


def test_max_wait_without_overflow_and_overflow_never_used(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          a: {max_wait: 60}
          b: {overflow: {to: voicemail, target: 1@default}}
        agents:
          x: {queues: [a, b]}
        """,
    )
    config, found = check_acd_config(path)
    assert config is None
    assert found == [
        f"{at(path, 'a:')}: queue a: max_wait without an overflow "
        "(expected overflow: {to: ..., target: ...})",
        f"warning: {at(path, 'b:')}: queue b: overflow is never used "
        "(expected max_wait or overflow_when_empty: true)",
    ]


@pytest.mark.parametrize("level", ["0", "11", "2.5", "true", "'3'"])
def test_skill_levels_are_whole_numbers_1_to_10(tmp_path: Path, level: str) -> None:
    path = write(tmp_path, MINIMAL.replace("sales: 3", f"sales: {level}"))
    found = problems(path)
    assert any(
        p.startswith(f"{at(path, 'a1:')}: agent a1: skill sales: level ")
        and p.endswith("(expected a whole number 1..10)")
        for p in found
    ), found


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(level=st.integers(min_value=-20, max_value=30))
def test_queue_skill_level_rule(tmp_path: Path, level: int) -> None:
    path = write(tmp_path, MINIMAL.replace("{sales: 1}", f"{{sales: {level}}}"))
    config, found = check_acd_config(path)
    if 1 <= level <= 10:
        assert config is not None
        assert config.queues["sales"].spec.skills == {"sales": level}
    else:
        assert config is None
        assert any("queue sales: skill sales: level" in p for p in found)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(afters=st.lists(st.integers(min_value=-5, max_value=300), min_size=1, max_size=5))
def test_relaxation_after_rule(tmp_path: Path, afters: list[int]) -> None:
    steps = ", ".join(f"{{after: {a}, lower_by: 1}}" for a in afters)
    path = write(
        tmp_path, MINIMAL.replace("{sales: 1}", f"{{sales: 1}}\n    relaxation: [{steps}]")
    )
    config, found = check_acd_config(path)
    valid = all(a > 0 for a in afters) and all(x < y for x, y in itertools.pairwise(afters))
    if valid:
        assert config is not None
        assert config.queues["sales"].spec.relaxation == tuple(
            RelaxStep(float(a), 1) for a in afters
        )
    else:
        assert config is None
        assert any(
            "queue sales: after: " in p and "steps in increasing order" in p for p in found
        ), found


def test_relaxation_step_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          q:
            skills: {s: 2}
            relaxation:
              - {lower_by: 1}
              - {after: 30}
              - {after: 40, lower_by: -1}
              - {after: 50, drop: s}
              - {after: 60, drop: [s], lowr_by: 1}
        agents:
          x: {skills: {s: 2}, queues: [q]}
        """,
    )
    found = problems(path)
    assert (
        f"{at(path, 'lower_by: 1}')}: queue q: no after "
        "(a relaxation step needs after, and lower_by or drop)" in found
    )
    assert (
        f"{at(path, 'after: 30')}: queue q: the step does nothing (expected lower_by or drop)"
        in found
    )
    assert (
        f"{at(path, 'after: 40')}: queue q: lower_by: -1 is not allowed "
        "(expected a whole number 0..9)" in found
    )
    assert (
        f"{at(path, 'after: 50')}: queue q: drop: 's' is not allowed (expected a list of skills)"
        in found
    )
    assert any(
        p.startswith(f"{at(path, 'after: 60')}: queue q: unknown key 'lowr_by'")
        and "did you mean 'lower_by'" in p
        for p in found
    )


def test_max_wait_must_be_positive(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace(
            "skills: {sales: 1}",
            "skills: {sales: 1}\n    max_wait: -5\n    overflow: {to: callback}",
        ),
    )
    assert (
        f"{at(path, 'max_wait')}: queue sales: max_wait: -5 is not allowed (expected a number > 0)"
        in problems(path)
    )


def test_strategy_is_one_of_the_engine_strategies(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace("skills: {sales: 1}", "skills: {sales: 1}\n    strategy: round-robin"),
    )
    assert (
        f"{at(path, 'strategy')}: queue sales: strategy: 'round-robin' is not allowed "
        "(expected one of "
        "longest_idle, most_skilled, round_robin, fewest_calls); did you mean 'round_robin'?"
    ) in problems(path)


def test_duplicate_endpoints(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  a2: {endpoint: PJSIP/a1, queues: [sales]}\n")
    assert (
        f"{at(path, 'a2:')}: agent a2: endpoint PJSIP/a1 is also agent a1's "
        "(expected one endpoint per agent)"
    ) in problems(path)


def test_endpoint_must_look_like_tech_resource(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("{skills", "{endpoint: agent1001, skills"))
    assert (
        f"{at(path, 'a1:')}: agent a1: endpoint: 'agent1001' is not allowed "
        "(expected Tech/resource like PJSIP/agent1001)"
    ) in problems(path)


def test_queue_nobody_can_serve_is_only_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          vip:
            skills: {support: 5, care: 1}
            relaxation: [{after: 60, lower_by: 2}]
          empty: {}
        agents:
          a: {skills: {support: 3}, queues: [vip]}
        """,
    )
    config, found = check_acd_config(path)
    assert config is not None
    assert found == [
        f"warning: {at(path, 'vip:')}: queue vip: no agent can ever take its calls: every agent "
        "serving it lacks a required skill even after full relaxation (needs care 1, support 3)",
        f"warning: {at(path, 'empty:')}: queue empty: no agent can ever take its calls: "
        "no agent lists it",
    ]
    assert load_acd_config(path) == config  # a warning does not stop the load


def test_dropping_the_missing_skill_makes_a_queue_servable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        queues:
          vip: {skills: {support: 5, care: 1}, relaxation: [{after: 60, drop: [care], lower_by: 2}]}
        agents:
          a: {skills: {support: 3}, queues: [vip]}
        """,
    )
    assert check_acd_config(path)[1] == []


@pytest.mark.parametrize("name", ["two words", "x" * 65, "ü"])
def test_queue_and_skill_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, f'queues:\n  "{name}": {{skills: {{"{name}": 1}}}}\n')
    found = problems(path)
    where = at(path, "skills")
    # The queue is refused on its name, so its skills are not looked at.
    assert len(found) == 1
    assert found[0].startswith(f"{where}: queue {name}: {repr(name)[:20]}")
    assert found[0].endswith("is not a valid queue name (expected 1 to 64 letters, digits, _ or -)")


@pytest.mark.parametrize("name", ["two words", "x" * 65])
def test_skill_names(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, MINIMAL.replace("{sales: 3}", f'{{"{name}": 3}}'))
    found = problems(path)
    assert any(
        p.startswith(f"{at(path, 'a1:')}: agent a1: {repr(name)[:20]}")
        and p.endswith("is not a valid skill name (expected 1 to 64 letters, digits, _ or -)")
        for p in found
    ), found


def test_agent_id_rule(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  bad/id: {queues: [sales]}\n")
    assert (
        f"{at(path, 'bad/id')}: agent bad/id: 'bad/id' is not a valid agent id "
        "(expected 1 to 40 letters, digits, _, . or -)"
    ) in problems(path)


@pytest.mark.parametrize(
    ("reasons", "needle", "message"),
    [
        ("[break, break]", "not_ready", "'break' is given twice (expected each reason once)"),
        ("[break, '']", "not_ready", "'' is not a reason (expected text of 1 to 40 characters)"),
        (f"[{'x' * 41}]", "not_ready", "is not a reason (expected text of 1 to 40 characters)"),
        (
            "[no answer]",
            "not_ready",
            "'no answer' is built in (expected a reason other than 'no answer' and 'login')",
        ),
        ("[login]", "not_ready", "'login' is built in"),
    ],
)
def test_not_ready_reasons(tmp_path: Path, reasons: str, needle: str, message: str) -> None:
    path = write(tmp_path, f"not_ready_reasons: {reasons}\n{MINIMAL}")
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(f"{at(path, needle)}: not_ready_reasons: ")
    assert message in found[0]


def test_timezones_are_checked(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "timezone: Europe/Berlinn\ncallbacks:\n  hours: {timezone: Mars/Base, weekly: {}}\n"
        + MINIMAL,
    )
    found = problems(path)
    assert any(
        p.startswith(f"{at(path, 'timezone: Europe')}: timezone: unknown timezone 'Europe/Berlinn'")
        and "did you mean 'Europe/Berlin'" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{at(path, 'Mars')}: callbacks: unknown timezone 'Mars/Base'") for p in found
    ), found


def test_callback_policy(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "callbacks:\n  attempts: 0\n  retry_after: -1\n  dial_contxt: x\n"
        "  hours: {timezone: UTC, weekly: {mon: '18:00-08:00'}}\n" + MINIMAL,
    )
    found = problems(path)
    assert (
        f"{at(path, 'attempts')}: callbacks: attempts: 0 is not allowed "
        "(expected a whole number >= 1)" in found
    )
    assert (
        f"{at(path, 'retry_after')}: callbacks: retry_after: -1 is not allowed "
        "(expected a number > 0)" in found
    )
    assert any(
        p.startswith(f"{at(path, 'dial_contxt')}: callbacks: unknown key 'dial_contxt'")
        and "did you mean 'dial_context'" in p
        for p in found
    )
    assert any(
        p.startswith(f"{at(path, 'hours')}: callbacks: '18:00-08:00' ends before it starts")
        for p in found
    ), found


def test_fallback_after_must_exceed_every_announce_interval(tmp_path: Path) -> None:
    path = write(tmp_path, "fallback_after: 25\ndefaults: {announce: {every: 30}}\n" + MINIMAL)
    assert (
        f"{at(path, 'fallback_after')}: fallback_after: 25 is not above queue "
        "sales's announce every 30 (expected more than every announce interval: that is the "
        "heartbeat, so callers would fall back while the server is up)"
    ) in problems(path)


def test_queue_setting_bounds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        defaults:
          announce: {every: 2, position: yes please}
          service_level: {goal: 80, variant: abandons_ignord}
        queues:
          q: {ring_timeout: 0, aging_rate: -1, callback_offer_after: 0}
        agents:
          x: {queues: [q], wrap_up: -3}
        """,
    )
    found = problems(path)
    assert (
        f"{at(path, 'every')}: defaults: every: 2 is not allowed (expected a number >= 5)" in found
    )
    assert (
        f"{at(path, 'every')}: defaults: position: 'yes please' is not allowed "
        "(expected true or false)" in found
    )
    assert (
        f"{at(path, 'goal')}: defaults: goal: 80 is not allowed (expected a number > 0 and <= 1)"
        in found
    )
    assert any(
        p.startswith(f"{at(path, 'goal')}: defaults: variant: 'abandons_ignord'")
        and "did you mean 'abandons_ignored'" in p
        for p in found
    )
    for key in ("ring_timeout", "aging_rate", "callback_offer_after"):
        assert any(p.startswith(f"{at(path, 'q:')}: queue q: {key}: ") for p in found), key
    assert (
        f"{at(path, 'x:')}: agent x: wrap_up: -3 is not allowed (expected a number >= 0)" in found
    )


# -- the YAML traps ----------------------------------------------------------------------------


def test_unknown_keys_have_a_did_you_mean(tmp_path: Path) -> None:
    path = write(
        tmp_path, "queus: {}\n" + MINIMAL.replace("queues: [sales]", "queues: [sales], skils: {}")
    )
    found = problems(path)
    assert any(
        p.startswith(f"{at(path, 'queus')}: queus: unknown key 'queus'")
        and "did you mean 'queues'" in p
        for p in found
    ), found
    assert any(
        p.startswith(f"{at(path, 'a1:')}: agent a1: unknown key 'skils'")
        and "did you mean 'skills'" in p
        for p in found
    ), found


def test_a_key_given_twice(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace(
            "skills: {sales: 1}",
            "skills: {sales: 1}\n    strategy: most_skilled\n    strategy: round_robin",
        ),
    )
    first, second = line_of(path, "strategy", 1), line_of(path, "strategy", 2)
    assert (
        f"{path}:{second}: queue sales: 'strategy' is given twice here (lines {first} and "
        f"{second}); YAML would keep only the last (expected each key once)"
    ) in problems(path)


@pytest.mark.parametrize(("written", "value"), [("0120", 80), ("2:00", 120)])
def test_yaml_11_numbers_are_caught(tmp_path: Path, written: str, value: int) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace(
            "skills: {sales: 1}",
            f"skills: {{sales: 1}}\n    max_wait: {written}\n    overflow: {{to: callback}}",
        ),
    )
    found = problems(path)
    assert any(
        p.startswith(
            f"{at(path, 'max_wait')}: queue sales: YAML reads {written} as the number {value}"
        )
        for p in found
    ), found


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert problems(missing)[0].startswith(f"{missing}: cannot read")
    broken = write(tmp_path, "queues: [\n", "broken.yaml")
    assert problems(broken)[0].startswith(f"{broken}:2: invalid YAML")
    listing = write(tmp_path, "- a\n", "list.yaml")
    assert problems(listing) == [
        f"{listing}: the file is a list (expected a mapping with timezone, fallback_after, "
        "reconcile_every, not_ready_reasons, callbacks, defaults, queues, agents)"
    ]
    empty = write(tmp_path, "", "empty.yaml")
    assert problems(empty)[0].startswith(f"{empty}: the file is empty")


def test_an_unquoted_no_where_text_is_expected_names_the_trap(tmp_path: Path) -> None:
    path = write(tmp_path, "defaults: {music_class: no}\n" + MINIMAL)
    assert problems(path) == [
        f"{at(path, 'music_class')}: defaults: music_class: False is not allowed (expected a "
        'musiconhold.conf class name); YAML 1.1 reads an unquoted no as false: write "no" in '
        "quotes"
    ]


def test_a_wrong_type_names_the_line_of_the_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL.replace("skills: {sales: 1}", "skills: {sales: 1}\n    ring_timeout: soon"),
    )
    assert problems(path) == [
        f"{at(path, 'ring_timeout')}: queue sales: ring_timeout: 'soon' is not allowed "
        "(expected a number > 0)"
    ]


def test_a_section_of_the_wrong_shape(tmp_path: Path) -> None:
    path = write(tmp_path, "callbacks: [3]\n" + MINIMAL)
    (found,) = problems(path)
    assert found.startswith(f"{at(path, 'callbacks')}: callbacks: [3] is not allowed (input ")
