"""The sandbox's sense of time: an injectable base clock plus an offset moved by ``/_sandbox/clock``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Seconds since the Unix epoch (timestamps in responses are derived from it)."""


class ManualClock:
    """A clock that only moves when told to; inject it into ``create_app`` in tests."""

    def __init__(self, start: float = 1_778_457_600.0) -> None:  # 2026-05-11T00:00:00Z, the docs' date
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class SandboxClock:
    """``base() + offset``. The offset only grows, so sandbox time never runs backwards."""

    def __init__(self, base: Clock | None = None) -> None:
        self._base: Clock = base if base is not None else time.time
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._base() + self._offset

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("the sandbox clock cannot go backwards")
        with self._lock:
            self._offset += seconds
        return self.now()


def iso(timestamp: float) -> str:
    """The documented timestamp format, e.g. ``2026-05-11T00:00:00.000Z``."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
