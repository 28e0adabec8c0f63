"""Tests for the cross-checks of IVR configurations (ivr/validate.py) and the sound catalogue
(ivr/catalog.py): dangling references, references in conditions and templates, unreachable
nodes, loops with no way out, subflows, and prompts missing from the catalogue.

Configurations are small YAML texts loaded through the real loader, so each assertion is on
the message an admin reads: "file:line: flow F, node N: what is wrong (what was expected)".
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from support.ivr_yaml import line_of, problems, write

from cti.errors import ConfigError
from ivr.catalog import SoundCatalog
from ivr.loader import load_ivr_config
from ivr.model import Flow, Goto, Hangup, IvrConfig, Play, Prompt, Route
from ivr.validate import Problem, validate_config


def flow(nodes: str, *, head: str = "", extra: str = "", extra_after: str = "") -> str:
    """A configuration with one flow ``main`` (start ``x``) whose nodes are ``nodes`` (YAML
    lines at the nodes' indentation); ``head`` goes in the flow, ``extra`` at the top level
    (before ``flows``), ``extra_after`` in ``flows`` after main."""
    return (
        "default_flow: main\n"
        + textwrap.dedent(extra)
        + "flows:\n  main:\n    start: x\n"
        + textwrap.indent(textwrap.dedent(head), "    ")
        + "    nodes:\n"
        + textwrap.indent(textwrap.dedent(nodes), "      ")
        + extra_after
    )


# -- dangling references --------------------------------------------------------------------


@pytest.mark.parametrize(
    "node",
    [
        "{kind: play, prompts: [beep], next: nowhere}",
        "{kind: menu, prompts: [beep], options: {'1': nowhere}, on_exceeded: bye}",
        "{kind: menu, prompts: [beep], options: {'1': bye}, on_exceeded: nowhere}",
        "{kind: input, prompts: [beep], variable: v, next: bye, on_exceeded: nowhere}",
        "{kind: lookup, by: ani, next: bye, not_found: nowhere}",
        "{kind: lookup, by: ani, next: bye, not_found: bye, on_error: nowhere}",
        "{kind: branch, cases: [{when: {call.ani: '1'}, next: nowhere}], otherwise: bye}",
        "{kind: branch, cases: [{when: {call.ani: '1'}, next: bye}], otherwise: nowhere}",
        "{kind: queue, queue: q, on_failure: nowhere}",
        "{kind: transfer, to: '1001', on_failure: nowhere}",
        "{kind: voicemail, mailbox: '100', on_failure: nowhere}",
        "{kind: callback, next: nowhere}",
        "{kind: say, value: '1', as: number, next: nowhere}",
        "{kind: goto, next: nowhere}",
    ],
)
def test_an_exit_to_a_missing_node(tmp_path: Path, node: str) -> None:
    # bye is the flow's on_error, so it is reachable whatever x's exits are
    path = write(tmp_path, flow(f"x: {node}\nbye: {{kind: hangup}}\n", head="on_error: bye\n"))
    assert problems(path) == [
        f"{path}:{line_of(path, 'x:')}: flow main, node x: unknown node 'nowhere' "
        "(expected a node of flow main)"
    ]


def test_a_missing_node_is_reported_at_the_exit_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x:
              kind: menu
              prompts: [beep]
              options:
                "1": bye
                "2": nowhere
              on_exceeded: bye
            bye: {kind: hangup}
            """
        ),
    )
    assert problems(path) == [
        f"{path}:{line_of(path, 'nowhere')}: flow main, node x: unknown node 'nowhere' "
        "(expected a node of flow main)"
    ]


def test_a_typo_in_an_exit_suggests_the_node(tmp_path: Path) -> None:
    path = write(tmp_path, flow("x: {kind: goto, next: bey}\nbye: {kind: hangup}\n"))
    assert problems(path) == [
        f"{path}:6: flow main, node x: unknown node 'bey' (expected a node of flow main); "
        "did you mean 'bye'?",
        # true as written: nothing leads to bye until the typo is fixed
        f"{path}:7: flow main, node bye: unreachable: no exit leads here from start 'x' "
        "(expected some node to go to 'bye', or remove it)",
    ]


def test_a_subflow_continuing_at_a_missing_node(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            "x: {kind: subflow, flow: sub, next: nowhere}\n",
            extra_after="  sub: {start: r, nodes: {r: {kind: return}}}\n",
        ),
    )
    assert problems(path) == [
        f"{path}:6: flow main, node x: unknown node 'nowhere' (expected a node of flow main)"
    ]


def test_flow_start_and_on_error_must_be_nodes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "default_flow: main\nflows:\n  main:\n    start: strat\n    on_error: oops\n"
        "    nodes:\n      start: {kind: hangup}\n",
    )
    assert problems(path) == [
        f"{path}:4: flow main: unknown node 'strat' (expected a node of flow main); "
        "did you mean 'start'?",
        f"{path}:5: flow main: unknown node 'oops' (expected a node of flow main)",
    ]


def test_unknown_flows_in_subflow_route_and_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: mian
        routes:
          - {dnis: "1", flow: other}
        flows:
          main:
            start: x
            nodes:
              x: {kind: subflow, flow: acount, next: bye}
              bye: {kind: hangup}
          account:
            start: r
            nodes:
              r: {kind: return}
        """,
    )
    assert problems(path) == [
        f"{path}:1: default_flow: unknown flow 'mian' (expected one of: account, main); "
        "did you mean 'main'?",
        f"{path}:3: route 1: unknown flow 'other' (expected one of: account, main)",
        f"{path}:8: flow main, node x: unknown flow 'acount' (expected one of: account, main); "
        "did you mean 'account'?",
    ]


def test_a_reference_to_a_node_with_problems_is_not_also_dangling(tmp_path: Path) -> None:
    # "bye" is declared, only its own definition is wrong: one problem, not two.
    path = write(tmp_path, flow("x: {kind: goto, next: bye}\nbye: {kind: hangup, next: x}\n"))
    assert problems(path) == [
        f"{path}:7: flow main, node bye: unknown key 'next' (a hangup node takes prompts)"
    ]


# -- references in conditions and templates -------------------------------------------------

INPUT = "ask: {kind: input, prompts: [beep], variable: account, next: x, on_exceeded: bye}\n"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "{open: hourz}",
            "unknown calendar 'hourz' (expected one of: hours); did you mean 'hours'?",
        ),
        (
            "{foo.bar: 1}",
            "bad reference 'foo.bar': unknown namespace 'foo' (var, customer, call or queue "
            "expected)",
        ),
        (
            "{call.anii: '1'}",
            "bad reference 'call.anii': call.ani|caller_name|channel|dnis|linkedid|uniqueid "
            "expected",
        ),
        (
            "{not: {queue.support.agents: {gt: 0}}}",
            "bad reference 'queue.support.agents': queue.NAME.agents_available|estimated_wait "
            "expected",
        ),
        (
            "{any: [{var.acount: {exists: true}}]}",
            "var.acount is never set (expected the variable of some input node: account); "
            "did you mean 'var.account'?",
        ),
    ],
)
def test_bad_references_in_conditions(tmp_path: Path, when: str, message: str) -> None:
    path = write(
        tmp_path,
        flow(
            f"x: {{kind: branch, cases: [{{when: {when}, next: ask}}], otherwise: bye}}\n"
            + INPUT
            + "bye: {kind: hangup}\n",
            extra="calendars:\n  hours: {timezone: UTC, weekly: {mon: ['08:00-09:00']}}\n",
        ),
    )
    assert problems(path) == [f"{path}:{line_of(path, 'x:')}: flow main, node x: {message}"]


def test_good_references_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            "x:\n"
            "  kind: branch\n"
            "  cases:\n"
            "    - {when: {queue.any_queue.agents_available: {gt: 0}}, next: ask}\n"
            "    - {when: {customer.address.city: Berlin}, next: ask}\n"
            "    - {when: {var.account: {exists: true}}, next: say}\n"
            "  otherwise: bye\n"
            + INPUT
            + "say: {kind: say, value: '${queue.q.estimated_wait}', as: duration, next: bye}\n"
            "bye: {kind: hangup, prompts: [{tts: 'Costs $${price} ${call.caller_name}'}]}\n"
        ),
    )
    assert load_ivr_config([path]).flows["main"].nodes["bye"] == Hangup(
        id="bye",
        origin=f"{path}:{line_of(path, 'bye:')}",
        prompts=(Prompt(tts="Costs $${price} ${call.caller_name}"),),
    )


def test_bad_references_in_templates(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: play, prompts: [{tts: "Hello ${customer.name} ${var.acount}"}], next: q}
            q: {kind: queue, queue: q, data: {who: "${caller.ani}"}, on_failure: t}
            t: {kind: transfer, to: "${var.phone}", on_failure: c}
            c: {kind: callback, number: "${call.ani", next: s}
            s: {kind: say, value: "${account}", as: digits, next: bye}
            bye: {kind: hangup}
            """
        ),
    )

    def at(node: str) -> str:
        return f"{path}:{line_of(path, f'{node}: {{kind')}: flow main, node {node}"

    assert problems(path) == [
        f"{at('x')}: var.acount is never set (expected the variable of some input node)",
        f"{at('q')}: bad reference 'caller.ani': unknown namespace 'caller' (var, customer, "
        "call or queue expected)",
        f"{at('t')}: var.phone is never set (expected the variable of some input node)",
        f"{at('c')}: unclosed '${{' in '${{call.ani' (expected ${{reference}})",
        f"{at('s')}: bad reference 'account': unknown namespace 'account' (var, customer, call "
        "or queue expected)",
    ]


def test_a_variable_set_in_another_flow_counts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        flows:
          main:
            start: x
            nodes:
              x: {kind: subflow, flow: ask, next: q}
              q: {kind: queue, queue: q, data: {account: "${var.account}"}}
          ask:
            start: a
            nodes:
              a: {kind: input, prompts: [beep], variable: account, next: r, on_exceeded: r}
              r: {kind: return}
        """,
    )
    assert load_ivr_config([path]).flows["main"].nodes["q"].origin == f"{path}:7"


# -- reachability ---------------------------------------------------------------------------


def test_unreachable_nodes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: lookup, by: ani, next: bye, not_found: bye, on_error: failed}
            failed: {kind: play, prompts: [beep], next: bye}
            sorry: {kind: play, prompts: [beep], next: bye}
            lost: {kind: play, prompts: [beep], next: bye}
            also_lost: {kind: goto, next: lost}
            bye: {kind: hangup}
            """,
            head="on_error: sorry\n",
        ),
    )
    # failed: a lookup's on_error exit; sorry: the flow's on_error. Both count.
    message = "unreachable: no exit leads here from start 'x' (expected some node to go to"
    assert problems(path) == [
        f"{path}:{line_of(path, 'lost:')}: flow main, node lost: {message} 'lost', or remove it)",
        f"{path}:{line_of(path, 'also_lost:')}: flow main, node also_lost: {message} "
        "'also_lost', or remove it)",
    ]


# -- loops with no way out ------------------------------------------------------------------

NO_WAY_OUT = "(expected a path to a hangup, queue, transfer, voicemail or return node)"


def loop_at(path: Path, node: str, members: str) -> str:
    where = f"{path}:{line_of(path, node + ':')}: flow main, node {node}"
    return f"{where}: loop with no way out: {members} {NO_WAY_OUT}"


def test_goto_loop(tmp_path: Path) -> None:
    path = write(tmp_path, flow("x: {kind: goto, next: a}\na: {kind: goto, next: x}\n"))
    assert problems(path) == [loop_at(path, "x", "x, a only lead to each other")]


def test_branch_whose_every_case_leads_back(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: play, prompts: [beep], next: check}
            check:
              kind: branch
              cases:
                - {when: {call.ani: "1"}, next: x}
                - {when: {call.ani: "2"}, next: again}
              otherwise: check
            again: {kind: goto, next: check}
            bye: {kind: hangup}
            """
        ),
    )
    assert problems(path) == [
        loop_at(path, "x", "x, check, again only lead to each other"),
        f"{path}:{line_of(path, 'bye:')}: flow main, node bye: unreachable: no exit leads here "
        "from start 'x' (expected some node to go to 'bye', or remove it)",
    ]


def test_menu_that_only_leads_back_to_itself(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            "x: {kind: menu, prompts: [beep], options: {'1': info}, on_exceeded: x}\n"
            "info: {kind: play, prompts: [beep], next: x}\n"
        ),
    )
    assert problems(path) == [loop_at(path, "x", "x, info only lead to each other")]


def test_only_the_innermost_loop_is_reported(tmp_path: Path) -> None:
    # x and y can only go into the a <-> b loop: fixing that loop fixes them.
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: goto, next: y}
            y: {kind: branch, cases: [{when: {call.ani: "1"}, next: x}], otherwise: a}
            a: {kind: goto, next: b}
            b: {kind: goto, next: a}
            """
        ),
    )
    assert problems(path) == [loop_at(path, "a", "a, b only lead to each other")]


def test_a_self_loop(tmp_path: Path) -> None:
    path = write(tmp_path, flow("x: {kind: goto, next: x}\n"))
    assert problems(path) == [loop_at(path, "x", "x only leads back to itself")]


def test_loops_with_a_way_out_are_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: menu, prompts: [beep], options: {'1': info, '2': find}, on_exceeded: op}
            info: {kind: play, prompts: [beep], next: x}
            find: {kind: lookup, by: ani, next: x, not_found: x, on_error: fail}
            fail: {kind: goto, next: x}
            op: {kind: transfer, to: '1001', on_failure: x}
            """
        ),
    )
    config = load_ivr_config([path])
    assert list(config.flows["main"].nodes) == ["x", "info", "find", "fail", "op"]


def test_a_failure_exit_is_a_way_out(tmp_path: Path) -> None:
    # The only way out of the find <-> again loop is the lookup's failure exit.
    path = write(
        tmp_path,
        flow(
            """
            x: {kind: lookup, by: ani, next: again, not_found: again, on_error: bye}
            again: {kind: goto, next: x}
            bye: {kind: hangup}
            """
        ),
    )
    assert load_ivr_config([path]).flows["main"].start == "x"


# -- subflows -------------------------------------------------------------------------------


def test_subflow_whose_flow_never_returns(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: main
        flows:
          main:
            start: x
            nodes:
              x: {kind: subflow, flow: sub, next: bye}
              bye: {kind: hangup}
          sub:
            start: a
            nodes:
              a: {kind: play, prompts: [beep], next: h}
              h: {kind: hangup}
        """,
    )
    assert problems(path) == [
        f"{path}:6: flow main, node x: flow 'sub' never reaches a return node, so the call "
        "would not come back here (expected a reachable node of kind return in flow 'sub')"
    ]


def test_subflow_recursion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default_flow: a
        flows:
          a:
            start: x
            nodes:
              x: {kind: subflow, flow: b, next: bye}
              bye: {kind: hangup}
          b:
            start: x
            nodes:
              x: {kind: subflow, flow: a, next: r}
              r: {kind: return}
        """,
    )
    assert problems(path) == [
        f"{path}:6: flow a, node x: subflows recurse: a -> b -> a (expected no flow to enter "
        "itself, directly or through other flows)",
        f"{path}:11: flow b, node x: flow 'a' never reaches a return node, so the call would "
        "not come back here (expected a reachable node of kind return in flow 'a')",
    ]


def test_a_flow_entering_itself(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow("x: {kind: subflow, flow: main, next: r}\nr: {kind: return}\n"),
    )
    assert problems(path) == [
        f"{path}:6: flow main, node x: subflows recurse: main -> main (expected no flow to "
        "enter itself, directly or through other flows)"
    ]


def test_return_in_a_flow_no_subflow_enters(tmp_path: Path) -> None:
    path = write(tmp_path, flow("x: {kind: return}\n"))
    assert problems(path) == [
        f"{path}:6: flow main, node x: return in a flow that no subflow node enters (nothing "
        "to return to; expected a hangup or another ending)"
    ]


# -- prompts and the sound catalogue --------------------------------------------------------

CATALOG = SoundCatalog(["hello-world", "beep", "goodbye", "vm-goodbye", "digits/1"])


def test_missing_sounds_are_reported_with_close_matches(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        flow(
            """
            x:
              kind: menu
              prompts: [hello-wrld, {tts: "Any text is fine"}]
              options: {"1": say}
              no_input: [beep]
              invalid: [{sound: no-such-thing}]
              on_exceeded: bye
            say: {kind: say, value: "1", as: number, next: bye, prompts_after: ["1"]}
            bye: {kind: hangup, prompts: [goodby]}
            """
        ),
    )
    expected = "is not in the sound catalogue (expected an installed sound)"
    assert problems(path, catalog=CATALOG) == [
        f"{path}:{line_of(path, 'hello-wrld')}: flow main, node x: sound 'hello-wrld' "
        f"{expected}; did you mean hello-world?",
        f"{path}:{line_of(path, 'no-such-thing')}: flow main, node x: sound 'no-such-thing' "
        f"{expected}",
        f"{path}:{line_of(path, 'say:')}: flow main, node say: sound '1' {expected}; "
        "did you mean digits/1?",
        f"{path}:{line_of(path, 'bye:')}: flow main, node bye: sound 'goodby' {expected}; "
        "did you mean goodbye, vm-goodbye?",
    ]
    # Without a catalogue, sounds are not checked.
    assert load_ivr_config([path]).flows["main"].start == "x"


def test_sound_catalogue_from_a_directory(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds" / "en"
    (sounds / "digits").mkdir(parents=True)
    for name in ("hello-world.gsm", "hello-world.ulaw", "digits/1.gsm", ".hidden.gsm", "README"):
        (sounds / name).write_bytes(b"")
    catalog = SoundCatalog.from_directory(sounds)
    assert list(catalog) == ["digits/1", "hello-world"]
    assert "hello-world" in catalog
    assert "hello-world.gsm" not in catalog
    assert len(catalog) == 2
    assert catalog.close_matches("hello-wrld") == ["hello-world"]


def test_sound_catalogue_inside_a_root_follows_absolute_links_there(tmp_path: Path) -> None:
    # Debian: sounds/en -> /etc/alternatives/asterisk-prompt-en -> .../en_US_f_Allison
    root = tmp_path / "root"
    real = root / "usr/share/asterisk/sounds/en_US_f_Allison"
    real.mkdir(parents=True)
    (real / "beep.gsm").write_bytes(b"")
    (root / "etc/alternatives").mkdir(parents=True)
    os.symlink("/usr/share/asterisk/sounds/en_US_f_Allison", root / "etc/alternatives/prompt")
    os.symlink("/etc/alternatives/prompt", root / "usr/share/asterisk/sounds/en")
    link = root / "usr/share/asterisk/sounds/en"
    assert list(SoundCatalog.from_directory(link, root=root)) == ["beep"]
    inside = Path("/usr/share/asterisk/sounds/en")
    assert list(SoundCatalog.from_directory(inside, root=root)) == ["beep"]
    with pytest.raises(ConfigError, match="sound directory not found"):
        SoundCatalog.from_directory(link)  # outside the root the link leads nowhere


def test_sound_catalogue_survives_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "beep.gsm").write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "loop")
    assert list(SoundCatalog.from_directory(tmp_path)) == ["beep"]


# -- on a model built in code ---------------------------------------------------------------


def test_validate_config_on_a_model_uses_its_origins() -> None:
    config = IvrConfig(
        flows={
            "main": Flow(
                "main",
                "x",
                {
                    "x": Play(id="x", origin="f.yaml:3", prompts=(Prompt(sound="beep"),), next="y"),
                    "y": Goto(id="y", origin="f.yaml:4", next="nowhere"),
                },
                origin="f.yaml:1",
            )
        },
        routes=(Route("other", dnis="1", origin="f.yaml:9"),),
        default_flow="main",
        source="f.yaml",
    )
    found = validate_config(config, catalog=SoundCatalog(["bep"]))
    assert sorted(found, key=str) == [
        Problem(
            ("flows", "main", "nodes", "x", "prompts", "0"),
            "sound 'beep' is not in the sound catalogue (expected an installed sound); "
            "did you mean bep?",
            "f.yaml:3",
        ),
        Problem(
            ("flows", "main", "nodes", "y", "next"),
            "unknown node 'nowhere' (expected a node of flow main)",
            "f.yaml:4",
        ),
        Problem(
            ("routes", "0", "flow"),
            "unknown flow 'other' (expected one of: main)",
            "f.yaml:9",
        ),
    ]
