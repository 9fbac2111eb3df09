"""The poll schedule as a pure function of how many polls were made and how long the wait is."""

from __future__ import annotations

from dataclasses import dataclass

from ._constants import (
    FAST_PHASE_SECONDS,
    FAST_POLL_INTERVAL,
    FIRST_POLL_DELAY,
    MAX_POLL_INTERVAL,
    MIN_POLL_INTERVAL,
    POLL_GROWTH_FRACTION,
)

__all__ = ["PollInfo", "poll_delay"]


@dataclass(frozen=True)
class PollInfo:
    """What ``wait_for_generation`` tells ``on_update`` after each poll."""

    elapsed: float
    """Seconds since the wait began (by the client's clock)."""
    polls: int
    """Status requests made so far in this wait, this one included."""
    changed: bool
    """True when the status differs from the previous poll's (always True on the first poll)."""


def poll_delay(polls: int, elapsed: float) -> float:
    """Seconds to wait before the next status request.

    Args:
        polls: status requests already made in this wait (0 before the first one).
        elapsed: seconds since the wait began.

    The first look comes after ``FIRST_POLL_DELAY``; during the first ``FAST_PHASE_SECONDS`` the
    interval is ``FAST_POLL_INTERVAL``; after that it is ``POLL_GROWTH_FRACTION`` of the elapsed
    time, kept within ``[MIN_POLL_INTERVAL, MAX_POLL_INTERVAL]``.
    """
    if polls <= 0:
        return FIRST_POLL_DELAY
    if elapsed < FAST_PHASE_SECONDS:
        return max(FAST_POLL_INTERVAL, MIN_POLL_INTERVAL)
    grown = POLL_GROWTH_FRACTION * elapsed
    return min(max(grown, FAST_POLL_INTERVAL, MIN_POLL_INTERVAL), MAX_POLL_INTERVAL)
