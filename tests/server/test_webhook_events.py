"""The webhook signature check (server/_webhook_signature.py), as a table; signatures are made with
the sandbox's signer, an implementation the server does not share."""

from __future__ import annotations

import base64

import pytest

from rivya_mcp.sandbox import new_secret, sign
from rivya_mcp.tasks import TIMESTAMP_TOLERANCE_SECONDS, WebhookVerificationError, event_generation, verify

SECRET = new_secret()
OTHER = new_secret()
NOW = 1_790_000_000
BODY = b'{"id":"evt_1","type":"generation.succeeded","data":{"id":"task_1","status":"succeeded"}}'


def _headers(*, secret: str = SECRET, event_id: str = "evt_1", stamp: int = NOW, body: bytes = BODY) -> dict[str, str]:
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, event_id, stamp, body),
    }


GOOD = _headers()


@pytest.mark.parametrize(
    ("headers", "body", "now", "refused"),
    [
        (GOOD, BODY, NOW, None),
        (GOOD, BODY, NOW + TIMESTAMP_TOLERANCE_SECONDS, None),
        (GOOD, BODY, NOW - TIMESTAMP_TOLERANCE_SECONDS, None),
        # Several signatures (a sender mid-rotation): any valid v1 entry is enough.
        ({**GOOD, "webhook-signature": f"{_headers(secret=OTHER)['webhook-signature']} {GOOD['webhook-signature']}"},
         BODY, NOW, None),
        (GOOD, BODY + b" ", NOW, "no valid signature"),
        (GOOD, BODY, NOW + TIMESTAMP_TOLERANCE_SECONDS + 1, "outside"),
        (GOOD, BODY, NOW - TIMESTAMP_TOLERANCE_SECONDS - 1, "outside"),
        (_headers(secret=OTHER), BODY, NOW, "no valid signature"),
        ({**GOOD, "webhook-id": "evt_2"}, BODY, NOW, "no valid signature"),
        ({**GOOD, "webhook-timestamp": str(NOW + 1)}, BODY, NOW, "no valid signature"),
        ({**GOOD, "webhook-signature": GOOD["webhook-signature"].replace("v1,", "v2,")}, BODY, NOW, "no valid"),
        ({**GOOD, "webhook-signature": "v1,not-base64!!"}, BODY, NOW, "no valid signature"),
        # A prefix of the right signature is not the signature.
        ({**GOOD, "webhook-signature": GOOD["webhook-signature"][:-4]}, BODY, NOW, "no valid signature"),
        ({k: v for k, v in GOOD.items() if k != "webhook-signature"}, BODY, NOW, "missing"),
        ({k: v for k, v in GOOD.items() if k != "webhook-timestamp"}, BODY, NOW, "missing"),
        ({k: v for k, v in GOOD.items() if k != "webhook-id"}, BODY, NOW, "missing"),
        ({**GOOD, "webhook-timestamp": "12e9"}, BODY, NOW, "not a Unix time"),
    ],
)  # fmt: skip
def test_verify(headers: dict[str, str], body: bytes, now: float, refused: str | None) -> None:
    if refused is None:
        assert verify(SECRET, headers, body, now=now) == headers["webhook-id"]
    else:
        with pytest.raises(WebhookVerificationError, match=refused):
            verify(SECRET, headers, body, now=now)


def test_a_secret_that_is_not_whsec_base64_is_refused_not_crashed() -> None:
    with pytest.raises(WebhookVerificationError, match="whsec_"):
        verify("whsec_???", GOOD, BODY, now=NOW)
    assert base64.b64decode(SECRET.removeprefix("whsec_"))  # the sandbox's secrets are base64


@pytest.mark.parametrize("key", ["data", "generation"])
def test_the_generation_is_read_under_either_name(key: str) -> None:
    # rivya-api.md §3.8 is cut off before the event's body: both plausible names are accepted.
    generation = event_generation(
        {"id": "evt_1", "type": "generation.succeeded", key: {"id": "t", "status": "succeeded"}}
    )
    assert generation is not None and generation.id == "t"


def test_an_event_without_a_generation_is_none() -> None:
    assert event_generation({"id": "evt_1", "type": "generation.succeeded"}) is None
    assert event_generation({"id": "evt_1", "data": {"status": "succeeded"}}) is None  # no id
