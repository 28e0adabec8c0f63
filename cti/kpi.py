"""Contact-center figures: the one home of every formula the product shows (docs/kpi.md).

The live queue figures (``acd.figures``), the 30-minute service level and an agent's day
(``agent_console.monitor``) and the reports from the interaction log (``crm_bridge.reports``)
count different things over different intervals, but they turn their counts into figures here,
so a number on a wallboard can be recomputed from the log with the same arithmetic.

Every function is pure and takes plain counts (seconds for durations).

**The zero-denominator rule.** A ratio whose denominator is zero (nothing offered, nothing
answered, no agent time) is ``None``, shown as "—" by the pages and left empty in CSV. Before
this module the copies disagreed: three said ``None``, one said ``0.0``. ``0.0`` was wrong in
two ways: a service level of 0 % at 08:00 before the first call looks like a disaster and
trips the "service level below goal" alert, and an average of zero seconds looks like a
perfect answer time; neither was measured. ``None`` says "no data", which is the truth. A
denominator can only be negative if the caller's counts are inconsistent; that is also
``None`` rather than a negative ratio.

**Within the threshold** means ``wait <= threshold`` ("answered within 20 s" includes 20.0 s).
**A short abandon** is one after ``wait < short_abandon`` seconds; ``short_abandon = 0`` means
none are short.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "DEFAULT_SL_VARIANT",
    "SL_VARIANTS",
    "SlVariant",
    "abandon_rate",
    "average_handle_time",
    "average_speed_of_answer",
    "is_short_abandon",
    "occupancy",
    "ratio",
    "service_level",
    "service_levels",
    "within",
]

#: The four service-level formulas of docs/kpi.md (there is no single industry one).
SlVariant = Literal["abandons_ignored", "abandons_negative", "abandons_positive", "answered_only"]
SL_VARIANTS: Final[tuple[SlVariant, ...]] = get_args(SlVariant)
#: The variant shown when a queue names none: abandons within the threshold neither help nor
#: hurt (a caller who hangs up after 3 s was not failed by the agents), later abandons count
#: as failures.
DEFAULT_SL_VARIANT: Final[SlVariant] = "abandons_ignored"


def ratio(num: float, den: float) -> float | None:
    """``num / den``, or ``None`` when the denominator is not positive (the module's rule)."""
    return num / den if den > 0 else None


def within(wait: float, threshold: float) -> bool:
    """Whether a wait counts as "within" the service-level threshold (inclusive)."""
    return wait <= threshold


def is_short_abandon(wait: float, short_abandon: float) -> bool:
    """Whether an abandon after ``wait`` seconds is a short one (excluded where documented)."""
    return wait < short_abandon


def service_levels(
    offered: int, answered: int, answered_within: int, abandoned_within: int
) -> dict[str, float | None]:
    """All four variants from the same counts, keyed by their ``SL_VARIANTS`` names:

    * ``abandons_ignored``: answered within / (offered - abandoned within)
    * ``abandons_negative``: answered within / offered
    * ``abandons_positive``: (answered within + abandoned within) / offered
    * ``answered_only``: answered within / answered
    """
    return {
        "abandons_ignored": ratio(answered_within, offered - abandoned_within),
        "abandons_negative": ratio(answered_within, offered),
        "abandons_positive": ratio(answered_within + abandoned_within, offered),
        "answered_only": ratio(answered_within, answered),
    }


def service_level(
    variant: str, offered: int, answered: int, answered_within: int, abandoned_within: int
) -> float | None:
    """One variant by name; ``ValueError`` for a name that is not one of ``SL_VARIANTS``."""
    levels = service_levels(offered, answered, answered_within, abandoned_within)
    try:
        return levels[variant]
    except KeyError:
        raise ValueError(
            f"unknown service level variant {variant!r}, expected one of {', '.join(SL_VARIANTS)}"
        ) from None


def abandon_rate(abandoned: int, offered: int, short_abandoned: int = 0) -> float | None:
    """Abandoned / offered, short abandons taken out of both sides: with ``short_abandoned``
    of the ``abandoned`` calls short, ``(abandoned - short) / (offered - short)``."""
    return ratio(abandoned - short_abandoned, offered - short_abandoned)


def average_speed_of_answer(answered_wait: float, answered: int) -> float | None:
    """ASA: total queue wait of the answered calls / answered."""
    return ratio(answered_wait, answered)


def average_handle_time(handle_time: float, handled: int) -> float | None:
    """AHT: (talk + hold + after-call work) / handled, given their sum ``handle_time``."""
    return ratio(handle_time, handled)


def occupancy(handle_time: float, available_idle: float) -> float | None:
    """Handle time / (handle time + available idle time); not-ready time is in neither, so
    with logged-in time L and not-ready time R this is handle / (L - R)."""
    return ratio(handle_time, handle_time + available_idle)
