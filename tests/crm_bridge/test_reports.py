"""Reports from the interaction log, on SQLite and PostgreSQL: kpi.md's worked example, a
generated day checked against figures computed here from the generator's own list, the
abandoned-call worklist, CSV, the CLI and the HTTP API."""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_console.http import error_middleware
from crm_bridge.report_api import add_routes
from crm_bridge.reports import (
    abandoned_report,
    add_commands,
    agent_report,
    parse_params,
    queue_report,
    rows_to_csv,
    rows_to_dicts,
    run_command,
    service_levels,
    total_agents,
)
from crm_bridge.schema import Customer, CustomerPhone
from crm_bridge.timeline import TimelineEvent
from crm_bridge.writer import InteractionWriter
from cti.errors import ConfigError

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC, on an hour boundary
D0 = 1_799_971_200.0  # 2027-01-15 00:00:00 UTC
NOW = 2_000_000_000.0
_seq = itertools.count()


def ev(key: str, what: str, at: float, /, **data: Any) -> TimelineEvent:
    return TimelineEvent(f"t:{what}:{key}:{at}:{next(_seq)}", key, what, at, data)


def state(agent: str, at: float, old: str, new: str, reason: str = "") -> TimelineEvent:
    data = {"agent_id": agent, "old": old, "new": new, "cause": "test", "reason": reason}
    return TimelineEvent(f"agent:{agent}:{at}:{new}", f"agent:{agent}", "agent_state", at, data)


async def store(engine: AsyncEngine, events: list[TimelineEvent]) -> None:
    writer = InteractionWriter(engine, clock=lambda: NOW)
    for n in range(0, len(events), 2000):
        await writer.write(events[n : n + 2000])


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


# --- 1. kpi.md's worked example -----------------------------------------------------------


def worked_example() -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    waits = [10.0] * 70 + [70.0] * 10  # 1,400 s of answered wait, 70 within 20 s
    for a in range(10):
        agent = f"a{a}"
        events += [
            state(agent, T0, "logged_out", "not_ready", "login"),
            state(agent, T0 + 200, "not_ready", "ready"),  # 200 s not ready each
        ]
        for j in range(8):
            slot = T0 + 200 + j * 425  # 55 s available, then 370 s handling
            ta = slot + 55
            call, wait = f"w{a}-{j}", waits[a * 8 + j]
            events += [
                state(agent, ta - 4, "ready", "reserved"),
                state(agent, ta - 2, "reserved", "ringing"),
                state(agent, ta, "ringing", "on_call"),
                state(agent, ta + 140, "on_call", "on_hold"),
                state(agent, ta + 160, "on_hold", "on_call"),
                state(agent, ta + 320, "on_call", "wrap_up"),
                state(agent, ta + 370, "wrap_up", "ready"),
                ev(call, "queued", ta - wait, queue="sales"),
                ev(call, "answered", ta, queue="sales", agent_id=agent, wait=wait),
                ev(call, "ended", ta + 320, queue="sales", agent_id=agent, talk=300, hold=20),
            ]
        events.append(state(agent, T0 + 3600, "ready", "logged_out"))
    for n, wait in enumerate([5.0] * 10 + [60.0] * 10):
        call = f"ab{n}"
        events += [
            ev(call, "queued", T0 + 100 + n * 10, queue="sales"),
            ev(call, "abandoned", T0 + 100 + n * 10 + wait, queue="sales", wait=wait),
        ]
    return events


async def test_the_worked_example_of_kpi_md(engine: AsyncEngine) -> None:
    await store(engine, worked_example())
    params = parse_params(iso(T0), iso(T0 + 3600), interval="60")
    [row] = await queue_report(engine, params)
    assert (row.offered, row.answered, row.abandoned, row.overflowed) == (100, 80, 20, 0)
    assert (row.talk, row.hold, row.wrap, row.answer_wait) == (24000, 1600, 4000, 1400)
    assert round(row.sl_abandons_ignored or 0, 4) == 0.7778
    assert row.service_level == row.sl_abandons_ignored
    assert row.sl_variant == "abandons_ignored"
    assert row.sl_abandons_negative == 0.70
    assert row.sl_abandons_positive == 0.80
    assert row.sl_answered_only == 0.875
    assert (row.abandon_rate, row.aht, row.asa, row.longest_wait) == (0.20, 370.0, 17.5, 70.0)
    agents = await agent_report(engine, params, now=NOW)
    assert len(agents) == 10
    total = total_agents(agents)
    assert (total.logged_in, total.not_ready_total, total.handle) == (36000, 2000, 29600)
    assert total.not_ready == {"login": 2000}
    assert total.calls == 80
    assert round(total.occupancy or 0, 4) == 0.8706
    for agent in agents:
        assert (agent.calls, agent.talk, agent.hold, agent.wrap, agent.available) == (
            8,
            2400,
            160,
            400,
            440,
        )


def test_service_level_variants_and_empty_denominators() -> None:
    assert service_levels(100, 80, 70, 10) == {
        "abandons_ignored": 70 / 90,
        "abandons_negative": 0.70,
        "abandons_positive": 0.80,
        "answered_only": 0.875,
    }
    assert set(service_levels(0, 0, 0, 0).values()) == {None}


# --- 2. a generated day -------------------------------------------------------------------

QUEUES = ("sales", "support", "billing")
REASONS = ("break", "lunch", "training")


@dataclass
class Visit:
    queue: str
    queued_at: float
    outcome: str | None
    wait: float = 0.0
    talk: float = 0.0
    hold: float = 0.0
    wrap: float = 0.0


@dataclass
class Period:
    agent: str
    state: str
    reason: str
    start: float
    end: float


class AgentLog:
    """One agent's states as the generator makes them: timeline events and periods."""

    def __init__(self, agent: str, events: list[TimelineEvent], periods: list[Period]) -> None:
        self.agent, self.events, self.periods = agent, events, periods
        self.state, self.reason, self.since = "logged_out", "", 0.0

    def __call__(self, at: float, new: str, reason: str = "") -> None:
        if self.state != "logged_out":
            self.periods.append(Period(self.agent, self.state, self.reason, self.since, at))
        self.events.append(state(self.agent, at, self.state, new, reason))
        self.state, self.reason, self.since = new, reason, at


def generate_day(
    seed: int,
) -> tuple[list[TimelineEvent], list[Visit], list[Period], list[tuple[str, float]]]:
    """Events of a day, and the same day as the generator knows it (visits, agent periods)."""
    rng = random.Random(seed)
    events: list[TimelineEvent] = []
    visits: list[Visit] = []
    periods: list[Period] = []
    answers: list[tuple[str, float]] = []
    n = itertools.count()

    for a in range(10):
        agent = f"ag{a}"
        login = D0 + rng.randint(0, 7200)
        go = AgentLog(agent, events, periods)
        t = login
        go(t, "not_ready", "login")
        t += rng.randint(30, 300)
        go(t, "ready")
        while t < D0 + 86400 - 3600:
            if rng.random() < 0.08:
                go(t, "not_ready", rng.choice(REASONS))
                t += rng.randint(60, 1800)
                go(t, "ready")
                continue
            t += rng.randint(0, 300)
            go(t, "reserved")
            go(t + 1, "ringing")
            ta = t + 3
            go(ta, "on_call")
            talk1, hold, talk2 = rng.randint(20, 400), 0, 0
            te = ta + talk1
            if rng.random() < 0.3:
                hold, talk2 = rng.randint(5, 120), rng.randint(10, 200)
                go(te, "on_hold")
                go(te + hold, "on_call")
                te += hold + talk2
            go(te, "wrap_up")
            wrap = rng.randint(0, 120)
            t = te + wrap
            if rng.random() < 0.05:
                go(t, "not_ready", rng.choice(REASONS))
                t += rng.randint(60, 600)
            go(t, "ready")
            call, queue, wait = f"c{next(n)}", rng.choice(QUEUES), float(rng.randint(0, 90))
            if rng.random() < 0.1:  # overflowed here from another queue
                first = rng.choice([q for q in QUEUES if q != queue])
                waited = rng.randint(10, 60)
                entered = ta - wait - waited
                events += [
                    ev(call, "queued", entered, queue=first),
                    ev(call, "overflowed", ta - wait, queue=first, kind="queue", target=queue),
                ]
                visits.append(Visit(first, entered, "overflowed", waited))
            events += [
                ev(call, "call_started", ta - wait - 100, ani=f"555{rng.randint(0, 300)}"),
                ev(call, "queued", ta - wait, queue=queue),
                ev(call, "answered", ta, queue=queue, agent_id=agent, wait=wait),
                ev(call, "ended", te, queue=queue, agent_id=agent, talk=talk1 + talk2, hold=hold),
            ]
            visits.append(Visit(queue, ta - wait, "answered", wait, talk1 + talk2, hold, wrap))
            answers.append((agent, ta))
        go(t, "logged_out")

    for _ in range(700):
        call, queue = f"u{next(n)}", rng.choice(QUEUES)
        at = D0 + rng.randint(-300, 86400)
        events.append(ev(call, "call_started", at - 30, ani=f"555{rng.randint(0, 300)}"))
        events.append(ev(call, "queued", at, queue=queue))
        roll = rng.random()
        if roll < 0.6:
            wait = float(rng.randint(0, 4) if rng.random() < 0.3 else rng.randint(5, 240))
            events.append(ev(call, "abandoned", at + wait, queue=queue, wait=wait))
            visits.append(Visit(queue, at, "abandoned", wait))
        elif roll < 0.8:
            wait = float(rng.randint(30, 120))
            events.append(
                ev(call, "overflowed", at + wait, queue=queue, kind="voicemail", target="vm")
            )
            visits.append(Visit(queue, at, "overflowed", wait))
        elif roll < 0.97:  # to another queue, abandoned there
            other = rng.choice([q for q in QUEUES if q != queue])
            hop, second = rng.randint(10, 60), float(rng.randint(0, 100))
            events += [
                ev(call, "overflowed", at + hop, queue=queue, kind="queue", target=other),
                ev(call, "queued", at + hop, queue=other),
                ev(call, "abandoned", at + hop + second, queue=other, wait=second),
            ]
            visits += [
                Visit(queue, at, "overflowed", hop),
                Visit(other, at + hop, "abandoned", second),
            ]
        else:
            visits.append(Visit(queue, at, None))  # still waiting
    return events, visits, periods, answers


def expected_queues(
    visits: list[Visit], start: float, end: float, size: float, short: float
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for v in visits:
        if not start <= v.queued_at < end:
            continue
        b = D0 + (v.queued_at - D0) // size * size
        f = out.setdefault(
            (iso(b), v.queue),
            dict.fromkeys(
                [
                    *("offered", "answered", "abandoned", "short_abandoned", "overflowed"),
                    *("unresolved", "answered_within", "abandoned_within", "answer_wait"),
                    *("talk", "hold", "wrap", "longest_wait"),
                ],
                0,
            ),
        )
        if v.outcome == "abandoned" and v.wait < short:
            f["short_abandoned"] += 1
            continue
        f["offered"] += 1
        if v.outcome is None:
            f["unresolved"] += 1
            continue
        f["longest_wait"] = max(f["longest_wait"], v.wait)
        if v.outcome == "answered":
            f["answered"] += 1
            f["answered_within"] += v.wait <= 20
            f["answer_wait"] += v.wait
            f["talk"] += v.talk
            f["hold"] += v.hold
            f["wrap"] += v.wrap
        elif v.outcome == "abandoned":
            f["abandoned"] += 1
            f["abandoned_within"] += v.wait <= 20
        else:
            f["overflowed"] += 1
    for f in out.values():
        f["sl_abandons_ignored"] = (
            f["answered_within"] / (f["offered"] - f["abandoned_within"])
            if f["offered"] - f["abandoned_within"]
            else None
        )
        f["sl_answered_only"] = f["answered_within"] / f["answered"] if f["answered"] else None
        f["asa"] = f["answer_wait"] / f["answered"] if f["answered"] else None
        handle = f["talk"] + f["hold"] + f["wrap"]
        f["aht"] = handle / f["answered"] if f["answered"] else None
        f["abandon_rate"] = f["abandoned"] / f["offered"] if f["offered"] else None
    return out


def expected_agents(
    periods: list[Period], answers: list[tuple[str, float]], start: float, end: float, size: float
) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    kinds = {"on_call": "talk", "on_hold": "hold", "wrap_up": "wrap", "ready": "available"}
    kinds |= {"reserved": "available", "ringing": "available"}
    for p in periods:
        lo, hi = max(p.start, start), min(p.end, end)
        b = D0 + (lo - D0) // size * size
        while b < hi:
            part = min(hi, b + size) - max(lo, b)
            if part > 0:
                f = out[(iso(b), p.agent)]
                f["logged_in"] += part
                f[kinds.get(p.state, f"not_ready:{p.reason}")] += part
            b += size
    for agent, at in answers:
        if start <= at < end:
            out[(iso(D0 + (at - D0) // size * size), agent)]["calls"] += 1
    return out


@pytest.mark.parametrize(("interval", "size"), [("30", 1800.0), ("day", 86400.0)])
async def test_a_generated_day_agrees_with_independent_figures(
    engine: AsyncEngine, interval: str, size: float
) -> None:
    events, visits, periods, answers = generate_day(seed=5)
    assert len({e.interaction_key for e in events if not e.interaction_key.startswith("ag")}) > 2000
    await store(engine, events)
    for start in (D0, D0 + 43200):  # the whole day, and from noon (states begun before)
        params = parse_params(iso(start), iso(D0 + 86400), interval=interval, short_abandon="5")
        rows = await queue_report(engine, params)
        want = expected_queues(visits, start, D0 + 86400, size, 5.0)
        got = {(r.interval_start, r.queue): r for r in rows}
        assert set(got) == set(want)
        for key, figures in want.items():
            assert {k: getattr(got[key], k) for k in figures} == figures, key
        assert sum(r.short_abandoned for r in rows) > 10
        assert sum(r.overflowed for r in rows) > 50
        agent_rows = await agent_report(engine, params, now=NOW)
        want_agents = expected_agents(periods, answers, start, D0 + 86400, size)
        got_agents = {(r.interval_start, r.agent_id): r for r in agent_rows}
        assert set(got_agents) == set(want_agents)
        for key, figures in want_agents.items():
            row = rows_to_dicts([got_agents[key]])[0]
            reasons = {k: v for k, v in row.items() if k.startswith("not_ready:") and v}
            assert reasons == {k: v for k, v in figures.items() if k.startswith("not_ready:")}
            for name in ("logged_in", "talk", "hold", "wrap", "available", "calls"):
                assert row[name] == figures.get(name, 0), (key, name)
            handle = row["talk"] + row["hold"] + row["wrap"]
            assert row["occupancy"] == (
                handle / (handle + row["available"]) if handle + row["available"] else None
            )


# --- 3. the abandoned-call worklist -------------------------------------------------------


async def test_the_abandoned_worklist_says_who_when_and_whether_called_back(
    engine: AsyncEngine,
) -> None:
    from sqlalchemy.ext.asyncio import async_sessionmaker

    async with async_sessionmaker(engine)() as session, session.begin():
        ann = Customer(ref="C1", name="Ann", name_key="ann", created_at=T0, updated_at=T0)
        bob = Customer(ref="C2", name="Bob", name_key="bob", created_at=T0, updated_at=T0)
        session.add_all([ann, bob])
        await session.flush()
        session.add(CustomerPhone(customer_id=ann.id, number="+4930111", kind="mobile"))

    def abandoned(
        key: str, ani: str, at: float, wait: float, ref: str | None = None
    ) -> list[TimelineEvent]:
        out = [ev(key, "call_started", at - 10, ani=ani), ev(key, "queued", at, queue="sales")]
        if ref:
            out.append(
                ev(key, "ivr_finished", at - 1, flow="main", outcome="queued", customer_ref=ref)
            )
        return [*out, ev(key, "abandoned", at + wait, queue="sales", wait=wait)]

    events = [
        # A callback *before* the abandon does not count.
        ev("cb-0", "callback_scheduled", T0 - 500, queue="sales", number="+49 30 111"),
        *abandoned("X", "0049 30 111", T0, 42.0),  # Ann, by her number
        ev("Y2", "call_started", T0 + 900, ani="+4930111"),
        ev("Y2", "queued", T0 + 900, queue="sales"),
        ev("Y2", "answered", T0 + 905, queue="sales", agent_id="a1", wait=5.0),
        *abandoned("B", "+4940222", T0 + 100, 30.0, ref="C2"),  # Bob, named by the IVR
        ev("cb-1", "callback_scheduled", T0 + 600, queue="sales", number="+4940222"),
        *abandoned("Z", "+4950333", T0 + 200, 25.0),  # tried again, abandoned again
        *abandoned("Z2", "+4950333", T0 + 1200, 12.0),
        *abandoned("S", "anonymous", T0 + 300, 2.0),  # short, and no number
        *abandoned("O", "+4960444", T0 + 90_000, 9.0),  # outside the range
    ]
    await store(engine, events)
    params = parse_params(iso(T0), iso(T0 + 3600), short_abandon="5")
    rows = await abandoned_report(engine, params)
    assert [r.call for r in rows] == ["X", "B", "Z", "S", "Z2"]
    x, b, z, s, z2 = rows
    assert (x.number, x.customer_ref, x.customer_name, x.waited) == ("+4930111", "C1", "Ann", 42)
    assert x.abandoned_at == iso(T0 + 42)
    assert (x.called_back, x.called_back_key, x.called_back_how) == (True, "Y2", "answered")
    assert x.called_back_at == iso(T0 + 900)
    assert (b.customer_ref, b.customer_name) == ("C2", "Bob")
    assert (b.called_back, b.called_back_key, b.called_back_how) == (True, "cb-1", "callback")
    assert (z.called_back, z2.called_back, z.customer_ref) == (False, False, None)
    assert (s.short, s.number, s.called_back, x.short) == (True, None, False, False)
    assert await abandoned_report(engine, parse_params(iso(T0), None, queue="other")) == []


# --- 4. CSV, CLI and HTTP -----------------------------------------------------------------


def parse_csv(text: str) -> list[dict[str, Any]]:
    def value(cell: str) -> Any:
        if cell == "":
            return None
        for kind in (int, float):
            try:
                return kind(cell)
            except ValueError:
                pass
        return {"True": True, "False": False}.get(cell, cell)

    return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


async def test_csv_parses_back_to_the_same_numbers(engine: AsyncEngine) -> None:
    await store(engine, worked_example())
    params = parse_params(iso(T0), iso(T0 + 3600), interval="15")
    for rows in (
        await queue_report(engine, params),
        await agent_report(engine, params, now=NOW),
        await abandoned_report(engine, params),
    ):
        assert rows
        assert parse_csv(rows_to_csv(rows)) == rows_to_dicts(rows)


def test_bad_parameters_are_refused_naming_the_key() -> None:
    for kwargs, key in [
        ({"interval": "20"}, "interval"),
        ({"tz": "Mars/Base"}, "tz"),
        ({"sl_variant": "best"}, "sl_variant"),
        ({"sl_threshold": "-1"}, "sl_threshold"),
        ({"short_abandon": "x"}, "short_abandon"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_params("2027-01-15", None, **kwargs)
        assert info.value.key == key
    with pytest.raises(ConfigError, match="to"):
        parse_params("2027-01-15", "2027-01-14")
    with pytest.raises(ConfigError, match="from"):
        parse_params("yesterday", None)


def test_dates_and_intervals_follow_the_time_zone() -> None:
    params = parse_params("2027-01-15", "2027-01-16", tz="Europe/Berlin")
    assert (params.start, params.end) == (D0 - 3600, D0 + 2 * 86400 - 3600)  # both days


async def test_the_cli_prints_a_table_or_csv(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await store(engine, worked_example())
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"))
    base = ["report", "queues", "--from", iso(T0), "--to", iso(T0 + 3600), "--interval", "60"]
    assert await run_command(parser.parse_args([*base, "--csv"]), engine) == 0
    [row] = parse_csv(capsys.readouterr().out)
    assert (row["offered"], row["aht"], row["asa"]) == (100, 370.0, 17.5)
    assert await run_command(parser.parse_args(base), engine) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["interval_start", "interval_end", "queue", "offered"]
    assert table[1].split()[2:4] == ["sales", "100"]
    bad = parser.parse_args(["report", "agents", "--from", "2027-01-15", "--interval", "7"])
    assert await run_command(bad, engine) == 2
    assert "interval" in capsys.readouterr().err


async def test_the_http_api_gives_json_csv_and_422(engine: AsyncEngine) -> None:
    await store(engine, worked_example())
    app = web.Application(middlewares=[error_middleware])  # as app.web builds it
    add_routes(app, engine, clock=lambda: NOW)
    query = {"from": iso(T0), "to": iso(T0 + 3600), "interval": "60"}
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/reports/queues", params=query)
        assert response.status == 200
        body = await response.json()
        assert body["report"] == "queues"
        assert [(r["queue"], r["offered"], r["aht"]) for r in body["rows"]] == [
            ("sales", 100, 370.0)
        ]
        response = await client.get("/reports/agents", params=query, headers={"Accept": "text/csv"})
        assert response.content_type == "text/csv"
        agents = parse_csv(await response.text())
        assert sorted(r["agent_id"] for r in agents) == [f"a{n}" for n in range(10)]
        assert {r["not_ready:login"] for r in agents} == {200}
        response = await client.get("/reports/abandoned", params={**query, "format": "csv"})
        assert len(parse_csv(await response.text())) == 20
        for bad in ({"interval": "45"}, {"from": "soon"}, {"sl_threshold": "x"}):
            response = await client.get("/reports/queues", params={**query, **bad})
            assert response.status == 422
            answer = await response.json()
            assert answer["error"] == "bad_parameter"
            assert next(iter(bad)) in answer["key"]
            assert answer["key"] in answer["detail"]
        response = await client.get("/reports/abandoned")
        assert response.status == 422
        answer = await response.json()
        assert (answer["error"], answer["key"]) == ("bad_parameter", "from")
        assert "from" in answer["detail"]
