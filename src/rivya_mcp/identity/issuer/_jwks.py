"""The issuer's signing keys: cached, refreshed once on an unknown ``kid``, never re-fetched in a storm.

The same policy as PyJWT's ``PyJWKClient`` (a JWK Set cache with a lifespan; an unknown key id
forces one refresh, then a cooldown before the next), kept here on PyJWT's ``PyJWKSet`` because
``PyJWKClient`` reads with blocking ``urllib`` (no size cap, and a worker thread per verification
in an async server) and takes its cooldown from ``time.monotonic`` directly: this one reads through
the capped, deadline-bound reader and takes an injected clock, so the rotation tests are exact.

A token naming an unknown key is the cheapest thing an attacker can send; the cooldown is what
stops a stream of them from becoming a stream of requests to the identity provider.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from rivya_mcp.identity.issuer._issuer_http import IssuerUnavailable

__all__ = ["JwksCache", "SigningKey"]

logger = logging.getLogger("rivya_mcp.identity")

JWKS_LIFESPAN_SECONDS = 300.0
JWKS_COOLDOWN_SECONDS = 30.0


class JwksCache:
    def __init__(
        self,
        read: Callable[[], Awaitable[Any]],
        *,
        lifespan: float = JWKS_LIFESPAN_SECONDS,
        cooldown: float = JWKS_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._lifespan = lifespan
        self._cooldown = cooldown
        self._clock = clock
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at: float | None = None  # last successful read
        self._attempted_at: float | None = None  # last read, successful or not
        self._last_error = ""
        self._lock = anyio.Lock()
        self.fetches = 0  # reads attempted (tests and the log)

    async def key_for(self, kid: str | None) -> SigningKey | None:
        """The signing key named ``kid``, or None when the issuer does not publish it (after one refresh).

        Raises ``IssuerUnavailable`` only while no key set was ever read; afterwards a failed refresh
        keeps the keys it had (an IdP blip must not sign everybody out).
        """
        if not kid:
            return None
        async with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._lifespan:
                await self._refresh_if_allowed(now)
            key = self._keys.get(kid)
            if key is None:
                await self._refresh_if_allowed(now)
                key = self._keys.get(kid)
            return key

    async def _refresh_if_allowed(self, now: float) -> None:
        if self._attempted_at is not None and now - self._attempted_at < self._cooldown:
            if self._fetched_at is None:
                raise IssuerUnavailable(f"the issuer's keys are unavailable ({self._last_error})")
            return
        self._attempted_at = now
        self.fetches += 1
        try:
            self._keys = _signing_keys(await self._read())
        except IssuerUnavailable as exc:
            self._last_error = str(exc)
            if self._fetched_at is None:
                raise
            logger.warning("could not refresh the issuer's keys, keeping the ones read before: %s", exc)
            return
        self._fetched_at = now


@dataclass(frozen=True)
class SigningKey:
    jwk: PyJWK
    # The JWK's own "alg", when it declares one: the key may then verify only that algorithm.
    declared_alg: str | None


def _signing_keys(document: Any) -> dict[str, SigningKey]:
    if not isinstance(document, dict):
        raise IssuerUnavailable("the issuer's JWKS is not a JSON object")
    try:
        jwk_set = PyJWKSet.from_dict(document)
    except (PyJWKError, PyJWKSetError) as exc:
        raise IssuerUnavailable(f"the issuer's JWKS has no usable keys ({exc})") from None
    raw = document.get("keys")
    declared = (
        {entry.get("kid"): entry.get("alg") for entry in raw if isinstance(entry, dict)}
        if isinstance(raw, list)
        else {}
    )
    return {
        key.key_id: SigningKey(key, alg if isinstance(alg := declared.get(key.key_id), str) else None)
        for key in jwk_set.keys
        if key.key_id and key.public_key_use in ("sig", None)
    }
