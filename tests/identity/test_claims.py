"""The claim policy of access tokens, as tables (JWTs and introspection answers share it)."""

from __future__ import annotations

from typing import Any

import pytest

from rivya_mcp.identity import (
    ALLOWED_ALGORITHMS,
    audience_problem,
    check_algorithms,
    issuer_problem,
    lifetime_problem,
    scopes_of,
    subject_of,
)

NOW = 1_800_000_000.0
RESOURCE = "https://mcp.example.com/mcp"


@pytest.mark.parametrize(
    ("claims", "refused"),
    [
        ({"exp": NOW + 60}, None),
        ({"exp": NOW + 60, "nbf": NOW - 5}, None),
        ({"exp": NOW - 10}, None),  # within the 30 s leeway
        ({"exp": NOW - 31}, "expired"),
        ({"exp": NOW + 60, "nbf": NOW + 31}, "not valid yet"),
        ({"exp": NOW + 60, "nbf": NOW + 29}, None),
        ({}, "no exp claim"),
        ({"exp": "tomorrow"}, "the exp claim is not a number"),
        ({"exp": True}, "the exp claim is not a number"),
        ({"exp": NOW + 60, "nbf": []}, "the nbf claim is not a number"),
    ],
)
def test_lifetime(claims: dict[str, Any], refused: str | None) -> None:
    assert lifetime_problem(claims, NOW) == refused


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        (RESOURCE, True),
        (RESOURCE + "/", True),
        ([RESOURCE, "other"], True),
        (["other", RESOURCE], True),
        ("https://mcp.example.com", False),
        ("https://mcp.example.com/mcp2", False),
        ("https://evil.example/mcp", False),
        ([], False),
        (None, False),
        (7, False),
        ([7, None], False),
    ],
)
def test_audience(aud: Any, accepted: bool) -> None:
    claims = {} if aud is None else {"aud": aud}
    assert (audience_problem(claims, RESOURCE) is None) is accepted


@pytest.mark.parametrize(
    ("iss", "refused"),
    [
        ("https://idp.example.com/", None),
        ("https://idp.example.com", "issued by 'https://idp.example.com', not 'https://idp.example.com/'"),
        ("https://evil.example/", "issued by 'https://evil.example/', not 'https://idp.example.com/'"),
        (None, "no iss claim"),
    ],
)
def test_issuer_is_compared_exactly(iss: str | None, refused: str | None) -> None:
    claims = {} if iss is None else {"iss": iss}
    assert issuer_problem(claims, "https://idp.example.com/") == refused


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "images other"}, ("images", "other")),
        ({"scope": "images  images"}, ("images",)),
        ({"scp": ["images", "x"]}, ("images", "x")),
        ({"scp": "images"}, ("images",)),
        ({"scope": "a", "scp": ["b"]}, ("a",)),
        ({"scp": [1, "", "b"]}, ("b",)),
        ({}, ()),
    ],
)
def test_scopes(claims: dict[str, Any], scopes: tuple[str, ...]) -> None:
    assert scopes_of(claims) == scopes


@pytest.mark.parametrize(
    ("claims", "subject"),
    [
        ({"sub": "u1", "client_id": "c"}, "u1"),
        ({"client_id": "c"}, "c"),
        ({"sub": ""}, None),
        ({"sub": 5}, None),
        ({}, None),
    ],
)
def test_subject(claims: dict[str, Any], subject: str | None) -> None:
    assert subject_of(claims) == subject


@pytest.mark.parametrize("algorithm", ["none", "HS256", "HS384", "HS512", "rs256", ""])
def test_symmetric_and_unsigned_algorithms_are_never_allowed(algorithm: str) -> None:
    with pytest.raises(ValueError, match="not allowed"):
        check_algorithms(("RS256", algorithm))


def test_the_default_allow_list_is_asymmetric_only() -> None:
    assert check_algorithms(ALLOWED_ALGORITHMS) == ALLOWED_ALGORITHMS
    assert not any(a.startswith("HS") or a == "none" for a in ALLOWED_ALGORITHMS)
    with pytest.raises(ValueError):
        check_algorithms(())
