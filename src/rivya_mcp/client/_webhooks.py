"""The webhook management endpoints (rivya-api.md §3.8), as a mixin of ``AsyncRivyaClient``.

Only the endpoint object is documented; list bodies are not, so a list is read tolerantly (a JSON
array, or an object holding one under ``data``), like ``GET /models``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._base import BaseClient
from ._exceptions import MalformedResponseError

__all__ = ["WebhookEndpoint", "WebhooksMixin"]


class WebhookEndpoint(BaseModel):
    """A webhook endpoint; ``signing_secret`` is only present when it was just created or rotated."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    url: str | None = None
    name: str | None = None
    event_types: list[str] = Field(default_factory=list)
    status: str | None = None
    signing_secret: str | None = Field(default=None, repr=False)
    secret_preview: str | None = None
    failure_count: int | float | None = None
    disabled_at: str | None = None


def _items(body: Any, what: str) -> list[Any]:
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise MalformedResponseError(f"{what}: expected a list", retryable=False)
    return items


def _endpoint(body: Any, what: str) -> WebhookEndpoint:
    try:
        return WebhookEndpoint.model_validate(body)
    except ValidationError as err:
        raise MalformedResponseError(f"{what}: not a webhook endpoint ({err.error_count()} problem(s))") from None


class WebhooksMixin(BaseClient):
    async def list_webhooks(self) -> list[WebhookEndpoint]:
        what = "GET /webhooks"
        return [_endpoint(item, what) for item in _items(await self._request("GET", "/webhooks"), what)]

    async def create_webhook(self, *, url: str, event_types: list[str], name: str) -> WebhookEndpoint:
        body = {"name": name, "url": url, "event_types": event_types}
        return _endpoint(await self._request("POST", "/webhooks", json_body=body), "POST /webhooks")

    async def rotate_webhook_secret(self, endpoint_id: str) -> WebhookEndpoint:
        path = f"/webhooks/{quote(endpoint_id, safe='')}/rotate-secret"
        return _endpoint(await self._request("POST", path), "POST /webhooks/{id}/rotate-secret")

    async def get_webhook(self, endpoint_id: str) -> WebhookEndpoint:
        path = f"/webhooks/{quote(endpoint_id, safe='')}"
        return _endpoint(await self._request("GET", path), "GET /webhooks/{id}")

    async def update_webhook(
        self,
        endpoint_id: str,
        *,
        status: str | None = None,
        name: str | None = None,
        url: str | None = None,
        event_types: list[str] | None = None,
    ) -> WebhookEndpoint:
        """``PATCH /webhooks/{id}`` with only the fields given (the docs name the route, not its body:
        the fields are the endpoint object's own, §3.8)."""
        changes: dict[str, Any] = {
            key: value
            for key, value in (("status", status), ("name", name), ("url", url), ("event_types", event_types))
            if value is not None
        }
        if not changes:
            raise ValueError("update_webhook needs at least one field to change")
        path = f"/webhooks/{quote(endpoint_id, safe='')}"
        return _endpoint(await self._request("PATCH", path, json_body=changes), "PATCH /webhooks/{id}")

    async def enable_webhook(self, endpoint_id: str) -> WebhookEndpoint:
        """Re-enable an endpoint (e.g. one Rivya disabled after failed deliveries): ``status: active``.

        Assumption: the endpoint object's ``status`` is writable through ``PATCH`` (§3.8 names
        ``active`` and ``disabled_at``, not how an endpoint comes back).
        """
        return await self.update_webhook(endpoint_id, status="active")

    async def delete_webhook(self, endpoint_id: str) -> WebhookEndpoint | None:
        """Revoke an endpoint; returns it as the API answered, or None when the answer is not one."""
        path = f"/webhooks/{quote(endpoint_id, safe='')}"
        body = await self._request("DELETE", path)
        try:
            return WebhookEndpoint.model_validate(body)
        except ValidationError:
            return None

    async def send_test_webhook(self, endpoint_id: str) -> dict[str, Any]:
        """``POST /webhooks/{id}/test``: ask for the documented safe test delivery to that endpoint.

        Returns the API's answer as sent (its shape is not documented; an empty dict when it is
        not an object). The delivery itself arrives at the endpoint's URL, signed.
        """
        path = f"/webhooks/{quote(endpoint_id, safe='')}/test"
        body = await self._request("POST", path)
        return body if isinstance(body, dict) else {}

    async def list_webhook_events(self) -> list[dict[str, Any]]:
        """Recent events of the account, as sent (the envelope of §3.8)."""
        what = "GET /webhook-events"
        return [item for item in _items(await self._request("GET", "/webhook-events"), what) if isinstance(item, dict)]
