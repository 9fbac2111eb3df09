"""Webhook signature conventions: each one of the known set is detected from a delivery signed that
way, verified once pinned, and every malformed or hostile input is a refusal, never an exception.

The deliveries are signed here independently (hmac/hashlib, each scheme as its own documentation
writes it), not with the module under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rivya_mcp.client import (
    KNOWN_SCHEMES,
    SignatureConvention,
    candidate_conventions,
    detect_convention,
    signature_header_names,
    verify_delivery,
)

NOW = 1_778_500_000.0  # a fixed "now" (2026-05-11)
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
BODY = json.dumps({"id": "evt_1", "type": "webhook.test", "test": True}).encode()


def _b64_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def standard(
    secret: str = SECRET, *, body: bytes = BODY, stamp: str | None = None, raw: bool = False, prefix: str = "webhook"
) -> dict[str, str]:
    stamp = stamp if stamp is not None else str(int(NOW))
    key = secret.encode() if raw else _b64_key(secret)
    digest = hmac.new(key, f"evt_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        f"{prefix}-id": "evt_1",
        f"{prefix}-timestamp": stamp,
        f"{prefix}-signature": "v1,bm9wZQ== v1," + base64.b64encode(digest).decode(),
    }


def stripe(
    secret: str = SECRET,
    *,
    body: bytes = BODY,
    stamp: str | None = None,
    raw: bool = True,
    header: str = "Rivya-Signature",
) -> dict[str, str]:
    stamp = stamp if stamp is not None else str(int(NOW))
    key = secret.encode() if raw else _b64_key(secret)
    digest = hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {header: f"t={stamp},v1={digest},v0=ignored"}


def hex_body(secret: str = SECRET, *, body: bytes = BODY, raw: bool = True, prefix: str = "") -> dict[str, str]:
    key = secret.encode() if raw else _b64_key(secret)
    return {"X-Signature": prefix + hmac.new(key, body, hashlib.sha256).hexdigest()}


MS = str(int(NOW * 1000))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (standard(), "standard:webhook-signature:base64:s"),
        (standard(raw=True), "standard:webhook-signature:raw:s"),
        (standard(stamp=MS), "standard:webhook-signature:base64:ms"),
        (standard(prefix="svix"), "standard:svix-signature:base64:s"),
        (stripe(), "stripe:rivya-signature:raw:s"),
        (stripe(raw=False), "stripe:rivya-signature:base64:s"),
        (stripe(stamp=MS), "stripe:rivya-signature:raw:ms"),
        (stripe(header="X-Rivya-Signature"), "stripe:x-rivya-signature:raw:s"),
        (hex_body(), "hex:x-signature:raw:-"),
        (hex_body(raw=False), "hex:x-signature:base64:-"),
        (hex_body(prefix="sha256="), "hex:x-signature:raw:-"),
    ],
)
def test_each_known_convention_is_detected_and_then_verifies_alone(headers: dict[str, str], expected: str) -> None:
    convention = detect_convention(headers, BODY, SECRET, now=NOW)
    assert convention is not None and convention.name == expected
    assert SignatureConvention.parse(convention.name) == convention
    assert verify_delivery(convention, headers, BODY, SECRET, now=NOW).ok
    # Pinned, it refuses what it did not sign: another body, another secret.
    other_secret = "whsec_" + base64.b64encode(b"\x01" * 32).decode()
    assert not verify_delivery(convention, headers, BODY + b" ", SECRET, now=NOW).ok
    assert not verify_delivery(convention, headers, BODY, other_secret, now=NOW).ok
    # And every other convention of the set refuses it.
    for other in candidate_conventions(headers):
        if other != convention:
            assert not verify_delivery(other, headers, BODY, SECRET, now=NOW).ok


def test_the_standard_convention_names_the_event_and_its_time() -> None:
    verdict = verify_delivery(SignatureConvention.parse("standard:webhook-signature:base64:s"), standard(), BODY,
                              SECRET, now=NOW)  # fmt: skip
    assert verdict.ok and verdict.event_id == "evt_1" and verdict.timestamp == NOW


@pytest.mark.parametrize(
    "headers",
    [
        {},  # nothing signed
        {"X-Rivya-Signature": "sha512=" + "ab" * 64, "X-Rivya-Timestamp": str(int(NOW))},  # another hash
        {"Rivya-Signature": "t=1,v1=zz"},
        stripe(secret="whsec_another"),
        standard(secret="whsec_" + base64.b64encode(b"\x02" * 32).decode()),
    ],
)
def test_no_known_convention_verifies_an_unknown_or_foreign_signature(headers: dict[str, str]) -> None:
    assert detect_convention(headers, BODY, SECRET, now=NOW) is None


@pytest.mark.parametrize(
    ("stamp", "refused"),
    [
        (str(int(NOW) - 299), False),
        (str(int(NOW) + 299), False),
        (str(int(NOW) - 301), True),  # replayed later than the 5-minute tolerance
        (str(int(NOW) + 301), True),
        ("9" * 5000, True),  # 5000 digits: int() would raise past 4300, and it is no time anyway
        ("1" * 17, True),
        ("²", True),  # a digit to str.isdigit, not to int()
        ("１７７８５００００００", True),  # full-width digits
        ("-1778500000", True),
        ("1778500000.5", True),
        ("", True),
        (" 1778500000", True),
    ],
)
def test_timestamps_outside_the_window_or_malformed_are_refused_without_an_exception(stamp: str, refused: bool) -> None:
    for convention_name, headers in (
        ("standard:webhook-signature:base64:s", standard(stamp=stamp)),
        ("stripe:rivya-signature:raw:s", stripe(stamp=stamp)),
    ):
        verdict = verify_delivery(SignatureConvention.parse(convention_name), headers, BODY, SECRET, now=NOW)
        assert verdict.ok is not refused, (convention_name, stamp, verdict)
        if refused:
            assert verdict.problem


def test_huge_and_broken_headers_are_refused_unread() -> None:
    pinned = SignatureConvention.parse("stripe:rivya-signature:raw:s")
    assert not verify_delivery(pinned, {"rivya-signature": "t=1," + "v1=" + "a" * 100_000}, BODY, SECRET, now=NOW).ok
    assert not verify_delivery(pinned, {"rivya-signature": "t=1778500000,v1=é"}, BODY, SECRET, now=NOW).ok
    standard_pin = SignatureConvention.parse("standard:webhook-signature:base64:s")
    broken = {**standard(), "webhook-signature": "v1,***not-base64*** v2,abc v1"}
    assert not verify_delivery(standard_pin, broken, BODY, SECRET, now=NOW).ok
    assert not verify_delivery(standard_pin, standard(), BODY, "whsec_***", now=NOW).ok  # a secret that is not base64
    assert candidate_conventions({"x-signature": "t=1,v1=" + "a" * 10_000}) == []


@settings(max_examples=300, deadline=None)
@given(
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "rivya-signature", "x-signature"]),
        st.text(max_size=200),
    ),
    body=st.binary(max_size=200),
    secret=st.text(max_size=60),
)
def test_nothing_raises_whatever_arrives(headers: dict[str, str], body: bytes, secret: str) -> None:
    detect_convention(headers, body, secret, now=NOW)
    for scheme_name in (
        "standard:webhook-signature:base64:s",
        "stripe:rivya-signature:raw:ms",
        "hex:x-signature:raw:-",
    ):
        verify_delivery(SignatureConvention.parse(scheme_name), headers, body, secret, now=NOW)


@pytest.mark.parametrize(
    "name",
    ["", "standard", "rot13:x-signature:raw:s", "hex:x-signature:raw:s", "stripe:rivya-signature:raw:-",
     "stripe:authorization:raw:s", "standard:webhook-signature:hex:s"],
)  # fmt: skip
def test_only_known_conventions_can_be_pinned(name: str) -> None:
    with pytest.raises(ValueError):
        SignatureConvention.parse(name)


def test_the_known_set_and_its_description() -> None:
    assert KNOWN_SCHEMES == ("standard", "stripe", "hex")
    described = SignatureConvention.parse("stripe:rivya-signature:raw:ms").describe()
    assert "rivya-signature" in described and "milliseconds" in described and "as text" in described
    assert signature_header_names({"Rivya-Signature": "x", "Content-Type": "y"}) == ["rivya-signature"]
