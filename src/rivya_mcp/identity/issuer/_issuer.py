"""A resource server behind the team's authorization server (``--oauth-issuer``): the token verifier.

A JWT access token (RFC 9068) is verified against the issuer's published keys, with an
asymmetric-algorithm allow-list; an opaque token is checked by RFC 7662 introspection when the
issuer's metadata offers an introspection endpoint and this server has client credentials there.
Either way the claims then pass the same policy (``_claims``): issuer exactly, audience naming this
resource (``{public_url}/mcp`` unless the operator names another audience), lifetime by the injected
clock. Scopes are reported, and the SDK's ``RequireAuthMiddleware`` refuses a token without the
required ones (403 ``insufficient_scope``). The person is the token's subject at this issuer.

Discovery is lazy (the server starts while the identity provider is down; a request then fails with
401 and the reason is logged) and a failure is remembered for a few seconds, so that a burst of
requests during an outage is one attempt, not one per request.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
import jwt

from rivya_mcp.identity._person import Person, PersonAccessToken, issuer_person_id
from rivya_mcp.identity.issuer._claims import (
    ALLOWED_ALGORITHMS,
    LEEWAY_SECONDS,
    audience_problem,
    check_algorithms,
    issuer_problem,
    lifetime_problem,
    scopes_of,
    subject_of,
)
from rivya_mcp.identity.issuer._discovery import IssuerMetadata, discover_issuer
from rivya_mcp.identity.issuer._issuer_http import IssuerUnavailable, read_json
from rivya_mcp.identity.issuer._jwks import JWKS_COOLDOWN_SECONDS, JWKS_LIFESPAN_SECONDS, JwksCache
from rivya_mcp.settings import Secret

__all__ = ["IssuerOptions", "IssuerTokenVerifier"]

logger = logging.getLogger("rivya_mcp.identity")

DISCOVERY_RETRY_SECONDS = 10.0
MAX_INTROSPECTION_BYTES = 64 * 1024
# An introspection answer is reused this long at most (and never past the token's exp): a revoked
# opaque token stops working within this time. JWTs are not revocable before their exp anyway.
INTROSPECTION_CACHE_SECONDS = 30.0
INTROSPECTION_CACHE_ENTRIES = 10_000
# Introspections in flight at once: a flood of made-up opaque tokens is not relayed as a flood.
INTROSPECTION_CONCURRENCY = 8
_DISPLAY_CLAIMS = ("preferred_username", "email", "name", "sub")


@dataclass(frozen=True)
class IssuerOptions:
    """What the operator configured (RIVYA_OAUTH_ISSUER, RIVYA_OAUTH_SCOPES, …) and the resource URL."""

    issuer: str
    resource: str
    audience: str | None = None
    required_scopes: tuple[str, ...] = ()
    client_id: str | None = None
    client_secret: Secret | None = None
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    leeway: float = LEEWAY_SECONDS

    @property
    def expected_audience(self) -> str:
        return self.audience or self.resource


def _display_name(claims: Mapping[str, Any], subject: str) -> str:
    for name in _DISPLAY_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return subject


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class IssuerTokenVerifier:
    """The SDK's ``TokenVerifier`` for tokens of one external issuer. Owns its HTTP client unless given one."""

    def __init__(
        self,
        options: IssuerOptions,
        *,
        http_client: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jwks_lifespan: float = JWKS_LIFESPAN_SECONDS,
        jwks_cooldown: float = JWKS_COOLDOWN_SECONDS,
    ) -> None:
        self.options = options
        self._algorithms = check_algorithms(options.algorithms)
        self._http = http_client or httpx2.AsyncClient(follow_redirects=False)
        self._owns_http = http_client is None
        self._clock = clock
        self._monotonic = monotonic
        self._metadata: IssuerMetadata | None = None
        self._discovery_failed_at: float | None = None
        self._discovery_error = ""
        self._discovery_lock = anyio.Lock()
        self.jwks = JwksCache(self._read_jwks, lifespan=jwks_lifespan, cooldown=jwks_cooldown, clock=monotonic)
        self._introspected: dict[str, tuple[PersonAccessToken, float]] = {}
        self._introspection_limit = anyio.CapacityLimiter(INTROSPECTION_CONCURRENCY)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def metadata(self) -> IssuerMetadata:
        """The issuer's metadata (discovered once); ``IssuerUnavailable`` while it cannot be read."""
        if self._metadata is not None:
            return self._metadata
        async with self._discovery_lock:
            if self._metadata is not None:
                return self._metadata
            now = self._monotonic()
            if self._discovery_failed_at is not None and now - self._discovery_failed_at < DISCOVERY_RETRY_SECONDS:
                raise IssuerUnavailable(self._discovery_error)
            try:
                self._metadata = await discover_issuer(self._http, self.options.issuer)
            except IssuerUnavailable as exc:
                self._discovery_failed_at, self._discovery_error = now, str(exc)
                raise
            logger.info("OAuth issuer %s discovered from %s", self._metadata.issuer, self._metadata.source)
            return self._metadata

    async def _read_jwks(self) -> Any:
        metadata = await self.metadata()
        if metadata.jwks_uri is None:
            raise IssuerUnavailable("the issuer's metadata has no jwks_uri, so JWT access tokens can't be checked")
        status, document = await read_json(self._http, metadata.jwks_uri, what="JWKS")
        if document is None:
            raise IssuerUnavailable(f"the issuer's JWKS answered HTTP {status}")
        return document

    async def verify_token(self, token: str) -> PersonAccessToken | None:
        """The token's person and scopes, or None (the middleware answers 401); the reason is logged."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            header = None
        try:
            if header is not None:
                return await self._verify_jwt(token, header)
            return await self._introspect(token)
        except IssuerUnavailable as exc:
            logger.warning("could not check a bearer token: %s", exc)
            return None

    async def _verify_jwt(self, token: str, header: Mapping[str, Any]) -> PersonAccessToken | None:
        metadata = await self.metadata()
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            return _refused(f"signature algorithm {algorithm!r} is not allowed")
        kid = header.get("kid")
        key = await self.jwks.key_for(kid if isinstance(kid, str) else None)
        if key is None:
            return _refused(f"signed with a key the issuer does not publish (kid {kid!r})")
        if key.declared_alg is not None and key.declared_alg != algorithm:
            return _refused(f"key {kid!r} is for {key.declared_alg}, the token says {algorithm}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[str(algorithm)],
                # Signature only: the claims are checked below, by our policy and our clock.
                options={
                    "verify_signature": True,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError as exc:
            return _refused(f"signature check failed ({type(exc).__name__})")
        return self._accept(claims, metadata, token, require_issuer=True)

    def _accept(
        self, claims: Mapping[str, Any], metadata: IssuerMetadata, token: str, *, require_issuer: bool
    ) -> PersonAccessToken | None:
        if require_issuer or "iss" in claims:
            problem = issuer_problem(claims, metadata.issuer)
            if problem:
                return _refused(problem)
        for problem in (
            audience_problem(claims, self.options.expected_audience),
            lifetime_problem(claims, self._clock(), self.options.leeway),
        ):
            if problem:
                return _refused(problem)
        subject = subject_of(claims)
        if subject is None:
            return _refused("no sub (or client_id) claim")
        client_id = next((v for n in ("client_id", "azp", "cid") if isinstance(v := claims.get(n), str)), "")
        scopes = scopes_of(claims)
        person = Person(
            id=issuer_person_id(metadata.issuer, subject),
            display_name=_display_name(claims, subject),
            kind="issuer",
            issuer=metadata.issuer,
            subject=subject,
            client_id=client_id,
            scopes=scopes,
        )
        exp = claims.get("exp")
        return PersonAccessToken(
            token=token,
            client_id=client_id,
            scopes=list(scopes),
            expires_at=int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
            resource=self.options.resource,
            subject=subject,
            claims={"iss": metadata.issuer},
            person=person,
        )

    async def _introspect(self, token: str) -> PersonAccessToken | None:
        options = self.options
        if not options.client_id or options.client_secret is None:
            return _refused("an opaque token, and no RIVYA_OAUTH_CLIENT_ID/SECRET to introspect it with")
        metadata = await self.metadata()
        if metadata.introspection_endpoint is None:
            return _refused("an opaque token, and the issuer's metadata offers no introspection endpoint")
        digest, now = _digest(token), self._clock()
        cached = self._introspected.get(digest)
        if cached is not None and now < cached[1]:
            return cached[0]
        credentials = (options.client_id, options.client_secret.reveal())
        form = {"token": token, "token_type_hint": "access_token"}
        use_post = "client_secret_basic" not in metadata.introspection_auth_methods and (
            "client_secret_post" in metadata.introspection_auth_methods
        )
        if use_post:
            form |= {"client_id": credentials[0], "client_secret": credentials[1]}
        async with self._introspection_limit:
            status, answer = await read_json(
                self._http,
                metadata.introspection_endpoint,
                what="introspection endpoint",
                form=form,
                auth=None if use_post else credentials,
                max_bytes=MAX_INTROSPECTION_BYTES,
            )
        if answer is None:
            raise IssuerUnavailable(f"the introspection endpoint answered HTTP {status}")
        if not isinstance(answer, dict) or answer.get("active") is not True:
            return _refused("introspection says the token is not active")
        accepted = self._accept(answer, metadata, token, require_issuer=False)
        if accepted is not None:
            self._remember(digest, accepted, now)
        return accepted

    def _remember(self, digest: str, accepted: PersonAccessToken, now: float) -> None:
        until = now + INTROSPECTION_CACHE_SECONDS
        if accepted.expires_at is not None:
            until = min(until, float(accepted.expires_at))
        if len(self._introspected) >= INTROSPECTION_CACHE_ENTRIES:
            self._introspected = {k: v for k, v in self._introspected.items() if v[1] > now}
            while len(self._introspected) >= INTROSPECTION_CACHE_ENTRIES:
                self._introspected.pop(next(iter(self._introspected)))
        self._introspected[digest] = (accepted, until)


def _refused(reason: str) -> PersonAccessToken | None:
    logger.info("refused a bearer token: %s", reason)
    return None
