"""Sign in with your own Rivya key (``--rivya-login``): this server as its own OAuth 2.1 authorization server.

The SDK's routes (``mcp.server.auth.routes``) speak the protocol: metadata, ``/authorize``,
``/token`` (PKCE S256 checked there), ``/register`` (DCR), ``/revoke``. This module is the
``OAuthAuthorizationServerProvider`` they call, plus what the consent page needs:

- a client is a registered one (DCR, kept with its secret sealed) or a client metadata document
  (CIMD, ``_cimd``: fetched by the references' SSRF rules, kept for its max-age);
- ``/authorize`` parks the request and sends the browser to the consent page, which asks for the
  person's Rivya API key; the key is checked with a credits call, then stored sealed (``_crypto``)
  under the person's id, a keyed fingerprint of the key;
- codes, access and refresh tokens are 256-bit random strings stored by their SHA-256; each sign-in
  starts a token *family*: a refresh rotates the refresh token, a reused code or a reused (rotated)
  refresh token revokes the whole family, and so does revoking any token of it;
- tokens are bound to the resource ``{public_url}/mcp`` (RFC 8707): a request for another resource
  is refused with ``invalid_target``.

The Rivya key never leaves the store except decrypted for one call (:meth:`RivyaLoginProvider.rivya_key`);
it is never in a token, a redirect, a log line or a page.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx2
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import InvalidRedirectUriError, OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from rivya_mcp.client import (
    AsyncRivyaClient,
    AuthenticationError,
    PermissionDeniedError,
    RivyaError,
    UnusableAPIKeyError,
)
from rivya_mcp.identity._crypto import KeyBox
from rivya_mcp.identity._person import Person, PersonAccessToken, login_person_id
from rivya_mcp.identity._store import ClientRecord, CodeRecord, ConsentRecord, IdentityStore, PersonRecord, TokenRecord
from rivya_mcp.identity.login._cimd import ClientDocumentError, ClientDocuments, is_document_client_id
from rivya_mcp.identity.login._redirects import redirect_matches, redirect_uri_problem
from rivya_mcp.settings import Secret

__all__ = [
    "LOGIN_SCOPE",
    "ConsentOutcome",
    "KeyCheck",
    "LoginClient",
    "LoginOptions",
    "PendingConsent",
    "RivyaLoginProvider",
    "rivya_key_checker",
]

logger = logging.getLogger("rivya_mcp.identity")

# The one scope rivya-login grants: generate and edit images with the person's own credits.
LOGIN_SCOPE = "images"
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 86_400
CODE_SECONDS = 300
CONSENT_SECONDS = 900
# Wrong keys per consent request before it is thrown away: the page is no key-guessing oracle.
MAX_KEY_ATTEMPTS = 5
MAX_KEY_CHARS = 512
MAX_NAME_CHARS = 80
CONSENT_PATH = "/consent"
_SECRET_CHECK = "secret_check"
_SECRET_CHECK_VALUE = "rivya-mcp identity"

KeyCheck = Literal["ok", "invalid", "lacks_permission", "unavailable"]
KeyChecker = Callable[[str], Awaitable[KeyCheck]]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _person_context(person_id: str) -> str:
    return f"person:{person_id}"


def _client_context(client_id: str) -> str:
    return f"client:{client_id}"


def rivya_key_checker(
    base_url: str, *, http_client: httpx2.AsyncClient | None = None, timeout: float = 15.0
) -> KeyChecker:
    """Checks a key the documented way (rivya-api §2: verify a new key with ``GET /api/v1/credits``).

    A 401 means the key is not one; a 403 a key without the ``credits:read`` permission; anything
    else (network, 5xx, rate limit) that Rivya could not be asked just now.
    """

    async def check(api_key: str) -> KeyCheck:
        client = AsyncRivyaClient(
            api_key=Secret(api_key), base_url=base_url, timeout=timeout, max_retries=1, http_client=http_client
        )
        async with client:
            try:
                await client.get_credits()
            except (AuthenticationError, UnusableAPIKeyError):
                return "invalid"
            except PermissionDeniedError:
                return "lacks_permission"
            except RivyaError as exc:
                logger.warning("could not check a Rivya key at sign-in: %s", type(exc).__name__)
                return "unavailable"
        return "ok"

    return check


class LoginClient(OAuthClientInformationFull):
    """A client as this server sees it: a loopback redirect may come back on another port (RFC 8252 §7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and self.redirect_uris:
            if any(redirect_matches(str(registered), str(redirect_uri)) for registered in self.redirect_uris):
                return redirect_uri
            raise InvalidRedirectUriError(f"Redirect URI '{redirect_uri}' not registered for client")
        return super().validate_redirect_uri(redirect_uri)


class LoginCode(AuthorizationCode):
    family: str


class LoginRefreshToken(RefreshToken):
    family: str


class LoginAccessToken(PersonAccessToken):
    family: str


@dataclass(frozen=True)
class LoginOptions:
    issuer: str  # the public URL: this authorization server's issuer identifier
    resource: str  # {public_url}/mcp
    rivya_base_url: str
    access_token_seconds: int = ACCESS_TOKEN_SECONDS
    refresh_token_seconds: int = REFRESH_TOKEN_SECONDS


@dataclass(frozen=True)
class PendingConsent:
    """What the consent page shows for one parked authorization request."""

    request_hash: str
    client: LoginClient
    params: AuthorizationParams
    from_document: bool  # CIMD: the name is vouched for by the client_id's host


@dataclass(frozen=True)
class ConsentOutcome:
    """Where to send the browser, or what to tell the person on the page (never both)."""

    redirect_to: str | None = None
    error: str | None = None
    retry: bool = False  # the page can be submitted again


def _same_resource(requested: str, ours: str) -> bool:
    a, b = urlsplit(requested), urlsplit(ours)
    return (a.scheme.lower(), a.netloc.lower(), a.path.rstrip("/"), a.query) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path.rstrip("/"),
        b.query,
    ) and not a.fragment


class RivyaLoginProvider(OAuthAuthorizationServerProvider[LoginCode, LoginRefreshToken, LoginAccessToken]):
    """The SDK's provider interface for rivya-login (the identity-assertion grant keeps its refusing default)."""

    def __init__(
        self,
        options: LoginOptions,
        store: IdentityStore,
        keybox: KeyBox,
        *,
        key_checker: KeyChecker | None = None,
        documents: ClientDocuments | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.options = options
        self.store = store
        self._box = keybox
        self._check_key = key_checker or rivya_key_checker(options.rivya_base_url)
        self.documents = documents or ClientDocuments()
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    async def check_secret(self) -> None:
        """Refuse to run with a RIVYA_SECRET_KEY other than the one the stored keys were sealed with."""
        sealed = await self.store.put_meta_if_absent(
            _SECRET_CHECK, self._box.seal(_SECRET_CHECK_VALUE, context=_SECRET_CHECK)
        )
        self._box.open(sealed, context=_SECRET_CHECK)  # raises SecretKeyMismatch, with what to do

    # -- clients -----------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> LoginClient | None:
        if is_document_client_id(client_id):
            return await self._document_client(client_id)
        record = await self.store.get_client(client_id)
        if record is None or record.source != "dcr":
            return None
        secret = self._box.open(record.secret_box, context=_client_context(client_id)) if record.secret_box else None
        return self._client(record.metadata, secret)

    def _client(self, metadata: str, secret: str | None) -> LoginClient:
        fields = json.loads(metadata)
        fields.pop("client_secret", None)
        return LoginClient.model_validate({**fields, "client_secret": secret, "scope": LOGIN_SCOPE})

    async def _document_client(self, url: str) -> LoginClient | None:
        now = self._now()
        record = await self.store.get_client(url)
        if record is not None and record.source == "cimd" and (record.fresh_until or 0) > now:
            return self._client(record.metadata, None)
        try:
            fetched = await self.documents.fetch(url)
        except ClientDocumentError as exc:
            if record is not None and record.source == "cimd":
                logger.warning("client metadata document %r: %s; using the copy fetched before", url, exc)
                return self._client(record.metadata, None)
            logger.info("refused the client metadata document %r: %s", url, exc)
            return None
        metadata = json.dumps(fetched.metadata)
        await self.store.put_client(ClientRecord(url, metadata, None, "cimd", now, now + fetched.max_age))
        return self._client(metadata, None)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        for uri in client_info.redirect_uris or []:
            problem = redirect_uri_problem(str(uri))
            if problem:
                raise RegistrationError("invalid_redirect_uri", problem)
        if is_document_client_id(client_info.client_id):
            raise RegistrationError("invalid_client_metadata", "client ids that are URLs are metadata documents")
        secret = client_info.client_secret
        metadata = client_info.model_dump_json(exclude={"client_secret"}, exclude_none=True)
        sealed = self._box.seal(secret, context=_client_context(client_info.client_id)) if secret else None
        await self.store.put_client(ClientRecord(client_info.client_id, metadata, sealed, "dcr", self._now()))
        # %r: the name is the client's own claim, and must not write lines of its own into the log.
        logger.info("registered OAuth client %s (%r)", client_info.client_id, client_info.client_name)

    # -- authorization: park the request, then the consent page decides ----------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and not _same_resource(params.resource, self.options.resource):
            raise AuthorizeError("invalid_target", f"this server issues tokens for {self.options.resource} only")
        scopes = params.scopes or [LOGIN_SCOPE]
        if any(scope != LOGIN_SCOPE for scope in scopes):
            raise AuthorizeError("invalid_scope", f"the only scope is {LOGIN_SCOPE!r}")
        parked = params.model_copy(update={"scopes": scopes, "resource": self.options.resource})
        now = self._now()
        await self.store.purge(now)
        request_id = secrets.token_urlsafe(32)
        await self.store.put_consent(
            ConsentRecord(_hash(request_id), client.client_id, parked.model_dump_json(), now + CONSENT_SECONDS)
        )
        return f"{self.options.issuer}{CONSENT_PATH}?request={request_id}"

    async def pending(self, request_id: str) -> PendingConsent | None:
        """The parked request behind a consent link, if it is still open."""
        record = await self.store.get_consent(_hash(request_id))
        if record is None or record.expires_at <= self._now():
            return None
        client = await self.get_client(record.client_id)
        if client is None:
            return None
        params = AuthorizationParams.model_validate_json(record.params)
        return PendingConsent(record.request_hash, client, params, is_document_client_id(client.client_id))

    async def bind_csrf(self, pending: PendingConsent, csrf: str) -> None:
        await self.store.set_consent_csrf(pending.request_hash, _hash(csrf))

    async def csrf_matches(self, pending: PendingConsent, csrf: str) -> bool:
        record = await self.store.get_consent(pending.request_hash)
        return (
            record is not None
            and record.csrf_hash is not None
            and secrets.compare_digest(record.csrf_hash, _hash(csrf))
        )

    def _redirect(self, params: AuthorizationParams, **fields: str | None) -> str:
        # RFC 9207: the issuer in every authorization response, so a client can't be mixed up.
        return construct_redirect_uri(str(params.redirect_uri), **fields, state=params.state, iss=self.options.issuer)

    async def deny(self, pending: PendingConsent) -> ConsentOutcome:
        await self.store.delete_consent(pending.request_hash)
        return ConsentOutcome(
            redirect_to=self._redirect(pending.params, error="access_denied", error_description="The person declined.")
        )

    async def approve(self, pending: PendingConsent, api_key: str, display_name: str = "") -> ConsentOutcome:
        """Check the key with Rivya; on success store it sealed and redirect with a code."""
        key = api_key.strip()
        if not key or len(key) > MAX_KEY_CHARS or not key.isascii() or not key.isprintable() or " " in key:
            return await self._wrong_key(pending, "That doesn't look like a Rivya API key. Paste the whole key.")
        verdict = await self._check_key(key)
        if verdict == "invalid":
            return await self._wrong_key(pending, "Rivya did not accept that key. Check it and try again.")
        if verdict == "lacks_permission":
            return await self._wrong_key(pending, "That key may not read credits (credits:read); use a key that can.")
        if verdict == "unavailable":
            return ConsentOutcome(
                error="Rivya could not be reached to check the key. Try again in a minute.", retry=True
            )
        if not await self.store.delete_consent(pending.request_hash):
            return ConsentOutcome(error="This sign-in was already answered. Start again from your app.")
        now = self._now()
        fingerprint = self._box.fingerprint(key)
        person_id = login_person_id(fingerprint)
        name = " ".join(display_name.split())[:MAX_NAME_CHARS] or f"Rivya account {fingerprint[:8]}"
        await self.store.put_person(
            PersonRecord(person_id, name, self._box.seal(key, context=_person_context(person_id)), now, now)
        )
        code = secrets.token_urlsafe(32)
        await self.store.put_code(
            CodeRecord(
                _hash(code),
                pending.client.client_id,
                person_id,
                secrets.token_urlsafe(16),
                pending.params.model_dump_json(),
                now + CODE_SECONDS,
            )
        )
        logger.info("%s signed in through client %s", person_id, pending.client.client_id)
        return ConsentOutcome(redirect_to=self._redirect(pending.params, code=code))

    async def _wrong_key(self, pending: PendingConsent, message: str) -> ConsentOutcome:
        attempts = await self.store.count_consent_attempt(pending.request_hash)
        if attempts >= MAX_KEY_ATTEMPTS or attempts == 0:
            await self.store.delete_consent(pending.request_hash)
            return ConsentOutcome(error="Too many attempts for this sign-in. Start again from your app.")
        return ConsentOutcome(error=message, retry=True)

    # -- codes and tokens --------------------------------------------------------------------

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> LoginCode | None:
        record = await self.store.get_code(_hash(authorization_code))
        if record is None or record.client_id != client.client_id:
            return None
        if record.used:
            revoked = await self.store.revoke_family(record.family)
            logger.warning("an authorization code was presented twice; revoked %d tokens issued from it", revoked)
            return None
        params = AuthorizationParams.model_validate_json(record.params)
        return LoginCode(
            code=authorization_code,
            scopes=params.scopes or [LOGIN_SCOPE],
            expires_at=float(record.expires_at),
            client_id=record.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
            subject=record.person_id,
            family=record.family,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: LoginCode
    ) -> OAuthToken:
        if not await self.store.use_code(_hash(authorization_code.code)):
            await self.store.revoke_family(authorization_code.family)
            raise TokenError("invalid_grant", "authorization code already used")
        assert authorization_code.subject is not None
        return await self._issue(
            client, authorization_code.subject, authorization_code.family, authorization_code.scopes
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> LoginRefreshToken | None:
        record = await self.store.get_token(_hash(refresh_token))
        if record is None or record.kind != "refresh" or record.client_id != client.client_id:
            return None
        if record.state == "rotated":
            revoked = await self.store.revoke_family(record.family)
            logger.warning("a rotated refresh token was presented again; revoked its family (%d tokens)", revoked)
            return None
        if record.state != "active" or record.expires_at <= self._now():
            return None
        return LoginRefreshToken(
            token=refresh_token,
            client_id=record.client_id,
            scopes=list(record.scopes),
            expires_at=record.expires_at,
            resource=record.resource,
            subject=record.person_id,
            family=record.family,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: LoginRefreshToken, scopes: list[str]
    ) -> OAuthToken:
        if not await self.store.rotate_token(_hash(refresh_token.token)):
            await self.store.revoke_family(refresh_token.family)
            raise TokenError("invalid_grant", "refresh token already used")
        assert refresh_token.subject is not None
        return await self._issue(client, refresh_token.subject, refresh_token.family, scopes)

    async def _issue(
        self, client: OAuthClientInformationFull, person_id: str, family: str, scopes: list[str]
    ) -> OAuthToken:
        if await self.store.get_person(person_id) is None:
            raise TokenError("invalid_grant", "the sign-in this grant came from is gone; sign in again")
        now, options = self._now(), self.options
        access = "rmcp_at_" + secrets.token_urlsafe(32)
        await self.store.put_token(
            TokenRecord(
                _hash(access),
                "access",
                family,
                client.client_id,
                person_id,
                tuple(scopes),
                options.resource,
                now + options.access_token_seconds,
            )
        )
        refresh: str | None = None
        if "refresh_token" in client.grant_types:
            refresh = "rmcp_rt_" + secrets.token_urlsafe(32)
            await self.store.put_token(
                TokenRecord(
                    _hash(refresh),
                    "refresh",
                    family,
                    client.client_id,
                    person_id,
                    tuple(scopes),
                    options.resource,
                    now + options.refresh_token_seconds,
                )
            )
        return OAuthToken(
            access_token=access, expires_in=options.access_token_seconds, scope=" ".join(scopes), refresh_token=refresh
        )

    async def load_access_token(self, token: str) -> LoginAccessToken | None:
        record = await self.store.get_token(_hash(token))
        if record is None or record.kind != "access" or record.state != "active" or record.expires_at <= self._now():
            return None
        person = await self.store.get_person(record.person_id)
        if person is None:
            return None
        return LoginAccessToken(
            token=token,
            client_id=record.client_id,
            scopes=list(record.scopes),
            expires_at=record.expires_at,
            resource=record.resource,
            subject=record.person_id,
            claims={"iss": self.options.issuer},
            person=Person(
                id=record.person_id,
                display_name=person.display_name,
                kind="rivya-login",
                issuer=self.options.issuer,
                subject=record.person_id,
                client_id=record.client_id,
                scopes=record.scopes,
            ),
            family=record.family,
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        family = getattr(token, "family", None)
        if isinstance(family, str):
            await self.store.revoke_family(family)

    # -- the person's key, at call time ------------------------------------------------------

    async def rivya_key(self, person: Person) -> Secret | None:
        """The person's own Rivya key, decrypted for one call; None if they never signed in here."""
        return await self.rivya_key_of(person.id)

    async def rivya_key_of(self, person_id: str) -> Secret | None:
        """``rivya_key`` by the person's id, for work no request carries (the recovery, webhooks)."""
        record = await self.store.get_person(person_id)
        if record is None:
            return None
        return Secret(self._box.open(record.key_box, context=_person_context(person_id)))
