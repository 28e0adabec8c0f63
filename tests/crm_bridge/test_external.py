"""The external CRM adapter against a real HTTP server (aiohttp) standing in for the CRM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from crm_bridge.external import (
    CustomerSource,
    ExternalCrmError,
    ExternalCrmSettings,
    HttpCrm,
    InteractionSink,
    LookupCache,
    backoff_delays,
    fill_template,
    map_record,
    template_placeholders,
)
from ivr.ports import CustomerDirectory

ALICE = {"customerId": "C1001", "contact": {"fullName": "Alice Smith"}, "vip": True}


@dataclass
class FakeCrm:
    """The CRM's behaviour, scripted per test: each lookup pops the next answer (the last
    one repeats); every request is recorded."""

    answers: list[Callable[[], Any]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, str(request.rel_url), dict(request.headers), body))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        result = answer()
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, web.StreamResponse)
        return result


def ok(payload: object) -> Callable[[], web.Response]:
    return lambda: web.json_response(payload)


def status(code: int) -> Callable[[], web.Response]:
    return lambda: web.Response(status=code, text="nope")


def slow(seconds: float) -> Callable[[], Any]:
    async def answer() -> web.Response:
        await asyncio.sleep(seconds)
        return web.json_response(ALICE)

    return answer


@pytest.fixture
async def crm() -> AsyncIterator[tuple[FakeCrm, str]]:
    fake = FakeCrm()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app)
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    base: str, session: aiohttp.ClientSession, clock: Clock | None = None, **overrides: Any
) -> tuple[HttpCrm, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    values: dict[str, Any] = {
        "url_template": base + "/api/customers?phone={phone}",
        "write_url": base + "/api/interactions/{id}",
        "headers": {"Authorization": "Bearer s3cret"},
        "timeout": 0.3,
        "retries": 2,
        "backoff": 0.1,
        "field_map": {"ref": "customerId", "name": "contact.fullName", "vip": "vip"},
    }
    values.update(overrides)
    adapter = HttpCrm(ExternalCrmSettings(**values), session, clock=clock or Clock(), sleep=sleep)
    return adapter, slept


# -- lookups ----------------------------------------------------------------------------------


async def test_found_record_is_mapped_and_the_phone_normalised_and_encoded(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok([ALICE])]
    adapter, _ = make(base, session)
    record = await adapter.find("phone", "+49 (30) 1234-56")
    assert record == {"ref": "C1001", "name": "Alice Smith", "vip": True}
    method, url, headers, _ = fake.requests[0]
    assert method == "GET"
    assert url == "/api/customers?phone=%2B4930123456"  # "+" encoded: not a space
    assert headers["Authorization"] == "Bearer s3cret"
    with pytest.raises(TypeError):
        record["name"] = "changed"  # type: ignore[index]  # the record is read-only on purpose


async def test_slow_crm_times_out_retries_then_find_answers_none(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [slow(1.0)]
    adapter, slept = make(base, session, timeout=0.1, retries=1)
    with pytest.raises(ExternalCrmError, match=r"no answer within 0\.1 s"):
        await adapter.lookup("phone", "5551234")
    assert len(fake.requests) == 2
    assert slept == [0.1]
    assert await adapter.find("phone", "5551234") is None  # a failure is not a crash
    assert adapter.stats()["lookup_errors_total"] == 1
    assert len(adapter.cache) == 0  # errors are never cached


async def test_500_then_200_is_retried_with_backoff(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(500), status(503), ok(ALICE)]
    adapter, slept = make(base, session)
    record = await adapter.find("phone", "5551234")
    assert record is not None
    assert record["ref"] == "C1001"
    assert len(fake.requests) == 3
    assert slept == [0.1, 0.2]
    assert adapter.stats()["retries_total"] == 2


async def test_500_for_ever_gives_up_after_the_retries(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(502)]
    adapter, _ = make(base, session, retries=3)
    with pytest.raises(ExternalCrmError) as caught:
        await adapter.lookup("phone", "5551234")
    assert caught.value.status == 502
    assert "5551234" not in str(caught.value)  # the template is named, not the caller
    assert len(fake.requests) == 4


async def test_404_is_not_found_without_retry_and_is_cached_negatively(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(404)]
    clock = Clock()
    adapter, slept = make(base, session, clock, negative_ttl=30, cache_ttl=300)
    assert await adapter.find("phone", "5551234") is None
    assert len(fake.requests) == 1
    assert slept == []
    clock.now += 29
    assert await adapter.find("phone", "5551234") is None
    assert len(fake.requests) == 1  # negative cache
    clock.now += 2
    assert await adapter.find("phone", "5551234") is None
    assert len(fake.requests) == 2  # expired: asked again
    assert adapter.stats()["lookup_errors_total"] == 0


async def test_other_4xx_fails_at_once(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(401), ok(ALICE)]
    adapter, slept = make(base, session)
    with pytest.raises(ExternalCrmError, match="HTTP 401"):
        await adapter.lookup("phone", "5551234")
    assert len(fake.requests) == 1
    assert slept == []


async def test_empty_list_is_a_negative_answer(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok([])]
    adapter, _ = make(base, session)
    assert await adapter.find("phone", "5551234") is None
    assert await adapter.find("phone", "555-1234") is None  # same number, normalised
    assert len(fake.requests) == 1


async def test_cache_hit_avoids_a_request_until_the_ttl_ends(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok(ALICE)]
    clock = Clock()
    adapter, _ = make(base, session, clock, cache_ttl=60)
    first = await adapter.find("phone", "5551234")
    second = await adapter.find("phone", "555 1234")
    assert first == second
    assert len(fake.requests) == 1
    assert adapter.stats()["cache_hits_total"] == 1
    clock.now += 61
    await adapter.find("phone", "5551234")
    assert len(fake.requests) == 2


async def test_bad_json_is_an_error_and_find_answers_none(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [lambda: web.Response(text="<html>oops</html>", content_type="text/html")]
    adapter, _ = make(base, session)
    with pytest.raises(ExternalCrmError, match="not JSON"):
        await adapter.lookup("phone", "5551234")
    assert await adapter.find("phone", "5551234") is None
    fake.answers = [ok("just a string")]
    with pytest.raises(ExternalCrmError, match="expected a JSON object"):
        await adapter.lookup("phone", "5551234")


async def test_unreachable_crm_is_retried_then_none(session: aiohttp.ClientSession) -> None:
    # A port nobody listens on: connection refused, a ClientError translated at the boundary.
    adapter, slept = make("http://127.0.0.1:9", session, retries=1)
    assert await adapter.find("phone", "5551234") is None
    assert slept == [0.1]
    assert adapter.stats()["lookup_errors_total"] == 1


async def test_lookup_by_field_the_template_lacks_sends_nothing(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok(ALICE)]
    adapter, _ = make(base, session, url_template=base + "/c?account={account}&name={name}")
    assert await adapter.find("phone", "5551234") is None
    assert fake.requests == []
    assert await adapter.find("account", "A/1&x=2") is not None
    assert fake.requests[0][1] == "/c?account=A%2F1%26x%3D2&name="


async def test_post_lookup_method_and_result_path(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok({"data": {"items": [ALICE]}})]
    adapter, _ = make(
        base, session, method="POST", result_path="data.items", field_map={}, cache_ttl=0
    )
    record = await adapter.find("ref", "C1001")
    assert record is None  # template has only {phone}: "ref" cannot be asked
    record = await adapter.find("phone", "5551234")
    assert record is not None
    assert record["customerId"] == "C1001"
    assert fake.requests[0][0] == "POST"


# -- write-back -------------------------------------------------------------------------------


async def test_write_back_body_and_headers(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(503), lambda: web.Response(status=201)]
    adapter, _ = make(base, session)
    interaction = {"key": "17000.42", "ani": "5551234", "outcome": "answered", "talk": 55.0}
    await adapter.send(interaction)
    assert len(fake.requests) == 2  # one retry after the 503
    method, url, headers, body = fake.requests[-1]
    assert (method, url) == ("POST", "/api/interactions/17000.42")
    assert headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/json"
    assert headers["Idempotency-Key"] == "17000.42"
    assert json.loads(body) == interaction
    assert adapter.stats()["writes_total"] == 1
    assert adapter.stats()["write_errors_total"] == 0


async def test_write_back_refused_raises(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [status(422)]
    adapter, _ = make(base, session, write_method="PUT")
    with pytest.raises(ExternalCrmError) as caught:
        await adapter.send({"key": "k1"})
    assert caught.value.status == 422
    assert fake.requests[0][0] == "PUT"
    assert len(fake.requests) == 1
    assert adapter.stats()["write_errors_total"] == 1


async def test_write_back_off_without_write_url(
    crm: tuple[FakeCrm, str], session: aiohttp.ClientSession
) -> None:
    fake, base = crm
    fake.answers = [ok({})]
    adapter, _ = make(base, session, write_url=None)
    await adapter.send({"key": "k1"})
    assert fake.requests == []


def test_http_crm_fits_the_ports(session: aiohttp.ClientSession) -> None:
    adapter, _ = make("http://crm.example", session)
    # Checked by mypy: HttpCrm is usable wherever the IVR wants a CustomerDirectory.
    directory: CustomerDirectory = adapter
    source: CustomerSource = adapter
    sink: InteractionSink = adapter
    assert [directory, source, sink] == [adapter] * 3


# -- settings and pure parts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("https://crm/c?q={email}", "unknown placeholder {email}"),
        ("https://crm/c?q={0}", "unknown placeholder {0}"),
        ("https://crm/c?q={phone!r}", "no format or conversion"),
        ("https://crm/c?q={phone:>9}", "no format or conversion"),
        ("https://crm/c?q={phone", "malformed template"),
        ("ftp://crm/c?q={phone}", "http:// or https://"),
    ],
)
def test_settings_refuse_bad_templates(template: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExternalCrmSettings(url_template=template)
    with pytest.raises(ValidationError, match=message):
        ExternalCrmSettings(url_template="https://crm/{phone}", write_url=template)


def test_settings_hide_the_token() -> None:
    settings = ExternalCrmSettings(
        url_template="https://crm/{phone}", headers={"Authorization": "Bearer s3cret"}
    )
    assert "s3cret" not in repr(settings)
    with pytest.raises(ValidationError) as caught:
        ExternalCrmSettings(url_template="https://crm/{phone}", headers="Bearer s3cret")
    assert "s3cret" not in str(caught.value)


def test_template_helpers() -> None:
    assert template_placeholders("https://x/{phone}/{id}?a={phone}") == {"phone", "id"}
    assert fill_template("https://x/{id}?n={name}", {"id": "a b/c", "name": "Zoë"}) == (
        "https://x/a%20b%2Fc?n=Zo%C3%AB"
    )
    assert backoff_delays(5, 0.5, 3.0) == (0.5, 1.0, 2.0, 3.0, 3.0)
    assert backoff_delays(0, 0.5, 3.0) == ()


def test_map_record_leaves_out_missing_fields() -> None:
    assert map_record({"a": {"b": 1}}, {"x": "a.b", "y": "a.c", "z": "q"}) == {"x": 1}
    assert map_record({"rows": []}, {}, "rows") is None
    assert map_record({"rows": None}, {}, "rows") is None
    assert map_record({"rows": [{"n": [1, 2]}]}, {}, "rows") == {"n": (1, 2)}


def test_cache_is_bounded_least_recently_used_first() -> None:
    clock = Clock()
    cache = LookupCache(2, clock)
    cache.put(("phone", "1"), {"n": 1}, 10)
    cache.put(("phone", "2"), None, 10)
    assert cache.get(("phone", "1")) == (True, {"n": 1})  # 1 is now the most recent
    cache.put(("phone", "3"), {"n": 3}, 10)
    assert len(cache) == 2
    assert cache.get(("phone", "2")) == (False, None)  # dropped
    assert cache.get(("phone", "1"))[0]
    clock.now += 10
    assert cache.get(("phone", "1")) == (False, None)  # expired
    cache.put(("phone", "4"), {"n": 4}, 0)  # ttl 0: not cached
    assert cache.get(("phone", "4")) == (False, None)
