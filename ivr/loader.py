"""Loading IVR flow files: YAML in, one validated, frozen ``IvrConfig`` out (or every problem).

    paths ──► files (a directory: its *.yaml, sorted) ──► YAML documents + line index
          ──► merged sections (a flow or calendar defined twice is an error naming both places)
          ──► ivr.schema: each piece checked and built ──► ivr.validate: the pieces together
          ──► IvrConfig, or one ConfigError listing every problem as
              "file:line: flow F, node N: what is wrong (what was expected)"

Routes are concatenated in file order (first match wins, so a directory's files are read in
name order); ``default_flow`` may be repeated only with the same value. Top-level keys that
start with ``x-`` are ignored, so anchors (``&menu``) and merge keys (``<<: *menu``) have a home.

Lines come from the shared source (``cti.config.source``), which also catches what plain data
hides: a key given twice in one mapping (YAML keeps the last silently) and numbers YAML 1.1
rewrites (``to: 0123`` is octal 83, ``timeout: 1:30`` is sexagesimal 90).

Apart from ``SoundCatalog.from_directory``, this is the only IVR module that reads files; it
raises nothing but ``ConfigError``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cti.config import YamlDocument, read_yaml, trap_note
from cti.errors import ConfigError
from ivr.catalog import SoundCatalog
from ivr.model import Calendar, Flow, IvrConfig, Route, Subflow
from ivr.schema import parse_calendar, parse_flow, parse_route
from ivr.validate import Declared, KeyPath, Locate, Problem, did_you_mean, validate_config

__all__ = ["check_ivr_config", "describe_config", "load_ivr_config"]

_SECTIONS = ("default_flow", "routes", "calendars", "flows")
# Top-level keys starting "x-" are ignored: a place for YAML anchors shared by nodes
# (as docker compose does), e.g. "x-menu: &menu {timeout: 4, retries: 2}".
_EXTENSION_PREFIX = "x-"
_VERSION_LENGTH = 12  # hex digits of sha256 kept: plenty to tell configurations apart


def load_ivr_config(paths: Sequence[Path], *, catalog: SoundCatalog | None = None) -> IvrConfig:
    """The configuration in ``paths`` (files, or directories of ``*.yaml``); ``catalog``, when
    given, is where every ``sound:`` prompt must exist. Raises one ``ConfigError`` naming every
    problem found."""
    config, problems = check_ivr_config(paths, catalog=catalog)
    if config is None or problems:
        raise _error(problems)
    return config


def check_ivr_config(
    paths: Sequence[Path], *, catalog: SoundCatalog | None = None
) -> tuple[IvrConfig | None, tuple[Problem, ...]]:
    """Like ``load_ivr_config`` but returns the problems (sorted by file and line) instead of
    raising: the configuration only when there are none."""
    files, problems = _expand(paths)
    documents: list[YamlDocument] = []
    for path in files:
        document, found = _read(path)
        problems += found
        if document is not None:
            documents.append(document)
    merged = _merge(documents, problems)
    default = str(files[0]) if files else ", ".join(str(p) for p in paths)
    locate = merged.locator(default)
    calendars: dict[str, Calendar] = {}
    for name, raw in merged.calendars.items():
        calendar, found = parse_calendar(name, raw, ("calendars", name), locate)
        problems += found
        if calendar is not None:
            calendars[name] = calendar
    flows: dict[str, Flow] = {}
    for name, raw in merged.flows.items():
        flow, found = parse_flow(name, raw, ("flows", name), locate)
        problems += found
        if flow is not None:
            flows[name] = flow
    routes: list[Route] = []
    positions: list[int] = []
    for i, raw in enumerate(merged.routes):
        route, found = parse_route(raw, ("routes", str(i)), locate)
        problems += found
        if route is not None:
            routes.append(route)
            positions.append(i)
    config = IvrConfig(
        flows=flows,
        routes=tuple(routes),
        default_flow=merged.default_flow,
        calendars=calendars,
        version=_version(documents),
        source=", ".join(str(d.path) for d in documents),
    )
    # Cross-checks need every file: with one unreadable, each of its flows would be "unknown".
    if files and len(documents) == len(files):
        problems += validate_config(
            config, catalog=catalog, declared=merged.declared(positions), locate=locate
        )
    problems = _with_traps(problems, merged.traps)
    ordered = _sorted(problems, [str(f) for f in files])
    return (None if ordered else config), ordered


def describe_config(config: IvrConfig) -> str:
    """A short human summary for ``ctiserver check-config``: flows, nodes, routes."""
    entered = {
        node.flow
        for flow in config.flows.values()
        for node in flow.nodes.values()
        if isinstance(node, Subflow)
    }
    routed = {route.flow for route in config.routes} | {config.default_flow}
    lines = [f"IVR configuration {config.version} from {config.source}"]
    lines.append(f"flows: {len(config.flows)}")
    for flow in config.flows.values():
        kinds = Counter(type(node).__name__.lower() for node in flow.nodes.values())
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        uses = [
            use for use, names in (("routed", routed), ("subflow", entered)) if flow.name in names
        ]
        lines.append(
            f"  {flow.name}: {len(flow.nodes)} nodes ({counts}), start {flow.start}"
            f"{'; ' + ' and '.join(uses) if uses else '; not used by any route or subflow'}"
        )
    lines.append(f"routes: {len(config.routes)}, default flow {config.default_flow}")
    for route in config.routes:
        match = ", ".join(
            f"{key} {value}" for key, value in (("dnis", route.dnis), ("ani", route.ani)) if value
        )
        lines.append(f"  {match or 'any call'} -> {route.flow}")
    lines.append(f"calendars: {len(config.calendars)}")
    for calendar in config.calendars.values():
        days = sum(1 for hours in calendar.weekly.values() if hours)
        lines.append(
            f"  {calendar.name}: {calendar.timezone}, open {days} days a week, "
            f"{len(calendar.holidays)} holidays"
        )
    return "\n".join(lines)


# -- files ----------------------------------------------------------------------------------


def _expand(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.yaml") if p.is_file())
            if not found:
                problems.append(Problem((), "no *.yaml files in this directory", str(path)))
            files += found
        elif path.is_file():
            files.append(path)
        else:
            message = "not found (expected a YAML file or a directory of *.yaml files)"
            problems.append(Problem((), message, str(path)))
    if not paths:
        problems.append(Problem((), "no IVR configuration files given"))
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)  # a file named and also in a directory given
    return list(unique.values()), problems


def _read(path: Path) -> tuple[YamlDocument | None, list[Problem]]:
    document, found = read_yaml(path, expected=f"a mapping with {', '.join(_SECTIONS)}")
    problems = [Problem(p.path, p.message, p.origin) for p in found]
    if document is not None and document.data is None:
        document.data = {}
    return document, problems


def _version(documents: Sequence[YamlDocument]) -> str:
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: (d.path.name, str(d.path))):
        # The name counts too: it orders the routes. Lengths keep the parts apart.
        name = document.path.name.encode()
        digest.update(b"%d:%s%d:" % (len(name), name, len(document.content)))
        digest.update(document.content)
    return digest.hexdigest()[:_VERSION_LENGTH]


# -- merging --------------------------------------------------------------------------------


@dataclass
class _Merged:
    default_flow: str = ""
    routes: list[object] = field(default_factory=list)
    calendars: dict[str, object] = field(default_factory=dict)
    flows: dict[str, object] = field(default_factory=dict)
    places: dict[KeyPath, str] = field(default_factory=dict)  # key path -> "file:line"
    #: key path -> what YAML 1.1 did to the value there (unquoted no -> false, ~ -> null)
    traps: dict[KeyPath, str] = field(default_factory=dict)

    def locator(self, default: str) -> Locate:
        def locate(path: KeyPath) -> str:
            for end in range(len(path), 0, -1):
                place = self.places.get(path[:end])
                if place is not None:
                    return place
            return default

        return locate

    def declared(self, route_positions: Sequence[int]) -> Declared:
        """The names defined, whether or not their definitions are valid."""
        flows: dict[str, frozenset[str]] = {}
        variables: set[str] = set()
        for name, raw in self.flows.items():
            nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
            nodes = nodes if isinstance(nodes, Mapping) else {}
            flows[name] = frozenset(str(node_id) for node_id in nodes)
            variables.update(
                node["variable"]
                for node in nodes.values()
                if isinstance(node, Mapping)
                and node.get("kind") == "input"
                and isinstance(node.get("variable"), str)
            )
        return Declared(
            flows, frozenset(self.calendars), frozenset(variables), tuple(route_positions)
        )


def _merge(documents: Sequence[YamlDocument], problems: list[Problem]) -> _Merged:
    merged = _Merged()
    default_from = ""
    for doc in documents:
        data = doc.data
        for key in data:
            if key not in _SECTIONS and not str(key).startswith(_EXTENSION_PREFIX):
                problems.append(
                    Problem(
                        (),
                        f"unknown top-level key {key!r} (expected {', '.join(_SECTIONS)})"
                        f"{did_you_mean(str(key), _SECTIONS)}",
                        doc.at((str(key),)),
                    )
                )
        if "default_flow" in data:
            value = data["default_flow"]
            here = doc.at(("default_flow",))
            if not isinstance(value, str) or not value:
                problems.append(
                    Problem(
                        ("default_flow",),
                        f"{value!r} is not a flow name (expected the "
                        "flow for calls no route matches)",
                        here,
                    )
                )
            elif not merged.default_flow:
                merged.default_flow, default_from = value, here
                merged.places[("default_flow",)] = here
            elif value != merged.default_flow:
                problems.append(
                    Problem(
                        ("default_flow",),
                        f"{value!r} here but {merged.default_flow!r} at {default_from} "
                        "(expected one default)",
                        here,
                    )
                )
        routes = data.get("routes", [])
        if not isinstance(routes, list):
            problems.append(
                Problem(
                    ("routes",),
                    f"{_short(routes)} (expected a list of routes)",
                    doc.at(("routes",)),
                )
            )
            routes = []
        for i, raw in enumerate(routes):
            _copy_places(doc, ("routes", str(i)), ("routes", str(len(merged.routes))), merged)
            merged.routes.append(raw)
        for section, store in (("calendars", merged.calendars), ("flows", merged.flows)):
            entries = data.get(section, {})
            if not isinstance(entries, Mapping):
                problems.append(
                    Problem(
                        (section,),
                        f"{_short(entries)} (expected a mapping of names to {section})",
                        doc.at((section,)),
                    )
                )
                continue
            for key, raw in entries.items():
                name = str(key)
                path = (section, name)
                if name in store:
                    first = merged.places.get(path, "?")
                    problems.append(
                        Problem(
                            path,
                            f"defined twice: here and at {first} (expected each "
                            f"{section[:-1]} once)",
                            doc.at(path),
                        )
                    )
                    continue
                store[name] = raw
                _copy_places(doc, path, path, merged)
    return merged


def _with_traps(problems: list[Problem], traps: Mapping[KeyPath, str]) -> list[Problem]:
    """A problem with a value YAML 1.1 rewrote (``label: off`` is false) says so."""
    noted = []
    for p in problems:
        note = trap_note(traps, p.path, p.message) if p.path else ""
        noted.append(Problem(p.path, f"{p.message}; {note}", p.origin) if note else p)
    return noted


def _copy_places(doc: YamlDocument, source: KeyPath, target: KeyPath, merged: _Merged) -> None:
    n = len(source)
    for path, line in doc.lines.items():
        if path[:n] == source:
            merged.places[(*target, *path[n:])] = f"{doc.path}:{line}"
    for path, trap in doc.traps.items():
        if path[:n] == source:
            merged.traps[(*target, *path[n:])] = trap


# -- reporting ------------------------------------------------------------------------------


def _sorted(problems: list[Problem], files: list[str]) -> tuple[Problem, ...]:
    rank = {name: i for i, name in enumerate(files)}

    def key(problem: Problem) -> tuple[int, int, str]:
        file, _, line = problem.origin.rpartition(":")
        if not line.isdigit():
            file, line = problem.origin, "0"
        return rank.get(file, len(files)), int(line), str(problem)

    return tuple(sorted(dict.fromkeys(problems), key=key))


def _error(problems: Sequence[Problem]) -> ConfigError:
    if not problems:
        return ConfigError("invalid IVR configuration")
    if len(problems) == 1:
        (problem,) = problems
        return ConfigError(
            problem.message, source=problem.origin or None, key=problem.where or None
        )
    lines = "\n  ".join(str(p) for p in problems)
    return ConfigError(f"{len(problems)} problems in the IVR configuration:\n  {lines}")


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
