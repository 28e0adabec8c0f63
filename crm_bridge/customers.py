"""Customers in the CRM store: validation, writing (import), lookup for screen-pop and IVR.

Lookups (``CustomerStore``):

- ``by_phone``: the caller's number is normalised with ``cti.phones.normalise_phone`` (and
  the store's ``country_code``, as on import) and compared with ``customer_phones.number``
  (indexed). A number may belong to several customers (a family's landline); all are
  returned, and the IVR port below treats that as "not found" rather than pick one at random.
- ``by_account`` and ``by_ref``: exact, on unique indexed columns.
- ``search_name``: case-insensitive on ``name_key`` (the name case-folded, whitespace
  collapsed, accents kept). ``prefix`` (default) matches names starting with the text and
  uses the ``name_key`` index (a ``LIKE 'x%'`` on PostgreSQL with the C collation, an index
  range on SQLite); ``contains`` matches anywhere and reads every row (slow on a million
  customers: a pg_trgm index would be needed).

Every lookup answers ``CustomerView``: the customer, their open cases (status other than
``closed``) and their last ``recent`` interactions, newest first, found by ``customer_id`` or
by ``customer_ref`` (the IVR records the ref it found).

Writing (``store_customers``) is all-or-nothing per customer: customers are written in chunks,
one transaction each; if the database refuses a chunk, it is rolled back and each of its
customers is written again alone, so only the one the database refuses is rejected (with the
database's reason). Writing is idempotent by ``ref``: an existing ref is updated (its phone
numbers replaced).

Tiers are a fixed set (``TIERS``, case-insensitive, stored lower case): the ACD's priorities and
the IVR's branches compare the tier exactly, and a typo ("Gold ", "gld") would silently cost a
VIP their priority. A center with other tier names passes its own set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from crm_bridge.insight import insight_for
from crm_bridge.schema import Case, Customer, CustomerPhone, Interaction
from cti.errors import ConfigError, CtiError
from cti.phones import normalise_phone
from ivr.ports import CustomerDirectory
from ivr.services import InMemoryCustomers, freeze

__all__ = [
    "CORE_FIELDS",
    "TIERS",
    "CaseInput",
    "CaseSummary",
    "CustomerInput",
    "CustomerRecord",
    "CustomerStore",
    "CustomerView",
    "InteractionSummary",
    "Rejected",
    "StoreCustomers",
    "StoreResult",
    "as_record",
    "check_country_code",
    "customer_fields",
    "import_yaml",
    "name_key",
    "store_customers",
    "validate_customer",
]

TIERS = frozenset({"standard", "silver", "gold", "platinum"})
#: the columns every customer has; anything else goes into ``custom``
CORE_FIELDS = (
    "ref",
    "name",
    "phones",
    "email",
    "account",
    "segment",
    "tier",
    "language",
    "notes",
)
_LIMITS = {"ref": 64, "name": 200, "email": 254, "account": 64, "segment": 64, "language": 16}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_PHONE_MAX = 32
_CHUNK = 500


def check_country_code(country_code: str | None) -> None:
    if country_code is not None and not re.fullmatch(r"[1-9][0-9]{0,3}", country_code):
        raise ConfigError("a country calling code such as 49 or 1", key="country_code")


def name_key(name: str) -> str:
    """The form names are searched in: case-folded, whitespace collapsed, accents kept."""
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class CaseInput:
    subject: str
    status: str = "open"


@dataclass(frozen=True)
class CustomerInput:
    """A validated customer, ready to be written."""

    ref: str
    name: str
    phones: tuple[str, ...] = ()  # normalised
    email: str | None = None
    account: str | None = None
    segment: str | None = None
    tier: str | None = None
    language: str | None = None
    notes: str | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)
    cases: tuple[CaseInput, ...] = ()


@dataclass(frozen=True)
class Rejected:
    """A customer that was not written: where it came from (``line``) and why."""

    line: int | None
    ref: str | None
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "record"
        ref = f" (ref {self.ref})" if self.ref else ""
        return f"{where}{ref}: {'; '.join(self.reasons)}"


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def validate_customer(
    fields: Mapping[str, object],
    *,
    country_code: str | None = None,
    tiers: frozenset[str] | None = TIERS,
) -> CustomerInput | list[str]:
    """A ``CustomerInput`` from raw fields, or the list of everything wrong with them.

    ``phones`` is a string of numbers separated by ``;`` or a list; each must normalise.
    ``tiers=None`` accepts any tier. Fields not in ``CORE_FIELDS`` (and not empty) become
    ``custom``.
    """
    reasons: list[str] = []
    values = {name: _text(fields.get(name)) for name in CORE_FIELDS if name != "phones"}
    for name in ("ref", "name"):
        if values[name] is None:
            reasons.append(f"{name} is required")
    for name, limit in _LIMITS.items():
        value = values.get(name)
        if value is not None and len(value) > limit:
            reasons.append(f"{name} is longer than {limit} characters")
    email = values["email"]
    if email is not None and not _EMAIL.fullmatch(email):
        reasons.append(f"email {email!r} is not an address (name@domain.tld)")
    tier = values["tier"]
    if tier is not None:
        tier = tier.lower()
        if tiers is not None and tier not in tiers:
            reasons.append(f"tier {tier!r} is not one of {', '.join(sorted(tiers))}")
    raw_phones = fields.get("phones")
    items: Iterable[object]
    if isinstance(raw_phones, str):
        items = raw_phones.split(";")
    elif isinstance(raw_phones, list | tuple):
        items = raw_phones  # YAML's lists
    else:
        items = () if raw_phones is None else (raw_phones,)
    phones: list[str] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        number = normalise_phone(text, country_code)
        if not number:
            reasons.append(f"phone {text!r} is not a phone number")
        elif len(number) > _PHONE_MAX:
            reasons.append(f"phone {text!r} is longer than {_PHONE_MAX} characters")
        elif number not in phones:
            phones.append(number)
    if reasons:
        return reasons
    custom = {
        str(key): value
        for key, value in fields.items()
        if key not in CORE_FIELDS and value is not None and value != ""
    }
    return CustomerInput(
        ref=values["ref"] or "",
        name=values["name"] or "",
        phones=tuple(phones),
        email=email,
        account=values["account"],
        segment=values["segment"],
        tier=tier,
        language=values["language"],
        notes=values["notes"],
        custom=custom,
    )


# -- writing ---------------------------------------------------------------------------------


@dataclass
class StoreResult:
    created: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)


Pending = tuple[int | None, CustomerInput]  # (line in the source, customer)


async def store_customers(
    engine: AsyncEngine,
    pending: Sequence[Pending],
    *,
    dry_run: bool = False,
    chunk: int = _CHUNK,
    clock: Callable[[], float] = time.time,
    progress: Callable[[int], None] | None = None,
) -> StoreResult:
    """Write (or, ``dry_run``, only check) validated customers; see the module docstring.

    Checks against the store: an account already held by another ref rejects the customer.
    ``progress`` is told how many customers have been handled so far. Raises ``CtiError``
    when the database cannot be reached (connection refused or lost).
    """
    result = StoreResult()
    try:
        await _store(engine, pending, result, dry_run, chunk, clock, progress)
    except (OSError, DBAPIError, PoolTimeout) as exc:
        if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
            raise  # not about reaching the database: a bug, let it show as one
        # Connection refused, lost, or pool exhausted: stop; what was committed stays (and a
        # second run is safe: writing is idempotent by ref).
        raise CtiError(
            f"the customer store is unavailable ({exc.__class__.__name__}: {exc}); "
            f"{result.created + result.updated} customers were written before it failed"
        ) from exc
    return result


async def _store(
    engine: AsyncEngine,
    pending: Sequence[Pending],
    result: StoreResult,
    dry_run: bool,
    chunk: int,
    clock: Callable[[], float],
    progress: Callable[[int], None] | None,
) -> None:
    done = 0
    for start in range(0, len(pending), chunk):
        part = list(pending[start : start + chunk])
        if dry_run:
            async with engine.connect() as conn:
                ok = await _check_accounts(conn, part, result)
                existing = await _existing(conn, [c.ref for _, c in ok])
            result.updated += sum(1 for _, c in ok if c.ref in existing)
            result.created += sum(1 for _, c in ok if c.ref not in existing)
        else:
            await _write_part(engine, part, result, clock())
        done += len(part)
        if progress is not None:
            progress(done)


async def _write_part(
    engine: AsyncEngine, part: list[Pending], result: StoreResult, now: float
) -> None:
    attempt = StoreResult()
    try:
        async with engine.begin() as conn:
            ok = await _check_accounts(conn, part, attempt)
            await _write(conn, ok, attempt, now)
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise  # the database went away: not this row's fault
        if len(part) == 1:
            result.rejected.append(_db_rejected(part[0], exc))
            return
        # One customer the database refuses must not cost the others their import: each one
        # again in its own transaction, so only that one is rejected.
        for item in part:
            await _write_part(engine, [item], result, now)
        return
    _merge(result, attempt)


def _merge(into: StoreResult, other: StoreResult) -> None:
    into.created += other.created
    into.updated += other.updated
    into.rejected.extend(other.rejected)


def _db_rejected(item: Pending, exc: DBAPIError) -> Rejected:
    orig = getattr(exc, "orig", None) or exc
    message = " ".join(str(orig).split())[:200]
    return Rejected(item[0], item[1].ref, (f"the database refused it: {message}",))


async def _existing(conn: AsyncConnection, refs: Sequence[str]) -> dict[str, int]:
    if not refs:
        return {}
    rows = await conn.execute(select(Customer.ref, Customer.id).where(Customer.ref.in_(refs)))
    return dict(rows.all())


async def _check_accounts(
    conn: AsyncConnection, part: list[Pending], result: StoreResult
) -> list[Pending]:
    accounts = [c.account for _, c in part if c.account]
    owners: dict[str, str] = {}
    if accounts:
        rows = await conn.execute(
            select(Customer.account, Customer.ref).where(Customer.account.in_(accounts))
        )
        owners = {account: ref for account, ref in rows.all() if account is not None}
    ok: list[Pending] = []
    for line, customer in part:
        owner = owners.get(customer.account or "")
        if owner is not None and owner != customer.ref:
            reason = f"account {customer.account!r} already belongs to customer {owner}"
            result.rejected.append(Rejected(line, customer.ref, (reason,)))
        else:
            ok.append((line, customer))
    return ok


def _columns(customer: CustomerInput, now: float) -> dict[str, Any]:
    return {
        "name": customer.name,
        "name_key": name_key(customer.name),
        "email": customer.email,
        "account": customer.account,
        "segment": customer.segment,
        "tier": customer.tier,
        "language": customer.language,
        "notes": customer.notes,
        "custom": dict(customer.custom),
        "updated_at": now,
    }


async def _write(
    conn: AsyncConnection, part: list[Pending], result: StoreResult, now: float
) -> None:
    if not part:
        return
    customers = [c for _, c in part]
    existing = await _existing(conn, [c.ref for c in customers])
    fresh = [c for c in customers if c.ref not in existing]
    if fresh:
        await conn.execute(
            insert(Customer),
            [{"ref": c.ref, "created_at": now, **_columns(c, now)} for c in fresh],
        )
    for c in customers:
        if c.ref in existing:
            await conn.execute(
                update(Customer).where(Customer.id == existing[c.ref]).values(_columns(c, now))
            )
    ids = await _existing(conn, [c.ref for c in customers])
    if existing:
        await conn.execute(
            delete(CustomerPhone).where(CustomerPhone.customer_id.in_(existing.values()))
        )
    phones = [
        {"customer_id": ids[c.ref], "number": number, "kind": "phone"}
        for c in customers
        for number in c.phones
    ]
    if phones:
        await conn.execute(insert(CustomerPhone), phones)
    for c in customers:
        if c.cases:
            await _write_cases(conn, ids[c.ref], c.cases, now)
    result.created += len(fresh)
    result.updated += len(customers) - len(fresh)


async def _write_cases(
    conn: AsyncConnection, customer_id: int, cases: Sequence[CaseInput], now: float
) -> None:
    # Cases have no key of their own: a case is the same case if its subject is, so
    # importing the same file twice does not open every case twice.
    rows = await conn.execute(select(Case.subject, Case.id).where(Case.customer_id == customer_id))
    known = dict(rows.all())
    for case in cases:
        closed_at = now if case.status == "closed" else None
        if case.subject in known:
            await conn.execute(
                update(Case).where(Case.id == known[case.subject]).values(status=case.status)
            )
        else:
            await conn.execute(
                insert(Case).values(
                    customer_id=customer_id,
                    subject=case.subject,
                    status=case.status,
                    opened_at=now,
                    closed_at=closed_at,
                )
            )


# -- lookup ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRecord:
    id: int
    ref: str
    name: str
    phones: tuple[str, ...]
    email: str | None
    account: str | None
    segment: str | None
    tier: str | None
    language: str | None
    notes: str | None
    custom: Mapping[str, Any]


def customer_fields(customer: CustomerRecord) -> dict[str, Any]:
    """The customer's own fields as plain JSON-able values: the one mapping from a stored
    customer to what the consoles, the screen-pop, the API and the IVR show. Custom fields and
    the shape of the phones are each caller's business (the screen-pop gives phones a kind, the
    IVR calls them ``phone`` like config/customers.yaml, the edit form merges ``custom``)."""
    c = customer
    return {
        "ref": c.ref,
        "name": c.name,
        "email": c.email,
        "account": c.account,
        "segment": c.segment,
        "tier": c.tier,
        "language": c.language,
        "notes": c.notes,
        "phones": list(c.phones),
    }


@dataclass(frozen=True)
class CaseSummary:
    id: int
    subject: str
    status: str
    opened_at: float


@dataclass(frozen=True)
class InteractionSummary:
    key: str
    started_at: float
    channel: str
    direction: str
    queue: str | None
    agent_id: str | None
    outcome: str | None
    disposition: str | None
    wait_seconds: float | None
    talk_seconds: float | None
    notes: str | None = None  # the agent's wrap-up notes


@dataclass(frozen=True)
class CustomerView:
    """What a screen-pop shows: the customer, open cases, last interactions (newest first)."""

    customer: CustomerRecord
    open_cases: tuple[CaseSummary, ...]
    recent: tuple[InteractionSummary, ...]


_SUMMARY = (
    Interaction.id,
    Interaction.key,
    Interaction.started_at,
    Interaction.channel,
    Interaction.direction,
    Interaction.queue,
    Interaction.agent_id,
    Interaction.outcome,
    Interaction.disposition,
    Interaction.wait_seconds,
    Interaction.talk_seconds,
    Interaction.notes,
    Interaction.customer_id,
    Interaction.customer_ref,
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class CustomerStore:
    """Lookups over the store (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine, *, country_code: str | None = None, recent: int = 5
    ) -> None:
        check_country_code(country_code)
        self.engine = engine
        self.country_code = country_code
        self.recent = recent

    async def by_phone(self, number: str, *, limit: int = 20) -> list[CustomerView]:
        key = normalise_phone(number, self.country_code)
        if not key:
            return []
        ids = (
            select(CustomerPhone.customer_id)
            .where(CustomerPhone.number == key)
            .order_by(CustomerPhone.customer_id)
            .limit(limit)
        )
        return await self._views(Customer.id.in_(ids.scalar_subquery()), limit)

    async def by_account(self, account: str) -> CustomerView | None:
        views = await self._views(Customer.account == account.strip(), 1)
        return views[0] if views else None

    async def by_ref(self, ref: str) -> CustomerView | None:
        views = await self._views(Customer.ref == ref.strip(), 1)
        return views[0] if views else None

    async def search_name(
        self, text: str, *, mode: Literal["prefix", "contains"] = "prefix", limit: int = 20
    ) -> list[CustomerView]:
        key = name_key(text)
        if not key:
            return []
        escaped = _like_escape(key)
        pattern = f"{escaped}%" if mode == "prefix" else f"%{escaped}%"
        condition: Any = Customer.name_key.like(pattern, escape="\\")
        if mode == "prefix" and self.engine.dialect.name == "sqlite":
            # SQLite's LIKE is case-insensitive and so cannot use a BINARY index; the range
            # can (the LIKE stays, to be exact).
            condition = condition & Customer.name_key.between(key, key + "\U0010ffff")
        return await self._views(condition, limit)

    async def _views(self, condition: Any, limit: int) -> list[CustomerView]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(Customer).where(condition).order_by(Customer.name_key).limit(limit)
                )
            ).all()
            if not rows:
                return []
            ids = [row.id for row in rows]
            refs = [row.ref for row in rows]
            phones: dict[int, list[str]] = {}
            for cid, number in (
                await conn.execute(
                    select(CustomerPhone.customer_id, CustomerPhone.number)
                    .where(CustomerPhone.customer_id.in_(ids))
                    .order_by(CustomerPhone.id)
                )
            ).all():
                phones.setdefault(cid, []).append(number)
            cases: dict[int, list[CaseSummary]] = {}
            for case in (
                await conn.execute(
                    select(Case.id, Case.customer_id, Case.subject, Case.status, Case.opened_at)
                    .where(Case.customer_id.in_(ids), Case.status != "closed")
                    .order_by(Case.opened_at.desc(), Case.id.desc())
                )
            ).all():
                summary = CaseSummary(case.id, case.subject, case.status, case.opened_at)
                cases.setdefault(case.customer_id, []).append(summary)
            recent = await self._recent(conn, ids, refs)
        return [
            CustomerView(
                CustomerRecord(
                    id=row.id,
                    ref=row.ref,
                    name=row.name,
                    phones=tuple(phones.get(row.id, ())),
                    email=row.email,
                    account=row.account,
                    segment=row.segment,
                    tier=row.tier,
                    language=row.language,
                    notes=row.notes,
                    custom=MappingProxyType(dict(row.custom or {})),
                ),
                tuple(cases.get(row.id, ())),
                tuple(recent.get(row.id, ())),
            )
            for row in rows
        ]

    async def _recent(
        self, conn: AsyncConnection, ids: list[int], refs: list[str]
    ) -> dict[int, list[InteractionSummary]]:
        if self.recent <= 0:
            return {}
        ref_to_id = dict(zip(refs, ids, strict=True))
        found: dict[int, dict[str, tuple[int, InteractionSummary]]] = {}
        # The last N per customer in one query each way (by id, by ref): a window function,
        # which both SQLite (3.25+) and PostgreSQL have.
        for column, values in ((Interaction.customer_id, ids), (Interaction.customer_ref, refs)):
            number = (
                func.row_number()
                .over(
                    partition_by=column,
                    order_by=(Interaction.started_at.desc(), Interaction.id.desc()),
                )
                .label("n")
            )
            inner = select(*_SUMMARY, number).where(column.in_(values)).subquery()
            rows = await conn.execute(select(inner).where(inner.c.n <= self.recent))
            for row in rows.all():
                owner = row.customer_id if column is Interaction.customer_id else None
                if owner is None:
                    owner = ref_to_id.get(row.customer_ref or "")
                if owner is None or owner not in ids:
                    continue
                summary = InteractionSummary(
                    row.key,
                    row.started_at,
                    row.channel,
                    row.direction,
                    row.queue,
                    row.agent_id,
                    row.outcome,
                    row.disposition,
                    row.wait_seconds,
                    row.talk_seconds,
                    row.notes,
                )
                found.setdefault(owner, {})[row.key] = (row.id, summary)
        return {
            owner: [
                s
                for _, s in sorted(
                    items.values(), key=lambda p: (p[1].started_at, p[0]), reverse=True
                )[: self.recent]
            ]
            for owner, items in found.items()
        }


# -- the IVR's directory ---------------------------------------------------------------------


def as_record(view: CustomerView) -> Mapping[str, object]:
    """The record the IVR's flows see, shaped like config/customers.yaml's: custom fields
    first, then the columns (which win), open cases and recent interactions."""
    c = view.customer
    record: dict[str, object] = dict(c.custom)
    core = {"id": c.ref, **customer_fields(c)}
    core["phone"] = core.pop("phones")
    record.update({k: v for k, v in core.items() if v is not None})
    if not record.get("first_name"):
        # A guess (the first word), for greetings when the source had no first_name.
        record["first_name"] = c.name.split()[0] if c.name.split() else c.name
    record["open_cases"] = len(view.open_cases)
    record["cases"] = [
        {"id": case.id, "subject": case.subject, "status": case.status} for case in view.open_cases
    ]
    record["recent"] = [
        {"key": i.key, "started_at": i.started_at, "outcome": i.outcome, "queue": i.queue}
        for i in view.recent
    ]
    frozen = freeze(record)
    assert isinstance(frozen, Mapping)
    return frozen


class StoreCustomers(CustomerDirectory):
    """``ivr.ports.CustomerDirectory`` over the store.

    Fields: ``ani``/``phone`` (normalised; a number held by several customers finds nobody,
    as a lookup must never pick one at random), ``account``, ``id``/``ref``. Other fields
    cannot be looked up in the store: ``ConfigError`` (a flow names a field it cannot use).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        country_code: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = CustomerStore(engine, country_code=country_code)
        self._engine = engine
        self._clock = clock

    async def find(self, field: str, value: str) -> Mapping[str, object] | None:
        view: CustomerView | None
        if field in ("ani", "phone"):
            views = await self.store.by_phone(value, limit=2)
            view = views[0] if len(views) == 1 else None
        elif field == "account":
            view = await self.store.by_account(value)
        elif field in ("id", "ref"):
            view = await self.store.by_ref(value)
        else:
            raise ConfigError(
                f"the customer store cannot look customers up by {field!r} "
                "(ani, phone, account, id or ref)",
                key="lookup.field",
            )
        if view is None:
            return None
        record = as_record(view)
        # What the history says (crm_bridge.insight): the flow can branch on it
        # (customer.insight.repeat_caller) and the screen-pop shows the reasons.
        found = await insight_for(self._engine, view.customer.ref, self._clock())
        insight = {
            "repeat_caller": found.repeat_caller,
            "churn_warning": found.churn_warning,
            "contacts_7d": found.contacts_7d,
            "contacts_30d": found.contacts_30d,
            "last_outcome": found.last_outcome,
            "reasons": list(found.reasons),
        }
        return MappingProxyType({**record, "insight": MappingProxyType(insight)})


def _read_yaml(path: Path, country_code: str | None) -> Any:
    # The in-memory directory's loader checks the file (quoted numbers, no duplicates) and
    # names the line of a mistake; the records are then read again as plain data.
    InMemoryCustomers.from_yaml(path, country_code=country_code)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


async def import_yaml(
    engine: AsyncEngine,
    path: Path,
    *,
    country_code: str | None = None,
    tiers: frozenset[str] | None = TIERS,
) -> StoreResult:
    """Import the demo's ``config/customers.yaml`` (``InMemoryCustomers``' format) into the
    store: ``id`` becomes ``ref``, ``phone`` the phones, ``cases`` the customer's cases
    (matched by subject on a second import), ``open_cases`` is dropped (the store counts
    them), anything else (``first_name``, ``balance``...) goes into ``custom``."""
    data = await asyncio.to_thread(_read_yaml, path, country_code)
    pending: list[Pending] = []
    rejected: list[Rejected] = []
    for position, record in enumerate(data["customers"], start=1):
        fields = {str(k): v for k, v in record.items() if k not in ("open_cases", "cases")}
        fields["ref"] = fields.pop("id", None)
        fields["phones"] = fields.pop("phone", None)
        valid = validate_customer(fields, country_code=country_code, tiers=tiers)
        if isinstance(valid, list):
            ref = _text(fields.get("ref"))
            rejected.append(Rejected(None, ref, (f"customer #{position}", *valid)))
            continue
        cases = tuple(
            CaseInput(str(case["subject"]), str(case.get("status") or "open"))
            for case in record.get("cases") or ()
            if isinstance(case, Mapping) and case.get("subject")
        )
        pending.append((None, dataclasses.replace(valid, cases=cases)))
    result = await store_customers(engine, pending)
    result.rejected[:0] = rejected
    return result
