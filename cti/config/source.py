"""One YAML source for every configuration file: plain data plus the line of every key.

    file ──► bytes ──► UTF-8 text ──► PyYAML node tree (marks) ──► walked once:
             key path -> line, keys given twice, YAML 1.1 traps ──► plain data (SafeLoader)

Every configuration file (``ctiserver.yaml``, ``acd.yaml``, ``console.yaml``, IVR flows, users,
customers) is read here and nowhere else, so they all report a mistake the same way:
"file:line: where: what (expected ...)".

YAML 1.1 (PyYAML's dialect) rewrites values that look harmless:

- ``0755`` is the octal number 493, ``1:30`` the base-60 number 90, ``1_000`` is 1000: an
  extension or a DNIS written so silently becomes another number. Always an error here.
- unquoted ``no``/``yes``/``on``/``off``/``y``/``n`` are booleans: a country code ``no`` or a
  label ``off`` becomes ``False``. Recorded as a *trap*: reported only when the schema
  expected something other than a boolean (see ``cti.config.validation``).
- ``~`` and an empty value are null. Also a trap: "key:" left empty by mistake.

A key given twice in one mapping is an error (YAML keeps the last silently). This module raises
nothing: unreadable files and malformed YAML come back as ``Problem`` values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KeyPath",
    "Locate",
    "Problem",
    "YamlDocument",
    "did_you_mean",
    "read_yaml",
    "trap_note",
]

#: a key path in the YAML, e.g. ("queues", "sales", "service_level", "goal"); list items by index
KeyPath = tuple[str, ...]
#: turns a key path into "file:line" (or the nearest place known)
Locate = Callable[[KeyPath], str]

_CANONICAL_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_CANONICAL_BOOLS = frozenset({"true", "false"})
_BOOL_NOTE = "YAML 1.1 reads an unquoted"
# Words of a problem saying a number or a boolean was expected: then a yes/no read as a
# boolean is not the explanation (``retries: yes`` is wrong either way).
_NOT_TEXT = ("number", "integer", "float", "boolean", "true or false")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration file: where it is and what was expected.

    ``where`` is the dotted key path; loaders that name pieces in their own words ("queue
    sales", "flow main, node menu") subclass and override it.
    """

    path: KeyPath
    message: str
    origin: str = ""  # "file:line", or the file alone when the line is unknown
    #: the lower-level error behind it (OSError, yaml.YAMLError), for ``raise ... from``
    cause: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def where(self) -> str:
        return ".".join(self.path)

    def __str__(self) -> str:
        return ": ".join(part for part in (self.origin, self.where, self.message) if part)


@dataclass
class YamlDocument:
    """One file read: its bytes, its plain data, and where each key path was written."""

    path: Path
    content: bytes = b""
    data: Any = None
    lines: dict[KeyPath, int] = field(default_factory=dict)  # key path -> line (1-based)
    #: values YAML 1.1 read differently from how they look: key path -> what happened, e.g.
    #: "YAML 1.1 reads an unquoted no as false"; reported only where that was not expected
    traps: dict[KeyPath, str] = field(default_factory=dict)

    def at(self, path: KeyPath) -> str:
        """ "file:line" of ``path``, or of the nearest enclosing key known."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return f"{self.path}:{line}"
        return str(self.path)

    def top(self) -> Mapping[str, Any]:
        """The data as a mapping (empty when the file was empty or not a mapping)."""
        return self.data if isinstance(self.data, Mapping) else {}


def read_yaml(path: Path, *, expected: str = "") -> tuple[YamlDocument | None, list[Problem]]:
    """The document in ``path`` and the problems found reading it.

    ``None`` when nothing usable could be read (unreadable, not UTF-8, malformed YAML, or, when
    ``expected`` describes the top-level mapping, a top level that is not a mapping). An empty
    file is a document whose data is ``None``. Repeated keys and rewritten numbers are problems
    that come with a usable document."""
    where = str(path)
    try:
        content = path.read_bytes()
        text = content.decode("utf-8")
    except OSError as exc:
        return None, [Problem((), f"cannot read: {exc.strerror or exc}", where, exc)]
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        return None, [Problem((), message, where, exc)]
    document = YamlDocument(path, content)
    problems: list[Problem] = []
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _index(node, (), document, problems, set())
        document.data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        here = f"{path}:{mark.line + 1}" if mark is not None else where
        what = " ".join(part for part in (exc.problem, exc.context) if part)
        return None, [Problem((), f"invalid YAML: {what}", here, exc)]
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date like 2026-02-30
        return None, [Problem((), f"invalid YAML: {exc}", where, exc)]
    finally:
        loader.dispose()
    if expected and document.data is not None and not isinstance(document.data, Mapping):
        got = type(document.data).__name__
        problems.append(Problem((), f"the top level is a {got} (expected {expected})", where))
        return None, problems
    return document, problems


def trap_note(traps: Mapping[KeyPath, str], path: KeyPath, message: str) -> str:
    """What YAML 1.1 did to the value at ``path`` (or inside it) when that explains the
    problem ``message``, else "". A boolean read from ``no``/``yes``/``on``/``off`` explains a
    problem only where a number or a boolean was not what was expected."""
    wanted_number = any(word in message for word in _NOT_TEXT)
    for trapped, note in traps.items():
        if trapped[: len(path)] != path:
            continue
        if note.startswith(_BOOL_NOTE) and wanted_number:
            continue
        return note
    return ""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the choice a typo away from ``word``, or ""."""
    # Edit distance with transpositions rather than difflib's ratio: "bey" is one slip from
    # "bye" (ratio 0.67) while "extra" is nothing like "next" (ratio 0.67 too).
    allowed = max(1, len(word) // 3)
    scored = sorted((_typos(word, choice), choice) for choice in choices)
    if scored and scored[0][0] <= allowed:
        return f"; did you mean {scored[0][1]!r}?"
    return ""


def _typos(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def _index(
    node: yaml.Node,
    prefix: KeyPath,
    document: YamlDocument,
    problems: list[Problem],
    above: set[int],
) -> None:
    """Record the line of every key and list item under ``node``; report repeated keys and
    numbers YAML rewrites; note the values YAML 1.1 turned into booleans or null."""
    if id(node) in above:  # an alias of an enclosing node: already indexed
        return
    above = above | {id(node)}
    if isinstance(node, yaml.ScalarNode):
        _check_scalar(node, prefix, document, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            document.lines[(*prefix, str(i))] = item.start_mark.line + 1
            _index(item, (*prefix, str(i)), document, problems, above)
    elif isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # "<<: *defaults": the merged keys are indexed where they are written
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            path = (*prefix, key)
            if key in first_line:
                problems.append(
                    Problem(
                        path,
                        f"{key!r} is given twice here (lines {first_line[key]} and {line}); YAML "
                        "would keep only the last (expected each key once)",
                        f"{document.path}:{line}",
                    )
                )
            first_line.setdefault(key, line)
            document.lines[path] = line
            _index(value_node, path, document, problems, above)


def _check_scalar(
    node: yaml.ScalarNode, path: KeyPath, document: YamlDocument, problems: list[Problem]
) -> None:
    if node.style is not None:  # quoted (or a block scalar): YAML takes it as written
        return
    if node.tag == _INT_TAG and not _CANONICAL_INT.fullmatch(node.value):
        # YAML 1.1 reads 0123 as octal, 1:30 as base 60 and 1_000 as 1000.
        value = yaml.safe_load(node.value)
        problems.append(
            Problem(
                path,
                f"YAML reads {node.value} as the number {value} "
                f'(expected "{node.value}" in quotes if it is a number to dial, or {value})',
                f"{document.path}:{node.start_mark.line + 1}",
            )
        )
    elif node.tag == _BOOL_TAG and node.value.lower() not in _CANONICAL_BOOLS:
        value = "true" if yaml.safe_load(node.value) else "false"
        document.traps[path] = (
            f'{_BOOL_NOTE} {node.value} as {value}: write "{node.value}" in quotes'
        )
    elif node.tag == _NULL_TAG and node.value in ("", "~"):
        shown = "~" if node.value else "an empty value"
        document.traps[path] = f"YAML reads {shown} as null: is a value missing?"
