"""Whether a loaded IVR configuration holds together: the checks that need more than one piece.

``ivr.schema`` checks each node, route and calendar on its own; this module checks them
against each other, on the frozen model, without reading anything:

- references: every exit names a node of its flow; subflows, routes and ``default_flow`` name
  flows; ``open:`` names a calendar; ``var.X`` / ``customer.F`` / ``call.F`` / ``queue.Q.F``
  references (in conditions and ``${...}`` templates) are well formed, and every ``var.X`` is
  set by some input node (a typo would otherwise be silently empty on a live call);
- reachability: every node can be reached from the start (or the flow's ``on_error``);
- no trap: every reachable node can reach an ending (hangup, queue, transfer, voicemail,
  return), counting every explicit exit, failures included. Only the innermost loops are
  reported: fixing them frees whatever leads into them;
- subflows: the target flow reaches a ``return``; no flow enters itself through subflows; a
  ``return`` only in flows that some subflow enters;
- prompts: with a ``SoundCatalog``, every ``sound:`` prompt exists.

A problem names its place by key path (``flows.main.nodes.menu.options.1``), which the loader
turns into "file:line"; used on its own, the model's ``origin`` fields give the line.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from cti.config import KeyPath, Locate, did_you_mean
from cti.config import Problem as _SourceProblem
from ivr.catalog import SoundCatalog
from ivr.graph import cycle as shortest_cycle
from ivr.graph import loops
from ivr.model import (
    AllOf,
    AnyOf,
    Branch,
    Callback,
    Compare,
    Condition,
    Flow,
    Goto,
    Hangup,
    Input,
    IvrConfig,
    Lookup,
    Menu,
    Node,
    Not,
    Open,
    Play,
    Prompt,
    Queue,
    Return,
    Say,
    Subflow,
    Transfer,
    Voicemail,
)
from ivr.templates import ref_problem, template_refs

__all__ = [
    "ENDING_KINDS",
    "Declared",
    "KeyPath",
    "Locate",
    "Problem",
    "did_you_mean",
    "exits",
    "prompts_of",
    "reference_problem",
    "validate_config",
]

#: kinds after which the flow cannot go on (return goes back to the calling flow)
ENDING_KINDS: tuple[type[Node], ...] = (Hangup, Queue, Transfer, Voicemail, Return)

# As ivr.templates reads templates: an escaped "$${" or a whole "${ref}".
_TEMPLATE = re.compile(r"\$\$\{|\$\{[^{}]*\}")


@dataclass(frozen=True)
class Problem(_SourceProblem):
    """One thing wrong with the configuration, where it is and what was expected."""

    @property
    def where(self) -> str:
        """The piece in question: "flow main, node menu", "route 2", "calendar hours"."""
        p = self.path
        if len(p) >= 4 and p[0] == "flows" and p[2] == "nodes":
            return f"flow {p[1]}, node {p[3]}"
        if len(p) >= 2 and p[0] == "flows":
            return f"flow {p[1]}"
        if len(p) >= 2 and p[0] == "routes" and p[1].isdigit():
            return f"route {int(p[1]) + 1}"
        if len(p) >= 2 and p[0] == "calendars":
            return f"calendar {p[1]}"
        if p[:1] == ("default_flow",):
            return "default_flow"
        return ""


@dataclass(frozen=True)
class Declared:
    """What the files define, including pieces that failed their own checks: a reference to
    a node with a typo inside is not also a dangling reference."""

    flows: Mapping[str, frozenset[str]]  # flow -> its node ids
    calendars: frozenset[str]
    variables: frozenset[str]  # set by some input node
    #: where each route of the configuration stands among the routes written (routes with
    #: problems of their own are left out of the configuration); () means in the same places
    route_positions: tuple[int, ...] = ()

    @classmethod
    def of(cls, config: IvrConfig) -> Declared:
        return cls(
            flows={name: frozenset(flow.nodes) for name, flow in config.flows.items()},
            calendars=frozenset(config.calendars),
            variables=frozenset(
                node.variable
                for flow in config.flows.values()
                for node in flow.nodes.values()
                if isinstance(node, Input)
            ),
        )


def validate_config(
    config: IvrConfig,
    *,
    catalog: SoundCatalog | None = None,
    declared: Declared | None = None,
    locate: Locate | None = None,
) -> list[Problem]:
    """Every problem found, in no particular order (the loader sorts them by place)."""
    checker = _Checker(config, declared or Declared.of(config), locate or _model_locate(config))
    checker.top_level()
    for flow in config.flows.values():
        checker.flow(flow, catalog)
    checker.subflows()
    return checker.problems


def exits(node: Node) -> list[tuple[KeyPath, str]]:
    """Every node ``node`` may continue at, with the key path of the exit."""
    found: list[tuple[KeyPath, str | None]] = []
    if isinstance(node, Play | Input | Lookup | Say | Callback | Goto | Subflow):
        found.append((("next",), node.next))
    if isinstance(node, Menu):
        found += [(("options", key), target) for key, target in node.options.items()]
    if isinstance(node, Menu | Input):
        found.append((("on_exceeded",), node.on_exceeded))
    if isinstance(node, Lookup):
        found += [(("not_found",), node.not_found), (("on_error",), node.on_error)]
    if isinstance(node, Branch):
        found += [(("cases", str(i), "next"), case.next) for i, case in enumerate(node.cases)]
        found.append((("otherwise",), node.otherwise))
    if isinstance(node, Queue | Transfer | Voicemail):
        found.append((("on_failure",), node.on_failure))
    return [(path, target) for path, target in found if target is not None]


def prompts_of(node: Node) -> list[tuple[KeyPath, Prompt]]:
    """Every prompt the node may play, with its key path."""
    fields: tuple[str, ...] = ()
    if isinstance(node, Play | Hangup | Callback):
        fields = ("prompts",)
    elif isinstance(node, Menu | Input):
        fields = ("prompts", "no_input", "invalid")
    elif isinstance(node, Say):
        fields = ("prompts_before", "prompts_after")
    return [
        ((name, str(i)), prompt) for name in fields for i, prompt in enumerate(getattr(node, name))
    ]


def reference_problem(ref: str, variables: Iterable[str]) -> str | None:
    """What is wrong with the reference ``ref``, or None. The forms are ``ivr.templates``'s
    (what the engine can resolve); on top, a ``var.X`` must be set by some input node."""
    problem = ref_problem(ref)
    if problem is not None:
        return f"bad reference {problem}"
    namespace, _, name = ref.partition(".")
    known = sorted(set(variables))
    if namespace != "var" or name in known:
        return None
    listed = f": {', '.join(known)}" if known else ""
    suggestion = did_you_mean(ref, [f"var.{k}" for k in known])
    return f"{ref} is never set (expected the variable of some input node{listed}){suggestion}"


def _unclosed(text: str) -> bool:
    """Whether ``text`` has a ``${`` that no ``}`` closes (``$${`` is an escaped ``${``)."""
    return "${" in _TEMPLATE.sub("", text)


# -- the checks -----------------------------------------------------------------------------


class _Checker:
    def __init__(self, config: IvrConfig, declared: Declared, locate: Locate) -> None:
        self.config = config
        self.declared = declared
        self.locate = locate
        self.problems: list[Problem] = []

    def report(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(path, message, self.locate(path)))

    def top_level(self) -> None:
        flows = self.declared.flows
        if not self.config.default_flow:
            self.report(("default_flow",), "missing (expected the flow for calls no route matches)")
        elif self.config.default_flow not in flows:
            self.report(("default_flow",), self._unknown_flow(self.config.default_flow))
        positions = self.declared.route_positions or range(len(self.config.routes))
        for i, route in zip(positions, self.config.routes, strict=True):
            if route.flow not in flows:
                self.report(("routes", str(i), "flow"), self._unknown_flow(route.flow))

    def flow(self, flow: Flow, catalog: SoundCatalog | None) -> None:
        base = ("flows", flow.name)
        names = self.declared.flows.get(flow.name, frozenset(flow.nodes))
        for key, target in (("start", flow.start), ("on_error", flow.on_error)):
            if target is not None and target not in names:
                self.report((*base, key), self._unknown_node(target, flow, names))
        for node in flow.nodes.values():
            path = (*base, "nodes", node.id)
            for exit_path, target in exits(node):
                if target not in names:
                    self.report((*path, *exit_path), self._unknown_node(target, flow, names))
            self.references(node, path)
            if catalog is not None:
                self.sounds(node, path, catalog)
        complete = names == frozenset(flow.nodes) and flow.start in flow.nodes
        if complete:  # with nodes missing, reachability would only repeat their problems
            self.graph(flow)

    def references(self, node: Node, path: KeyPath) -> None:
        if isinstance(node, Subflow) and node.flow not in self.declared.flows:
            self.report((*path, "flow"), self._unknown_flow(node.flow))
        if isinstance(node, Lookup) and node.by != "ani":
            self.reference(node.by, (*path, "by"))
        if isinstance(node, Branch):
            for i, case in enumerate(node.cases):
                self.condition(case.when, (*path, "cases", str(i), "when"))
        for text_path, text in _templates(node):
            if _unclosed(text):
                self.report(
                    (*path, *text_path), f"unclosed '${{' in {text!r} (expected ${{reference}})"
                )
            for ref in template_refs(text):
                self.reference(ref, (*path, *text_path))

    def condition(self, condition: Condition, path: KeyPath) -> None:
        if isinstance(condition, Compare):
            self.reference(condition.ref, (*path, condition.ref))
        elif isinstance(condition, Open):
            if condition.calendar not in self.declared.calendars:
                known = sorted(self.declared.calendars)
                self.report(
                    (*path, "open"),
                    f"unknown calendar {condition.calendar!r} "
                    f"(expected one of: {', '.join(known) or 'none defined'})"
                    f"{did_you_mean(condition.calendar, known)}",
                )
        elif isinstance(condition, AllOf | AnyOf):
            key = "all" if isinstance(condition, AllOf) else "any"
            for i, inner in enumerate(condition.conditions):
                self.condition(inner, (*path, key, str(i)))
        elif isinstance(condition, Not):
            self.condition(condition.condition, (*path, "not"))

    def reference(self, ref: str, path: KeyPath) -> None:
        problem = reference_problem(ref, self.declared.variables)
        if problem is not None:
            self.report(path, problem)

    def sounds(self, node: Node, path: KeyPath, catalog: SoundCatalog) -> None:
        for prompt_path, prompt in prompts_of(node):
            if prompt.sound is not None and prompt.sound not in catalog:
                close = catalog.close_matches(prompt.sound)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                self.report(
                    (*path, *prompt_path),
                    f"sound {prompt.sound!r} is not in the sound catalogue "
                    f"(expected an installed sound){hint}",
                )

    def graph(self, flow: Flow) -> None:
        base = ("flows", flow.name, "nodes")
        reachable = _reachable(flow)
        for node in flow.nodes.values():
            if node.id not in reachable:
                self.report(
                    (*base, node.id),
                    f"unreachable: no exit leads here from start {flow.start!r} "
                    f"(expected some node to go to {node.id!r}, or remove it)",
                )
        for group in _traps(flow, reachable):
            members = (
                f"{group[0]} only leads back to itself"
                if len(group) == 1
                else f"{', '.join(group)} only lead to each other"
            )
            self.report(
                (*base, group[0]),
                f"loop with no way out: {members} (expected a path to a hangup, queue, "
                "transfer, voicemail or return node)",
            )

    def subflows(self) -> None:
        flows = self.config.flows
        entered: dict[str, list[KeyPath]] = {}  # flow -> the subflow nodes entering it
        graph: dict[str, list[str]] = {name: [] for name in flows}  # flow -> flows it enters
        for flow in flows.values():
            for node in flow.nodes.values():
                if isinstance(node, Subflow):
                    entered.setdefault(node.flow, []).append(("flows", flow.name, "nodes", node.id))
                    if node.flow in flows and node.flow not in graph[flow.name]:
                        graph[flow.name].append(node.flow)
        for target, callers in entered.items():
            sub = flows.get(target)
            if sub is None or sub.start not in sub.nodes:
                continue  # reported as an unknown flow or a broken start
            if not any(isinstance(sub.nodes[n], Return) for n in _reachable(sub)):
                for path in callers:
                    self.report(
                        (*path, "flow"),
                        f"flow {target!r} never reaches a return "
                        "node, so the call would not come back here (expected a "
                        f"reachable node of kind return in flow {target!r})",
                    )
        # A subflow naming an unknown flow may have meant any flow: then no return is "stray".
        if all(target in flows for target in entered):
            for flow in flows.values():
                if flow.name in entered:
                    continue
                for node in flow.nodes.values():
                    if isinstance(node, Return):
                        self.report(
                            ("flows", flow.name, "nodes", node.id),
                            "return in a flow that no subflow node enters (nothing to return "
                            "to; expected a hangup or another ending)",
                        )
        for group in loops(list(flows), graph, bottom_only=False):
            cycle = shortest_cycle(group[0], graph, set(group))
            path = next(p for p in entered[cycle[1]] if p[1] == cycle[0])
            self.report(
                (*path, "flow"),
                f"subflows recurse: {' -> '.join(cycle)} (expected no flow to enter itself, "
                "directly or through other flows)",
            )

    def _unknown_flow(self, name: str) -> str:
        known = sorted(self.declared.flows)
        return (
            f"unknown flow {name!r} (expected one of: {', '.join(known) or 'none defined'})"
            f"{did_you_mean(name, known)}"
        )

    def _unknown_node(self, name: str, flow: Flow, names: frozenset[str]) -> str:
        return (
            f"unknown node {name!r} (expected a node of flow {flow.name})"
            f"{did_you_mean(name, sorted(names))}"
        )


def _templates(node: Node) -> Iterator[tuple[KeyPath, str]]:
    for path, prompt in prompts_of(node):
        if prompt.tts is not None:
            yield path, prompt.tts
    if isinstance(node, Say):
        yield ("value",), node.value
    if isinstance(node, Queue):
        for key, value in node.data.items():
            yield ("data", key), value
    if isinstance(node, Transfer):
        yield ("to",), node.to
    if isinstance(node, Callback):
        yield ("number",), node.number


def _successors(flow: Flow, node: Node) -> list[str]:
    return [target for _, target in exits(node) if target in flow.nodes]


def _reachable(flow: Flow) -> set[str]:
    """Nodes reachable from the start or the flow's on_error (where failing nodes go)."""
    roots = [n for n in (flow.start, flow.on_error) if n is not None and n in flow.nodes]
    seen = set(roots)
    todo = deque(roots)
    while todo:
        for target in _successors(flow, flow.nodes[todo.popleft()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _traps(flow: Flow, reachable: set[str]) -> list[list[str]]:
    """The innermost loops (their nodes) among reachable nodes that cannot reach an ending."""
    # An exit to a node that does not exist is reported as such; here it counts as a way out
    # so one typo is not reported twice.
    can_end = {
        n.id
        for n in flow.nodes.values()
        if isinstance(n, ENDING_KINDS) or any(t not in flow.nodes for _, t in exits(n))
    }
    changed = True
    while changed:
        changed = False
        for node in flow.nodes.values():
            if node.id not in can_end and any(t in can_end for t in _successors(flow, node)):
                can_end.add(node.id)
                changed = True
    trapped = [n for n in flow.nodes if n in reachable and n not in can_end]
    graph = {n: [t for t in _successors(flow, flow.nodes[n]) if t in trapped] for n in trapped}
    return loops(trapped, graph, bottom_only=True)


def _model_locate(config: IvrConfig) -> Locate:
    """Places from the model's own ``origin`` fields, for a configuration built in code."""

    def locate(path: KeyPath) -> str:
        flow = config.flows.get(path[1]) if len(path) > 1 and path[0] == "flows" else None
        if flow is not None:
            node = flow.nodes.get(path[3]) if len(path) > 3 and path[2] == "nodes" else None
            return node.origin if node is not None and node.origin else flow.origin
        if len(path) > 1 and path[0] == "routes" and path[1].isdigit():
            index = int(path[1])
            if index < len(config.routes):
                return config.routes[index].origin
        return config.source

    return locate
