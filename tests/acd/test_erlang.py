"""Queueing formulas against known values and their own identities (docs/kpi.md). The KPI
formulas counted from calls are tested in tests/cti/test_kpi.py."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.erlang import (
    erlang_a_abandon_probability,
    erlang_a_distribution,
    erlang_a_wait_probability,
    erlang_b,
    erlang_c,
    erlang_c_asa,
    erlang_c_occupancy,
    erlang_c_service_level,
)

# ----------------------------------------------------------------------------- Erlang B / C


def test_erlang_b_known_values() -> None:
    # Tabulated: B(10, 8) = 0.1217; one server: a / (1 + a); no servers: always blocked.
    assert erlang_b(10, 8.0) == pytest.approx(0.121661, abs=1e-6)
    assert erlang_b(1, 3.0) == pytest.approx(0.75)
    assert erlang_b(0, 2.0) == 1.0


def test_erlang_b_matches_the_closed_form() -> None:
    # B(n, a) = (a^n / n!) / sum_{k<=n} a^k / k!, fine to evaluate directly for small n.
    n, a = 7, 5.5
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    assert erlang_b(n, a) == pytest.approx(terms[-1] / sum(terms), rel=1e-12)


def test_erlang_b_recursion_is_stable_for_large_systems() -> None:
    # a**n / n! would overflow a float here; the recursion does not.
    b = erlang_b(1000, 950.0)
    assert 0.0 < b < 0.05


def test_erlang_c_known_values() -> None:
    # The classic table value: 10 agents, 8 Erlangs -> 40.9% of calls wait.
    assert erlang_c(10, 8.0) == pytest.approx(0.409180, abs=1e-6)
    # M/M/1: the probability of waiting is the utilisation.
    assert erlang_c(1, 0.6) == pytest.approx(0.6)


def test_erlang_c_service_level_asa_and_occupancy() -> None:
    pw = erlang_c(10, 8.0)
    assert erlang_c_service_level(10, 8.0, 180.0, 20.0) == pytest.approx(
        1 - pw * math.exp(-2 * 20 / 180)
    )
    assert erlang_c_service_level(10, 8.0, 180.0, 20.0) == pytest.approx(0.672354, abs=1e-6)
    assert erlang_c_service_level(10, 8.0, 180.0, 0.0) == pytest.approx(1 - pw)
    assert erlang_c_asa(10, 8.0, 180.0) == pytest.approx(36.826214, abs=1e-5)
    # M/M/1 mean wait in queue: rho / (1 - rho) * service time.
    assert erlang_c_asa(1, 0.5, 100.0) == pytest.approx(100.0)
    assert erlang_c_occupancy(10, 8.0) == pytest.approx(0.8)


def test_erlang_c_refuses_an_overloaded_queue() -> None:
    with pytest.raises(ValueError, match="load below"):
        erlang_c(5, 5.0)
    with pytest.raises(ValueError):
        erlang_b(3, -1.0)


@given(n=st.integers(1, 60), a=st.floats(0.01, 59.0))
def test_erlang_b_and_c_are_probabilities_in_order(n: int, a: float) -> None:
    b = erlang_b(n, a)
    assert 0.0 < b < 1.0
    assert erlang_b(n + 1, a) < b  # one more agent blocks less
    if a < n:
        c = erlang_c(n, a)
        assert b <= c <= 1.0  # waiting is at least as likely as blocking would be


# ----------------------------------------------------------------------------- Erlang A


@pytest.mark.parametrize(("n", "load"), [(1, 0.5), (5, 3.0), (10, 12.0), (50, 45.0)])
def test_erlang_a_with_patience_equal_to_aht_is_poisson(n: int, load: float) -> None:
    # kpi.md's self-check: every call in system leaves at rate 1/aht, waiting or not.
    aht = 180.0
    p = erlang_a_distribution(n, load / aht, aht, aht)
    assert math.fsum(p) == pytest.approx(1.0)
    for k, pk in enumerate(p[:60]):
        poisson = math.exp(-load + k * math.log(load) - math.lgamma(k + 1))
        assert pk == pytest.approx(poisson, rel=1e-9, abs=1e-300)


def test_erlang_a_flow_balance() -> None:
    # Calls that do not abandon are served: lam * (1 - Pab) = mean busy agents / aht.
    n, lam, aht, patience = 5, 4.5 / 180.0, 180.0, 60.0
    p = erlang_a_distribution(n, lam, aht, patience)
    served = math.fsum(min(k, n) * pk for k, pk in enumerate(p)) / aht
    pab = erlang_a_abandon_probability(n, lam, aht, patience)
    assert lam * (1 - pab) == pytest.approx(served, rel=1e-12)
    assert 0.1 < pab < 0.3


def test_erlang_a_tends_to_erlang_c_as_patience_grows() -> None:
    n, a, aht = 10, 8.0, 180.0
    pw = erlang_a_wait_probability(n, a / aht, aht, 1e9)
    assert pw == pytest.approx(erlang_c(n, a), rel=1e-5)
    assert erlang_a_abandon_probability(n, a / aht, aht, 1e9) < 1e-6


def test_erlang_a_is_stable_when_overloaded() -> None:
    # Patience keeps the chain finite at twice n Erlangs; the fluid limit says the excess,
    # 1 - n/a = half the calls, abandons. Every abandoning call had to wait first.
    pab = erlang_a_abandon_probability(10, 20.0 / 180.0, 180.0, 30.0)
    assert 0.45 < pab < 0.55
    assert pab < erlang_a_wait_probability(10, 20.0 / 180.0, 180.0, 30.0) < 1.0


def test_erlang_a_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        erlang_a_distribution(0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        erlang_a_distribution(3, 1.0, 1.0, 0.0)
