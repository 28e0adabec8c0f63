"""The flow engine: walks one call through an IVR flow, node by node, and records its path.

Theory of operation. ``FlowEngine.run`` answers the call and then loops: take the current
node, run its handler, record a ``Step``, follow the exit the handler chose. An exit is the
next node of the same flow, the end of the flow with an ``Outcome``, a subflow to enter, or a
``return`` to the node after the subflow that called it. Every effect goes through the ports
(``ivr.ports``): the engine reads time only from ``clock``, touches the call only through
``CallControl``, and keeps no state between calls, so one engine serves every call and a new
configuration is a new engine (calls already running keep the one they started with).

Failures, in order of precedence:

- ``AgiHangup`` from any port: the caller is gone. The step is recorded, the flow ends with
  ``caller_hangup`` and no further command is sent.
- Any other exception in a node (a missing prompt is ``AgiError``, a lookup that times out, a
  resolver or CRM failure): the node's own error exit (lookup ``on_error``; queue, transfer and
  voicemail ``on_failure``), else the flow's ``on_error`` (a subflow without one hands the error
  to the flow that called it), else the flow ends with ``error`` and the FastAGI adapter lets
  the dialplan take its fallback. A node reached through an error exit that fails too ends the
  flow with ``error`` (a broken apology must not loop), and so does the ``MAX_ERRORS``-th error
  of a call (an apology that leads back to a broken node would otherwise go round until the
  step limit).
- More than ``max_steps`` nodes: ``error`` ("step limit"); it catches loops the loader missed.

Decisions worth knowing (see also the handlers):

- ``return`` in a top-level flow hangs up and ends with ``hangup``.
- A transfer that does not connect and a voicemail that fails take ``on_failure``, else the
  error path (the caller is still on the line and must reach someone); a queue that refuses
  the call or times out takes ``on_failure``, else the flow ends ``queued`` with that status.
- After a ``callback`` node, a flow that ends by hanging up (or the caller hanging up) ends
  with ``callback``: the request is recorded, which is what the call achieved.
- Sensitive inputs: keys are recorded as ``MASK`` per key, the variable as ``MASK`` per digit.
  The real value lives only in the live ``Scope`` (templates, lookups, the callback number and
  a transfer target need it). Every text that leaves the engine (step results, details, screen
  pop data, the customer record in the path) has any secret value masked as well, erring on
  the side of masking.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from cti.errors import AgiHangup, ConfigError, CtiError
from ivr.conditions import compile_pattern, evaluate
from ivr.model import (
    Branch,
    Callback,
    Flow,
    Goto,
    Hangup,
    Input,
    IvrConfig,
    Lookup,
    Menu,
    Node,
    Play,
    Prompts,
    Queue,
    Return,
    Route,
    Say,
    Subflow,
    Transfer,
    Voicemail,
)
from ivr.path import MASK, CallerPath, IvrFinished, IvrStarted, IvrStepped, Outcome, Step
from ivr.ports import (
    CallbackRequest,
    CallbackStore,
    CallControl,
    CallInfo,
    CustomerDirectory,
    PromptResolver,
    QueueGateway,
    QueueRequest,
)
from ivr.templates import Scope, render, resolve, text_of

__all__ = ["DTMF_KEYS", "MAX_ERRORS", "TRANSFER_CONTEXT", "FlowEngine", "dial_target"]

_log = logging.getLogger(__name__)

DTMF_KEYS = "0123456789*#"
#: errors in one call after which it ends with outcome "error" whatever exits remain
MAX_ERRORS = 3
#: the dialplan context plain transfer targets are dialed in (config/asterisk/extensions.conf:
#: agent extensions and "9" + number for outside lines, the rules an agent's phone has)
TRANSFER_CONTEXT = "from-agents"

_PLAIN_TARGET = compile_pattern(r"[0-9A-Za-z+*#_.-]+")


def dial_target(to: str, context: str = TRANSFER_CONTEXT) -> str:
    """The Dial() destination for a transfer to ``to``.

    A plain extension or number goes through a Local channel into ``context``
    (``1001`` -> ``Local/1001@from-agents``), so the dialplan decides how to reach it exactly
    as for an agent who dials it. A target with a "/" is a channel already (``PJSIP/1001``,
    ``Local/x@ctx``) and is used as written. Targets come from templates (customer data), so
    anything that could split Dial's arguments or add destinations is refused.
    """
    to = to.strip()
    if "/" in to:
        if any(c in to for c in ",&\n"):
            raise CtiError(f"transfer target {to!r} is not a single channel")
        return to
    if not _PLAIN_TARGET.fullmatch(to):
        raise CtiError(f"transfer target {to!r} is not an extension or number")
    return f"Local/{to}@{context}"


def _whole_seconds(seconds: float) -> str:
    # Dial() documents its timeout in whole seconds.
    return str(max(1, math.ceil(seconds)))


@dataclass(frozen=True)
class _Exit:
    """Where a node leads: ``to`` a node of the current flow, ``end`` of the flow, ``enter`` a
    subflow, or ``back`` to the flow that called this one."""

    to: str | None = None
    end: Outcome | None = None
    detail: str = ""
    enter: Flow | None = None  # then ``to`` is where the calling flow continues
    back: bool = False


class FlowEngine:
    """Runs IVR flows of one configuration. One engine serves any number of concurrent calls."""

    def __init__(
        self,
        config: IvrConfig,
        *,
        prompts: PromptResolver,
        customers: CustomerDirectory,
        queues: QueueGateway,
        callbacks: CallbackStore,
        clock: Callable[[], float],
        publish: Callable[[object], None] = lambda e: None,
        max_steps: int = 500,
        transfer_context: str = TRANSFER_CONTEXT,
    ) -> None:
        self.config = config
        self.prompts = prompts
        self.customers = customers
        self.queues = queues
        self.callbacks = callbacks
        self.clock = clock
        self.publish = publish
        self.max_steps = max_steps
        self.transfer_context = transfer_context
        self._routes: list[tuple[Route, re.Pattern[str] | None, re.Pattern[str] | None]] = []
        for index, route in enumerate(config.routes):
            try:
                dnis = compile_pattern(route.dnis) if route.dnis and route.dnis[:1] == "^" else None
                ani = compile_pattern(route.ani) if route.ani is not None else None
            except ConfigError as exc:
                raise ConfigError(str(exc), source=route.origin, key=f"routes[{index}]") from exc
            self._routes.append((route, dnis, ani))

    def select_flow(self, call: CallInfo) -> Flow:
        """The flow of the first route matching the call (DNIS exactly, or by regular
        expression when the route's DNIS starts with "^"; ANI by ``re.search``), else the
        default flow. Raises ``ConfigError`` when that flow does not exist."""
        name = self.config.default_flow
        for route, dnis, ani in self._routes:
            if route.dnis is not None:
                if dnis is None and call.dnis != route.dnis:
                    continue
                if dnis is not None and not dnis.search(call.dnis):
                    continue
            if ani is not None and not ani.search(call.ani):
                continue
            name = route.flow
            break
        return self._flow(name)

    def _flow(self, name: str) -> Flow:
        flow = self.config.flows.get(name)
        if flow is None:
            raise ConfigError(f"no flow {name!r}", source=self.config.source, key="flows")
        return flow

    async def run(
        self, control: CallControl, call: CallInfo, flow: str | None = None
    ) -> CallerPath:
        """Answer the call, walk ``flow`` (default: ``select_flow``) and return the path.

        Never raises for what happens on the call: every ending is an ``Outcome`` in the path
        (an unknown flow too: ``error`` with nothing sent to Asterisk). Cancellation (server
        shutdown) publishes the path so far with ``error`` and propagates.
        """
        return await _Walk(self, control, call).run(flow)


class _Walk:
    """The state of one call in the engine; handlers are its ``_node_*`` methods."""

    def __init__(self, engine: FlowEngine, control: CallControl, call: CallInfo) -> None:
        self.engine = engine
        self.config = engine.config
        self.control = control
        self.call = call
        self.scope = Scope(call=call, queue_figures=engine.queues.figures)
        self.started_at = engine.clock()
        self.top = ""
        self.flow: Flow | None = None
        self.stack: list[tuple[Flow, str]] = []  # (calling flow, node to continue at)
        self.steps: list[Step] = []
        self.visited: list[str] = []
        self.sensitive: set[str] = set()
        self.secrets: list[str] = []  # sensitive values, longest first (masked in any text)
        self.callback = False
        self.handed_over = False
        self.errors = 0
        # per step, reset before each node
        self.keys: list[str] = []
        self.results: list[str] = []
        self.missing: list[str] = []

    # -- the loop ------------------------------------------------------------------------

    async def run(self, name: str | None) -> CallerPath:
        try:
            flow = self.engine.select_flow(self.call) if name is None else self.engine._flow(name)
        except ConfigError as exc:
            self.top = name or self.config.default_flow
            self._publish_started()
            return self._finish("error", str(exc))
        self.top = flow.name
        try:
            await self.control.answer()
        except AgiHangup:
            self._publish_started()
            return self._finish("caller_hangup", "caller hung up before the answer")
        except Exception as exc:  # no answer, no IVR: the adapter sends the call to the fallback
            self._publish_started()
            return self._finish("error", f"answer failed: {exc}")
        self._publish_started()
        try:
            outcome, detail = await self._walk(flow)
        except asyncio.CancelledError:
            self._finish("error", "cancelled")
            raise
        return self._finish(outcome, detail)

    def _publish_started(self) -> None:
        self.engine.publish(IvrStarted(self.call, self.top, self.config.version, self.started_at))

    async def _walk(self, flow: Flow) -> tuple[Outcome, str]:
        self.flow = flow
        node_id = flow.start
        recovering = False  # the current node was reached through an error exit
        for _ in range(self.engine.max_steps):
            node = flow.nodes.get(node_id)
            if node is None:
                return "error", f"flow {flow.name!r} has no node {node_id!r}"
            started = self.engine.clock()
            self.keys, self.results, self.missing = [], [], []
            self.visited.append(node.id)
            try:
                exit_ = await self._node(node)
            except AgiHangup:
                self._record(node, started, "caller_hangup")
                return "caller_hangup", f"caller hung up in {flow.name}/{node.id}"
            except Exception as exc:  # any failure must lead somewhere, never to a dead line
                text = self._redact(_describe(exc))
                self._record(node, started, f"error: {text}")
                self.errors += 1
                _log.warning(
                    "IVR %s/%s failed (%s): %s", flow.name, node.id, self.call.channel, text
                )
                if recovering or self.errors >= MAX_ERRORS:
                    return "error", text
                target = self._error_exit(node)
                if target is None:
                    return "error", text
                flow, node_id = self._current(), target
                recovering = True
                continue
            self._record(node, started, "")
            recovering = False
            if exit_.end is not None:
                return exit_.end, exit_.detail
            if exit_.enter is not None and exit_.to is not None:
                self.stack.append((flow, exit_.to))
                flow = self.flow = exit_.enter
                node_id = flow.start
            elif exit_.back:
                flow, node_id = self.stack.pop()
                self.flow = flow
            elif exit_.to is not None:
                node_id = exit_.to
        return "error", f"step limit ({self.engine.max_steps} steps)"

    def _current(self) -> Flow:
        assert self.flow is not None
        return self.flow

    def _error_exit(self, node: Node) -> str | None:
        """Where an error in ``node`` goes; may unwind subflows to find a flow's on_error."""
        own: str | None = None
        if isinstance(node, Lookup):
            own = node.on_error
        elif isinstance(node, Queue | Transfer | Voicemail):
            own = node.on_failure
        if own is not None:
            return own
        flow = self._current()
        while flow.on_error is None:
            if not self.stack:
                return None
            flow, _ = self.stack.pop()
        self.flow = flow
        return flow.on_error

    async def _node(self, node: Node) -> _Exit:
        match node:
            case Play():
                key = await self._play(node.prompts, node.interrupt)
                if key is not None:
                    self._press(key)
                    self.results.append("interrupted")
                return _Exit(to=node.next)
            case Menu():
                return await self._node_menu(node)
            case Input():
                return await self._node_input(node)
            case Lookup():
                return await self._node_lookup(node)
            case Branch():
                now = self.engine.clock()
                for number, case in enumerate(node.cases, 1):
                    if evaluate(case.when, self.scope, self.config.calendars, now):
                        self.results.append(f"case {number}")
                        return _Exit(to=case.next)
                self.results.append("otherwise")
                return _Exit(to=node.otherwise)
            case Say():
                return await self._node_say(node)
            case Queue():
                return await self._node_queue(node)
            case Transfer():
                return await self._node_transfer(node)
            case Voicemail():
                return await self._node_voicemail(node)
            case Callback():
                return await self._node_callback(node)
            case Hangup():
                await self._play(node.prompts)
                await self.control.hangup()
                return _Exit(end="hangup")
            case Goto():
                return _Exit(to=node.next)
            case Subflow():
                target = self.engine._flow(node.flow)
                self.results.append(f"enter {node.flow}")
                return _Exit(enter=target, to=node.next)
            case Return():
                if self.stack:
                    return _Exit(back=True)
                # A flow run on its own that ends in "return" has nowhere to go back to.
                await self.control.hangup()
                return _Exit(end="hangup", detail=f"return from the top-level flow {self.top!r}")
        raise ConfigError(f"unknown node kind {type(node).__name__}", source=node.origin)

    # -- node handlers -------------------------------------------------------------------

    async def _node_menu(self, node: Menu) -> _Exit:
        valid = "".join(node.options) + (node.repeat or "")
        failures = 0
        key = await self._play(node.prompts, valid)
        while True:
            if key is None:
                key = await self.control.wait_digit(node.timeout)
            if key is not None:
                self._press(key)
                if key in node.options:
                    self.results.append(f"option {key}")
                    return _Exit(to=node.options[key])
                if key == node.repeat:  # not a failed attempt: the caller asked to hear it
                    self.results.append("repeat")
                    key = await self._play(node.prompts, valid)
                    continue
            failure = "no_input" if key is None else "invalid"
            self.results.append(failure)
            failures += 1
            if failures >= node.retries:
                self.results.append("exceeded")
                return _Exit(to=node.on_exceeded)
            # A key pressed during "please try again" is the next attempt: skip the replay.
            key = await self._play(node.no_input if key is None else node.invalid, valid)
            if key is None:
                key = await self._play(node.prompts, valid)

    async def _node_input(self, node: Input) -> _Exit:
        failures = 0
        key = await self._play(node.prompts, DTMF_KEYS)  # the interrupting key is digit one
        while True:
            digits = await self._collect(node, key)
            failure = _input_problem(node, digits)
            if failure is None:
                self._set_variable(node.variable, digits, node.sensitive)
                self.results.append("accepted")
                return _Exit(to=node.next)
            self.results.append(failure)
            failures += 1
            if failures >= node.retries:
                self.results.append("exceeded")
                return _Exit(to=node.on_exceeded)
            key = await self._play(node.no_input if not digits else node.invalid, DTMF_KEYS)
            if key is None:
                key = await self._play(node.prompts, DTMF_KEYS)

    async def _collect(self, node: Input, key: str | None) -> str:
        """Digits up to the terminator (not included), ``max_length`` or a silent ``timeout``."""
        digits = ""
        while True:
            if key is None:
                key = await self.control.wait_digit(node.timeout)
                if key is None:
                    return digits
            self._press(key, node.sensitive)
            if key == node.terminator:
                return digits
            digits += key
            if len(digits) >= node.max_length:
                return digits
            key = None

    async def _node_lookup(self, node: Lookup) -> _Exit:
        value = self.call.ani if node.by == "ani" else text_of(resolve(node.by, self.scope))
        if not value:
            self.results.append(f"not_found (no {node.by})")
            return _Exit(to=node.not_found)
        try:
            async with asyncio.timeout(node.timeout):
                record = await self.engine.customers.find(node.field, value)
        except TimeoutError as exc:
            raise CtiError(f"customer lookup timed out after {node.timeout:g} s") from exc
        if record is None:
            self.results.append("not_found")
            return _Exit(to=node.not_found)
        self.scope.customer = record
        self.results.append("found")
        return _Exit(to=node.next)

    async def _node_say(self, node: Say) -> _Exit:
        value = render(node.value, self.scope, self.missing).strip()
        if not value:
            # Saying nothing after "your balance is" is a failure the caller hears.
            raise CtiError(f"nothing to say: {node.value!r} is empty")
        await self._play(node.prompts_before)
        await self.control.say(value, node.say_as)
        await self._play(node.prompts_after)
        return _Exit(to=node.next)

    async def _node_queue(self, node: Queue) -> _Exit:
        data = self._screen_pop()
        # The node's own data overrides the standard keys: the admin wrote it on purpose.
        data.update(
            (key, self._redact(render(value, self.scope, self.missing)))
            for key, value in node.data.items()
        )
        request = QueueRequest(
            call=self.call,
            queue=node.queue,
            skills=dict(node.skills),
            priority=node.priority,
            data=data,
        )
        outcome = await self.engine.queues.enqueue(request, self.control)
        self.results.append(outcome.status)
        detail = f"{node.queue}: {outcome.status}"
        if outcome.detail:
            detail += f" ({outcome.detail})"
        if outcome.status == "queued":
            self.handed_over = True
        if outcome.status in ("answered", "abandoned", "queued") or node.on_failure is None:
            return _Exit(end="queued", detail=detail)
        return _Exit(to=node.on_failure)

    async def _node_transfer(self, node: Transfer) -> _Exit:
        to = render(node.to, self.scope, self.missing)
        target = dial_target(to, self.engine.transfer_context)
        await self.control.exec("Dial", target, _whole_seconds(node.timeout))
        # Dial's verdict is DIALSTATUS (ANSWER, BUSY, NOANSWER, CHANUNAVAIL, CONGESTION,
        # CANCEL ...), not the EXEC result; reading a variable still works after a hang-up.
        status = await self.control.get_variable("DIALSTATUS") or "UNKNOWN"
        self.results.append(status)
        if status == "ANSWER":
            return _Exit(end="transferred", detail=f"{to} ({target})")
        if status == "CANCEL":  # the caller hung up while it rang
            raise AgiHangup("caller hung up during the transfer")
        if node.on_failure is not None:
            return _Exit(to=node.on_failure)
        raise CtiError(f"transfer to {to} failed: {status}")

    async def _node_voicemail(self, node: Voicemail) -> _Exit:
        # "u": the "unavailable" greeting, the one meant for callers nobody could take.
        await self.control.exec("VoiceMail", node.mailbox, "u")
        status = await self.control.get_variable("VMSTATUS")  # SUCCESS | USEREXIT | FAILED
        if status:
            self.results.append(status)
        if status == "FAILED":
            if node.on_failure is not None:
                return _Exit(to=node.on_failure)
            raise CtiError(f"voicemail {node.mailbox} failed")
        return _Exit(end="voicemail", detail=node.mailbox)

    async def _node_callback(self, node: Callback) -> _Exit:
        number = render(node.number, self.scope, self.missing).strip()
        if not number:
            raise CtiError(f"no number to call back ({node.number!r} is empty)")
        request = CallbackRequest(
            number=number,
            call=self.call,
            queue=node.queue,
            requested_at=self.engine.clock(),
            data=self._screen_pop(),
        )
        # Stored before the confirmation plays: a caller who hangs up during it still gets
        # the call back.
        await self.engine.callbacks.add(request)
        self.callback = True
        self.results.append("requested")
        await self._play(node.prompts)
        return _Exit(to=node.next)

    # -- helpers -------------------------------------------------------------------------

    async def _play(self, prompts: Prompts, interrupt: str = "") -> str | None:
        if not prompts:
            return None
        names: list[str] = []
        for prompt in prompts:
            text = None if prompt.tts is None else render(prompt.tts, self.scope, self.missing)
            names.append(await self.engine.prompts.resolve(prompt, text))
        return await self.control.play(names, interrupt)

    def _press(self, key: str, sensitive: bool = False) -> None:
        self.keys.append(MASK if sensitive else key)

    def _set_variable(self, name: str, value: str, sensitive: bool) -> None:
        self.scope.variables[name] = value
        if sensitive:
            self.sensitive.add(name)
        values = {self.scope.variables.get(n, "") for n in self.sensitive}
        self.secrets = sorted((v for v in values if v), key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK * len(secret))
        return text

    def _scrub(self, value: object) -> object:
        """``value`` (a customer record or part of one) with secret values masked."""
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, Mapping):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(item) for item in value]
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            text = str(value)
            return value if self._redact(text) == text else self._redact(text)
        return value

    def _variables(self) -> dict[str, str]:
        return {
            name: MASK * len(value) if name in self.sensitive else self._redact(value)
            for name, value in self.scope.variables.items()
        }

    def _customer(self) -> Mapping[str, object] | None:
        customer = self.scope.customer
        if customer is None or not self.secrets:
            # A copy: the record may belong to the directory, which can change it later.
            return None if customer is None else dict(customer)
        scrubbed = self._scrub(customer)
        assert isinstance(scrubbed, dict)
        return scrubbed

    def _screen_pop(self) -> dict[str, object]:
        """What the agent's screen shows: variables (masked), customer, the path so far."""
        keys = "".join(step.keys for step in self.steps) + self._redact("".join(self.keys))
        return {
            "variables": self._variables(),
            "customer": self._customer(),
            "keys": keys,
            "nodes": list(self.visited),
        }

    def _record(self, node: Node, started: float, ending: str) -> None:
        parts = [*self.results, *(f"missing ${{{ref}}}" for ref in dict.fromkeys(self.missing))]
        if ending:
            parts.append(ending)
        step = Step(
            flow=self._current().name,
            node=node.id,
            kind=type(node).__name__.lower(),
            started_at=started,
            duration=self.engine.clock() - started,
            keys=self._redact("".join(self.keys)),
            result=self._redact(", ".join(parts)),
        )
        self.steps.append(step)
        self.engine.publish(IvrStepped(self.call, step))

    def _finish(self, outcome: Outcome, detail: str) -> CallerPath:
        if self.callback and outcome in ("hangup", "caller_hangup"):
            outcome = "callback"
        path = CallerPath(
            call=self.call,
            flow=self.top,
            version=self.config.version,
            started_at=self.started_at,
            ended_at=self.engine.clock(),
            outcome=outcome,
            steps=tuple(self.steps),
            variables=self._variables(),
            customer=self._customer(),
            detail=self._redact(detail),
            handed_over=self.handed_over,
        )
        self.engine.publish(IvrFinished(path))
        return path


def _input_problem(node: Input, digits: str) -> str | None:
    if not digits:
        return "no_input"
    if not node.min_length <= len(digits) <= node.max_length:
        return "invalid"
    if node.pattern is not None and not compile_pattern(node.pattern).fullmatch(digits):
        return "invalid"
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
