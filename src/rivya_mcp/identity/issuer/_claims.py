"""Policy for an access token's claims, as pure functions (tested as tables).

Used for JWT access tokens (RFC 9068) and for introspection answers (RFC 7662) alike: the issuer
must be the configured one exactly, the audience must include this resource, the token must be
within its lifetime by the injected clock (a small leeway for clock skew), and the subject (or, for
a client acting for itself, its client id) names who it is. Each check answers None or the reason
for refusing, which is logged (never the token).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALLOWED_ALGORITHMS",
    "LEEWAY_SECONDS",
    "audience_problem",
    "check_algorithms",
    "issuer_problem",
    "lifetime_problem",
    "scopes_of",
    "subject_of",
]

# Asymmetric signatures only. "none" is no signature; HS* would verify with a shared secret,
# and a resource server that accepted them could be handed a token "signed" with the public key.
ALLOWED_ALGORITHMS: tuple[str, ...] = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
LEEWAY_SECONDS = 30


def check_algorithms(algorithms: tuple[str, ...]) -> tuple[str, ...]:
    """The configured allow-list, refusing any algorithm that is not an asymmetric signature."""
    refused = [a for a in algorithms if a not in ALLOWED_ALGORITHMS]
    if refused or not algorithms:
        raise ValueError(
            f"JWT algorithms {refused or '(none)'} are not allowed; choose among {', '.join(ALLOWED_ALGORITHMS)}"
        )
    return algorithms


def issuer_problem(claims: Mapping[str, Any], issuer: str) -> str | None:
    iss = claims.get("iss")
    if iss is None:
        return "no iss claim"
    return None if iss == issuer else f"issued by {iss!r}, not {issuer!r}"


def audience_problem(claims: Mapping[str, Any], audience: str) -> str | None:
    """None when ``aud`` (a string or a list) names ``audience``; a trailing slash aside."""
    aud = claims.get("aud")
    values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    wanted = audience.rstrip("/")
    if any(isinstance(v, str) and v.rstrip("/") == wanted for v in values):
        return None
    return f"audience {aud!r} does not include {audience!r}"


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(name)
    return float(value)


def lifetime_problem(claims: Mapping[str, Any], now: float, leeway: float = LEEWAY_SECONDS) -> str | None:
    """``exp`` is required and must be in the future; ``nbf`` (if any) in the past; leeway both ways."""
    try:
        exp, nbf = _number(claims, "exp"), _number(claims, "nbf")
    except ValueError as bad:
        return f"the {bad} claim is not a number"
    if exp is None:
        return "no exp claim"
    if now >= exp + leeway:
        return "expired"
    if nbf is not None and now + leeway < nbf:
        return "not valid yet"
    return None


def scopes_of(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """``scope`` (RFC 9068/7662, space-separated) or ``scp`` (Entra, Okta: a list or a string)."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return tuple(dict.fromkeys(value.split()))
        if isinstance(value, list):
            return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))
    return ()


def subject_of(claims: Mapping[str, Any]) -> str | None:
    """``sub``; a client acting for itself (client credentials) may carry only ``client_id``."""
    for name in ("sub", "client_id"):
        value = claims.get(name)
        if isinstance(value, str) and value:
            return value
    return None
