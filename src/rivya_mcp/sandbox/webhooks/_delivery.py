"""Sending webhook deliveries: a loop in the sandbox app's lifespan, plus delivery fault rules.

Each tick settles the tasks whose time has come (which queues their events), then sends every
delivery that is due: POST, JSON, signed, no redirects followed, the configured timeout. Fault
rules (``POST /_sandbox/webhook-faults``) can drop, delay, duplicate or reorder deliveries, so a
receiver's fallbacks can be tested.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx2

from rivya_mcp.sandbox.webhooks._endpoints import Delivery, signature_headers

if TYPE_CHECKING:
    from rivya_mcp.sandbox._state import SandboxState

logger = logging.getLogger("rivya_mcp.sandbox")

TICK_SECONDS = 0.05
Action = Literal["drop", "delay", "duplicate", "reorder"]
ACTIONS: tuple[Action, ...] = ("drop", "delay", "duplicate", "reorder")
_RULE_KEYS = frozenset({"action", "event_type", "times", "delay_ms"})


@dataclass
class DeliveryFault:
    action: Action
    event_type: str | None = None
    times: int | None = None
    delay_ms: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "event_type": self.event_type, "times": self.times, "delay_ms": self.delay_ms}


def parse_delivery_faults(body: object) -> list[DeliveryFault]:
    """``{"rules": [{"action", "event_type"?, "times"?, "delay_ms"?}]}`` → rules; ValueError names what is wrong."""
    rules = body.get("rules") if isinstance(body, dict) else None
    if not isinstance(rules, list):
        raise ValueError('body: must be {"rules": [...]}')
    parsed = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict) or rule.get("action") not in ACTIONS:
            raise ValueError(f"rules[{i}].action: must be one of {', '.join(ACTIONS)}")
        unknown = sorted(set(rule) - _RULE_KEYS)
        if unknown:
            raise ValueError(f"rules[{i}]: unknown field(s) {', '.join(unknown)}")
        times, delay = rule.get("times"), rule.get("delay_ms", 0)
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ValueError(f"rules[{i}].times: must be a positive integer")
        if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
            raise ValueError(f"rules[{i}].delay_ms: must be a number >= 0")
        event_type = rule.get("event_type")
        if event_type is not None and not isinstance(event_type, str):
            raise ValueError(f"rules[{i}].event_type: must be a string")
        parsed.append(DeliveryFault(rule["action"], event_type, times, float(delay)))
    return parsed


_Item = tuple[Delivery, str, str]  # a delivery, its endpoint's URL and current secret
Post = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]


class WebhookDispatcher:
    """Delivers what a sandbox's registry queues. ``run()`` until cancelled; ``tick()`` does one round."""

    def __init__(self, state: SandboxState, *, post: Post | None = None) -> None:
        self._state = state
        self._post = post
        self._held: list[_Item] = []  # reordered: sent after the next one
        self._client: httpx2.AsyncClient | None = None

    async def run(self) -> None:
        async with httpx2.AsyncClient(follow_redirects=False, trust_env=False) as client:
            self._client = client
            try:
                async with anyio.create_task_group() as group:
                    while True:
                        now, after = self.take_due()
                        if after:
                            group.start_soon(self._send_in_order, now, after)
                        else:
                            for item in now:
                                group.start_soon(self._send, *item)
                        await anyio.sleep(TICK_SECONDS)
            finally:
                self._client = None

    async def _send_in_order(self, first: list[_Item], then: list[_Item]) -> None:
        """Send ``first`` (together), and ``then`` only once they have been answered (a reorder)."""
        async with anyio.create_task_group() as group:
            for item in first:
                group.start_soon(self._send, *item)
        for item in then:
            await self._send(*item)

    def take_due(self) -> tuple[list[_Item], list[_Item]]:
        """Settle due tasks, then the deliveries to send now and those to send after them (fault
        rules applied: a reordered delivery goes out only after the next one has been answered)."""
        self._state.settle_due()
        now = time.monotonic()
        out: list[_Item] = []
        after: list[_Item] = []
        for item in self._state.webhooks.due(now):
            rule = self._state.take_delivery_fault(item[0].event.type)
            if rule is None:
                out.append(item)
            elif rule.action == "drop":
                # A delivery lost on the way: logged here, never seen by the receiver, not retried.
                self._record(item[0], status_code=None, error="dropped by a sandbox fault", started=now, lost=True)
            elif rule.action == "duplicate":
                out += [item, item]
            elif rule.action == "delay":
                item[0].due = now + rule.delay_ms / 1000
                item[0].attempts -= 1
                self._state.webhooks.requeue(item[0])
            else:  # reorder: hold it back until the next delivery has gone out
                self._held.append(item)
                continue
            if out and self._held:
                after, self._held = self._held, []
        return out, after

    async def _send(self, delivery: Delivery, url: str, secret: str) -> None:
        body = json.dumps(delivery.event.body, separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "rivya-sandbox-webhooks",
            **signature_headers(self._state.webhook_signing(), secret, delivery.event.id, timestamp, body),
        }
        timeout = self._state.config.webhook_timeout_seconds
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            status = await self._deliver(url, body, headers, timeout)
            if 300 <= status < 400:
                error = f"redirect ({status}) not followed"
        except httpx2.TimeoutException:
            error = f"no answer within {timeout:g} s"
        except httpx2.HTTPError as exc:
            error = f"{type(exc).__name__}"
        self._record(delivery, status_code=status, error=error, started=started)

    async def _deliver(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        if self._post is not None:
            return await self._post(url, body, headers, timeout)
        assert self._client is not None
        response = await self._client.post(url, content=body, headers=headers, timeout=timeout)
        return response.status_code

    def _record(
        self, delivery: Delivery, *, status_code: int | None, error: str | None, started: float, lost: bool = False
    ) -> None:
        config = self._state.config
        now = time.monotonic()
        # A lost delivery is one the sandbox believes it sent: no retry (the receiver never knows).
        retry = None if lost else now + config.webhook_retry_seconds * 2 ** (delivery.attempts - 1)
        self._state.webhooks.record_attempt(
            delivery,
            at=self._state.now(),
            status_code=status_code,
            error=error,
            duration_ms=(now - started) * 1000,
            retry_due=retry,
            max_attempts=config.webhook_max_attempts,
            disable_after=config.webhook_disable_after,
        )
        if error or (status_code is not None and not 200 <= status_code < 300):
            logger.info(
                "webhook %s to %s failed (attempt %d): %s",
                delivery.event.id,
                delivery.endpoint_id,
                delivery.attempts,
                error or status_code,
            )
