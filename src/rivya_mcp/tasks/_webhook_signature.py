"""Verifying a Rivya webhook delivery: the one place that knows the signature scheme.

rivya-api.md §3.8 leaves the scheme unknown (the page is cut off before it). The `whsec_` secret
prefix and the `evt_` / `api_version` envelope match Standard Webhooks, which the sandbox
implements (docs/sandbox.md): headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature` (space-separated `v1,<base64 HMAC-SHA256>` entries) over
`{id}.{timestamp}.{raw body}`, keyed with the base64 part of the secret. If the real scheme
differs, this module is the one file to change.

Written here rather than taken from the `standardwebhooks` package: that package brings its own
HTTP stack (httpx) beside ours, for some twenty lines of HMAC.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
# A delivery signed longer ago (or further ahead) than this is refused: a captured request
# cannot be replayed later, and clocks may disagree by a little.
TIMESTAMP_TOLERANCE_SECONDS = 300.0


class WebhookVerificationError(ValueError):
    """The delivery is not provably from Rivya (or is too old); its body must be ignored."""


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = TIMESTAMP_TOLERANCE_SECONDS,
) -> str:
    """Check one delivery and return its event id; raise ``WebhookVerificationError`` otherwise.

    ``headers`` must be case-insensitive (Starlette's are) or use lower-case names.
    """
    event_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not event_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not a Unix time")
    if abs(now - int(stamp)) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is outside the allowed window")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("the stored signing secret is not a whsec_ secret") from None
    expected = hmac.new(key, f"{event_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return event_id
    raise WebhookVerificationError("no valid signature")
