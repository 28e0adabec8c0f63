"""External CRMs: customer lookups and interaction write-back over a configurable HTTP endpoint.

A center that keeps its customers in another system still gets screen-pops and IVR lookups:
``HttpCrm`` is a ``CustomerSource`` (the IVR's ``ivr.ports.CustomerDirectory`` shape) and an
``InteractionSink``. The built-in store stays the default source; this one is configured with
``ExternalCrmSettings``.

Theory of operation:

- **Lookup.** ``find(field, value)`` fills ``url_template`` (placeholders ``{phone}``,
  ``{account}``, ``{id}``, ``{name}``, each URL-encoded) with ``value`` in the placeholder named
  like ``field`` (``ref`` means ``id``) and the others empty. A template without that
  placeholder cannot answer by that field: None, no request. Phone numbers are normalised first
  (``cti.phones.normalise_phone``), so ``030 1234`` and ``+49 30 1234`` are one cache entry.
- **Answer.** 2xx with a JSON object (or a list: its first element; an empty list is "not
  found"), taken at ``result_path`` if set, then mapped through ``field_map`` (our field ->
  dotted path in their JSON); with no ``field_map`` the object is taken as it is. 404 is "not
  found". Any other 4xx is our request's fault: an error at once, no retry (asking again gets
  the same answer). 5xx, timeouts and connection errors are retried ``retries`` times after
  ``backoff * 2**attempt`` seconds (capped at ``backoff_max``).
- **Cache.** Found records for ``cache_ttl`` seconds, "not found" for ``negative_ttl``; at most
  ``cache_size`` entries, the least recently used dropped first. Errors are never cached: the
  next call tries again.
- **Failures never break a call.** ``lookup`` raises ``ExternalCrmError``; ``find`` (what the
  IVR and screen-pop call) logs it, counts it and answers None, so the flow takes its
  ``not_found`` exit instead of its error exit.
- **Write-back.** ``send(interaction)`` POSTs (``write_method``) the interaction as JSON to
  ``write_url`` (same placeholders, filled from the interaction) with the configured headers
  and an ``Idempotency-Key`` (the interaction's key), so a retry after a 5xx whose request did
  reach the CRM can be recognised there. It raises ``ExternalCrmError`` when the CRM refuses
  or stays down: the caller (a background task, never a live call) decides to keep it.

The decisions (URL, classification of an answer, back-off, mapping) are pure functions; the
aiohttp part is the thin loop in ``HttpCrm._request``. The ``aiohttp.ClientSession`` is passed
in: whoever wires the server owns it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import string
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from yarl import URL

from cti.errors import CtiError
from cti.phones import normalise_phone
from ivr.services import freeze

__all__ = [
    "PLACEHOLDERS",
    "CustomerSource",
    "ExternalCrmError",
    "ExternalCrmSettings",
    "HttpCrm",
    "InteractionSink",
    "LookupCache",
    "backoff_delays",
    "fill_template",
    "map_record",
    "template_placeholders",
]

log = logging.getLogger(__name__)

PLACEHOLDERS = frozenset({"phone", "account", "id", "name"})
#: lookup fields that use another placeholder's name (the store calls its own id ``ref``)
_FIELD_ALIASES = {"ref": "id", "ani": "phone"}

Record = Mapping[str, object]


class ExternalCrmError(CtiError):
    """The external CRM refused a request, answered something unusable, or could not be
    reached after the configured retries. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class CustomerSource(Protocol):
    """Where customer records come from (the same shape as ``ivr.ports.CustomerDirectory``)."""

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        """The customer whose ``field`` equals ``value``, or None; never raises for an
        unreachable back end (it answers None)."""
        ...


class InteractionSink(Protocol):
    """Where finished interactions are reported."""

    async def send(self, interaction: Mapping[str, Any]) -> None:
        """Deliver one interaction; raises ``ExternalCrmError`` when it could not."""
        ...


# -- settings ---------------------------------------------------------------------------------


def template_placeholders(template: str) -> frozenset[str]:
    """The placeholder names in ``template``; ``ValueError`` for anything but plain,
    known names (no ``{0}``, no ``{phone!r}``, no ``{phone:>10}``, no unknown name)."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered" and friends
        raise ValueError(f"malformed template: {exc}") from exc
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        if spec or conversion:
            raise ValueError(f"placeholder {{{name}}} takes no format or conversion")
        names.add(name)
    return frozenset(names)


def _check_url(value: str) -> str:
    template_placeholders(value)
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    return value


class ExternalCrmSettings(BaseModel):
    """The ``crm.external`` section: how to reach the external CRM."""

    # hide_input_in_errors: headers carry the auth token; a validation message must not quote it.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url_template: str = Field(
        description="lookup URL, e.g. https://crm/api/customers?phone={phone}"
    )
    write_url: str | None = Field(None, description="write-back URL (same placeholders); None: off")
    method: Literal["GET", "POST"] = "GET"
    write_method: Literal["POST", "PUT", "PATCH"] = "POST"
    #: sent with every request; values are secret (``Authorization: Bearer ...``)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(2.0, gt=0, description="seconds per attempt")
    retries: int = Field(2, ge=0, le=10, description="extra attempts after 5xx or timeout")
    backoff: float = Field(0.2, ge=0, description="first back-off, doubled each retry")
    backoff_max: float = Field(5.0, ge=0)
    cache_ttl: float = Field(60.0, ge=0, description="seconds a found record is reused; 0: off")
    negative_ttl: float = Field(30.0, ge=0, description="seconds a 'not found' is reused")
    cache_size: int = Field(1000, ge=0)
    #: our field -> dotted path in their JSON (``{"name": "contact.fullName"}``); empty: as is
    field_map: dict[str, str] = Field(default_factory=dict)
    #: dotted path of the record (or list of records) in the answer; empty: the answer itself
    result_path: str = ""
    #: for phone normalisation (``cti.phones.normalise_phone``), e.g. "49"
    country_code: str | None = Field(None, pattern=r"^[1-9][0-9]{0,3}$")

    _url = field_validator("url_template")(_check_url)

    @field_validator("write_url")
    @classmethod
    def _write_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


# -- pure parts -------------------------------------------------------------------------------


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each placeholder replaced by its URL-encoded value ("" if absent).
    ``quote(safe="")`` also encodes ``/``, ``?``, ``&`` and ``+``: a value can never change
    the URL's path or add a parameter (``+49...`` must not arrive as `` 49...``)."""
    encoded = {name: urllib.parse.quote(values.get(name, ""), safe="") for name in PLACEHOLDERS}
    return template.format_map(encoded)


def backoff_delays(retries: int, base: float, cap: float) -> tuple[float, ...]:
    """Seconds to wait before each retry: ``base``, ``2*base``, ``4*base``... at most ``cap``."""
    return tuple(min(cap, base * 2**attempt) for attempt in range(retries))


def _at_path(data: object, path: str) -> object:
    for part in path.split(".") if path else ():
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


def map_record(
    payload: object, field_map: Mapping[str, str], result_path: str = ""
) -> Record | None:
    """Our record from their answer: None when it holds no record; ``ExternalCrmError`` when
    it is not shaped like one. Mapped fields missing from their record are left out."""
    found = _at_path(payload, result_path)
    if isinstance(found, list):
        if not found:
            return None
        found = found[0]
    if found is None:
        return None
    if not isinstance(found, Mapping):
        raise ExternalCrmError(f"expected a JSON object, got {type(found).__name__}")
    if not field_map:
        record = found
    else:
        record = {}
        for ours, theirs in field_map.items():
            value = _at_path(found, theirs)
            if value is not None:
                record[ours] = value
    frozen = freeze(record)
    assert isinstance(frozen, Mapping)  # freeze keeps a mapping a mapping
    return frozen


@dataclass
class _Entry:
    record: Record | None
    expires: float


class LookupCache:
    """A bounded TTL cache of lookups, least recently used dropped first. ``get`` answers
    ``(hit, record)``: a hit with None is a cached "not found"."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str]) -> tuple[bool, Record | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry.expires <= self._clock():
            del self._entries[key]
            return False, None
        self._entries.move_to_end(key)
        return True, entry.record

    def put(self, key: tuple[str, str], record: Record | None, ttl: float) -> None:
        if ttl <= 0 or self.size <= 0:
            return
        self._entries[key] = _Entry(record, self._clock() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


# -- the adapter ------------------------------------------------------------------------------


class HttpCrm(CustomerSource, InteractionSink):
    """An external CRM over HTTP; see the module docstring for the rules."""

    def __init__(
        self,
        settings: ExternalCrmSettings,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._session = session
        self._sleep = sleep
        self._lookup_fields = template_placeholders(settings.url_template)
        self.cache = LookupCache(settings.cache_size, clock)
        self._headers = {name: value.get_secret_value() for name, value in settings.headers.items()}
        self._delays = backoff_delays(settings.retries, settings.backoff, settings.backoff_max)
        self._counts = dict.fromkeys(
            (
                "lookups_total",
                "cache_hits_total",
                "lookup_errors_total",
                "requests_total",
                "retries_total",
                "writes_total",
                "write_errors_total",
            ),
            0,
        )

    def stats(self) -> dict[str, float]:
        """Counters for ``cti.metrics`` (source name: ``external_crm``)."""
        return {**self._counts, "cache_entries": len(self.cache)}

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        try:
            return await self.lookup(field, value)
        except ExternalCrmError as exc:
            self._counts["lookup_errors_total"] += 1
            log.warning("external CRM lookup by %s failed, treated as not found: %s", field, exc)
            return None

    async def lookup(self, field: str, value: str) -> Mapping[str, object] | None:
        """As ``find``, but a failure raises ``ExternalCrmError``."""
        self._counts["lookups_total"] += 1
        placeholder = _FIELD_ALIASES.get(field, field)
        if placeholder not in self._lookup_fields:
            log.debug("external CRM url_template cannot look up by %s", field)
            return None
        if placeholder == "phone":
            value = normalise_phone(value, self.settings.country_code)
        value = value.strip()
        if not value:
            return None
        key = (placeholder, value)
        hit, cached = self.cache.get(key)
        if hit:
            self._counts["cache_hits_total"] += 1
            return cached
        url = fill_template(self.settings.url_template, {placeholder: value})
        where = self.settings.url_template
        status, body = await self._request(self.settings.method, url, where, None, {})
        if status == 404:
            record = None
        else:
            payload = _json(body, where)
            record = map_record(payload, self.settings.field_map, self.settings.result_path)
        ttl = self.settings.cache_ttl if record is not None else self.settings.negative_ttl
        self.cache.put(key, record, ttl)
        return record

    async def send(self, interaction: Mapping[str, Any]) -> None:
        url_template = self.settings.write_url
        if url_template is None:
            return
        key = str(interaction.get("key") or interaction.get("id") or "")
        values = {
            "id": key,
            "phone": str(interaction.get("phone") or interaction.get("ani") or ""),
            "account": str(interaction.get("account") or ""),
            "name": str(interaction.get("name") or ""),
        }
        url = fill_template(url_template, values)
        # default=str: the row may carry values JSON has no type for (Decimal, datetime).
        body = json.dumps(dict(interaction), default=str).encode()
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        self._counts["writes_total"] += 1
        try:
            status, _ = await self._request(
                self.settings.write_method, url, url_template, body, headers
            )
        except ExternalCrmError:
            self._counts["write_errors_total"] += 1
            raise
        if status == 404:
            self._counts["write_errors_total"] += 1
            raise ExternalCrmError(f"{url_template}: 404 Not Found", status=404)

    async def _request(
        self, method: str, url: str, where: str, body: bytes | None, extra: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """One request with retries: ``(status, body)`` for 2xx and 404; ``ExternalCrmError``
        for other 4xx at once and for 5xx/timeouts/connection errors once retries are spent."""
        headers = {**self._headers, **extra}
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        # Messages name the template (``where``), never the filled URL: it holds the caller's
        # number or name, which do not belong in logs.
        last: ExternalCrmError | None = None
        for attempt in range(len(self._delays) + 1):
            if attempt:
                self._counts["retries_total"] += 1
                await self._sleep(self._delays[attempt - 1])
            self._counts["requests_total"] += 1
            try:
                # encoded=True: yarl would otherwise re-normalise the query and turn our
                # %2B back into "+", which the CRM reads as a space.
                async with self._session.request(
                    method, URL(url, encoded=True), data=body, headers=headers, timeout=timeout
                ) as response:
                    status = response.status
                    payload = await response.read()
            except TimeoutError as exc:
                last = ExternalCrmError(f"{where}: no answer within {self.settings.timeout:g} s")
                last.__cause__ = exc
                continue
            except aiohttp.ClientError as exc:
                last = ExternalCrmError(f"{where}: {type(exc).__name__}: {exc}")
                last.__cause__ = exc
                continue
            if 200 <= status < 300 or status == 404:
                return status, payload
            if status >= 500:
                last = ExternalCrmError(f"{where}: HTTP {status}", status=status)
                continue
            raise ExternalCrmError(f"{where}: HTTP {status}", status=status)
        assert last is not None  # the loop runs at least once and only continues on an error
        raise last


def _json(body: bytes, where: str) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ExternalCrmError(f"{where}: answer is not JSON: {exc}") from exc
