"""Queueing theory and contact-center figures, as pure formulas.

Two families, both defined in ``shared/notes/kpi.md`` and nowhere else:

* **Theory** for one queue, one skill, first-come-first-served, Poisson arrivals at rate
  ``lam``, exponential handle times with mean ``aht``, ``n`` agents, offered load
  ``a = lam * aht`` Erlangs: Erlang B (by the recursion, which stays stable for hundreds of
  agents where the factorial formula overflows), Erlang C (probability of waiting, service
  level, ASA, occupancy) and Erlang A (the same with exponential patience: a birth-death chain
  solved numerically). The simulation harness (``acd.simulation``) and its tests check the
  routing engine against these.
* **Figures** computed from counted totals of an interval (``IntervalTotals``): service level in
  its four variants, abandon rate, AHT, ASA, occupancy. Live queue figures must use these so a
  number on a wallboard can be recomputed from the interaction log.

Arguments outside a formula's domain (``a >= n`` for Erlang C, negative counts) are the
caller's mistake and raise ``ValueError``, like ``math.sqrt(-1)``; ratios over an empty
interval (nothing offered, nothing answered) are 0.0 rather than an error, because a wallboard
at 08:00 must show something.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "IntervalTotals",
    "SlVariant",
    "abandon_rate",
    "average_handle_time",
    "average_speed_of_answer",
    "erlang_a_abandon_probability",
    "erlang_a_distribution",
    "erlang_a_wait_probability",
    "erlang_b",
    "erlang_c",
    "erlang_c_asa",
    "erlang_c_occupancy",
    "erlang_c_service_level",
    "occupancy",
    "service_level",
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

    By the recursion B(0) = 1, B(k) = a*B(k-1) / (k + a*B(k-1)) of kpi.md.
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
    (kpi.md). Returned as ``p[k]`` for k = 0 .. K, K large enough that the tail beyond is
    negligible; the list sums to 1. With ``patience == aht`` every call in system leaves at
    rate 1/aht, so this is Poisson(lam * aht): the self-check of kpi.md.
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


# ---------------------------------------------------------------------------------------------
# Figures from counted totals

SlVariant = Literal["abandons_ignored", "abandons_negative", "abandons_positive", "answered_only"]


@dataclass(frozen=True)
class IntervalTotals:
    """What was counted for one queue over one interval (seconds for every duration).

    ``answered``/``abandoned`` are outcomes of calls ``offered`` in the interval; the
    ``*_within`` counts are those answered or abandoned within the service-level threshold.
    Calls that left by overflow, voicemail or callback are in ``offered`` only (kpi.md).
    """

    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within: int = 0
    abandoned_within: int = 0
    answered_wait: float = 0.0  # total queue wait of answered calls
    handled: int = 0  # calls whose handling (talk, hold, wrap-up) was counted below
    talk: float = 0.0
    hold: float = 0.0
    after_call_work: float = 0.0
    logged_in: float = 0.0  # agent-seconds logged in
    not_ready: float = 0.0  # agent-seconds of that not ready (excluded from occupancy)

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if self.answered_within > self.answered or self.abandoned_within > self.abandoned:
            raise ValueError("counts within the threshold exceed the totals")
        if self.answered + self.abandoned > self.offered:
            raise ValueError("more calls answered and abandoned than offered")


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def service_level(totals: IntervalTotals, variant: SlVariant = "abandons_ignored") -> float:
    """Service level at the threshold the totals were counted with, by the named variant:

    * ``abandons_ignored``: answered within / (offered - abandoned within)
    * ``abandons_negative``: answered within / offered
    * ``abandons_positive``: (answered within + abandoned within) / offered
    * ``answered_only``: answered within / answered
    """
    t = totals
    if variant == "abandons_ignored":
        return _ratio(t.answered_within, t.offered - t.abandoned_within)
    if variant == "abandons_negative":
        return _ratio(t.answered_within, t.offered)
    if variant == "abandons_positive":
        return _ratio(t.answered_within + t.abandoned_within, t.offered)
    if variant == "answered_only":
        return _ratio(t.answered_within, t.answered)
    raise ValueError(f"unknown service level variant {variant!r}")


def abandon_rate(totals: IntervalTotals) -> float:
    """Abandoned / offered (short abandons are not excluded here: count them out beforehand)."""
    return _ratio(totals.abandoned, totals.offered)


def average_handle_time(totals: IntervalTotals) -> float:
    """(talk + hold + after-call work) / handled."""
    return _ratio(totals.talk + totals.hold + totals.after_call_work, totals.handled)


def average_speed_of_answer(totals: IntervalTotals) -> float:
    """Total queue wait of answered calls / answered."""
    return _ratio(totals.answered_wait, totals.answered)


def occupancy(totals: IntervalTotals) -> float:
    """Handle time / (handle time + available idle time), where available time is logged-in
    time minus not-ready time; so handle time / (logged in - not ready)."""
    handle = totals.talk + totals.hold + totals.after_call_work
    return _ratio(handle, totals.logged_in - totals.not_ready)
