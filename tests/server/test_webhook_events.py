"""What a webhook event carries, as the receiver reads it (the signature conventions themselves are
tested in tests/client/test_webhook_signatures.py, the receiver's use of them in tests/server/test_webhook_route.py)."""

from __future__ import annotations

import pytest

from rivya_mcp.tasks import event_generation, is_test_event


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


@pytest.mark.parametrize(
    ("event", "test"),
    [
        ({"type": "webhook.test", "test": True}, True),
        ({"type": "webhook.test"}, True),
        ({"type": "generation.succeeded", "test": True}, True),
        ({"type": "test"}, True),
        ({"type": "generation.succeeded"}, False),
        ({"type": "generation.failed", "test": False}, False),
        ({"type": "generation.succeeded", "test": "yes"}, False),
    ],
)
def test_what_counts_as_a_test_event(event: dict[str, object], test: bool) -> None:
    assert is_test_event(event) is test
