"""The poll schedule as a pure function of how many polls were made and how old the task is."""

from __future__ import annotations

from dataclasses import dataclass

from ._constants import (
    FIRST_POLL_DELAY,
    LONG_WAIT_DIVISOR,
    LONG_WAIT_SECONDS,
    MAX_LONG_POLL_INTERVAL,
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
    """Seconds to wait before the next status request of a task (rivya-api §3.4).

    Args:
        polls: status requests already made for the task (0 before the first one).
        elapsed: seconds since the task was created (its age, not the age of one wait).

    The first look comes ``FIRST_POLL_DELAY`` after the create. After that the interval is
    ``POLL_GROWTH_FRACTION`` of the task's age within ``[MIN_POLL_INTERVAL, MAX_POLL_INTERVAL]``
    (5 s up to an age of 33 s, then growing to 10 s at 67 s); past ``LONG_WAIT_SECONDS`` it is
    the age over ``LONG_WAIT_DIVISOR``, up to ``MAX_LONG_POLL_INTERVAL``. A ``Retry-After`` the
    API sends is not part of this function: the caller waits for the later of the two.
    """
    if polls <= 0:
        return FIRST_POLL_DELAY
    age = max(elapsed, 0.0)
    if age >= LONG_WAIT_SECONDS:
        return min(max(age / LONG_WAIT_DIVISOR, MAX_POLL_INTERVAL), MAX_LONG_POLL_INTERVAL)
    return min(max(POLL_GROWTH_FRACTION * age, MIN_POLL_INTERVAL), MAX_POLL_INTERVAL)
