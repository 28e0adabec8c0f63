"""Builds the server's objects from the settings and connects them. Nothing else constructs its
own collaborators: this is the one place to read to see how the parts fit.

    settings ─► AmiClient ──events──► CallTracker ─► CallModel
                   │  └──────────────► EventBus (raw AMI events, for later layers)
                   └──state──► PbxConnectionChanged ─► Health ─► /healthz
                AgiServer (FastAGI routes)            StatsCollector ─► /metrics

``Server`` is an async context manager: entering starts the FastAGI and HTTP listeners and the
AMI session loop (which connects in the background and keeps reconnecting; the server is up even
while Asterisk is not), leaving stops them all and waits for every task.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from acd.agent_state import AgentStatus
from acd.gateway import WaitTick
from acd.history import from_interaction
from agent_console.accounts import AccountStore
from agent_console.admin_api import AdminPorts
from agent_console.calls import CallControl
from agent_console.config import ConsoleConfig, load_console_config
from agent_console.console_api import ConsolePorts
from agent_console.hub import Hub
from agent_console.live import ConsoleLive
from agent_console.screenpop import ScreenPops
from app.catalogue import CATALOGUE
from app.config_reload import ConfigReloader
from app.diagnostics import line_check
from app.queue_summary import QueueSummaryFeed
from app.settings import Settings
from app.web import ConsoleWeb, build_web_app
from app.wiring import (
    AcdParts,
    acd_config_path,
    build_acd,
    build_ivr,
    console_config_path,
    crm_url,
    customers_file,
    queue_problems,
)
from crm_bridge.customers import StoreCustomers, import_yaml
from crm_bridge.db import create_engine, migrate
from crm_bridge.external import HttpCrm
from crm_bridge.queue_history import queued_since
from crm_bridge.recorder import InteractionRecorder
from crm_bridge.timeline import TimelineEvent
from crm_bridge.webhooks import WebhookSender
from crm_bridge.writeback import WriteBack
from crm_bridge.writer import InteractionWriter
from cti import __version__
from cti.agi import AgiServer, AgiServerConfig, Handler, SessionSummary
from cti.ami import AmiClient, AmiClientConfig, ConnectionState, Event
from cti.bus import EventBus
from cti.calls import CallModel
from cti.calls.tracker import CallTracker
from cti.errors import CtiError
from cti.health import Health, PbxConnectionChanged
from cti.metrics import build_registry
from ivr.ports import CustomerDirectory
from ivr.registry import IvrReloaded
from ivr.services import AppQueueGateway

__all__ = ["Server", "serve"]

_log = logging.getLogger(__name__)


class Server:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        routes: Mapping[str, Handler] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        # The domain bus: catalogued, typed events only (app/catalogue.py), so that each role
        # could run in its own process. Raw AMI events stay in the PBX adapter: the call model,
        # the ACD's feed and the queue feed read them directly, and probes (tests, benchmarks)
        # may tap them on ``pbx_feed``.
        self.bus = EventBus(CATALOGUE)
        self.pbx_feed = EventBus()
        self.health = Health(version=__version__)
        self.bus.subscribe(PbxConnectionChanged, self.health.on_pbx)
        self.calls = CallModel()
        self.tracker = CallTracker(self.calls, self.bus, clock)

        ami = settings.ami
        self.ami = AmiClient(
            AmiClientConfig(
                host=ami.host,
                port=ami.port,
                username=ami.username,
                secret=ami.secret.get_secret_value(),
                events=ami.events,
                connect_timeout=ami.connect_timeout,
                action_timeout=ami.action_timeout,
                ping_interval=ami.ping_interval,
                ping_timeout=ami.ping_timeout,
                reconnect_min=ami.reconnect_min,
                reconnect_max=ami.reconnect_max,
            ),
            on_event=self._on_ami_event,
            on_state=self._on_ami_state,
        )
        self.ami.add_resync_hook(self._resync_calls)

        agi = settings.agi
        self.agi = AgiServer(
            AgiServerConfig(
                host=agi.host,
                port=agi.port,
                max_sessions=agi.max_sessions,
                env_timeout=agi.env_timeout,
            ),
            on_session_end=self._on_agi_session_end,
        )
        # The CRM store: every interaction the bus reports goes through one batching writer.
        self.crm_writer: InteractionWriter | None = None
        self.crm_engine: AsyncEngine | None = None
        self._http: aiohttp.ClientSession | None = None
        self.external_crm: HttpCrm | None = None
        self.writeback: WriteBack | None = None
        self.accounts: AccountStore | None = None
        # Outgoing webhooks: every interaction fact, signed, to each configured URL.
        self.webhooks: list[WebhookSender] = []
        if settings.crm.webhooks:
            self._http = aiohttp.ClientSession()
            self.webhooks = [
                WebhookSender(hook, self._http, clock=clock) for hook in settings.crm.webhooks
            ]
        if settings.crm.enabled:
            self.crm_engine = create_engine(crm_url(settings))
            self.crm_writer = InteractionWriter(
                self.crm_engine,
                clock=clock,
                max_batch=settings.crm.max_batch,
                max_buffer=settings.crm.max_buffer,
            )
            external = settings.crm.external
            if external is not None:
                # One HTTP session for everything going out, owned (and closed) by the server.
                self._http = self._http or aiohttp.ClientSession()
                self.external_crm = HttpCrm(external, self._http)
                if external.write_url:
                    self.writeback = WriteBack(
                        self.crm_engine, self.external_crm, writer=self.crm_writer
                    )
            # The recorder maps each bus event once and hands the fact to the write-back and
            # the webhooks too.
            listeners: list[Callable[[TimelineEvent], None]] = [
                sender.on_timeline for sender in self.webhooks
            ]
            if self.writeback is not None:
                listeners.insert(0, self.writeback.on_event)
            self.recorder = InteractionRecorder(self.crm_writer, also=tuple(listeners))
            self.bus.subscribe_catalogue(self.recorder.on_event)
            self.health.add_component("crm", self._crm_health)
            # Console accounts live in the same database.
            self.accounts = AccountStore(self.crm_engine, clock=clock)
        else:
            for sender in self.webhooks:
                self.bus.subscribe_catalogue(sender.on_event)

        # Lookups (the IVR's, the screen-pop's): the external CRM when one is configured, else
        # the store when there is one, else the configured records in memory.
        customers: CustomerDirectory | None = None
        if self.crm_engine is not None:
            customers = self.external_crm or StoreCustomers(self.crm_engine)
        # The ACD (queues, agents, callbacks) and the IVR in front of it: both configurations
        # are loaded and validated now (an invalid one stops the start). With the ACD off,
        # the IVR's queue nodes use Asterisk's app_queue queues of the same names.
        self.acd: AcdParts | None = None
        self.queue_feed: QueueSummaryFeed | None = None
        if settings.acd.enabled:
            self.acd = build_acd(settings, self.ami, clock=clock, publish=self.bus.publish)
            self.ivr = build_ivr(
                settings,
                clock=clock,
                publish=self.bus.publish,
                queues=self.acd.gateway,
                callbacks=self.acd.callbacks,
                customers=customers,
            )
            for problem in queue_problems(self.ivr.registry.current, self.acd.config):
                _log.warning("IVR/ACD configuration: %s", problem)
            # After every (re)connect: rebuild the queue from the channels' own record.
            self.ami.add_resync_hook(self.acd.feed.reconcile)
        else:
            app_queue = AppQueueGateway(timeout=settings.ivr.queue_timeout)
            self.ivr = build_ivr(
                settings,
                clock=clock,
                publish=self.bus.publish,
                queues=app_queue,
                customers=customers,
            )
            self.queue_feed = QueueSummaryFeed(self.ami, app_queue.update)
            self.ami.add_resync_hook(self.queue_feed.resync)
        # "linecheck" is a diagnostic route an admin can dial to prove the FastAGI path works
        # end to end (prompt out, DTMF in). Explicit ``routes`` (tests, embedding) come first
        # and may take over "ivr".
        extra = dict(routes or {})
        for path, handler in extra.items():
            self.agi.route(path, handler)
        self.agi.route("linecheck", line_check)
        if "ivr" not in extra:
            self.agi.route("ivr", self.ivr.handler)
        self.wait_tick: WaitTick | None = None
        if self.acd is not None and "acd-wait" not in extra:
            self.wait_tick = WaitTick(self.acd.service, prompts=self.ivr.prompts)
            self.agi.route("acd-wait", self.wait_tick)

        # The consoles: live pages need the ACD (whose state they show) and accounts (the
        # store's); without both there is nothing to log in to or to show.
        self.hub: Hub | None = None
        self.live: ConsoleLive | None = None
        self.call_control: CallControl | None = None
        self.console_config: ConsoleConfig | None = None
        if settings.console.enabled and self.accounts is not None and self.acd is not None:
            self.console_config = load_console_config(self._console_file())
            self.hub = Hub(queue_size=settings.console.queue_size)
            self.live = ConsoleLive(
                self.hub,
                self.acd.service,
                ScreenPops(self.crm_engine, clock=clock),
                self._console_config,
                clock=clock,
            )
            self.live.attach(self.bus)
            # Hold, transfers, click-to-dial, spy: AMI actions on the ACD's calls.
            self.call_control = CallControl(
                self.ami,
                self.acd.service,
                self.bus.publish,
                outbound_context=settings.console.outbound_context,
                clock=clock,
            )
            self.live.transferring = lambda call_id: (
                self.call_control is not None
                and self.call_control.consult_channel(call_id) is not None
            )
        elif self.accounts is None and not _loopback(settings.http.host):
            # No store, no accounts: the control API (/acd, /admin) would answer anyone.
            raise CtiError(
                f"http.host is {settings.http.host} but there is no log-in without the CRM "
                "store (crm.enabled is false): listen on 127.0.0.1 or enable the store"
            )

        # acd.yaml and console.yaml reload live (SIGHUP, POST /admin/config/reload).
        self.config_reloader = ConfigReloader(
            acd=self.acd.service if self.acd is not None else None,
            acd_file=acd_config_path(settings) if self.acd is not None else None,
            console_file=self._console_file,
            set_console=self._set_console_config,
        )
        self._started_at = clock()
        self.registry = build_registry(
            {
                "ami": self._ami_stats,
                "agi": self._agi_stats,
                "calls": self._call_stats,
                "ivr": self._ivr_stats,
                "acd": self._acd_stats,
                "crm": self._crm_stats,
                "server": lambda: {"uptime_seconds": self._clock() - self._started_at},
            }
        )
        self._web_runner: web.AppRunner | None = None
        self._pbx_up = False
        self._stopping = False
        # The long-running loops (AMI reader, reconciliation, queue figures) run in one
        # TaskGroup owned by this supervisor task: started together, cancelled together, and
        # one that fails takes the others down and sets ``failed`` (serve() then stops).
        self._background_task: asyncio.Task[None] | None = None
        self.failed = asyncio.Event()

    # -- wiring callbacks (run inside the AMI reader: quick, never awaiting) -----------------

    def _on_ami_event(self, event: Event) -> None:
        self.tracker.on_ami_event(event.name, event.to_dict())
        if self.acd is not None:
            self.acd.feed.on_event(event)
        if self.queue_feed is not None:
            self.queue_feed.on_event(event)
        self.pbx_feed.publish(event)

    def _on_ami_state(self, state: ConnectionState) -> None:
        connected = state is ConnectionState.CONNECTED
        detail = "" if connected else (self.ami.last_error or "")
        self.bus.publish(PbxConnectionChanged(connected, state.value, self._clock(), detail))
        # The client logs each failed attempt itself; here only the moments an operator
        # watches for: the PBX became reachable, or stopped being reachable.
        if connected != self._pbx_up:
            self._pbx_up = connected
            if connected:
                _log.info("PBX connected", extra={"ami_state": state.value})
            elif self._stopping:
                _log.info("PBX connection closed (stopping)", extra={"ami_state": state.value})
            else:
                _log.warning("PBX lost: %s", detail, extra={"ami_state": state.value})

    async def _resync_calls(self, client: AmiClient) -> None:
        async def list_channels() -> list[dict[str, str]]:
            result = await client.action("CoreShowChannels")
            return [item.to_dict() for item in result.events]

        await self.tracker.resync(list_channels)

    def _on_agi_session_end(self, summary: SessionSummary) -> None:
        self.bus.publish(summary)

    # -- metrics sources ---------------------------------------------------------------------

    def _ami_stats(self) -> dict[str, float]:
        counters = {f"{k}_total": float(v) for k, v in dataclasses.asdict(self.ami.stats).items()}
        return {**counters, "connected": float(self.ami.connected)}

    def _agi_stats(self) -> dict[str, float]:
        stats = dataclasses.asdict(self.agi.stats)
        active = float(stats.pop("sessions_active"))
        return {**{f"{k}_total": float(v) for k, v in stats.items()}, "sessions_active": active}

    def _call_stats(self) -> dict[str, float]:
        return {
            "channels": float(len(self.calls.channels)),
            "calls": float(len(self.calls.calls())),
            "illegal_transitions_total": float(self.calls.illegal_transitions),
            "late_events_total": float(self.calls.late_events),
            "resyncs_total": float(self.tracker.resyncs),
        }

    def _ivr_stats(self) -> dict[str, float]:
        return {
            "reloads_total": float(self.ivr.registry.reloads),
            "failed_reloads_total": float(self.ivr.registry.failed_reloads),
            "tts_renders_total": float(self.ivr.tts.renders),
        }

    def _acd_stats(self) -> dict[str, float]:
        if self.acd is None:
            return {}
        service = self.acd.service
        waiting = sum(1 for c in service.calls.values() if c.state == "waiting")
        stats = {
            "calls_waiting": float(waiting),
            "callbacks_pending": float(
                sum(1 for c in service.calls.values() if c.kind == "callback")
            ),
            "routing_passes_total": float(service.routing_passes),
            "repairs_total": float(service.repairs),
            "delivery_failures_total": float(service.delivery_failures),
            "reconciliations_total": float(self.acd.feed.reconciliations),
        }
        if self.wait_tick is not None:
            stats["wait_visits_total"] = float(self.wait_tick.visits)
            stats["wait_adopted_total"] = float(self.wait_tick.adopted)
        # One pass over the agents (a scrape must stay cheap with thousands of them).
        counts = Counter(agent.status for agent in service.agents.values())
        for status in AgentStatus:
            stats[f"agents_{status.value}"] = float(counts[status])
        return stats

    def _crm_health(self) -> dict[str, object]:
        writer = self.crm_writer
        if writer is None:
            return {"ok": True}
        return {
            "ok": writer.available,
            "buffered": writer.buffered,
            "unavailable_since": writer.unavailable_since,
            "last_error": "" if writer.available else writer.last_error,
        }

    def _crm_stats(self) -> dict[str, float]:
        writer = self.crm_writer
        if writer is None:
            return {}
        stats = writer.stats
        extra: dict[str, float] = {}
        if self.external_crm is not None:
            extra.update({f"external_{k}": v for k, v in self.external_crm.stats().items()})
        for n, sender in enumerate(self.webhooks):
            hook = sender.stats
            extra.update(
                {
                    f"webhook{n}_sent_total": float(hook.sent),
                    f"webhook{n}_failed_total": float(hook.failed),
                    f"webhook{n}_retried_total": float(hook.retried),
                    f"webhook{n}_dropped_total": float(hook.dropped),
                    f"webhook{n}_pending": float(hook.pending),
                }
            )
        if self.writeback is not None:
            sent = self.writeback.stats
            extra.update(
                {
                    "writeback_sent_total": float(sent.sent),
                    "writeback_failed_total": float(sent.failed),
                    "writeback_dropped_total": float(sent.dropped),
                    "writeback_pending": float(sent.pending),
                }
            )
        return {
            **extra,
            "events_submitted_total": float(stats.submitted),
            "events_written_total": float(stats.written),
            "events_duplicate_total": float(stats.duplicates),
            "events_rejected_total": float(stats.rejected),
            "batches_total": float(stats.batches),
            "failed_transactions_total": float(stats.failures),
            "buffered_events": float(writer.buffered),
            "available": float(writer.available),
            "last_commit_seconds": stats.last_commit_seconds,
        }

    def _console_file(self) -> Path | None:
        """The console file; None (built-in defaults) when the default file is absent. A file
        named on purpose must exist: a typo in its path must not silently do nothing."""
        path = console_config_path(self.settings)
        if "config" not in self.settings.console.model_fields_set and not path.is_file():
            return None
        return path

    def _console_config(self) -> ConsoleConfig:
        return self.console_config or ConsoleConfig()

    def _set_console_config(self, config: ConsoleConfig) -> None:
        self.console_config = config

    def _console_web(self) -> ConsoleWeb | None:
        if (
            self.live is None
            or self.accounts is None
            or self.acd is None
            or self.call_control is None
        ):
            return None
        ivr = self.ivr.registry
        return ConsoleWeb(
            live=self.live,
            ports=ConsolePorts(
                self.acd.service,
                self.live,
                self.crm_engine,
                self._console_config,
                self.bus.publish,
                clock=self._clock,
            ),
            admin=AdminPorts(
                accounts=self.accounts,
                views={
                    "settings": lambda: self.settings,
                    "ivr": lambda: {
                        "version": ivr.current.version,
                        "source": ivr.current.source,
                        "default_flow": ivr.current.default_flow,
                        "flows": sorted(ivr.current.flows),
                        "routes": ivr.current.routes,
                    },
                    # the service's: a reload replaces it
                    "acd": lambda: self.acd.service.config if self.acd is not None else None,
                    "console": self._console_config,
                },
                reload_ivr=self.reload_ivr,
                reload_config=self.config_reloader.reload,
                close_pages=self.live.close_pages,
            ),
            calls=self.call_control,
            supervisor_phone=lambda user: self._console_config().supervisor_phones.get(user),
            heartbeat=self.settings.console.heartbeat,
        )

    async def reload_ivr(self) -> IvrReloaded:
        """Apply a changed IVR configuration (SIGHUP, POST /admin/ivr/reload): read and checked
        in a worker thread, applied on the loop."""
        return await self.ivr.registry.reload_async()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def http_port(self) -> int:
        if self._web_runner is None or not self._web_runner.addresses:
            raise RuntimeError("HTTP server not started")
        port: int = self._web_runner.addresses[0][1]
        return port

    async def __aenter__(self) -> Server:
        if self.crm_engine is not None and self.crm_writer is not None:
            if self.settings.crm.migrate_on_start:
                try:
                    await migrate(self.crm_engine)
                except (SQLAlchemyError, OSError) as exc:
                    await self.crm_engine.dispose()
                    first = str(exc).splitlines()[0]
                    raise CtiError(
                        f"CRM store: cannot open {crm_url(self.settings)}: {first}"
                    ) from exc
            await self.crm_writer.start()
        for sender in self.webhooks:
            await sender.start()
        if self.crm_engine is not None and self.crm_writer is not None:
            if self.writeback is not None:
                await self.writeback.start()
            demo = customers_file(self.settings)
            if demo is not None:
                # The configured records (the demo's) into the store; by ref, so a restart
                # updates them instead of adding them twice.
                result = await import_yaml(self.crm_engine, demo)
                _log.info(
                    "customers from %s: %d new, %d updated, %d rejected",
                    demo,
                    result.created,
                    result.updated,
                    len(result.rejected),
                )
        try:
            await self.agi.start()
            self._web_runner = web.AppRunner(
                build_web_app(
                    self.health,
                    self.registry,
                    reload_ivr=self.reload_ivr,
                    reload_config=self.config_reloader.reload,
                    acd=self.acd.service if self.acd is not None else None,
                    crm=self.crm_engine,
                    accounts=self.accounts,
                    origins=self.settings.http.origins,
                    publish=self.bus.publish,
                    console=self._console_web(),
                ),
                access_log=None,
            )
            await self._web_runner.setup()
            site = web.TCPSite(self._web_runner, self.settings.http.host, self.settings.http.port)
            await site.start()
        except OSError as exc:
            await self._stop()
            raise CtiError(f"cannot listen: {exc.strerror or exc}") from exc
        if self.acd is not None:
            if self.crm_engine is not None:
                await self._seed_today(self.acd, self.crm_engine)
            await self.acd.service.start()
        self._background_task = asyncio.get_running_loop().create_task(
            self._background(), name="server-background"
        )
        self._background_task.add_done_callback(self._background_done)
        _log.info(
            "ctiserver %s up: FastAGI %s:%d, HTTP %s:%d, AMI %s:%d",
            __version__,
            self.settings.agi.host,
            self.agi.port,
            self.settings.http.host,
            self.http_port,
            self.settings.ami.host,
            self.settings.ami.port,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _seed_today(self, acd: AcdParts, engine: AsyncEngine) -> None:
        """Today's figures from the store's calls of the day: a restart does not reset them."""
        zone = ZoneInfo(acd.config.timezone)
        midnight = datetime.fromtimestamp(self._clock(), zone).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        try:
            rows = await queued_since(engine, midnight.timestamp())
        except SQLAlchemyError as exc:
            _log.warning("today's figures start from zero: cannot read the store: %s", exc)
            return
        visits = [
            visit
            for row in rows
            if (
                visit := from_interaction(
                    row.key,
                    row.queue,
                    row.queued_at,
                    row.outcome,
                    answered_at=row.answered_at,
                    ended_at=row.ended_at,
                    talk=row.talk,
                    hold=row.hold,
                    wrap=row.wrap,
                    wrap_ended_at=row.wrap_ended_at,
                )
            )
            is not None
        ]
        counted = acd.service.seed_today(visits)
        _log.info("today's figures: %d earlier calls counted from the store", counted)

    async def _background(self) -> None:
        async with asyncio.TaskGroup() as group:
            if self.acd is not None:
                every = self.acd.config.reconcile_every
                group.create_task(self.acd.feed.run_periodic(every), name="acd-reconcile")
            group.create_task(self.ami.run(), name="ami")
            if self.queue_feed is not None:
                group.create_task(self.queue_feed.run(), name="queue-figures")

    def _background_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        _log.critical("a server task failed, stopping: %r", error, exc_info=error)
        self.failed.set()

    async def _stop(self) -> None:
        self._stopping = True
        if self.hub is not None:
            self.hub.close_all()  # pages reconnect to whoever serves next (1001)
        if self._background_task is not None:
            self._background_task.cancel()
            # A failure was already logged by _background_done; stopping goes on regardless.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._background_task
            self._background_task = None
        if self.acd is not None:
            await self.acd.service.aclose()
        await self.agi.aclose()
        if self.crm_engine is not None and self.writeback is not None:
            await self.writeback.aclose()  # before the writer: a round awaits its flush
        for sender in self.webhooks:
            await sender.aclose(5.0)  # what is pending goes out first (bounded)
        if self._http is not None:
            await self._http.close()
        if self.crm_writer is not None:
            # What the bus handed over is written before the process ends (bounded wait).
            await self.crm_writer.aclose(flush_timeout=5.0)
        if self.crm_engine is not None:
            await self.crm_engine.dispose()
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        await self.bus.aclose()
        await self.pbx_feed.aclose()
        _log.info("ctiserver stopped")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: not known to be loopback
        return False


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    alongside: Callable[[Server], contextlib.AbstractAsyncContextManager[object]] | None = None,
) -> None:
    """Run the server until SIGTERM/SIGINT (or ``stop`` is set), then shut down cleanly.

    ``alongside`` (the demo): entered once the server is up, left before it stops."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Server(settings) as server:
            # SIGHUP, the classic "reload your configuration" signal: the IVR flows, then
            # acd.yaml and console.yaml (read in a worker thread, applied on the loop).
            reloads: set[asyncio.Task[object]] = set()

            async def reload_all() -> None:
                await server.reload_ivr()
                await server.config_reloader.reload()

            def hangup() -> None:
                task: asyncio.Task[object] = asyncio.ensure_future(reload_all())
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            loop.add_signal_handler(signal.SIGHUP, hangup)
            async with alongside(server) if alongside else contextlib.nullcontext():
                stopped = asyncio.ensure_future(stop.wait())
                failed = asyncio.ensure_future(server.failed.wait())
                try:
                    await asyncio.wait((stopped, failed), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopped.cancel()
                    failed.cancel()
                    loop.remove_signal_handler(signal.SIGHUP)
                    for task in reloads:  # a reload still reading: the server is going
                        task.cancel()
            if server.failed.is_set():
                raise CtiError("a server task failed (see the log); stopped")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
