"""Reconnect delays: exponential, bounded, with jitter. Pure (the caller supplies randomness).

Jitter matters when several CTI servers (or one after a deploy) lose the same Asterisk at
once: without it they all reconnect in the same millisecond, every time. "Equal jitter" keeps
half of the exponential delay and randomises the other half, so the delay never collapses to
zero and never exceeds the cap.
"""

from __future__ import annotations

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, *, minimum: float, maximum: float, jitter: float) -> float:
    """Delay before retry number ``attempt`` (0 = first retry); ``jitter`` is in [0, 1]."""
    if attempt < 0 or not 0.0 <= jitter <= 1.0 or minimum < 0 or maximum < minimum:
        raise ValueError("backoff_delay: attempt >= 0, 0 <= jitter <= 1, 0 <= min <= max")
    # Cap the exponent before computing it: 2 ** 10_000 is a float overflow.
    ceiling = min(maximum, minimum * 2.0 ** min(attempt, 64))
    return ceiling / 2 + ceiling / 2 * jitter
