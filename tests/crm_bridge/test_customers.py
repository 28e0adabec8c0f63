"""Customer lookups, writing and the IVR's directory over the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_bridge.customers import (
    CaseInput,
    CustomerInput,
    CustomerStore,
    StoreCustomers,
    check_country_code,
    import_yaml,
    name_key,
    store_customers,
    validate_customer,
)
from crm_bridge.schema import Case, Customer, CustomerPhone, Interaction
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writer import InteractionWriter
from cti.errors import ConfigError
from ivr.services import InMemoryCustomers

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "customers.yaml"
T0 = 1_800_000_000.0


def customer(ref: str, name: str, *phones: str, account: str | None = None) -> CustomerInput:
    valid = validate_customer(
        {"ref": ref, "name": name, "phones": list(phones), "account": account},
        country_code="49",
    )
    assert isinstance(valid, CustomerInput), valid
    return valid


async def seed(engine: AsyncEngine, *items: CustomerInput) -> None:
    result = await store_customers(engine, [(None, item) for item in items], clock=lambda: T0)
    assert result.rejected == []


async def add_interaction(
    engine: AsyncEngine,
    key: str,
    at: float,
    *,
    customer_id: int | None = None,
    ref: str | None = None,
    outcome: str = "answered",
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            insert(Interaction).values(
                key=key,
                started_at=at,
                updated_at=at,
                customer_id=customer_id,
                customer_ref=ref,
                outcome=outcome,
                queue="sales",
                channel="voice",
                direction="inbound",
                ivr_path=[],
                ivr_variables={},
                skills={},
                agents=[],
                priority=0,
                transfers=0,
            )
        )


# -- validation (pure) -----------------------------------------------------------------------


def test_validation_names_every_problem() -> None:
    reasons = validate_customer(
        {"ref": " ", "name": "", "phones": "0301234;abc", "email": "no-at", "tier": "Gld"}
    )
    assert reasons == [
        "ref is required",
        "name is required",
        "email 'no-at' is not an address (name@domain.tld)",
        "tier 'gld' is not one of gold, platinum, silver, standard",
        "phone 'abc' is not a phone number",
    ]


def test_validation_normalises_and_keeps_extra_fields_as_custom() -> None:
    valid = validate_customer(
        {
            "ref": "C1",
            "name": "  Ada Lovelace ",
            "phones": "030 123-4; +49 30 1234 ;",
            "tier": "GOLD",
            "first_name": "Ada",
            "balance": 12.5,
            "empty": "",
        },
        country_code="49",
    )
    assert isinstance(valid, CustomerInput)
    assert valid.name == "Ada Lovelace"
    assert valid.phones == ("+49301234",)  # both spellings are one number
    assert valid.tier == "gold"
    assert valid.custom == {"first_name": "Ada", "balance": 12.5}
    assert isinstance(
        validate_customer({"ref": "C1", "name": "x", "tier": "diamond"}, tiers=None),
        CustomerInput,
    )


def test_name_key_folds_case_and_spaces_keeps_accents() -> None:
    assert name_key("  Zoë   DUPONT ") == "zoë dupont"


def test_country_code_is_checked() -> None:
    check_country_code("49")
    with pytest.raises(ConfigError, match="country calling code"):
        check_country_code("+49")


# -- lookups ---------------------------------------------------------------------------------


async def test_lookup_by_phone_account_ref(engine: AsyncEngine) -> None:
    await seed(
        engine,
        customer("C1", "Ada Lovelace", "030 1234567", "5551234", account="100200"),
        customer("C2", "Charles Babbage", "+1 202 555 0143", account="100300"),
    )
    store = CustomerStore(engine, country_code="49")
    # the caller's number in another spelling of the same number
    views = await store.by_phone("+49 (30) 1234567")
    assert [v.customer.ref for v in views] == ["C1"]
    assert views[0].customer.phones == ("+49301234567", "5551234")
    assert [v.customer.ref for v in await store.by_phone("0049301234567")] == ["C1"]
    assert await store.by_phone("anonymous") == []
    assert await store.by_phone("5559999") == []
    account = await store.by_account(" 100300 ")
    assert account is not None
    assert account.customer.ref == "C2"
    assert await store.by_account("999") is None
    ref = await store.by_ref("C2")
    assert ref is not None
    assert ref.customer.name == "Charles Babbage"


async def test_shared_number_finds_every_holder(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada", "5550000"), customer("C2", "Bob", "5550000"))
    views = await CustomerStore(engine).by_phone("555 0000")
    assert sorted(v.customer.ref for v in views) == ["C1", "C2"]
    # the IVR must not pick one at random: nobody
    assert await StoreCustomers(engine).find("ani", "5550000") is None


async def test_name_search_prefix_and_contains(engine: AsyncEngine) -> None:
    await seed(
        engine,
        customer("C1", "Ada Lovelace"),
        customer("C2", "Adam Smith"),
        customer("C3", "Grace Hopper"),
        customer("C4", "100%_Percent"),
    )
    store = CustomerStore(engine)
    assert [v.customer.ref for v in await store.search_name("ADA")] == ["C1", "C2"]
    assert [v.customer.ref for v in await store.search_name("ada l")] == ["C1"]
    assert [v.customer.ref for v in await store.search_name("ace")] == []
    contains = await store.search_name("ACE", mode="contains")
    assert [v.customer.ref for v in contains] == ["C1", "C3"]
    # LIKE's wildcards in the text are plain characters
    assert [v.customer.ref for v in await store.search_name("100%_")] == ["C4"]
    assert await store.search_name("%") == []
    assert await store.search_name("   ") == []
    assert len(await store.search_name("a", limit=1)) == 1


async def test_results_carry_open_cases_and_last_interactions(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada", "5551234"), customer("C2", "Bob", "5552000"))
    store = CustomerStore(engine, recent=3)
    ada = await store.by_ref("C1")
    assert ada is not None
    assert ada.open_cases == ()
    assert ada.recent == ()
    cid = ada.customer.id
    async with engine.begin() as conn:
        await conn.execute(
            insert(Case),
            [
                {"customer_id": cid, "subject": "old", "status": "closed", "opened_at": T0},
                {"customer_id": cid, "subject": "invoice", "status": "open", "opened_at": T0 + 1},
                {"customer_id": cid, "subject": "router", "status": "waiting", "opened_at": T0 + 2},
            ],
        )
    # linked by id, by ref only (what the IVR records), and someone else's
    await add_interaction(engine, "k1", T0 + 10, customer_id=cid)
    await add_interaction(engine, "k2", T0 + 20, ref="C1", outcome="abandoned")
    await add_interaction(engine, "k3", T0 + 30, customer_id=cid, ref="C1")
    await add_interaction(engine, "k4", T0 + 40, ref="C1")
    await add_interaction(engine, "k5", T0 + 50, ref="C2")
    found = await store.by_phone("5551234")
    assert len(found) == 1
    view = found[0]
    assert [c.subject for c in view.open_cases] == ["router", "invoice"]
    assert [i.key for i in view.recent] == ["k4", "k3", "k2"]
    assert view.recent[2].outcome == "abandoned"
    bob = await store.by_ref("C2")
    assert bob is not None
    assert [i.key for i in bob.recent] == ["k5"]


async def test_update_by_ref_replaces_phones_and_keeps_id(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada", "5551234", account="1"))
    store = CustomerStore(engine)
    before = await store.by_ref("C1")
    assert before is not None
    result = await store_customers(
        engine, [(3, customer("C1", "Ada King", "5559999", account="2"))]
    )
    assert (result.created, result.updated, result.rejected) == (0, 1, [])
    after = await store.by_ref("C1")
    assert after is not None
    assert after.customer.id == before.customer.id
    assert after.customer.name == "Ada King"
    assert after.customer.phones == ("5559999",)
    assert after.customer.account == "2"
    assert await store.by_phone("5551234") == []
    assert [v.customer.ref for v in await store.search_name("ada k")] == ["C1"]


async def test_account_of_another_customer_is_rejected(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada", account="100"))
    result = await store_customers(
        engine,
        [(2, customer("C2", "Bob", "5552000", account="100")), (3, customer("C3", "Eve"))],
    )
    assert result.created == 1
    assert [(r.line, r.ref) for r in result.rejected] == [(2, "C2")]
    assert "already belongs to customer C1" in result.rejected[0].reasons[0]
    assert await CustomerStore(engine).by_ref("C2") is None
    async with engine.connect() as conn:
        phones = (await conn.execute(select(func.count()).select_from(CustomerPhone))).scalar()
    assert phones == 0  # nothing of C2 was written


async def test_dry_run_writes_nothing(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada"))
    result = await store_customers(
        engine, [(1, customer("C1", "Ada L")), (2, customer("C2", "Bob"))], dry_run=True
    )
    assert (result.created, result.updated) == (1, 1)
    async with engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(select(Customer.ref, Customer.name))]
    assert rows == [("C1", "Ada")]


# -- the IVR's directory ---------------------------------------------------------------------


async def test_demo_yaml_imports_and_answers_like_the_in_memory_directory(
    engine: AsyncEngine,
) -> None:
    result = await import_yaml(engine, DEMO)
    assert (result.created, result.updated, result.rejected) == (4, 0, [])
    again = await import_yaml(engine, DEMO)  # idempotent: updated, no second case
    assert (again.created, again.updated) == (0, 4)

    store = StoreCustomers(engine)
    memory = InMemoryCustomers.from_yaml(DEMO)
    for field, value in [
        ("ani", "5551234"),
        ("phone", "+49 30 1234567"),
        ("ani", "+12025550143"),
        ("phone", "004989 7654321"),
        ("account", "100300"),
        ("id", "C1004"),
    ]:
        # the in-memory directory knows "phone" only; the store takes "ani" as well
        expected = await memory.find("phone" if field == "ani" else field, value)
        found = await store.find(field, value)
        assert expected is not None
        assert found is not None, (field, value)
        for key in ("id", "name", "first_name", "account", "tier", "language", "open_cases"):
            assert found[key] == expected[key], (field, value, key)
        assert found.get("balance") == expected.get("balance")
    assert await store.find("ani", "5550000") is None
    ada = await store.find("id", "C1001")
    assert ada is not None
    assert ada["phone"] == ("5551234", "+49301234567")
    cases = ada["cases"]
    assert isinstance(cases, tuple)
    assert [c["subject"] for c in cases] == ["Invoice question"]
    with pytest.raises(TypeError):
        ada["tier"] = "platinum"  # type: ignore[index]  # the record is read-only
    with pytest.raises(ConfigError, match="cannot look customers up by 'email'"):
        await store.find("email", "ada@example.org")


async def test_record_without_first_name_guesses_the_first_word(engine: AsyncEngine) -> None:
    await seed(engine, customer("C9", "Grace Brewster Hopper", "5553000"))
    record = await StoreCustomers(engine).find("phone", "5553000")
    assert record is not None
    assert record["first_name"] == "Grace"
    assert "email" not in record  # absent, as in a YAML record, not None


async def test_yaml_cases_are_written_once(engine: AsyncEngine) -> None:
    await seed(engine, customer("C1", "Ada"))
    item = customer("C1", "Ada")
    with_cases = CustomerInput(
        ref=item.ref, name=item.name, cases=(CaseInput("a"), CaseInput("b", "closed"))
    )
    for _ in range(2):
        await store_customers(engine, [(None, with_cases)])
    async with engine.connect() as conn:
        cases = [tuple(r) for r in await conn.execute(select(Case.subject, Case.status))]
    assert sorted(cases) == [("a", "open"), ("b", "closed")]


async def test_the_record_carries_the_insight_from_history(engine: AsyncEngine) -> None:
    await import_yaml(engine, DEMO)
    now = 1_800_000_000.0
    writer = InteractionWriter(engine, clock=lambda: now)
    # Ada called two hours ago and hung up waiting, and once more yesterday.
    for key, started, kind in (("h1", now - 7200, "abandoned"), ("h2", now - 86400, "abandoned")):
        await writer.write(
            [
                TimelineEvent(
                    f"ivr:{key}",
                    key,
                    "ivr_finished",
                    started,
                    {"flow": "main", "outcome": "queued", "customer_ref": "C1001"},
                ),
                TimelineEvent(f"acd:{kind}:{key}", key, kind, started + 30, {"wait": 30.0}),
            ]
        )
    ada = await StoreCustomers(engine, clock=lambda: now).find("ani", "5551234")
    assert ada is not None
    insight = ada["insight"]
    assert isinstance(insight, Mapping)
    assert insight["repeat_caller"] is True
    assert insight["churn_warning"] is True  # two abandons within 7 days
    assert insight["contacts_7d"] == 2
    assert insight["last_outcome"] == "abandoned"
    assert insight["reasons"]
    charles = await StoreCustomers(engine, clock=lambda: now).find("id", "C1002")
    assert charles is not None
    assert charles["insight"]["repeat_caller"] is False  # type: ignore[index]
