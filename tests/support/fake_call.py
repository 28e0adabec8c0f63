"""Fakes of the IVR ports: a scripted caller (``FakeCall``) and in-memory services.

``FakeCall`` plays one caller. Its script is the keys the caller presses, in order:

- a key is taken by the next operation that can take it: a prompt whose ``interrupt`` keys
  include it (the prompt is cut short), else ``wait_digit``. A key a prompt cannot be cut by
  waits, as on a real phone line, for the ``wait_digit`` after it;
- ``Late(key)``: the key is pressed only after the prompt has played out, so ``wait_digit``
  takes it even if the prompt could have been cut short by it;
- ``None`` is silence: the next ``wait_digit`` times out (prompts play out in full);
- ``HANGUP``: the caller hangs up there; the operation that meets it, and every one after,
  raises ``AgiHangup``.

When the script runs out, the caller stays silent. Every operation is recorded in ``ops``;
those attempted after the hang-up are also in ``after_hangup`` (the engine must send none).
A ``FakeClock`` given to the call moves on as a real call would (1 s per prompt, the whole
timeout of a silent wait), so step timings can be checked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from cti.errors import AgiError, AgiHangup, CtiError
from ivr.model import Prompt, SayAs
from ivr.ports import (
    CallbackRequest,
    CallControl,
    QueueFigures,
    QueueOutcome,
    QueueRequest,
)

__all__ = [
    "HANGUP",
    "FakeCall",
    "FakeCallbacks",
    "FakeClock",
    "FakeCustomers",
    "FakePrompts",
    "FakeQueues",
    "Key",
    "Late",
    "Op",
]


class _Hangup:
    def __repr__(self) -> str:
        return "HANGUP"


HANGUP: Final = _Hangup()


@dataclass(frozen=True)
class Late:
    """A key pressed after the prompt ended (only ``wait_digit`` takes it)."""

    key: str


Key = str | None | Late | _Hangup


class FakeClock:
    """A clock that moves only when told to (``advance``) or when a ``FakeCall`` works."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Op:
    """One operation the engine asked of the call."""

    name: str  # answer, play, wait_digit, say, exec, get_variable, set_variable, hangup
    args: tuple[object, ...] = ()
    result: object = None


class FakeCall:
    """A scripted caller implementing ``ivr.ports.CallControl``.

    ``variables``: channel variables ``get_variable`` reads (e.g. ``DIALSTATUS``).
    ``missing``: playables whose playback fails with ``AgiError`` (a sound missing on disk).
    ``hangup_after``: the caller hangs up once this many operations have succeeded.
    ``exec_results``: what ``exec`` returns per application (default ``"0"``).
    """

    def __init__(
        self,
        keys: Iterable[Key] = (),
        *,
        variables: Mapping[str, str] | None = None,
        missing: Iterable[str] = (),
        hangup_after: int | None = None,
        exec_results: Mapping[str, str] | None = None,
        clock: FakeClock | None = None,
    ) -> None:
        self.script: deque[Key] = deque(keys)
        self.variables = dict(variables or {})
        self.missing = frozenset(missing)
        self.hangup_after = hangup_after
        self.exec_results = dict(exec_results or {})
        self.clock = clock
        self.ops: list[Op] = []
        self.after_hangup: list[Op] = []
        self.plays: list[tuple[list[str], str]] = []  # (playables, interrupt) per play()
        self.hung_up = False
        self._reported = False  # the engine has been told (AgiHangup, or it hung up itself)
        self._done = 0

    # -- what tests read -----------------------------------------------------------------

    def names(self) -> list[str]:
        return [op.name for op in self.ops]

    def played(self) -> list[str]:
        """Every playable handed to ``play``, in order."""
        return [name for playables, _ in self.plays for name in playables]

    def said(self) -> list[tuple[object, ...]]:
        return [op.args for op in self.ops if op.name == "say"]

    def execs(self) -> list[tuple[object, ...]]:
        return [op.args for op in self.ops if op.name == "exec"]

    # -- the port ------------------------------------------------------------------------

    def _begin(self, name: str, *args: object) -> None:
        if not self.hung_up:
            if self.hangup_after is not None and self._done >= self.hangup_after:
                self.hung_up = True
            elif self.script and isinstance(self.script[0], _Hangup):
                self.script.popleft()
                self.hung_up = True
        if self.hung_up:
            op = Op(name, args, "hangup")
            self.ops.append(op)
            if self._reported:
                self.after_hangup.append(op)
            self._reported = True
            raise AgiHangup(f"{name}: the caller hung up")

    def _end(self, name: str, args: tuple[object, ...], result: object, seconds: float) -> None:
        self.ops.append(Op(name, args, result))
        self._done += 1
        if self.clock is not None:
            self.clock.advance(seconds)

    def _take(self, accept: str | None) -> str | None:
        """The next scripted key if the operation can take it (``accept`` None: any key)."""
        if not self.script:
            return None
        head = self.script[0]
        if head is None:
            if accept is None:  # a wait consumes the silence; a prompt does not
                self.script.popleft()
            return None
        if isinstance(head, _Hangup):
            return None
        if isinstance(head, Late):
            if accept is None:
                self.script.popleft()
                return head.key
            return None
        if accept is None or head in accept:
            self.script.popleft()
            return head
        return None

    async def answer(self) -> None:
        self._begin("answer")
        self._end("answer", (), None, 0.0)

    async def play(self, playables: Sequence[str], interrupt: str = "") -> str | None:
        args = (list(playables), interrupt)
        self._begin("play", *args)
        self.plays.append(args)
        for index, name in enumerate(playables):
            if name in self.missing:
                self._end("play", args, "missing", float(index))
                raise AgiError(f"STREAM FILE {name!r} failed (result=-1): file missing")
            key = self._take(interrupt) if interrupt else None
            if key is not None:
                self._end("play", args, key, index + 0.5)
                return key
        self._end("play", args, None, float(len(playables)))
        return None

    async def wait_digit(self, seconds: float) -> str | None:
        self._begin("wait_digit", seconds)
        key = self._take(None)
        self._end("wait_digit", (seconds,), key, seconds if key is None else 1.0)
        return key

    async def say(self, value: str, say_as: SayAs, interrupt: str = "") -> str | None:
        self._begin("say", value, say_as)
        key = self._take(interrupt) if interrupt else None
        self._end("say", (value, say_as), key, 1.0)
        return key

    async def exec(self, app: str, *args: str) -> str:
        self._begin("exec", app, *args)
        result = self.exec_results.get(app, "0")
        self._end("exec", (app, *args), result, 5.0)
        return result

    async def get_variable(self, name: str) -> str | None:
        self._begin("get_variable", name)
        value = self.variables.get(name)
        self._end("get_variable", (name,), value, 0.0)
        return value

    async def set_variable(self, name: str, value: str) -> None:
        self._begin("set_variable", name, value)
        self.variables[name] = value
        self._end("set_variable", (name, value), None, 0.0)

    async def hangup(self) -> None:
        self._begin("hangup")
        self._end("hangup", (), None, 0.0)
        self.hung_up = True
        self._reported = True


# -- services ---------------------------------------------------------------------------


class FakePrompts:
    """``PromptResolver``: a sound prompt plays under its own name, TTS text as ``tts:<text>``.

    ``failing``: sound names or TTS texts whose resolution raises ``CtiError`` (a TTS engine
    that is down)."""

    def __init__(self, failing: Iterable[str] = ()) -> None:
        self.failing = frozenset(failing)
        self.texts: list[str] = []  # every TTS text resolved, templates filled in

    async def resolve(self, prompt: Prompt, text: str | None) -> str:
        if prompt.sound is not None:
            if prompt.sound in self.failing:
                raise CtiError(f"cannot resolve {prompt.sound!r}")
            return prompt.sound
        assert text is not None
        self.texts.append(text)
        if text in self.failing:
            raise CtiError(f"TTS failed for {text!r}")
        return f"tts:{text}"


class FakeCustomers:
    """``CustomerDirectory`` over a list of records (values compared as text).

    ``hang``: ``find`` never answers (to test lookup timeouts); ``error``: ``find`` raises it.
    """

    def __init__(
        self,
        records: Iterable[Mapping[str, object]] = (),
        *,
        hang: bool = False,
        error: Exception | None = None,
    ) -> None:
        self.records = [dict(r) for r in records]
        self.hang = hang
        self.error = error
        self.lookups: list[tuple[str, str]] = []
        self.asked = asyncio.Event()  # set by the first find()

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        self.lookups.append((field, value))
        self.asked.set()
        if self.error is not None:
            raise self.error
        if self.hang:
            await asyncio.Event().wait()
        for record in self.records:
            if field in record and str(record[field]) == value:
                return record
        return None


@dataclass
class FakeQueues:
    """``QueueGateway`` that records requests and answers with ``outcome`` (or raises
    ``error``); ``figures`` per queue, unknown queues have nobody available."""

    outcome: QueueOutcome = field(default_factory=lambda: QueueOutcome("answered"))
    live: dict[str, QueueFigures] = field(default_factory=dict)
    error: Exception | None = None
    requests: list[QueueRequest] = field(default_factory=list)

    async def enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.outcome

    def figures(self, queue: str) -> QueueFigures:
        return self.live.get(queue, QueueFigures(agents_available=0, estimated_wait=None))


@dataclass
class FakeCallbacks:
    """``CallbackStore`` keeping requests in a list."""

    requests: list[CallbackRequest] = field(default_factory=list)

    async def add(self, request: CallbackRequest) -> None:
        self.requests.append(request)
