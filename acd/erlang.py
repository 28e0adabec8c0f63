"""Queueing theory, as pure formulas (docs/kpi.md, "Queueing theory").

* For one queue, one skill, first-come-first-served, Poisson arrivals at rate
  ``lam``, exponential handle times with mean ``aht``, ``n`` agents, offered load
  ``a = lam * aht`` Erlangs: Erlang B (by the recursion, which stays stable for hundreds of
  agents where the factorial formula overflows), Erlang C (probability of waiting, service
  level, ASA, occupancy) and Erlang A (the same with exponential patience: a birth-death chain
  solved numerically). The simulation harness (``acd.simulation``) and its tests check the
  routing engine against these.

The figures counted from real calls (service level, ASA, AHT, abandon rate, occupancy) are not
here but in ``cti.kpi``, their one home, which every role uses.

Arguments outside a formula's domain (``a >= n`` for Erlang C, negative loads) are the
caller's mistake and raise ``ValueError``, like ``math.sqrt(-1)``.
"""

from __future__ import annotations

import math

__all__ = [
    "erlang_a_abandon_probability",
    "erlang_a_distribution",
    "erlang_a_wait_probability",
    "erlang_b",
    "erlang_c",
    "erlang_c_asa",
    "erlang_c_occupancy",
    "erlang_c_service_level",
]

# ---------------------------------------------------------------------------------------------
# Theory


def _check_load(n: int, a: float) -> None:
    if n < 0:
        raise ValueError(f"number of agents must be >= 0, got {n}")
    if a < 0 or not math.isfinite(a):
        raise ValueError(f"offered load must be finite and >= 0 Erlangs, got {a}")


def erlang_b(n: int, a: float) -> float:
    """Blocking probability of ``n`` servers offered ``a`` Erlangs, no queue (Erlang B).

    By the recursion B(0) = 1, B(k) = a*B(k-1) / (k + a*B(k-1)) of docs/kpi.md.
    """
    _check_load(n, a)
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(n: int, a: float) -> float:
    """Probability that a call waits (Erlang C): Pw = n*B(n) / (n - a*(1 - B(n))).

    Needs ``a < n``: at or above that load the queue grows without bound and every call waits.
    """
    _check_load(n, a)
    if a >= n:
        raise ValueError(f"Erlang C needs a load below the agent count: a={a}, n={n}")
    b = erlang_b(n, a)
    return n * b / (n - a * (1.0 - b))


def erlang_c_service_level(n: int, a: float, aht: float, t: float) -> float:
    """Fraction of calls answered within ``t`` seconds: 1 - Pw * exp(-(n - a) * t / aht)."""
    if aht <= 0 or t < 0:
        raise ValueError(f"need aht > 0 and t >= 0, got aht={aht}, t={t}")
    return 1.0 - erlang_c(n, a) * math.exp(-(n - a) * t / aht)


def erlang_c_asa(n: int, a: float, aht: float) -> float:
    """Average speed of answer over all calls: Pw * aht / (n - a)."""
    if aht <= 0:
        raise ValueError(f"need aht > 0, got {aht}")
    return erlang_c(n, a) * aht / (n - a)


def erlang_c_occupancy(n: int, a: float) -> float:
    """Fraction of agent time spent handling calls: a / n (no abandonment, so all is carried)."""
    _check_load(n, a)
    if a >= n:
        raise ValueError(f"occupancy a/n needs a < n: a={a}, n={n}")
    return a / n


# The chain is cut where the remaining tail weighs less than this, relative to the total; past
# n + (a few standard deviations) the terms fall faster than geometrically, so this is exact to
# double precision in practice.
_TAIL = 1e-16
_MAX_STATES = 1_000_000


def erlang_a_distribution(n: int, lam: float, aht: float, patience: float) -> list[float]:
    """Stationary distribution of the number of calls in system (Erlang A / M/M/n+M).

    State k has arrival rate ``lam`` and departure rate min(k, n)/aht + max(k - n, 0)/patience
    (docs/kpi.md). Returned as ``p[k]`` for k = 0 .. K, K large enough that the tail beyond is
    negligible; the list sums to 1. With ``patience == aht`` every call in system leaves at
    rate 1/aht, so this is Poisson(lam * aht): the self-check of docs/kpi.md.
    """
    if n < 1 or lam <= 0 or aht <= 0 or patience <= 0:
        raise ValueError(
            f"need n >= 1 and positive rates: n={n}, lam={lam}, aht={aht}, patience={patience}"
        )
    # Unnormalised weights by the balance equations w[k] = w[k-1] * lam / mu(k), computed
    # relative to the largest weight so far so that heavy loads (hundreds of Erlangs) neither
    # overflow nor underflow.
    weights = [1.0]
    peak = 1.0
    k = 0
    while True:
        k += 1
        mu = min(k, n) / aht + max(k - n, 0) / patience
        w = weights[-1] * lam / mu
        weights.append(w)
        if w > peak:
            peak = w
        if w > 1e200:  # rescale; only ratios matter
            weights = [x / w for x in weights]
            peak /= w
        # Past the mode (lam < mu) the terms decrease; stop when they no longer matter.
        if lam < mu and w < _TAIL * peak:
            break
        if k >= _MAX_STATES:
            raise ValueError("Erlang A chain did not converge (load far too high for patience)")
    total = math.fsum(weights)
    return [w / total for w in weights]


def erlang_a_abandon_probability(n: int, lam: float, aht: float, patience: float) -> float:
    """Fraction of arriving calls that abandon: abandonment rate / arrival rate.

    In state k, max(k - n, 0) callers wait and each leaves at rate 1/patience.
    """
    p = erlang_a_distribution(n, lam, aht, patience)
    rate = math.fsum(pk * max(k - n, 0) / patience for k, pk in enumerate(p))
    return rate / lam


def erlang_a_wait_probability(n: int, lam: float, aht: float, patience: float) -> float:
    """Probability that an arriving call finds every agent busy (PASTA: arrivals see time
    averages), i.e. has to wait at all."""
    p = erlang_a_distribution(n, lam, aht, patience)
    return math.fsum(p[n:])
