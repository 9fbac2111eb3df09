"""Sealed values: a round trip, and every way opening must fail closed (with a message that helps)."""

from __future__ import annotations

import pytest

from rivya_mcp.identity import KeyBox, SealedValueCorrupt, SecretKeyError, SecretKeyMismatch
from rivya_mcp.settings import Secret

SECRET = "s" * 40
OTHER = "t" * 40
KEY = "rvya_sk_crypto_test_value_0123456789"


def test_a_sealed_key_opens_with_the_same_secret_and_context() -> None:
    box = KeyBox(Secret(SECRET))
    sealed = box.seal(KEY, context="person:rivya:1")
    assert KEY not in sealed and "rvya_sk_" not in sealed
    assert sealed.startswith(f"v1.{box.key_id}.")
    assert KeyBox(SECRET).open(sealed, context="person:rivya:1") == KEY


def test_two_seals_of_one_value_differ() -> None:
    box = KeyBox(SECRET)
    assert box.seal(KEY, context="c") != box.seal(KEY, context="c")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "RIVYA_SECRET_KEY is not set"),
        ("", "RIVYA_SECRET_KEY is not set"),
        ("   ", "RIVYA_SECRET_KEY is not set"),
        ("short-secret", "is 12 characters long; use at least 32"),
    ],
)
def test_a_missing_or_short_secret_is_refused(secret: str | None, message: str) -> None:
    with pytest.raises(SecretKeyError, match=message) as refused:
        KeyBox(secret)
    assert "secrets.token_urlsafe(32)" in str(refused.value)


def test_a_rotated_secret_fails_closed_with_what_to_do() -> None:
    sealed = KeyBox(SECRET).seal(KEY, context="person:a")
    with pytest.raises(SecretKeyMismatch) as refused:
        KeyBox(OTHER).open(sealed, context="person:a")
    message = str(refused.value)
    assert "different RIVYA_SECRET_KEY" in message and "sign in again" in message
    assert KEY not in message and SECRET not in message and OTHER not in message


def test_a_value_moved_to_another_row_does_not_open() -> None:
    box = KeyBox(SECRET)
    sealed = box.seal(KEY, context="person:a")
    with pytest.raises(SealedValueCorrupt, match="person:b"):
        box.open(sealed, context="person:b")
    assert box.open(sealed, context="person:a") == KEY


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "no-version"])
def test_an_altered_value_does_not_open(damage: str) -> None:
    box = KeyBox(SECRET)
    sealed = box.seal(KEY, context="c")
    version, key_id, payload = sealed.split(".")
    if damage == "flip":
        payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
        altered = f"{version}.{key_id}.{payload}"
    elif damage == "truncate":
        altered = f"{version}.{key_id}.{payload[:10]}"
    elif damage == "garbage":
        altered = f"{version}.{key_id}.!!!"
    else:
        altered = payload
    with pytest.raises(SealedValueCorrupt):
        box.open(altered, context="c")


def test_fingerprints_are_stable_per_secret_and_differ_across_secrets() -> None:
    assert KeyBox(SECRET).fingerprint(KEY) == KeyBox(SECRET).fingerprint(KEY)
    assert KeyBox(SECRET).fingerprint(KEY) != KeyBox(OTHER).fingerprint(KEY)
    assert KeyBox(SECRET).fingerprint(KEY) != KeyBox(SECRET).fingerprint(KEY + "x")


def test_the_box_never_shows_its_keys() -> None:
    box = KeyBox(SECRET)
    assert SECRET not in repr(box) and box.key_id in repr(box)
