"""Progress notifications while a task is polled: increasing ``progress``, a readable message."""

from __future__ import annotations

from mcp.server.mcpserver import Context

from rivya_mcp.client import Generation, PollInfo

STATUS_WORDS = {
    "queued": "queued, waiting for a worker",
    "processing": "processing",
    "succeeded": "finished",
    "failed": "failed",
}


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
        await self.note(f"{verb} {generation.id}: {STATUS_WORDS.get(generation.status, generation.status)}")

    async def on_update(self, generation: Generation, info: PollInfo) -> None:
        state = STATUS_WORDS.get(generation.status, generation.status)
        await self.note(f"{generation.id}: {state} ({info.elapsed:.1f} s elapsed, waiting up to {self._wait:g} s)")
