"""Small back ends for the IVR's ports, used when the server runs without the CRM store
(``crm.enabled=false``) or without the ACD, and by tests.

- ``InMemoryCustomers``: the ``CustomerDirectory`` over a list of records (``config/
  customers.yaml`` in the demo), with phone-number normalisation for caller-number lookups
  (``cti.phones.normalise_phone``, re-exported here for the modules that import it from here).
- ``AppQueueGateway``: the ``QueueGateway`` over Asterisk's app_queue: ``Queue()`` run from
  the AGI on the queue of the same name (config/asterisk/queues.conf), its ``QUEUESTATUS``
  mapped to a ``QueueOutcome``; screen-pop data goes on the channel first.
- ``MemoryCallbacks``: the ``CallbackStore`` as a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from cti.errors import AgiHangup, ConfigError
from cti.phones import normalise_phone
from ivr.ports import (
    CallbackRequest,
    CallbackStore,
    CallControl,
    CustomerDirectory,
    QueueFigures,
    QueueGateway,
    QueueOutcome,
    QueueRequest,
)

__all__ = [
    "AppQueueGateway",
    "InMemoryCustomers",
    "MemoryCallbacks",
    "freeze",
    "normalise_phone",
    "pop_variables",
]

Record = Mapping[str, object]

# -- customers ------------------------------------------------------------------------------


def freeze(value: object) -> object:
    """A read-only deep copy (mappings become read-only mappings, lists tuples): whoever
    reads a record handed out by a directory or a cache cannot change it."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(key): freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def _freeze_record(record: Mapping[Any, object]) -> Record:
    return MappingProxyType({str(key): freeze(item) for key, item in record.items()})


def _values(record: Record, field: str) -> Iterator[object]:
    value = record.get(field)
    if isinstance(value, tuple):
        yield from value
    elif value is not None:
        yield value


def _customer_nodes(root: yaml.Node | None) -> list[yaml.Node] | None:
    """The YAML nodes of the ``customers:`` items (for their line numbers)."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == "customers":
            return list(value.value) if isinstance(value, yaml.SequenceNode) else None
    return None


class InMemoryCustomers(CustomerDirectory):
    """Customer records in memory. ``find(field, value)`` returns the first record whose
    ``field`` equals ``value`` (a field may hold a list: any element matches).

    Phone fields (``phone_fields``, default ``phone``) are compared after
    ``normalise_phone``; other fields as text (``str(value)``, surrounding spaces ignored).
    Two records with the same phone number or the same ``unique`` field value (default
    ``id`` and ``account``) are refused: a lookup must never pick a customer at random.
    ``origins`` (one "file:line" per record) makes those messages point at the record.
    """

    def __init__(
        self,
        records: Sequence[Record],
        *,
        country_code: str | None = None,
        phone_fields: Sequence[str] = ("phone",),
        unique: Sequence[str] = ("id", "account"),
        source: str = "customers",
        origins: Sequence[str] | None = None,
    ) -> None:
        if country_code is not None and not re.fullmatch(r"[1-9][0-9]{0,3}", country_code):
            raise ConfigError("a country calling code such as 49 or 1", key="country_code")
        self.country_code = country_code
        self.phone_fields = frozenset(phone_fields)
        self._source = source
        self._records: list[Record] = []
        for index, record in enumerate(records):
            where = origins[index] if origins is not None else source
            if not isinstance(record, Mapping):
                raise ConfigError("a customer is a mapping of fields", source=where)
            self._records.append(_freeze_record(record))
        self._indexes: dict[str, dict[str, Record]] = {}
        for field in (*self.phone_fields, *unique):
            self._indexes[field] = self._unique_index(field, origins)

    def __len__(self) -> int:
        return len(self._records)

    @classmethod
    def from_yaml(cls, path: Path, *, country_code: str | None = None) -> InMemoryCustomers:
        """Load ``customers: [ {id, name, phone, account, tier, ...}, ... ]`` from ``path``.

        Phone numbers and account numbers must be quoted strings: YAML reads ``0301234`` as
        an octal number and ``5551234`` as an integer, and a lookup must see what was written.
        """
        try:
            text = path.read_text(encoding="utf-8")
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"not valid YAML: {exc}", source=where) from exc
        items = _customer_nodes(root)
        if items is None or not isinstance(data, Mapping):
            raise ConfigError("expected a top-level 'customers:' list", source=str(path))
        origins = [f"{path}:{node.start_mark.line + 1}" for node in items]
        customers: list[object] = data["customers"]
        records: list[Record] = []
        for record, origin in zip(customers, origins, strict=True):
            if not isinstance(record, Mapping):
                raise ConfigError("a customer is a mapping of fields", source=origin)
            frozen = _freeze_record(record)
            for field in ("phone", "account"):
                for value in _values(frozen, field):
                    if not isinstance(value, str):
                        raise ConfigError(
                            f"{value!r} must be a quoted string (YAML reads unquoted "
                            "numbers as integers, and 0301234 as octal)",
                            source=origin,
                            key=field,
                        )
            records.append(frozen)
        return cls(records, country_code=country_code, source=str(path), origins=origins)

    def _key(self, field: str, value: object) -> str:
        if field in self.phone_fields:
            return normalise_phone(str(value), self.country_code)
        return str(value).strip()

    def _unique_index(self, field: str, origins: Sequence[str] | None) -> dict[str, Record]:
        index: dict[str, Record] = {}
        for position, record in enumerate(self._records):
            for value in _values(record, field):
                key = self._key(field, value)
                if not key:
                    continue
                if key in index and index[key] is not record:
                    where = origins[position] if origins is not None else self._source
                    raise ConfigError(
                        f"{value!r} also belongs to an earlier customer "
                        f"({index[key].get('id', '?')}): lookups would be ambiguous",
                        source=where,
                        key=field,
                    )
                index[key] = record
        return index

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        key = self._key(field, value)
        if not key:
            return None
        # Fields not indexed at start are indexed on first use; a duplicate there is not an
        # error (first wins), since no one promised they were unique.
        index = self._indexes.get(field)
        if index is None:
            index = {}
            for record in self._records:
                for item in _values(record, field):
                    index.setdefault(self._key(field, item), record)
            self._indexes[field] = index
        return index.get(key)


# -- queues ---------------------------------------------------------------------------------

_QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")
_VAR_KEY = re.compile(r"[^A-Z0-9_]")

#: QUEUESTATUS values for "the queue would not take or keep the call" (apps/app_queue.c,
#: queue_results[]): UNKNOWN is what Queue() sets when the queue does not exist.
_UNAVAILABLE = frozenset(
    {"FULL", "JOINEMPTY", "LEAVEEMPTY", "JOINUNAVAIL", "LEAVEUNAVAIL", "WITHDRAW", "UNKNOWN"}
)


def _pop_items(prefix: str, value: object, depth: int) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        if depth >= 3:
            return
        for key, item in value.items():
            name = _VAR_KEY.sub("_", str(key).upper())
            yield from _pop_items(f"{prefix}_{name}" if prefix else name, item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        yield prefix, ",".join(str(item) for item in value)
    elif value is None:
        yield prefix, ""
    elif isinstance(value, bool):
        yield prefix, "true" if value else "false"
    else:
        yield prefix, str(value)


def pop_variables(
    data: Mapping[str, object], *, prefix: str = "CTI_POP_", max_value: int = 256
) -> dict[str, str]:
    """Screen-pop data as channel variables: ``{"account": "123", "customer": {"tier":
    "gold"}}`` -> ``{"CTI_POP_ACCOUNT": "123", "CTI_POP_CUSTOMER_TIER": "gold"}``.

    Names are upper-cased with anything but ``A-Z 0-9 _`` turned into ``_``; nested mappings
    are flattened (three levels at most), lists joined with commas. Values lose their line
    breaks (a FastAGI command is one line, res_agi.c) and are cut at ``max_value`` characters.
    """
    variables: dict[str, str] = {}
    for name, value in _pop_items("", data, 0):
        if name:
            flat = " ".join(value.splitlines())
            variables[prefix + name] = flat[:max_value]
    return variables


class AppQueueGateway(QueueGateway):
    """The ACD stand-in: Asterisk's app_queue, driven from the IVR's AGI session.

    ``enqueue`` (all on the caller's channel):

    1. screen-pop data: one ``CTI_POP_<KEY>`` variable per item (see ``pop_variables``), and
       ``CTI_POPS`` listing them (not ``CTI_POP_KEYS``, which is the screen-pop item
       ``keys``: the caller's key presses), set with a ``__`` prefix so the agent's channel that
       app_queue dials inherits them (main/channel.c, ast_channel_inherit_variables): an AMI
       or AGI consumer on either side reads them; ``CTI_SKILLS`` (``english:3,...``) for
       information, since app_queue has no skills; ``QUEUE_PRIO`` = the request's priority,
       which app_queue reads for the caller's place in line (app_queue.c, queue_exec);
    2. ``QUEUESTATUS`` and ``MEMBERINTERFACE`` cleared: app_queue does not reset them, so a
       second Queue() in one call would otherwise read the first one's;
    3. ``Queue(queue,options,,,timeout)``;
    4. QUEUESTATUS and ABANDONED read back (GET VARIABLE works on a hung-up channel) and
       mapped: FULL, JOINEMPTY, JOINUNAVAIL, LEAVEEMPTY, LEAVEUNAVAIL, WITHDRAW and UNKNOWN
       (no such queue) -> unavailable; TIMEOUT -> timeout; ABANDONED=TRUE with no status ->
       abandoned (the caller hung up waiting); CONTINUE or no status -> answered (an agent
       took the call; app_queue sets no status then). A connection lost on the way (the
       caller hung up and Asterisk ended the AGI) -> abandoned.

    ``figures`` answers from what ``update`` was last told (the lead's AMI wiring feeds it);
    a queue nobody reported on has no agent available and no estimate.
    """

    def __init__(self, *, timeout: int = 300, options: str = "", max_value: int = 256) -> None:
        if timeout <= 0:
            raise ConfigError("seconds a caller may wait, > 0", key="ivr.queue.timeout")
        if not re.fullmatch(r"[A-Za-z()0-9]*", options):
            raise ConfigError("Queue() option letters", key="ivr.queue.options")
        self.timeout = timeout
        self.options = options
        self.max_value = max_value
        self._figures: dict[str, QueueFigures] = {}

    def update(self, queue: str, figures: QueueFigures) -> None:
        self._figures[queue] = figures

    def figures(self, queue: str) -> QueueFigures:
        return self._figures.get(queue, QueueFigures(agents_available=0, estimated_wait=None))

    async def enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome:
        if not _QUEUE_NAME.fullmatch(request.queue):
            # A comma would shift Queue()'s arguments: refuse instead of guessing.
            return QueueOutcome("unavailable", f"invalid queue name {request.queue!r}")
        try:
            return await self._enqueue(request, control)
        except AgiHangup as exc:
            return QueueOutcome("abandoned", f"caller hung up ({exc})")

    async def _enqueue(self, request: QueueRequest, control: CallControl) -> QueueOutcome:
        variables = pop_variables(request.data, max_value=self.max_value)
        for name, value in variables.items():
            await control.set_variable(f"__{name}", value)
        keys = ",".join(name.removeprefix("CTI_POP_") for name in variables)
        await control.set_variable("__CTI_POPS", keys)
        skills = ",".join(f"{skill}:{level}" for skill, level in request.skills.items())
        await control.set_variable("__CTI_SKILLS", skills)
        await control.set_variable("QUEUE_PRIO", str(request.priority))
        # app_queue resets neither of these: a second Queue() in one call would read the
        # first one's (MEMBERINTERFACE is set only with setinterfacevar=yes, queues.conf).
        await control.set_variable("QUEUESTATUS", "")
        await control.set_variable("MEMBERINTERFACE", "")
        result = await control.exec("Queue", request.queue, self.options, "", "", str(self.timeout))
        status = (await control.get_variable("QUEUESTATUS") or "").upper()
        abandoned = (await control.get_variable("ABANDONED") or "").upper() == "TRUE"
        if status in _UNAVAILABLE:
            return QueueOutcome("unavailable", status)
        if status == "TIMEOUT":
            return QueueOutcome("timeout", status)
        if abandoned:
            return QueueOutcome("abandoned", f"caller hung up in queue (result {result})")
        member = await control.get_variable("MEMBERINTERFACE") or ""
        return QueueOutcome("answered", member or status or "answered")


# -- callbacks ------------------------------------------------------------------------------


class MemoryCallbacks(CallbackStore):
    """Callback requests in memory, oldest first (lost on restart: the CRM issue replaces
    this with a stored queue)."""

    def __init__(self) -> None:
        self._requests: list[CallbackRequest] = []

    async def add(self, request: CallbackRequest) -> None:
        self._requests.append(request)

    def pending(self) -> tuple[CallbackRequest, ...]:
        return tuple(self._requests)

    def take(self) -> CallbackRequest | None:
        """The oldest pending request, removed; None if there is none."""
        return self._requests.pop(0) if self._requests else None
