"""Tests for the IVR flow loader (ivr/loader.py) and the YAML schema (ivr/schema.py).

Each invalid configuration is a small YAML text written to tmp_path; the assertion is on the
precise problem line: "file:line: flow F, node N: what is wrong (what was expected)". Problems
that need the pieces together (references, reachability, loops, prompts) are in
test_validate.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path

import pytest
from support.ivr_yaml import line_of, problems, write

from cti.errors import ConfigError
from ivr.loader import describe_config, load_ivr_config
from ivr.model import (
    AllOf,
    Branch,
    Callback,
    Case,
    Compare,
    Hangup,
    Input,
    Lookup,
    Menu,
    Not,
    Open,
    Play,
    Prompt,
    Queue,
    Return,
    Route,
    Say,
    Subflow,
    Transfer,
)

DATA = Path(__file__).parent / "data"
#: the smallest valid flows section
MAIN = "flows:\n  main: {start: b, nodes: {b: {kind: hangup}}}\n"
RICH = DATA / "rich"


def one_node(node: str, *, extra_nodes: str = "") -> str:
    """A valid flow around ``node`` (one YAML line of flows.main.nodes, named ``x``) that
    reaches it from the start; its exits may go to ``bye``."""
    return f"""
    default_flow: main
    flows:
      main:
        start: x
        nodes:
          x: {node}
          bye: {{kind: hangup}}
    {textwrap.indent(textwrap.dedent(extra_nodes), " " * 6)}
    """


# -- a valid configuration ------------------------------------------------------------------


def test_rich_configuration_loads_into_the_model() -> None:
    config = load_ivr_config([RICH])
    main_file, account_file = RICH / "10-main.yaml", RICH / "20-account.yaml"
    assert config.default_flow == "main"
    assert list(config.flows) == ["main", "account_menu"]
    main = config.flows["main"]
    assert (main.start, main.on_error) == ("welcome", "sorry")
    assert main.origin == f"{main_file}:{line_of(main_file, '  main:')}"

    assert main.nodes["welcome"] == Play(
        id="welcome",
        origin=f"{main_file}:{line_of(main_file, 'welcome:')}",
        prompts=(Prompt(sound="hello-world"),),
        next="by_phone",
        interrupt="#",
    )
    assert main.nodes["main_menu"] == Menu(
        id="main_menu",
        origin=f"{main_file}:{line_of(main_file, 'main_menu:', 1)}",
        prompts=(Prompt(tts="For sales press 1. For support press 2."),),
        # 2 is a YAML number: a key all the same
        options={"1": "sales", "2": "support", "3": "account", "4": "cb", "0": "operator"},
        timeout=5.0,
        no_input=(Prompt(sound="please-try-again"),),
        invalid=(Prompt(sound="option-is-invalid"),),  # one prompt without a list
        retries=3,
        on_exceeded="operator",
        repeat="*",
    )
    hours = main.nodes["hours"]
    assert isinstance(hours, Branch)
    assert hours.cases == (
        Case(Compare("customer.tier", "in", ("gold", "platinum")), "vip"),
        Case(Open("support_hours"), "main_menu"),
        Case(
            AllOf((Compare("var.account", "exists", True), Not(Compare("call.ani", "eq", "")))),
            "main_menu",
        ),
        # several operators on one reference: all of them
        Case(
            AllOf(
                (
                    Compare("queue.support.estimated_wait", "gt", 0),
                    Compare("queue.support.estimated_wait", "le", 60),
                )
            ),
            "main_menu",
        ),
    )
    assert hours.otherwise == "closed"
    support = main.nodes["support"]
    assert isinstance(support, Queue)
    assert (support.queue, support.skills, support.priority) == ("support", {"english": 3}, 5)
    assert (support.data, support.on_failure) == ({"account": "${var.account}"}, "vm")
    operator = main.nodes["operator"]
    assert isinstance(operator, Transfer)
    assert (operator.to, operator.timeout) == ("1001", 30.0)  # a YAML number, as text
    callback = main.nodes["cb"]
    assert isinstance(callback, Callback)
    assert (callback.number, callback.queue) == ("${call.ani}", "support")  # number defaulted
    assert main.nodes["account"] == Subflow(
        id="account",
        origin=f"{main_file}:{line_of(main_file, 'account: {kind: subflow')}",
        flow="account_menu",
        next="bye",
    )
    assert main.nodes["bye"] == Hangup(
        id="bye",
        origin=f"{main_file}:{line_of(main_file, 'bye: {kind: hangup')}",
        prompts=(Prompt(sound="vm-goodbye"),),
    )
    by_phone = main.nodes["by_phone"]
    assert isinstance(by_phone, Lookup)
    assert (by_phone.by, by_phone.field, by_phone.on_error) == ("ani", "phone", None)

    account = config.flows["account_menu"]
    ask = account.nodes["ask"]
    assert ask == Input(
        id="ask",
        origin=f"{account_file}:{line_of(account_file, 'ask:')}",
        prompts=(Prompt(tts="Please enter your account number, then the hash key."),),
        variable="account",
        next="find",
        min_length=6,
        max_length=10,
        terminator="#",
        timeout=5.0,
        pattern="^[0-9]{6,10}$",
        retries=3,
        on_exceeded="done",
        sensitive=True,
    )
    say = account.nodes["say_balance"]
    assert isinstance(say, Say)
    assert (say.value, say.say_as, say.prompts_before) == (
        "${customer.balance}",
        "amount",
        (Prompt(tts="Your balance is"),),
    )
    assert isinstance(account.nodes["done"], Return)


def test_calendar_and_routes_of_the_rich_configuration() -> None:
    config = load_ivr_config([RICH])
    calendar = config.calendars["support_hours"]
    assert calendar.timezone == "Europe/Berlin"
    morning, afternoon = (dt.time(8), dt.time(12)), (dt.time(13), dt.time(18))
    assert dict(calendar.weekly) == {
        **dict.fromkeys(range(5), (morning, afternoon)),
        5: ((dt.time(9), dt.time(13)),),
        6: (),
    }
    # a YAML date and a quoted one
    assert calendar.holidays == frozenset({dt.date(2026, 12, 25), dt.date(2026, 12, 26)})
    main_file, account_file = RICH / "10-main.yaml", RICH / "20-account.yaml"
    # routes of both files, in file order
    first, second = line_of(main_file, '"8000"'), line_of(main_file, '"^81')
    assert config.routes == (
        Route("main", dnis="8000", origin=f"{main_file}:{first}"),
        Route("main", dnis="^81[0-9]{2}$", ani="^\\+?49", origin=f"{main_file}:{second}"),
        Route("main", ani="^\\+1", origin=f"{account_file}:{line_of(account_file, 'ani:')}"),
    )
    assert config.source == f"{main_file}, {account_file}"


def test_the_demo_configuration_is_valid() -> None:
    demo = Path(__file__).parents[2] / "config" / "ivr"
    config = load_ivr_config([demo])
    assert config.default_flow in config.flows


def test_24_00_ends_the_day(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        calendars:
          always: {timezone: UTC, weekly: {mon-sun: ["00:00-24:00"]}}
        flows:
          main: {start: bye, nodes: {bye: {kind: hangup}}}
        """,
    )
    weekly = load_ivr_config([path]).calendars["always"].weekly
    assert weekly == {day: ((dt.time(0), dt.time.max),) for day in range(7)}


def test_anchors_live_under_x_keys_and_merge_into_nodes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        x-menu: &menu {kind: menu, prompts: [beep], timeout: 4, retries: 2, on_exceeded: bye}
        calendars:
          hours: {timezone: UTC, weekly: {mon: ["08:00-09:00"], sun: }}
        flows:
          main:
            start: m
            nodes:
              m: {<<: *menu, options: {"1": bye}, timeout: 3}
              bye: {kind: hangup}
        """,
    )
    config = load_ivr_config([path])
    menu = config.flows["main"].nodes["m"]
    assert isinstance(menu, Menu)
    assert (menu.timeout, menu.retries, menu.on_exceeded, menu.options) == (
        3.0,
        2,
        "bye",
        {"1": "bye"},
    )
    # an empty day is a closed day
    assert config.calendars["hours"].weekly == {0: ((dt.time(8), dt.time(9)),), 6: ()}


def test_describe_config_summarises_flows_and_routes() -> None:
    config = load_ivr_config([RICH])
    text = describe_config(config)
    assert text.splitlines() == [
        f"IVR configuration {config.version} from {config.source}",
        "flows: 2",
        "  main: 14 nodes (1 branch, 1 callback, 1 hangup, 1 lookup, 1 menu, 3 play, 3 queue, "
        "1 subflow, 1 transfer, 1 voicemail), start welcome; routed",
        "  account_menu: 5 nodes (1 goto, 1 input, 1 lookup, 1 return, 1 say), start ask; subflow",
        "routes: 3, default flow main",
        "  dnis 8000 -> main",
        "  dnis ^81[0-9]{2}$, ani ^\\+?49 -> main",
        "  ani ^\\+1 -> main",
        "calendars: 1",
        "  support_hours: Europe/Berlin, open 6 days a week, 2 holidays",
    ]


# -- files, merging, version ----------------------------------------------------------------


def test_files_are_merged_and_a_flow_defined_twice_names_both_places(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "default_flow: main\nflows:\n  main: {start: b, nodes: {b: {kind: hangup}}}\n",
        "a.yaml",
    )
    b = write(tmp_path, "flows:\n  main: {start: c, nodes: {c: {kind: hangup}}}\n", "b.yaml")
    assert problems(tmp_path) == [
        f"{b}:2: flow main: defined twice: here and at {a}:3 (expected each flow once)"
    ]


def test_a_calendar_defined_twice_names_both_places(tmp_path: Path) -> None:
    cal = "calendars:\n  open: {timezone: UTC, weekly: {mon: ['08:00-09:00']}}\n"
    a = write(
        tmp_path,
        "default_flow: main\nflows:\n  main: {start: b, nodes: {b: {kind: hangup}}}\n" + cal,
        "a.yaml",
    )
    b = write(tmp_path, cal, "b.yaml")
    assert problems(a, b) == [
        f"{b}:2: calendar open: defined twice: here and at {a}:5 (expected each calendar once)"
    ]


def test_default_flow_may_repeat_only_with_the_same_value(tmp_path: Path) -> None:
    flows = (
        "flows:\n"
        "  main: {start: b, nodes: {b: {kind: hangup}}}\n"
        "  other: {start: b, nodes: {b: {kind: hangup}}}\n"
    )
    a = write(tmp_path, "default_flow: main\n" + flows, "a.yaml")
    same = write(tmp_path, "default_flow: main\n", "b.yaml")
    assert load_ivr_config([a, same]).default_flow == "main"
    other = write(tmp_path, "default_flow: other\n", "c.yaml")
    assert problems(a, other) == [
        f"{other}:1: default_flow: 'other' here but 'main' at {a}:1 (expected one default)"
    ]


def test_a_directory_means_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, "routes: [{dnis: '2', flow: main}]\n", "20-b.yaml")
    write(
        tmp_path,
        "default_flow: main\nroutes: [{dnis: '1', flow: main}]\n" + MAIN,
        "10-a.yaml",
    )
    write(tmp_path, "this is: [not read", "notes.txt")
    config = load_ivr_config([tmp_path])
    assert [r.dnis for r in config.routes] == ["1", "2"]
    # named twice (directly and through its directory): read once
    assert load_ivr_config([tmp_path, tmp_path / "10-a.yaml"]).routes == config.routes


def test_version_changes_with_the_bytes_and_only_with_them(tmp_path: Path) -> None:
    copy = tmp_path / "rich"
    shutil.copytree(RICH, copy)
    first = load_ivr_config([copy]).version
    assert len(first) == 12
    assert load_ivr_config([copy]).version == first
    # the same bytes elsewhere, or rewritten unchanged: the same version
    assert load_ivr_config([RICH]).version == first
    main = copy / "10-main.yaml"
    main.write_bytes(main.read_bytes())
    assert load_ivr_config([copy]).version == first
    # one byte more (a comment): another version
    main.write_bytes(main.read_bytes() + b"# changed\n")
    assert load_ivr_config([copy]).version != first
    main.write_bytes((RICH / "10-main.yaml").read_bytes())
    assert load_ivr_config([copy]).version == first


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "nope.yaml"
    assert problems(empty, missing) == [
        f"{empty}: no *.yaml files in this directory",
        f"{missing}: not found (expected a YAML file or a directory of *.yaml files)",
    ]


def test_one_problem_is_a_config_error_with_source_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: goto, next: bye, extra: 1}"))
    with pytest.raises(ConfigError) as info:
        load_ivr_config([path])
    line = line_of(path, "extra: 1")
    assert str(info.value) == (
        f"{path}:{line}: flow main, node x: unknown key 'extra' (a goto node takes next)"
    )
    assert (info.value.source, info.value.key) == (f"{path}:{line}", "flow main, node x")


def test_many_problems_are_one_config_error_listing_each(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: goto, next: bye, extra: 1, more: 2}"))
    with pytest.raises(ConfigError) as info:
        load_ivr_config([path])
    line = line_of(path, "extra: 1")
    assert str(info.value).splitlines() == [
        "2 problems in the IVR configuration:",
        f"  {path}:{line}: flow main, node x: unknown key 'extra' (a goto node takes next)",
        f"  {path}:{line}: flow main, node x: unknown key 'more' (a goto node takes next)",
    ]


# -- YAML and the top level -----------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "default_flow: main\nflows:\n  main: {start: x\n  other: 1\n")
    assert problems(path) == [
        f"{path}:4: invalid YAML: expected ',' or '}}', but got ':' while parsing a flow mapping"
    ]


def test_a_date_that_does_not_exist(tmp_path: Path) -> None:
    # PyYAML's date constructor raises a bare ValueError, without a place: the file is named.
    path = write(tmp_path, "default_flow: main\ncalendars:\n  c: {holidays: [2026-02-30]}\n")
    assert problems(path) == [f"{path}: invalid YAML: day is out of range for month"]


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- main\n- other\n")
    assert problems(path) == [
        f"{path}: the top level is a list (expected a mapping with default_flow, routes, "
        "calendars, flows)"
    ]


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: goto, next: bye}") + "routs: []\n")
    assert problems(path) == [
        f"{path}:{line_of(path, 'routs')}: unknown top-level key 'routs' "
        "(expected default_flow, routes, calendars, flows); did you mean 'routes'?"
    ]


def test_a_key_given_twice_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: goto, next: bye}", extra_nodes="bye: {kind: hangup}"))
    assert problems(path) == [
        f"{path}:{line_of(path, 'bye:', 2)}: flow main, node bye: 'bye' is given twice here "
        f"(lines {line_of(path, 'bye:')} and {line_of(path, 'bye:', 2)}); YAML would keep only "
        "the last (expected each key once)"
    ]


def test_numbers_yaml_rewrites_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: transfer, to: 0123, on_failure: bye}"))
    assert problems(path) == [
        f"{path}:{line_of(path, '0123')}: flow main, node x: YAML reads 0123 as the number 83 "
        '(expected "0123" in quotes if it is a number to dial, or 83)'
    ]


def test_no_default_flow(tmp_path: Path) -> None:
    path = write(tmp_path, MAIN)
    assert problems(path) == [
        f"{path}: default_flow: missing (expected the flow for calls no route matches)"
    ]


# -- nodes ----------------------------------------------------------------------------------


def test_unknown_node_kind_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{kind: menuu, next: bye}"))
    assert problems(path) == [
        f"{path}:{line_of(path, 'menuu')}: flow main, node x: unknown node kind 'menuu' "
        "(expected one of: play, menu, input, lookup, branch, say, queue, transfer, voicemail, "
        "callback, hangup, goto, subflow, return); did you mean 'menu'?"
    ]


def test_node_without_kind(tmp_path: Path) -> None:
    path = write(tmp_path, one_node("{next: bye}"))
    assert problems(path) == [
        f"{path}:{line_of(path, 'x:')}: flow main, node x: no kind (expected one of: play, "
        "menu, input, lookup, branch, say, queue, transfer, voicemail, callback, hangup, goto, "
        "subflow, return)"
    ]


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (
            "{kind: play, prompts: [beep]}",
            "no next (a play node needs kind, prompts, next)",
        ),
        (
            "{kind: queue, queue: support, nxt: bye}",
            "unknown key 'nxt' (a queue node takes queue, skills, priority, data, on_failure)",
        ),
        (
            "{kind: say, value: '1', as: number, next: bye, prompts_befor: [beep]}",
            "unknown key 'prompts_befor' (a say node takes value, as, next, prompts_before, "
            "prompts_after); did you mean 'prompts_before'?",
        ),
        ("{kind: return, next: bye}", "unknown key 'next' (a return node takes no other keys)"),
    ],
)
def test_unknown_and_missing_keys(tmp_path: Path, node: str, message: str) -> None:
    path = write(tmp_path, one_node(node))
    assert problems(path) == [f"{path}:{line_of(path, 'x:')}: flow main, node x: {message}"]


MENU = "{kind: menu, prompts: [beep], options: {'1': bye}, on_exceeded: bye, %s}"
INPUT = "{kind: input, prompts: [beep], variable: v, next: bye, on_exceeded: bye, %s}"


@pytest.mark.parametrize(
    ("node", "message"),
    [
        (MENU % "retries: 0", "retries: 0 is not allowed (expected greater than or equal to 1)"),
        (MENU % "timeout: 0", "timeout: 0 is not allowed (expected greater than 0)"),
        (MENU % "timeout: soon", "timeout: 'soon' is not allowed (expected a valid number)"),
        (MENU % "retries: yes", "retries: True is not allowed (expected a valid integer)"),
        (
            "{kind: menu, prompts: [beep], options: {'12': bye}, on_exceeded: bye}",
            "options: '12' is not a key (expected one of 0-9, * or #)",
        ),
        (
            "{kind: menu, prompts: [beep], options: {'1': bye, '*': bye}, on_exceeded: bye, "
            "repeat: '*'}",
            "repeat key '*' is also an option (expected a key that no option uses)",
        ),
        (MENU % "repeat: '**'", "repeat: '**' is not a key (expected one of 0-9, * or #)"),
        (
            "{kind: menu, prompts: [beep], options: {}, on_exceeded: bye}",
            "options is empty (expected at least one)",
        ),
        (
            INPUT % "min_length: 6, max_length: 4",
            "min_length 6 is above max_length 4 (expected min_length <= max_length)",
        ),
        (INPUT % "terminator: x", "terminator: 'x' is not a key (expected one of 0-9, * or #)"),
        (
            INPUT % "pattern: '[0-9'",
            "pattern: '[0-9' is not a valid regular expression "
            "(unterminated character set at position 0)",
        ),
        (
            "{kind: input, prompts: [beep], variable: account-no, next: bye, on_exceeded: bye}",
            "variable: 'account-no' is not a variable name (expected letters, digits and _)",
        ),
        (
            "{kind: say, value: '1', as: money, next: bye}",
            "as: 'money' is not allowed (expected 'number', 'digits', 'date', 'amount' or "
            "'duration')",
        ),
        (
            "{kind: lookup, by: phone, next: bye, not_found: bye}",
            "by: 'phone' is not a key to look up by (expected ani or var.NAME)",
        ),
        (
            "{kind: voicemail, mailbox: 'a b'}",
            "mailbox: 'a b' is not a mailbox (expected MAILBOX or MAILBOX@CONTEXT)",
        ),
        (
            "{kind: queue, queue: 'sales,support'}",
            "queue: 'sales,support' is not a queue name (expected no spaces, commas, | or ())",
        ),
        (
            "{kind: queue, queue: q, skills: {english: -1}}",
            "skills.english: -1 is not allowed (expected greater than or equal to 0)",
        ),
        (
            "{kind: play, prompts: [beep], next: bye, interrupt: '1x'}",
            "interrupt: 'x' is not a key (expected one of 0-9, * or #)",
        ),
    ],
)
def test_wrong_values(tmp_path: Path, node: str, message: str) -> None:
    path = write(tmp_path, one_node(node))
    assert problems(path) == [f"{path}:{line_of(path, 'x:')}: flow main, node x: {message}"]


@pytest.mark.parametrize(
    ("prompts", "message"),
    [
        (
            "['Hello there']",
            "prompts[0]: 'Hello there' is not a sound name (expected a name like hello-world, "
            'or {tts: "text"} for speech)',
        ),
        (
            "[beep, hello-world.gsm]",
            "prompts[1]: sound 'hello-world.gsm' has an extension (expected 'hello-world': "
            "Asterisk adds it)",
        ),
        (
            "[{text: hi}]",
            "prompts[0]: {'text': 'hi'} is not a prompt (expected a sound name, {sound: NAME} "
            'or {tts: "text to speak"})',
        ),
        ("[]", "prompts is empty (expected at least one)"),
    ],
)
def test_bad_prompts(tmp_path: Path, prompts: str, message: str) -> None:
    path = write(tmp_path, one_node(f"{{kind: play, prompts: {prompts}, next: bye}}"))
    assert problems(path) == [f"{path}:{line_of(path, 'x:')}: flow main, node x: {message}"]


def test_problems_point_at_the_line_of_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        flows:
          main:
            start: x
            nodes:
              x:
                kind: menu
                prompts: [beep]
                options: {"1": bye}
                timeout: -1
                retries: 0
                on_exceeded: bye
              bye: {kind: hangup}
        """,
    )
    assert problems(path) == [
        f"{path}:{line_of(path, 'timeout')}: flow main, node x: timeout: -1 is not allowed "
        "(expected greater than 0)",
        f"{path}:{line_of(path, 'retries')}: flow main, node x: retries: 0 is not allowed "
        "(expected greater than or equal to 1)",
    ]


def test_flow_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path, "default_flow: main\nflows:\n  main: {begin: b, nodes: {b: {kind: hangup}}}\n"
    )
    assert problems(path) == [
        f"{path}:3: flow main: no start (a flow needs start, nodes)",
        f"{path}:3: flow main: unknown key 'begin' (a flow takes start, on_error, nodes)",
    ]


# -- conditions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "{var.v: {between: 1}}",
            "var.v: unknown operator 'between' (expected one of: eq, ne, lt, le, gt, ge, in, "
            "not_in, matches, exists)",
        ),
        ("{var.v: {gt: [1]}}", "var.v: gt: [1] (expected a number or text)"),
        ("{var.v: {in: 3}}", "var.v: in: 3 (expected a list of single values)"),
        ("{var.v: {exists: maybe}}", "var.v: exists: 'maybe' (expected true or false)"),
        (
            "{var.v: {matches: '(a'}}",
            "var.v: matches: '(a' is not a valid regular expression "
            "(missing ), unterminated subpattern at position 0)",
        ),
        (
            "{var.v: [1, 2]}",
            "var.v: eq: [1, 2] (expected a single value or {in: [...]} for a list)",
        ),
        (
            "{var.v: 1, call.ani: 2}",
            "{'var.v': 1, 'call.ani': 2} is not a condition (expected a mapping with one key: "
            "open, all, any, not, or a reference like var.X)",
        ),
        ("{all: []}", "all: [] (expected a list of conditions)"),
        ("{open: 3}", "open: 3 (expected the name of a calendar)"),
    ],
)
def test_bad_conditions(tmp_path: Path, when: str, message: str) -> None:
    path = write(
        tmp_path,
        one_node(
            f"{{kind: branch, cases: [{{when: {when}, next: bye}}], otherwise: bye}}",
            extra_nodes="in: {kind: input, prompts: [beep], variable: v, next: bye, "
            "on_exceeded: bye}",
        ),
    )
    assert problems(path) == [f"{path}:{line_of(path, 'x:')}: flow main, node x: {message}"]


def test_condition_problems_point_at_their_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        flows:
          main:
            start: x
            nodes:
              x:
                kind: branch
                cases:
                  - when:
                      all:
                        - {call.ani: "1"}
                        - not:
                            var.v: {gt: []}
                    next: bye
                otherwise: bye
              bye: {kind: hangup}
              in: {kind: input, prompts: [beep], variable: v, next: bye, on_exceeded: bye}
        """,
    )
    assert problems(path) == [
        f"{path}:{line_of(path, 'gt: []')}: flow main, node x: var.v: gt: [] "
        "(expected a number or text)"
    ]


# -- calendars and routes -------------------------------------------------------------------


def test_calendar_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        calendars:
          hours:
            timezone: Europe/Berln
            weekly:
              mon-fri: ["08:00-18:00", "17:00-19:00"]
              fri: ["18:00-08:00"]
              funday: []
              sun: ["25:00-26:00", "9-5"]
            holidays: [2026-12-25, xmas]
            closed: true
        flows:
          main: {start: b, nodes: {b: {kind: hangup}}}
        """,
    )

    def at(needle: str) -> str:
        return f"{path}:{line_of(path, needle)}: calendar hours"

    expected = '(expected "HH:MM-HH:MM" with the end after the start, e.g. "08:00-18:00")'
    assert problems(path) == [
        f"{at('timezone')}: unknown timezone 'Europe/Berln' (expected an IANA time zone like "
        "Europe/Berlin); did you mean 'Europe/Berlin'?",
        f"{at('mon-fri')}: intervals overlap at 17:00 (expected separate intervals)",
        f"{at('  fri:')}: '18:00-08:00' ends before it starts {expected}",
        f"{at('  fri:')}: fri is given twice (expected each day once)",
        f"{at('funday')}: 'funday' is not a day or range of days (expected mon, tue, wed, thu, "
        "fri, sat, sun or a range like mon-fri)",
        f"{at('  sun:')}: '25:00-26:00' is not a time of day {expected}",
        f"{at('  sun:')}: '9-5' is not an interval {expected}",
        f"{at('xmas')}: 'xmas' is not a date (expected YYYY-MM-DD)",
        f"{at('closed')}: unknown key 'closed' (expected timezone, weekly, holidays)",
    ]


def test_calendar_needs_timezone_and_weekly(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "default_flow: main\ncalendars:\n  hours: {holidays: []}\n" + MAIN,
    )
    assert problems(path) == [
        f"{path}:3: calendar hours: no timezone (a calendar needs timezone and weekly)",
        f"{path}:3: calendar hours: no weekly (a calendar needs timezone and weekly)",
    ]


def test_route_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        routes:
          - {dnis: "^81[0-9", flow: main}
          - {ani: "+49", flow: main}
          - {dnis: "8000"}
          - {dnis: "8001", flow: mian}
        flows:
          main: {start: b, nodes: {b: {kind: hangup}}}
        """,
    )
    assert problems(path) == [
        f"{path}:3: route 1: dnis '^81[0-9' is not a valid regular expression "
        "(unterminated character set at position 3)",
        f"{path}:4: route 2: ani: '+49' is not a valid regular expression "
        "(nothing to repeat at position 0)",
        f"{path}:5: route 3: no flow (a route needs flow)",
        # numbered as written, although the routes before it were refused
        f"{path}:6: route 4: unknown flow 'mian' (expected one of: main); did you mean 'main'?",
    ]


def test_a_value_yaml_11_rewrote_says_so(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        flows:
          main:
            start: bye
            nodes:
              bye: {kind: hangup, prompts: [{tts: off}]}
        """,
    )
    found = problems(path)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:{line_of(path, 'tts: off')}: flow main, node bye: ")
    assert found[0].endswith('YAML 1.1 reads an unquoted off as false: write "off" in quotes')
