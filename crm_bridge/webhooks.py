"""Outgoing webhooks: interaction events POSTed to a center's own URL, signed and retried.

    bus ─► on_event(bus event)   (sync, never waits, never raises)
              │  timeline.from_bus, filter by kind, serialise once
              ▼
           lanes {interaction key: FIFO of deliveries}     pending ≤ max_pending (oldest dropped)
              │  ready queue of lanes (a lane is in it at most once)
              ▼
           ``concurrency`` workers ─► POST ─► 2xx: next of that lane
                                          ├► 408/429/5xx/timeout/connection error: the lane
                                          │  sleeps (backoff or Retry-After), then retries the
                                          │  same delivery, same ``X-CTI-Delivery``
                                          └► any other status: failed for good, next of the lane

Theory of operation:

- **What is sent.** ``crm_bridge.timeline.from_bus`` names every fact with a stable
  ``event_key``; the body is ``{"id": event_key, "type": kind, "interaction": key, "at": epoch,
  "data": {...}}``. ``X-CTI-Delivery`` repeats the event key: a receiver dedupes on it, because
  a retry after a lost 2xx (or a resync that publishes the same fact again) sends it once more.
  By default every *interaction* event is sent; agents' states and the supervisors' audit
  trail share the timeline but are not interactions, and go out only when listed in ``events``.
- **Signature.** ``X-CTI-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``
  with ``X-CTI-Timestamp`` in unix seconds. The timestamp is inside the MAC so a captured
  request cannot be replayed later: the receiver refuses a timestamp older than its tolerance
  (``verify``, 5 minutes by default) and cannot be fooled by a changed header. Each attempt is
  signed afresh (a retry hours later still passes the receiver's freshness check).
- **Order.** Events of one interaction go out in the order they were published, one at a time:
  a later one waits while an earlier one is retried (a receiver never sees ``ended`` before
  ``answered``). Different interactions use different lanes and do not wait for each other;
  ``concurrency`` requests at most are in flight.
- **Retries.** Up to ``max_attempts`` attempts per delivery. The wait before attempt n+1 is
  ``backoff_min * 2**(n-1)`` capped at ``backoff_max``, times a random factor in [0.5, 1]
  (jitter: many lanes failing together do not retry in lock-step), never under
  ``backoff_min``. A ``Retry-After`` (seconds or HTTP date) replaces it, capped at
  ``backoff_max`` so a receiver cannot park a lane for a day. Redirects are not followed: a
  signed POST goes only to the configured URL; a 3xx counts as a permanent failure.
- **Bounds.** At most ``max_pending`` deliveries wait (in flight, backing off or queued); past
  it the oldest not in flight is dropped and counted, with one warning at the start of a burst
  and one summary when it ends (pending back under 90 %).
- **Shutdown.** ``aclose(timeout)`` stops accepting, waits until everything pending is
  delivered or ``timeout`` passes, then cancels the workers; what is left is logged.

Pure parts: ``sign``, ``verify``, ``classify``, ``retry_delay``, ``parse_retry_after``,
``encode``. The aiohttp part is ``WebhookSender._attempt``. The ``aiohttp.ClientSession`` is
passed in: whoever wires the server owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import hmac
import json
import logging
import math
import random
import re
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from crm_bridge.timeline import KINDS as TIMELINE_KINDS
from crm_bridge.timeline import TimelineEvent, from_bus, is_interaction

__all__ = [
    "KINDS",
    "WebhookSender",
    "WebhookSettings",
    "WebhookStats",
    "classify",
    "encode",
    "parse_retry_after",
    "retry_delay",
    "sign",
    "verify",
]

_log = logging.getLogger(__name__)

#: every timeline kind ``events`` may name (``crm_bridge.timeline.from_bus``); agent_state and
#: supervisor_action are not interaction events and are sent only when listed.
KINDS = TIMELINE_KINDS

# A header value must be printable ASCII: the event key and kind travel in headers, and a key
# built from something odd (a newline in a channel name) would be refused by aiohttp mid-send.
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,512}")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


# -- settings ---------------------------------------------------------------------------------


class WebhookSettings(BaseModel):
    """One entry of ``crm.webhooks``: where to send interaction events and how hard to try."""

    # hide_input_in_errors: the secret must never be quoted by a validation message.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = Field(description="http:// or https:// URL the events are POSTed to")
    secret: SecretStr = Field(description="HMAC-SHA256 key shared with the receiver")
    #: timeline kinds to send; None: every interaction event (not agent_state/supervisor_action)
    events: tuple[str, ...] | None = None
    timeout: float = Field(5.0, gt=0, description="seconds per attempt")
    max_attempts: int = Field(8, ge=1, le=100)
    backoff_min: float = Field(1.0, ge=0, description="seconds before the first retry")
    backoff_max: float = Field(300.0, ge=0, description="longest wait between attempts")
    max_pending: int = Field(10_000, ge=1, description="deliveries kept; oldest dropped beyond")
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight at most")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("the secret must be at least 16 characters")
        return value

    @field_validator("events")
    @classmethod
    def _events(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - KINDS)
        if unknown:
            known = ", ".join(sorted(KINDS))
            raise ValueError(f"unknown event kind(s) {', '.join(unknown)} (known: {known})")
        return value

    @model_validator(mode="after")
    def _backoff(self) -> WebhookSettings:
        if self.backoff_max < self.backoff_min:
            raise ValueError("backoff_max must not be less than backoff_min")
        return self

    def wants(self, event: TimelineEvent) -> bool:
        """Whether ``event`` is sent under these settings (see the module docstring)."""
        if self.events is None:
            return is_interaction(event.interaction_key)
        return event.kind in self.events


# -- pure parts -------------------------------------------------------------------------------


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    """The ``X-CTI-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of
    ``b"<timestamp>." + body`` keyed with ``secret``."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """For receivers: whether a request is ours and fresh.

    ``headers`` are the request's (any case), ``body`` its raw bytes exactly as received
    (before any JSON parsing), ``now`` the receiver's unix time. True when ``X-CTI-Timestamp``
    is within ``tolerance`` seconds of ``now`` and ``X-CTI-Signature`` matches; the comparison
    takes constant time. A receiver should then also drop an ``X-CTI-Delivery`` it has
    already processed (retries repeat it)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = lowered.get("x-cti-timestamp", "")
    signature = lowered.get("x-cti-signature", "")
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode())


Outcome = Literal["delivered", "retry", "failed"]


def classify(status: int) -> Outcome:
    """2xx delivered; 408, 429 and 5xx worth another try; anything else refused for good."""
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 429) or 500 <= status < 600:
        return "retry"
    return "failed"


def retry_delay(
    attempt: int, backoff_min: float, backoff_max: float, rand: Callable[[], float]
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): the exponential step
    ``backoff_min * 2**(attempt-1)`` capped at ``backoff_max``, times a factor in [0.5, 1],
    never under ``backoff_min``."""
    step = min(backoff_max, backoff_min * 2.0 ** min(attempt - 1, 60))
    return max(backoff_min, step * (0.5 + rand() / 2))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header in seconds from ``now`` (RFC 9110 10.2.3: delay-seconds or an
    HTTP date), or None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive one cannot be placed in time
        return None
    return max(0.0, when.timestamp() - now)


def encode(event: TimelineEvent) -> bytes:
    """The JSON body for ``event``; ``ValueError``/``TypeError`` when it cannot be one
    (NaN, a key that is not a string, a cycle)."""
    payload = {
        "id": event.event_key,
        "type": event.kind,
        "interaction": event.interaction_key,
        "at": event.at,
        "data": dict(event.data),
    }
    # default=str: a bus event may carry a value JSON has no type for (an enum member is a
    # str already; a datetime is not). allow_nan=False: NaN is not JSON, receivers choke on it.
    return json.dumps(payload, default=str, allow_nan=False, separators=(",", ":")).encode()


def _checked(event: TimelineEvent) -> bool:
    """Whether the timeline event can be sent at all (see ``_HEADER_VALUE``)."""
    return (
        isinstance(event.event_key, str)
        and isinstance(event.interaction_key, str)
        and isinstance(event.kind, str)
        and bool(event.interaction_key)
        and _HEADER_VALUE.fullmatch(event.event_key) is not None
        and _HEADER_VALUE.fullmatch(event.kind) is not None
        and isinstance(event.at, int | float)
        and not isinstance(event.at, bool)
        and math.isfinite(event.at)
        and isinstance(event.data, Mapping)
    )


# -- the sender -------------------------------------------------------------------------------


@dataclass
class WebhookStats:
    sent: int = 0  # deliveries the receiver accepted (2xx)
    failed: int = 0  # refused for good (4xx, 3xx) or out of attempts
    retried: int = 0  # attempts that will be made again
    dropped: int = 0  # deliveries dropped: queue full, or left at shutdown
    invalid: int = 0  # bus events that mapped to something unsendable
    pending: int = 0  # deliveries waiting now (queued, in flight or backing off)


@dataclass(eq=False)
class _Delivery:
    seq: int
    event_key: str
    kind: str
    body: bytes
    attempts: int = 0
    in_flight: bool = False


@dataclass(eq=False)
class _Lane:
    """One interaction's deliveries, oldest first. While a lane is in ``_lanes`` exactly one
    party holds it (the ready queue, a worker, or a back-off sleeper); only that holder removes
    it when it finds it empty, so a lane is never worked on twice at once."""

    key: str
    items: deque[_Delivery] = field(default_factory=deque)


class WebhookSender:
    """Delivers timeline events to one webhook URL; see the module docstring for the rules."""

    def __init__(
        self,
        settings: WebhookSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._session = session
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._secret = settings.secret.get_secret_value().encode()
        parts = urllib.parse.urlsplit(settings.url)
        # Logs name the receiver's origin only: the path or query may carry a token.
        self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout)
        self._lanes: dict[str, _Lane] = {}
        # Arrival order of everything pending: the first is the oldest, dropped first.
        self._pending: OrderedDict[int, _Delivery] = OrderedDict()
        self._lane_of: dict[int, _Lane] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._seq = 0
        self._stats = WebhookStats()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._burst = 0  # drops in the current burst (0: not dropping)
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def stats(self) -> WebhookStats:
        self._stats.pending = len(self._pending)
        return self._stats

    # -- the bus's side: never waits, never raises ------------------------------------------

    def on_event(self, event: object) -> None:
        """Queue the bus ``event`` if it maps to a timeline event these settings want."""
        try:
            timeline = from_bus(event)
        except Exception:  # a bus event we cannot read must not break the bus
            self._stats.invalid += 1
            _log.warning("webhook %s: event %s ignored", self._where, type(event).__name__)
            return
        if timeline is not None:
            self.on_timeline(timeline)

    def on_timeline(self, timeline: TimelineEvent) -> None:
        """Queue a timeline event already mapped (the interaction recorder hands each one on:
        the bus event is mapped once for the store and every webhook)."""
        try:
            self._enqueue(timeline)
        except Exception:  # never break the caller (the bus, through the recorder)
            self._stats.invalid += 1
            _log.warning("webhook %s: %s event ignored", self._where, timeline.kind)

    def _enqueue(self, timeline: TimelineEvent) -> None:
        if self._closing:
            return
        if not _checked(timeline):
            self._stats.invalid += 1
            _log.warning("webhook %s: unsendable %s event ignored", self._where, timeline.kind)
            return
        if not self.settings.wants(timeline):
            return
        body = encode(timeline)
        while len(self._pending) >= self.settings.max_pending and self._drop_oldest():
            pass
        self._seq += 1
        delivery = _Delivery(self._seq, timeline.event_key, timeline.kind, body)
        lane = self._lanes.get(timeline.interaction_key)
        if lane is None:
            lane = self._lanes[timeline.interaction_key] = _Lane(timeline.interaction_key)
            self._ready.put_nowait(lane.key)
        lane.items.append(delivery)
        self._pending[delivery.seq] = delivery
        self._lane_of[delivery.seq] = lane
        self._idle.clear()

    def _drop_oldest(self) -> bool:
        # The in-flight ones (at most ``concurrency``) are skipped: their outcome is counted
        # when the request ends.
        victim = next((d for d in self._pending.values() if not d.in_flight), None)
        if victim is None:
            return False
        self._forget(victim)
        self._stats.dropped += 1
        if not self._burst:
            _log.warning(
                "webhook %s: more than %d events pending, dropping the oldest",
                self._where,
                self.settings.max_pending,
            )
        self._burst += 1
        return True

    def _forget(self, delivery: _Delivery) -> None:
        del self._pending[delivery.seq]
        lane = self._lane_of.pop(delivery.seq)
        lane.items.remove(delivery)  # at the head of its lane, or next to an in-flight head
        if not self._pending:
            self._idle.set()

    # -- the workers ------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    # The timeout bounds only the draining: the workers must still be stopped after it, which
    # a caller's asyncio.timeout around the whole call would skip.
    async def aclose(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop accepting events, deliver what can be delivered within ``timeout`` seconds,
        then stop; what is left is logged and counted as dropped."""
        self._closing = True
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._idle.wait()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = self._tg = None
        left = len(self._pending)
        if left:
            _log.warning("webhook %s: %d events not delivered at shutdown", self._where, left)
            self._stats.dropped += left
            for delivery in list(self._pending.values()):
                self._forget(delivery)
            self._lanes.clear()

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            for number in range(self.settings.concurrency):
                tg.create_task(self._worker(), name=f"webhook-worker-{number}")

    async def _worker(self) -> None:
        while True:
            key = await self._ready.get()
            lane = self._lanes[key]
            if not lane.items:
                del self._lanes[key]
                continue
            delivery = lane.items[0]
            delivery.in_flight = True
            try:
                outcome, retry_after = await self._attempt(delivery)
            finally:
                delivery.in_flight = False
            if outcome == "retry" and delivery.attempts < self.settings.max_attempts:
                self._stats.retried += 1
                delay = retry_delay(
                    delivery.attempts,
                    self.settings.backoff_min,
                    self.settings.backoff_max,
                    self._rand,
                )
                if retry_after is not None:
                    delay = min(retry_after, self.settings.backoff_max)
                assert self._tg is not None  # workers run inside the task group
                self._tg.create_task(self._back_off(key, delay))
                continue
            if outcome == "delivered":
                self._stats.sent += 1
            else:
                self._stats.failed += 1
                _log.warning(
                    "webhook %s: %s %s given up after %d attempt(s)",
                    self._where,
                    delivery.kind,
                    delivery.event_key,
                    delivery.attempts,
                )
            if delivery.seq in self._pending:  # not dropped while in flight
                self._forget(delivery)
            if self._burst and len(self._pending) < 0.9 * self.settings.max_pending:
                # The burst is over once the backlog really shrinks, not at each free slot.
                _log.warning(
                    "webhook %s: %d events dropped in that burst", self._where, self._burst
                )
                self._burst = 0
            self._release(key)

    async def _back_off(self, key: str, delay: float) -> None:
        await self._sleep(delay)
        self._release(key)

    def _release(self, key: str) -> None:
        """The holder is done with the lane for now: back in the ready queue, or gone."""
        if self._lanes[key].items:
            self._ready.put_nowait(key)
        else:
            del self._lanes[key]

    async def _attempt(self, delivery: _Delivery) -> tuple[Outcome, float | None]:
        """One POST: its outcome and the receiver's Retry-After (seconds) if it gave one."""
        delivery.attempts += 1
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "X-CTI-Event": delivery.kind,
            "X-CTI-Delivery": delivery.event_key,
            "X-CTI-Timestamp": timestamp,
            "X-CTI-Signature": sign(self._secret, timestamp, delivery.body),
        }
        try:
            async with self._session.post(
                self.settings.url,
                data=delivery.body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
        except TimeoutError:
            self._note(delivery, f"no answer within {self.settings.timeout:g} s")
            return "retry", None
        except aiohttp.ClientError as exc:
            self._note(delivery, f"{type(exc).__name__}: {exc}")
            return "retry", None
        except Exception:  # our bug or aiohttp's: that delivery fails, the workers go on
            _log.exception("webhook %s: %s %s", self._where, delivery.kind, delivery.event_key)
            return "failed", None
        outcome = classify(status)
        if outcome != "delivered":
            self._note(delivery, f"HTTP {status}")
        return outcome, retry_after if outcome == "retry" else None

    def _note(self, delivery: _Delivery, what: str) -> None:
        # First attempt's failure at info level; the give-up (or drop) is the warning.
        _log.info(
            "webhook %s: %s %s attempt %d: %s",
            self._where,
            delivery.kind,
            delivery.event_key,
            delivery.attempts,
            what,
        )
