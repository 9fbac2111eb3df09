"""Progress notifications while a task is polled: increasing ``progress``, a readable message."""

from __future__ import annotations

import math

from mcp.server.mcpserver import Context

from rivya_mcp.client import Generation, PollInfo

STATUS_WORDS = {
    "queued": "queued, waiting for a worker",
    "processing": "processing",
    "succeeded": "finished",
    "failed": "failed",
}


def describe_status(status: str) -> str:
    """A status in words; one the API docs do not list is named as such (and is still waited on)."""
    words = STATUS_WORDS.get(status)
    if words is not None:
        return words
    return f"in status {status!r}, which the Rivya docs do not list (treated as still running)"


class ProgressReporter:
    """Sends ``notifications/progress`` for one tool call.

    ``progress`` counts events (task created, each poll, saving), so it always increases even
    when two polls land in the same second. The total is unknown (the API gives no estimate), so
    none is sent rather than a made-up one. Without a progress token the SDK drops these quietly.
    """

    def __init__(self, ctx: Context, *, wait_seconds: float) -> None:
        self._ctx = ctx
        self._wait = wait_seconds
        self._step = 0

    async def note(self, message: str) -> None:
        self._step += 1
        await self._ctx.report_progress(self._step, None, message)

    async def created(self, generation: Generation, *, reused: bool) -> None:
        verb = "found earlier task" if reused else "task created"
        await self.note(f"{verb} {generation.id}: {describe_status(generation.status)}")

    async def on_update(self, generation: Generation, info: PollInfo) -> None:
        state = describe_status(generation.status)
        await self.note(f"{generation.id}: {state} ({info.elapsed:.1f} s elapsed, waiting up to {self._wait:g} s)")

    async def waiting(self, generation: Generation, *, elapsed: float, next_look: float, polled: bool) -> None:
        """A tick between status requests (no request is made for it), or the news of one."""
        state = describe_status(generation.status)
        seen = "" if polled else "last seen "
        if generation.status == "failed" or (generation.status == "succeeded" and generation.result):
            when = ""  # settled: no more looks
        elif next_look > 0:
            when = f", next look in {math.ceil(next_look)} s"
        else:
            when = ", looking now"
        await self.note(f"{generation.id}: {seen}{state} ({elapsed:.0f} s elapsed{when})")
