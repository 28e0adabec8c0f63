"""IVR nodes, flows and routes as pydantic specs: the keys, types and values each may have.

``ivr.schema`` validates each piece against these and builds the ``ivr.model`` values; the
JSON Schema of a flow file (``ivr.json_schema``) is assembled from them.

Specs have ``extra="forbid"``; numbers are checked strictly (YAML already gives typed values,
and ``retries: yes`` turning into 1 would hide a mistake), but a number is accepted where text
is expected (``to: 1001``, ``dnis: 8000``, menu key ``1``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    model_validator,
)

from ivr.model import (
    Branch,
    Callback,
    Goto,
    Hangup,
    Input,
    Lookup,
    Menu,
    Node,
    Play,
    Prompt,
    Queue,
    Return,
    Say,
    Subflow,
    Transfer,
    Voicemail,
)

__all__ = [
    "DTMF_KEYS",
    "NODE_KINDS",
    "BranchSpec",
    "CaseSpec",
    "FlowSpec",
    "RouteSpec",
    "regex",
]

DTMF_KEYS = "0123456789*#"
_SOUND_EXTENSIONS = frozenset(
    [
        ".gsm",
        ".wav",
        ".wav49",
        ".ulaw",
        ".alaw",
        ".sln",
        ".sln16",
        ".g722",
        ".g729",
        ".mp3",
        ".ogg",
        ".siren7",
        ".siren14",
        ".ilbc",
    ]
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- field types ----------------------------------------------------------------------------


def _number_as_text(value: object) -> object:
    # ``to: 1001`` and ``{1: sales}`` are numbers in YAML but keys and extensions here.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _name(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not a name (expected text without spaces)")
    return value


def _dtmf_key(value: str) -> str:
    if len(value) != 1 or value not in DTMF_KEYS:
        raise ValueError(f"{value!r} is not a key (expected one of 0-9, * or #)")
    return value


def _dtmf_keys(value: str) -> str:
    for key in value:
        _dtmf_key(key)
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(f"{value!r} is not a variable name (expected letters, digits and _)")
    return value


def regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from exc
    return value


def _lookup_by(value: str) -> str:
    namespace, _, name = value.partition(".")
    if value != "ani" and (namespace != "var" or not _IDENTIFIER.fullmatch(name)):
        raise ValueError(f"{value!r} is not a key to look up by (expected ani or var.NAME)")
    return value


def _voicemail_box(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+(@[A-Za-z0-9_.+-]+)?", value):
        raise ValueError(f"{value!r} is not a mailbox (expected MAILBOX or MAILBOX@CONTEXT)")
    return value


def _queue_name(value: str) -> str:
    # Queue() takes its arguments comma-separated (apps/app_queue.c, queue_exec): a comma or a
    # parenthesis in the name would be read as another argument.
    if not value or re.search(r"[\s,|()]", value):
        raise ValueError(f"{value!r} is not a queue name (expected no spaces, commas, | or ())")
    return value


def _prompt(value: object) -> Prompt:
    if isinstance(value, str):
        if any(c.isspace() for c in value):
            raise ValueError(
                f"{_short(value)} is not a sound name (expected a name like hello-world, "
                'or {tts: "text"} for speech)'
            )
        return Prompt(sound=_sound(value))
    if isinstance(value, Mapping) and len(value) == 1:
        ((key, text),) = value.items()
        if key in ("sound", "tts") and isinstance(text, str) and text.strip():
            return Prompt(sound=_sound(text)) if key == "sound" else Prompt(tts=text)
    raise ValueError(
        f"{_short(value)} is not a prompt "
        '(expected a sound name, {sound: NAME} or {tts: "text to speak"})'
    )


def _sound(name: str) -> str:
    if not name:
        raise ValueError("an empty sound name (expected a name like hello-world)")
    stem, dot, ext = name.rpartition(".")
    if dot and f".{ext.lower()}" in _SOUND_EXTENSIONS:
        raise ValueError(f"sound {name!r} has an extension (expected {stem!r}: Asterisk adds it)")
    return name


def _listed(value: object) -> object:
    # One prompt may be written without the list around it.
    return [value] if isinstance(value, str | Mapping) else value


Text = Annotated[str, BeforeValidator(_number_as_text)]
NameText = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_name)]
NodeRef = NameText
Key = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_dtmf_key)]
Seconds = Annotated[float, Strict(), Field(gt=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Level = Annotated[int, Strict(), Field(ge=0)]
Flag = Annotated[bool, Strict()]
Prompts = Annotated[
    tuple[Annotated[Prompt, PlainValidator(_prompt)], ...], BeforeValidator(_listed)
]


# -- node specs -----------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _NodeSpec(_Spec):
    #: the model class the spec builds; its fields are the spec's fields, minus ``kind``
    node_class: ClassVar[type[Node]]
    kind: str

    def build(self, node_id: str, origin: str) -> Node:
        values = {name: getattr(self, name) for name in type(self).model_fields if name != "kind"}
        return self.node_class(id=node_id, origin=origin, **values)


class PlaySpec(_NodeSpec):
    node_class = Play
    prompts: Annotated[Prompts, Field(min_length=1)]
    next: NodeRef
    interrupt: Annotated[Text, AfterValidator(_dtmf_keys)] = ""


class MenuSpec(_NodeSpec):
    node_class = Menu
    prompts: Annotated[Prompts, Field(min_length=1)]
    options: Annotated[dict[Key, NodeRef], Field(min_length=1)]
    timeout: Seconds = 5.0
    no_input: Prompts = ()
    invalid: Prompts = ()
    retries: Count = 3
    on_exceeded: NodeRef
    repeat: Key | None = None

    @model_validator(mode="after")
    def _repeat_is_not_an_option(self) -> MenuSpec:
        if self.repeat is not None and self.repeat in self.options:
            raise ValueError(
                f"repeat key {self.repeat!r} is also an option (expected a key that no option uses)"
            )
        return self


class InputSpec(_NodeSpec):
    node_class = Input
    prompts: Annotated[Prompts, Field(min_length=1)]
    variable: Annotated[str, AfterValidator(_identifier)]
    next: NodeRef
    min_length: Count = 1
    max_length: Count = 20
    # "" means no terminator: the input ends at max_length keys or after the timeout.
    terminator: Annotated[Text, AfterValidator(lambda v: _dtmf_key(v) if v else v)] = "#"
    timeout: Seconds = 5.0
    pattern: Annotated[str, AfterValidator(regex)] | None = None
    retries: Count = 3
    no_input: Prompts = ()
    invalid: Prompts = ()
    on_exceeded: NodeRef
    sensitive: Flag = False

    @model_validator(mode="after")
    def _lengths(self) -> InputSpec:
        if self.min_length > self.max_length:
            raise ValueError(
                f"min_length {self.min_length} is above max_length {self.max_length} "
                "(expected min_length <= max_length)"
            )
        return self


class LookupSpec(_NodeSpec):
    node_class = Lookup
    by: Annotated[str, AfterValidator(_lookup_by)]
    field: Annotated[str, AfterValidator(_identifier)] = "phone"
    next: NodeRef
    not_found: NodeRef
    on_error: NodeRef | None = None
    timeout: Seconds = 3.0


class CaseSpec(_Spec):
    when: Any
    next: NodeRef


class BranchSpec(_NodeSpec):
    node_class = Branch
    cases: Annotated[tuple[CaseSpec, ...], Field(min_length=1)]
    otherwise: NodeRef


class SaySpec(_NodeSpec):
    node_class = Say
    value: Annotated[Text, Field(min_length=1)]
    say_as: Literal["number", "digits", "date", "amount", "duration"] = Field(alias="as")
    next: NodeRef
    prompts_before: Prompts = ()
    prompts_after: Prompts = ()


class QueueSpec(_NodeSpec):
    node_class = Queue
    queue: Annotated[str, AfterValidator(_queue_name)]
    skills: dict[Annotated[str, AfterValidator(_name)], Level] = {}
    priority: Level = 0
    data: dict[str, Text] = {}
    on_failure: NodeRef | None = None


class TransferSpec(_NodeSpec):
    node_class = Transfer
    to: NameText
    timeout: Seconds = 30.0
    on_failure: NodeRef | None = None


class VoicemailSpec(_NodeSpec):
    node_class = Voicemail
    mailbox: Annotated[Text, AfterValidator(_voicemail_box)]
    on_failure: NodeRef | None = None


class CallbackSpec(_NodeSpec):
    node_class = Callback
    number: NameText = "${call.ani}"
    queue: Annotated[str, AfterValidator(_queue_name)] | None = None
    prompts: Prompts = ()
    next: NodeRef


class HangupSpec(_NodeSpec):
    node_class = Hangup
    prompts: Prompts = ()


class GotoSpec(_NodeSpec):
    node_class = Goto
    next: NodeRef


class SubflowSpec(_NodeSpec):
    node_class = Subflow
    flow: NameText
    next: NodeRef


class ReturnSpec(_NodeSpec):
    node_class = Return


NODE_KINDS: Mapping[str, type[_NodeSpec]] = {
    "play": PlaySpec,
    "menu": MenuSpec,
    "input": InputSpec,
    "lookup": LookupSpec,
    "branch": BranchSpec,
    "say": SaySpec,
    "queue": QueueSpec,
    "transfer": TransferSpec,
    "voicemail": VoicemailSpec,
    "callback": CallbackSpec,
    "hangup": HangupSpec,
    "goto": GotoSpec,
    "subflow": SubflowSpec,
    "return": ReturnSpec,
}


class FlowSpec(_Spec):
    start: NodeRef
    on_error: NodeRef | None = None
    nodes: Annotated[dict[NameText, Any], Field(min_length=1)]


class RouteSpec(_Spec):
    flow: NameText
    # exact number, or a regular expression when it starts with "^"
    dnis: Annotated[Text, Field(min_length=1)] | None = None
    ani: Annotated[Text, Field(min_length=1), AfterValidator(regex)] | None = None

    @model_validator(mode="after")
    def _dnis_pattern(self) -> RouteSpec:
        if self.dnis is not None and self.dnis.startswith("^"):
            try:
                re.compile(self.dnis)
            except re.error as exc:
                raise ValueError(
                    f"dnis {self.dnis!r} is not a valid regular expression ({exc})"
                ) from exc
        return self


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
