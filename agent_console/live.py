"""The consoles' live state: bus events in, hub frames out, and the websocket route.

Theory of operation
-------------------
``ConsoleLive`` subscribes to the bus (``attach``). Every handler is synchronous and quick (it
runs inside ``publish``, in the AMI reader): it updates the little state the pages need beyond
the ACD's own (the 30-minute service level, alerts, the abandoned worklist, each agent's call
and figures today) and publishes frames to the hub, which serialises each once and queues it
for every page that follows the topic. The one slow step, the screen-pop's CRM lookup, is the
coroutine the ``CallOffered`` handler returns: the bus runs it as a task, and its frame follows
the "call offered" frame as soon as the store answers (the page shows the ringing call at
once, the customer a few milliseconds later).

Topics (the contract in docs/console.md): an agent's page follows ``agent:<id>`` only; a
supervisor's (or admin's) follows ``queues``, ``agents``, ``alerts`` and ``worklist``. Snapshots
are built synchronously from the same state, so a page that (re)connects gets everything
current and then every later change (hub.py explains why nothing is missed).

``GET /api/ws`` authenticates by the session cookie (401 before the upgrade), checks the
Origin (403 before the upgrade), and picks the topics from the user's role: permissions are
the server's, a page cannot ask for more. Logging out closes that session's pages with 4401.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web

from acd.agent_state import AgentStateChanged, AgentStatus
from acd.events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRequeued,
    QueueStatsChanged,
)
from acd.figures import QueueStats
from acd.service import AcdService, AgentRuntime
from agent_console.auth import SESSION_COOKIE, origin_allowed, require
from agent_console.config import ConsoleConfig
from agent_console.hub import Hub, agent_topic
from agent_console.monitor import AbandonedCall, AbandonedList, AgentDay, Alerts, RecentServiceLevel
from agent_console.screenpop import ScreenPops
from agent_console.ws import serve_websocket
from cti.bus import EventBus
from cti.contracts.console import CallControlled, WrapUpRecorded
from ivr.path import IvrFinished

__all__ = [
    "CLOSE_SIGNED_OUT",
    "SUPERVISOR_TOPICS",
    "ConsoleLive",
    "add_live_routes",
    "client_id_for",
]

log = logging.getLogger(__name__)

#: A page's session ended (log-out, account disabled): the page goes to the log-in page.
CLOSE_SIGNED_OUT: Final = 4401
SUPERVISOR_TOPICS: Final = ("queues", "agents", "alerts", "worklist")
Item = dict[str, Any]


def client_id_for(username: str, token: str) -> str:
    """The hub's name for a session's pages: the user, and a digest of the session token (the
    token itself never goes into logs)."""
    return f"{username}/{hashlib.sha256(token.encode()).hexdigest()[:16]}"


def _item(topic: str | None, type_: str, data: object) -> Item:
    return {"topic": topic, "type": type_, "data": data}


class ConsoleLive:
    def __init__(
        self,
        hub: Hub,
        service: AcdService,
        pops: ScreenPops,
        config: Callable[[], ConsoleConfig],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hub = hub
        self.service = service
        self.pops = pops
        self._config = config
        self._clock = clock
        self._zone = ZoneInfo(service.config.timezone)
        self.recent_sl = RecentServiceLevel()
        self.alerts = Alerts()
        self.abandoned = AbandonedList()
        self._numbers: dict[str, tuple[str, str]] = {}  # call_id -> (number, queue), waiting
        self._calls: dict[str, dict[str, Any] | None] = {}  # agent -> their call (or last one)
        self._pops: dict[str, dict[str, Any]] = {}  # agent -> last screen-pop
        self._days: dict[str, AgentDay] = {}
        self.screen_pops = 0
        #: whether a call is in an attended transfer (the call control's consultation)
        self.transferring: Callable[[str], bool] = lambda _call_id: False

    # -- wiring ------------------------------------------------------------------------------

    def attach(self, bus: EventBus) -> None:
        bus.subscribe(AgentStateChanged, self.on_agent_state)
        bus.subscribe(QueueStatsChanged, self.on_queue_stats)
        bus.subscribe(CallQueued, self.on_queued)
        bus.subscribe(CallOffered, self.on_offered)
        bus.subscribe(CallAnswered, self.on_answered)
        bus.subscribe(CallRequeued, self.on_requeued)
        bus.subscribe(CallAbandoned, self.on_abandoned)
        bus.subscribe(CallOverflowed, self.on_overflowed)
        bus.subscribe(CallEnded, self.on_ended)
        bus.subscribe(WrapUpRecorded, self.on_wrap_up)
        bus.subscribe(CallControlled, self.on_call_controlled)
        bus.subscribe(IvrFinished, lambda event: self.pops.remember_ivr(event.path))

    # -- views -------------------------------------------------------------------------------

    def agent_view(self, agent: AgentRuntime) -> dict[str, Any]:
        view = agent.view()
        call = self.service.calls.get(agent.call_id) if agent.call_id else None
        view["queue"] = call.queue if call is not None else None
        return view

    def _day(self, agent_id: str) -> AgentDay:
        day = self._days.setdefault(agent_id, AgentDay())
        now = self._clock()
        day.roll(datetime.fromtimestamp(now, self._zone).date().isoformat(), now)
        return day

    def _call_view(self, agent: AgentRuntime, state: str | None = None) -> dict[str, Any] | None:
        call = self.service.calls.get(agent.call_id) if agent.call_id else None
        if call is None:
            last = self._calls.get(agent.agent_id)
            return last if last is not None and last.get("state") == "ended" else None
        held = agent.status is AgentStatus.ON_HOLD or call.hold_since is not None
        if state is None:
            state = {"offered": "offered", "connected": "connected"}.get(call.state, "offered")
        if state == "connected" and self.transferring(call.call_id):
            state = "transferring"
        elif held and state == "connected":
            state = "held"
        return {
            "call_id": call.call_id,
            "queue": call.queue,
            "number": call.number,
            "direction": "callback" if call.kind == "callback" else "inbound",
            "state": state,
            "offered_at": call.offered_at or None,
            "answered_at": call.answered_at or None,
            "held": held,
        }

    def agent_snapshot(self, agent_id: str) -> list[Item]:
        topic = agent_topic(agent_id)
        items = [_item(None, "clock", self._clock())]
        agent = self.service.agents.get(agent_id)
        if agent is None:
            return items
        items.append(_item(topic, "agent", self.agent_view(agent)))
        items.append(_item(topic, "call", self._call_view(agent)))
        pop = self._pops.get(agent_id)
        if pop is not None:
            items.append(_item(topic, "screen_pop", pop))
        items.append(_item(topic, "figures", self._day(agent_id).view(self._clock())))
        return items

    def supervisor_snapshot(self) -> list[Item]:
        now = self._clock()
        items = [_item(None, "clock", now)]
        for stats in self.service.figures.all_stats(now):
            items.append(_item("queues", "queue", self._queue_data(stats)))
        for agent in self.service.agents.values():
            items.append(_item("agents", "agent", self.agent_view(agent)))
        for alert in self.alerts.active.values():
            items.append(_item("alerts", "alert", alert.view()))
        items.append(_item("worklist", "abandoned", self.abandoned.view()))
        return items

    def _queue_data(self, stats: QueueStats) -> dict[str, Any]:
        data = dataclasses.asdict(stats)
        levels, counted = self.recent_sl.levels(stats.queue, stats.sl_threshold, stats.at)
        data["service_level_30m"] = levels.get(stats.sl_variant)
        data["service_levels_30m"] = levels
        data["calls_30m"] = counted
        return data

    # -- bus handlers (synchronous, quick) ----------------------------------------------------

    def _agent_changed(self, agent: AgentRuntime) -> None:
        view = self.agent_view(agent)
        self.hub.publish("agents", "agent", view)
        topic = agent_topic(agent.agent_id)
        self.hub.publish(topic, "agent", view)

    def on_agent_state(self, event: AgentStateChanged) -> None:
        agent = self.service.agents.get(event.agent_id)
        self._day(event.agent_id).state(event.old.value, event.new.value, event.at)
        if agent is None:
            return
        self._agent_changed(agent)
        topic = agent_topic(agent.agent_id)
        self.hub.publish(topic, "call", self._call_view(agent))
        if event.new in (AgentStatus.NOT_READY, AgentStatus.WRAP_UP) or event.old in (
            AgentStatus.NOT_READY,
            AgentStatus.WRAP_UP,
        ):
            self.hub.publish(topic, "figures", self._day(agent.agent_id).view(event.at))

    def on_queue_stats(self, event: QueueStatsChanged) -> None:
        stats = event.stats
        if not isinstance(stats, QueueStats):
            return
        data = self._queue_data(stats)
        self.hub.publish("queues", "queue", data)
        for alert in self.alerts.evaluate(stats.queue, event.at, self._conditions(data)):
            self.hub.publish("alerts", "alert", alert.view())

    def _conditions(self, data: Mapping[str, Any]) -> dict[Any, str | None]:
        settings = self._config().alerts
        queue = data["queue"]
        wait = float(data.get("longest_wait") or 0.0)
        long_wait = None
        if data.get("waiting") and wait >= settings.long_wait:
            # The text changes every 30 s, not every tick (the page ticks the time itself).
            step = int(wait // 30) * 30
            long_wait = f"{queue}: a caller has waited over {step // 60} min {step % 60:02d} s"
        level = data.get("service_level_30m")
        goal = float(data.get("sl_goal") or 0.0)
        low = (
            settings.service_level
            and level is not None
            and data.get("calls_30m", 0) >= settings.min_calls
            and level < goal
        )
        service_level = (
            f"{queue}: service level {round(level * 100)} % in the last 30 min "
            f"(goal {round(goal * 100)} % within {int(data.get('sl_threshold') or 0)} s)"
            if low and level is not None
            else None
        )
        return {"long_wait": long_wait, "service_level": service_level}

    def on_queued(self, event: CallQueued) -> None:
        call = self.service.calls.get(event.call_id)
        if call is not None:
            # The ACD's own id of this queue visit (the figures' too).
            self.recent_sl.entered(event.queue, call.visit, event.entered_at)
            self._numbers[event.call_id] = (call.number, event.queue)

    def _visit_key(self, call_id: str) -> str | None:
        call = self.service.calls.get(call_id)
        return call.visit if call is not None else None

    def on_offered(self, event: CallOffered) -> Coroutine[Any, Any, None] | None:
        agent = self.service.agents.get(event.agent_id)
        if agent is None:
            return None
        topic = agent_topic(agent.agent_id)
        call = self._call_view(agent, "offered")
        self._calls[agent.agent_id] = call
        self.hub.publish(topic, "call", call)
        self.hub.publish("agents", "agent", self.agent_view(agent))
        number = call["number"] if call is not None else ""
        return self._pop(agent.agent_id, event.call_id, number, event.queue)

    async def _pop(self, agent_id: str, call_id: str, number: str, queue: str) -> None:
        pop = await self.pops.compose(call_id, number, queue)
        agent = self.service.agents.get(agent_id)
        if agent is None or agent.call_id != call_id:
            # The offer is over (no answer, caller gone) before the store answered: the
            # agent's screen must not pop a call that is not theirs any more.
            return
        self._pops[agent_id] = pop
        self.screen_pops += 1
        self.hub.publish(agent_topic(agent_id), "screen_pop", pop)

    def on_answered(self, event: CallAnswered) -> None:
        key = self._visit_key(event.call_id)
        if key is not None:
            self.recent_sl.finished(event.queue, key, "answered", event.wait)
        number = self._numbers.pop(event.call_id, ("", ""))[0]
        if number and self.abandoned.reached(number):
            self.hub.publish("worklist", "abandoned", self.abandoned.view())
        day = self._day(event.agent_id)
        day.answered += 1
        agent = self.service.agents.get(event.agent_id)
        if agent is not None:
            call = self._call_view(agent, "connected")
            self._calls[agent.agent_id] = call
            topic = agent_topic(agent.agent_id)
            self.hub.publish(topic, "call", call)
            self.hub.publish(topic, "figures", day.view(event.at))

    def on_requeued(self, event: CallRequeued) -> None:
        self._calls[event.agent_id] = None
        self._pops.pop(event.agent_id, None)
        self.hub.publish(agent_topic(event.agent_id), "call", None)

    def on_abandoned(self, event: CallAbandoned) -> None:
        key = self._visit_key(event.call_id)
        if key is not None:
            self.recent_sl.finished(event.queue, key, "abandoned", event.wait)
        number, _ = self._numbers.pop(event.call_id, ("", ""))
        if not number:
            call = self.service.calls.get(event.call_id)
            number = call.number if call is not None else ""
        if event.while_ringing:
            self._calls[event.while_ringing] = None
            self._pops.pop(event.while_ringing, None)
            self.hub.publish(agent_topic(event.while_ringing), "call", None)
        if number:
            self.abandoned.add(
                AbandonedCall(event.call_id, number, event.queue, event.at, event.wait)
            )
            self.hub.publish("worklist", "abandoned", self.abandoned.view())

    def on_overflowed(self, event: CallOverflowed) -> None:
        key = self._visit_key(event.call_id)
        if key is not None:
            call = self.service.calls.get(event.call_id)
            wait = event.at - call.entered_at if call is not None else 0.0
            self.recent_sl.finished(event.queue, key, "left", wait)

    def on_ended(self, event: CallEnded) -> None:
        day = self._day(event.agent_id)
        day.ended(event.call_id, event.talk, event.hold)
        last = self._calls.get(event.agent_id)
        ended = dict(last) if last is not None and last.get("call_id") == event.call_id else {}
        ended.update(
            {"call_id": event.call_id, "queue": event.queue, "state": "ended", "held": False}
        )
        self._calls[event.agent_id] = ended
        topic = agent_topic(event.agent_id)
        self.hub.publish(topic, "call", ended)
        self.hub.publish(topic, "figures", day.view(event.at))

    def on_call_controlled(self, event: CallControlled) -> None:
        """Hold, transfer steps: the agent's call frame says where the call is now."""
        agent = self.service.agents.get(event.agent_id)
        if agent is not None and agent.call_id == event.call_id:
            call = self._call_view(agent)
            self._calls[agent.agent_id] = call
            self.hub.publish(agent_topic(agent.agent_id), "call", call)

    def on_wrap_up(self, event: WrapUpRecorded) -> None:
        day = self._day(event.agent_id)
        day.disposed(event.call_id)
        last = self._calls.get(event.agent_id)
        if last is not None and last.get("call_id") == event.call_id:
            self._calls[event.agent_id] = None
            self.hub.publish(agent_topic(event.agent_id), "call", None)
        self.hub.publish(agent_topic(event.agent_id), "figures", day.view(event.at))

    def abandoned_called_back(self, key: str) -> bool:
        removed = self.abandoned.remove(key)
        if removed:
            self.hub.publish("worklist", "abandoned", self.abandoned.view())
        return removed

    def is_agents_call(self, agent_id: str, call_id: str) -> bool:
        """Whether ``call_id`` is the agent's call now, their last one, or one they ended today
        without a wrap-up code (an agent wraps up only their own calls)."""
        agent = self.service.agents.get(agent_id)
        if agent is not None and agent.call_id == call_id:
            return True
        last = self._calls.get(agent_id)
        if last is not None and last.get("call_id") == call_id:
            return True
        return call_id in self._day(agent_id).undisposed

    def close_pages(self, username: str) -> None:
        """End every open page of ``username`` (signed out, disabled, rights changed)."""
        self.hub.close_matching(
            lambda client: client.startswith(f"{username}/"),
            code=CLOSE_SIGNED_OUT,
            reason="session ended",
        )

    def close_session(self, username: str, token: str) -> None:
        self.hub.close_client(
            client_id_for(username, token), code=CLOSE_SIGNED_OUT, reason="signed out"
        )

    def figures_of(self, agent_id: str) -> dict[str, Any]:
        return self._day(agent_id).view(self._clock())


LIVE_KEY = web.AppKey("console_live", ConsoleLive)
HEARTBEAT_KEY = web.AppKey("console_heartbeat", float)


def _topics_for(
    live: ConsoleLive, supervisor: bool, agent_id: str | None
) -> tuple[list[str], Callable[[], list[Item]]]:
    if supervisor:
        return list(SUPERVISOR_TOPICS), live.supervisor_snapshot
    if agent_id is None:
        raise web.HTTPForbidden(
            text='{"error": "this account works as no agent"}', content_type="application/json"
        )
    return [agent_topic(agent_id)], lambda: live.agent_snapshot(agent_id)


async def _ws(request: web.Request) -> web.StreamResponse:
    session = require(request, "agent")
    live = request.app[LIVE_KEY]
    user = session.user
    topics, snapshot = _topics_for(live, user.at_least("supervisor"), user.agent_id)
    token = request.cookies.get(SESSION_COOKIE, "")
    client_id = client_id_for(user.username, token)
    # The page lives no longer than its session: at expiry it is closed like a log-out (the
    # page goes to the log-in page) instead of pushing to someone no longer signed in.
    expiry = asyncio.get_running_loop().call_later(
        max(0.0, session.expires_at - time.time()),
        functools.partial(
            live.hub.close_client, client_id, code=CLOSE_SIGNED_OUT, reason="session expired"
        ),
    )
    try:
        return await serve_websocket(
            request,
            live.hub,
            topics=topics,
            snapshot=snapshot,
            origin_ok=lambda origin: origin_allowed(request, origin),
            client_id=client_id,
            heartbeat=request.app[HEARTBEAT_KEY],
        )
    finally:
        expiry.cancel()


def add_live_routes(app: web.Application, live: ConsoleLive, *, heartbeat: float = 20.0) -> None:
    app[LIVE_KEY] = live
    app[HEARTBEAT_KEY] = heartbeat
    app.router.add_get("/api/ws", _ws)
