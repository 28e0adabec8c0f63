"""IVR flows as data: what the loader builds from YAML and the engine walks.

A *flow* is a graph of *nodes* keyed by id, with a ``start`` node. Nodes name their successors
by id (``next``, menu options, branch cases, ``on_*`` exits). A *subflow* node enters another
flow and continues at its own ``next`` when that flow reaches a ``return`` node. Everything is
frozen: a loaded configuration is a value, so calls in progress keep the version they started
with while a reload swaps in a new one.

Node kinds and their exits (the loader checks every reference):

    play       prompts                               -> next
    menu       prompt, options digit->node, retries  -> options..., on_exceeded
    input      collect digits into a variable        -> next, on_exceeded
    lookup     find the customer                     -> next (found), not_found, on_error
    branch     first case whose condition holds      -> cases..., otherwise
    say        number/digits/date/amount             -> next
    queue      hand the call to the ACD              -> (ends) / on_failure
    transfer   dial an extension or number           -> (ends) / on_failure
    voicemail  leave a message                       -> (ends) / on_failure
    callback   record a callback request             -> next
    hangup     optional goodbye, hang up             -> (ends)
    goto       jump                                  -> next
    subflow    run another flow, come back           -> next
    return     end of a subflow                      -> (back to the caller flow)

Values in text (queue data, transfer numbers, say values) may use ``${ref}`` where ref is
``var.NAME`` (collected input), ``customer.FIELD`` (from lookup), ``call.ani`` / ``call.dnis``
/ ``call.channel`` / ``call.uniqueid``, or ``queue.NAME.agents_available`` /
``queue.NAME.estimated_wait``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "TERMINAL_KINDS",
    "AllOf",
    "AnyOf",
    "Branch",
    "Calendar",
    "Callback",
    "Case",
    "Compare",
    "Condition",
    "Flow",
    "Goto",
    "Hangup",
    "Input",
    "IvrConfig",
    "Lookup",
    "Menu",
    "Node",
    "Not",
    "Open",
    "Play",
    "Prompt",
    "Prompts",
    "Queue",
    "Return",
    "Route",
    "Say",
    "SayAs",
    "Subflow",
    "Transfer",
    "Voicemail",
]


@dataclass(frozen=True)
class Prompt:
    """One thing to play: an Asterisk sound name (``sound``) or text spoken by TTS (``tts``).

    Exactly one of the two is set. ``tts`` text may use ``${ref}`` templates.
    """

    sound: str | None = None
    tts: str | None = None

    def __post_init__(self) -> None:
        if (self.sound is None) == (self.tts is None):
            raise ValueError("a prompt is either a sound or tts text")


Prompts = tuple[Prompt, ...]


# -- conditions (branch) --------------------------------------------------------------------

CompareOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "matches", "exists"]


@dataclass(frozen=True)
class Compare:
    """``ref`` (a dotted reference, see module doc) compared with ``value``."""

    ref: str
    op: CompareOp
    value: object = None


@dataclass(frozen=True)
class Open:
    """True while the named business-hours calendar is open (not a holiday, within hours)."""

    calendar: str


@dataclass(frozen=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = Compare | Open | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Case:
    when: Condition
    next: str


# -- nodes ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Node:
    id: str
    #: where the node was defined ("file:line"), for messages
    origin: str = ""


@dataclass(frozen=True, kw_only=True)
class Play(Node):
    prompts: Prompts
    next: str
    #: keys that cut the prompt short (the key is then ignored)
    interrupt: str = ""


@dataclass(frozen=True, kw_only=True)
class Menu(Node):
    prompts: Prompts
    options: Mapping[str, str]  # key ("0"-"9", "*", "#") -> node id
    timeout: float = 5.0  # seconds to wait for a key after the prompt
    no_input: Prompts = ()
    invalid: Prompts = ()
    retries: int = 3  # attempts in all before on_exceeded
    on_exceeded: str
    repeat: str | None = None  # key that plays the menu again (does not count as a retry)


@dataclass(frozen=True, kw_only=True)
class Input(Node):
    prompts: Prompts
    variable: str
    next: str
    min_length: int = 1
    max_length: int = 20
    terminator: str = "#"
    timeout: float = 5.0  # seconds between keys (and for the first key after the prompt)
    pattern: str | None = None  # regular expression the whole input must match
    retries: int = 3
    no_input: Prompts = ()
    invalid: Prompts = ()
    on_exceeded: str
    sensitive: bool = False  # mask the keys and the value in every log and record


@dataclass(frozen=True, kw_only=True)
class Lookup(Node):
    """Find the customer: by the caller's number (``by: ani``) or by a collected variable
    (``by: var.account`` with ``field: account``)."""

    by: str
    field: str = "phone"
    next: str
    not_found: str
    on_error: str | None = None  # None: the flow's on_error
    timeout: float = 3.0


@dataclass(frozen=True, kw_only=True)
class Branch(Node):
    cases: tuple[Case, ...]
    otherwise: str


SayAs = Literal["number", "digits", "date", "amount", "duration"]


@dataclass(frozen=True, kw_only=True)
class Say(Node):
    value: str  # template, e.g. "${customer.balance}"
    say_as: SayAs
    next: str
    prompts_before: Prompts = ()
    prompts_after: Prompts = ()


@dataclass(frozen=True, kw_only=True)
class Queue(Node):
    queue: str
    skills: Mapping[str, int] = field(default_factory=dict)  # skill -> minimum level
    priority: int = 0
    data: Mapping[str, str] = field(default_factory=dict)  # screen-pop data, templates
    on_failure: str | None = None  # queue refused the call (closed, full, no agents)


@dataclass(frozen=True, kw_only=True)
class Transfer(Node):
    to: str  # template: an extension or a number
    timeout: float = 30.0
    on_failure: str | None = None  # busy, no answer, failed


@dataclass(frozen=True, kw_only=True)
class Voicemail(Node):
    mailbox: str
    on_failure: str | None = None


@dataclass(frozen=True, kw_only=True)
class Callback(Node):
    number: str = "${call.ani}"  # template: where to call back
    queue: str | None = None
    prompts: Prompts = ()  # confirmation
    next: str


@dataclass(frozen=True, kw_only=True)
class Hangup(Node):
    prompts: Prompts = ()


@dataclass(frozen=True, kw_only=True)
class Goto(Node):
    next: str


@dataclass(frozen=True, kw_only=True)
class Subflow(Node):
    flow: str
    next: str


@dataclass(frozen=True, kw_only=True)
class Return(Node):
    pass


#: Kinds after which the flow ends (unless an on_failure exit is taken).
TERMINAL_KINDS = (Queue, Transfer, Voicemail, Hangup)


# -- flows and configuration ----------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    name: str
    start: str
    nodes: Mapping[str, Node]
    #: where a failing node (missing prompt, lookup timeout) goes when it has no exit of its
    #: own; None: a built-in apology and the fallback (never a dead line)
    on_error: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class Route:
    """Which flow a call runs: the first route whose DNIS and ANI match."""

    flow: str
    dnis: str | None = None  # exact number, or a regular expression if it starts with "^"
    ani: str | None = None  # regular expression on the caller's number
    origin: str = ""


@dataclass(frozen=True)
class Calendar:
    name: str
    timezone: str
    #: weekday (0 = Monday) -> opening intervals (start, end), end exclusive
    weekly: Mapping[int, tuple[tuple[dt.time, dt.time], ...]]
    holidays: frozenset[dt.date] = frozenset()


@dataclass(frozen=True)
class IvrConfig:
    flows: Mapping[str, Flow]
    routes: tuple[Route, ...]
    default_flow: str
    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    #: identifies this configuration (hash of its sources); recorded with every call
    version: str = ""
    source: str = ""
