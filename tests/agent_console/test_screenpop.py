"""Screen-pops (agent_console/screenpop.py) against a migrated CRM store: who the caller is
(IVR ref, a unique phone, nobody for a shared phone), what they did in the IVR (from memory,
else from the stored interaction), and a pop that still comes when the store is down."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_console.screenpop import ScreenPops
from crm_bridge.customers import CustomerInput, store_customers, validate_customer
from crm_bridge.db import create_engine, migrate
from crm_bridge.timeline import from_bus
from crm_bridge.writer import InteractionWriter
from ivr.path import CallerPath, IvrFinished, Step
from ivr.ports import CallInfo

T0 = 1_800_000_000.0
MASKED = "••••"


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'crm.sqlite3'}"
    else:
        url = str(request.getfixturevalue("postgres_db"))
    engine = create_engine(url)
    await migrate(engine)
    await _customers(
        engine,
        {"ref": "C1", "name": "Ada Lovelace", "phones": ["5551234"], "tier": "gold"},
        {"ref": "C2", "name": "Charles Babbage", "phones": ["5559999"]},
        {"ref": "C3", "name": "Grace Hopper", "phones": ["5559999"]},
        {"ref": "C4", "name": "<img src=x onerror=alert(1)>", "phones": ["5554444"]},
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def _customers(engine: AsyncEngine, *records: Mapping[str, object]) -> None:
    valid: list[CustomerInput] = []
    for record in records:
        checked = validate_customer(record)
        assert not isinstance(checked, list), checked
        valid.append(checked)
    result = await store_customers(engine, [(None, c) for c in valid], clock=lambda: T0)
    assert not result.rejected


def _path(
    uniqueid: str, *, customer: Mapping[str, object] | None = None, ani: str = "5550000"
) -> CallerPath:
    call = CallInfo(ani, "800", "PJSIP/trunk-1", uniqueid, uniqueid)
    return CallerPath(
        call=call,
        flow="main",
        version="v1",
        started_at=T0 - 30,
        ended_at=T0 - 5,
        outcome="queued",
        steps=(
            Step("main", "welcome", "menu", T0 - 30, 4.0, keys="1", result="1"),
            Step("main", "card", "collect", T0 - 26, 8.0, keys=MASKED, result="ok"),
            Step("main", "to_sales", "queue", T0 - 18, 0.1),
        ),
        variables={"card": MASKED, "account": "100200"},
        customer=customer,
    )


async def test_the_customer_the_ivr_identified_pops_with_the_ivr_context(
    engine: AsyncEngine,
) -> None:
    pops = ScreenPops(engine, clock=lambda: T0)
    pops.remember_ivr(_path("u1", customer={"id": "C1", "name": "Ada Lovelace"}))
    # The number is a shared one: the IVR's identification wins over the phone match.
    pop = await pops.compose("u1", "5559999", "sales")
    assert pop["call_id"] == "u1"
    assert pop["queue"] == "sales"
    assert pop["number"] == "5559999"
    assert pop["at"] == T0
    assert pop["customer"]["ref"] == "C1"
    assert pop["customer"]["name"] == "Ada Lovelace"
    assert pop["customer"]["phones"] == [{"number": "5551234", "kind": "phone"}]
    assert pop["insight"]["vip"] is True
    assert pop["ivr"] == {
        "flow": "main",
        "keys": "1" + MASKED,
        "nodes": ["welcome", "card", "to_sales"],
        "variables": {"card": MASKED, "account": "100200"},
    }
    assert "error" not in pop


async def test_a_unique_phone_number_finds_the_customer(engine: AsyncEngine) -> None:
    pop = await ScreenPops(engine, clock=lambda: T0).compose("u2", "5551234", "sales")
    assert pop["customer"]["ref"] == "C1"
    assert pop["ivr"] == {"flow": None, "keys": "", "nodes": [], "variables": {}}
    assert isinstance(pop["history"], list)
    assert isinstance(pop["cases"], list)


async def test_a_phone_several_customers_share_finds_nobody(engine: AsyncEngine) -> None:
    pop = await ScreenPops(engine, clock=lambda: T0).compose("u3", "5559999", "sales")
    assert pop["customer"] is None
    assert pop["insight"] is None
    assert pop["history"] == []


async def test_an_unknown_caller_is_none(engine: AsyncEngine) -> None:
    pop = await ScreenPops(engine, clock=lambda: T0).compose("u4", "5550001", "sales")
    assert pop["customer"] is None
    assert "error" not in pop


async def test_an_ivr_ref_that_is_not_in_the_store_falls_back_to_the_phone(
    engine: AsyncEngine,
) -> None:
    pops = ScreenPops(engine, clock=lambda: T0)
    pops.remember_ivr(_path("u5", customer={"id": "GONE"}))
    pop = await pops.compose("u5", "5551234", "sales")
    assert pop["customer"]["ref"] == "C1"


async def test_hostile_names_pass_through_as_plain_data(engine: AsyncEngine) -> None:
    pop = await ScreenPops(engine, clock=lambda: T0).compose("u6", "5554444", "sales")
    assert pop["customer"]["name"] == "<img src=x onerror=alert(1)>"


async def test_with_nothing_in_memory_the_stored_interaction_gives_the_ivr_context(
    engine: AsyncEngine,
) -> None:
    event = from_bus(IvrFinished(_path("u7", customer={"id": "C1"})))
    assert event is not None
    await InteractionWriter(engine, clock=lambda: T0).write([event])
    # A new ScreenPops: a restarted server with nothing in memory.
    pop = await ScreenPops(engine, clock=lambda: T0).compose("u7", "5559999", "sales")
    assert pop["ivr"] == {
        "flow": "main",
        "keys": "1" + MASKED,
        "nodes": ["welcome", "card", "to_sales"],
        "variables": {"card": MASKED, "account": "100200"},
    }
    assert pop["customer"]["ref"] == "C1"  # the stored row's customer_ref


async def test_the_ivr_memory_is_bounded_oldest_out(engine: AsyncEngine) -> None:
    pops = ScreenPops(engine, clock=lambda: T0, keep=2)
    for n in range(3):
        pops.remember_ivr(_path(f"m{n}"))
    assert (await pops.compose("m0", "", "sales"))["ivr"]["flow"] is None
    assert (await pops.compose("m2", "", "sales"))["ivr"]["flow"] == "main"


async def test_the_store_down_still_pops_the_call_and_the_ivr_data(tmp_path: Path) -> None:
    # A database in a directory that does not exist: every connection fails.
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'crm.sqlite3'}")
    try:
        pops = ScreenPops(broken, clock=lambda: T0)
        pops.remember_ivr(_path("u8", customer={"id": "C1"}))
        pop = await pops.compose("u8", "5551234", "sales")
        assert pop["error"] == "customer data unavailable"
        assert pop["call_id"] == "u8"
        assert pop["number"] == "5551234"
        assert pop["customer"] is None
        assert pop["ivr"]["flow"] == "main"
        assert pop["ivr"]["variables"]["card"] == MASKED
        # Nothing in memory and the store down: still a pop, with no IVR part.
        pop = await pops.compose("u9", "5551234", "sales")
        assert pop["error"] == "customer data unavailable"
        assert pop["ivr"]["flow"] is None
    finally:
        await broken.dispose()


async def test_without_a_store_the_pop_has_the_ivr_part_only() -> None:
    pops = ScreenPops(None, clock=lambda: T0)
    pops.remember_ivr(_path("u10", customer={"id": "C1"}))
    pop = await pops.compose("u10", "5551234", "sales")
    assert pop["customer"] is None
    assert pop["ivr"]["nodes"] == ["welcome", "card", "to_sales"]
    assert "error" not in pop


async def test_history_items_carry_the_contract_fields(engine: AsyncEngine) -> None:
    """The contract's Interaction has "notes" (the agent's wrap-up notes) as well."""
    event = from_bus(IvrFinished(_path("h1", customer={"id": "C1"}, ani="5551234")))
    assert event is not None
    await InteractionWriter(engine, clock=lambda: T0).write([event])
    pop = await ScreenPops(engine, clock=lambda: T0 + 60).compose("h2", "5551234", "sales")
    assert [h["key"] for h in pop["history"]] == ["h1"]
    assert set(pop["history"][0]) == {
        "key",
        "started_at",
        "direction",
        "queue",
        "agent_id",
        "outcome",
        "disposition",
        "notes",
        "talk_seconds",
    }


async def test_the_popped_call_is_not_in_its_own_history(engine: AsyncEngine) -> None:
    writer = InteractionWriter(engine, clock=lambda: T0)
    for key in ("old", "now"):
        event = from_bus(IvrFinished(_path(key, customer={"id": "C1"}, ani="5551234")))
        assert event is not None
        await writer.write([event])
    pop = await ScreenPops(engine, clock=lambda: T0 + 60).compose("now", "5551234", "sales")
    assert pop["customer"]["ref"] == "C1"
    assert [h["key"] for h in pop["history"]] == ["old"]
