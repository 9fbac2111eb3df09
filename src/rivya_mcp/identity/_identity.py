"""One object per server for "who is calling": the verifier, its settings, rivya-login's provider.

``build_identity(settings, store=…)`` reads the mode from the settings (``_config``) and builds:

- ``issuer``: an :class:`IssuerTokenVerifier` for the team's authorization server;
- ``rivya-login``: a :class:`RivyaLoginProvider` on the given ``IdentityStore`` (the journal's
  database in production) with a :class:`KeyBox` from ``RIVYA_SECRET_KEY``, and the SDK's
  ``ProviderTokenVerifier`` over it.

Either way the result carries the SDK's ``AuthSettings`` that describe it (issuer, resource,
required scopes, registration and revocation), which ``mount_identity`` turns into routes and
middleware, and :meth:`Identity.rivya_key` gives a rivya-login person's own key at call time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx2
from mcp.server.auth.provider import ProviderTokenVerifier, TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl

from rivya_mcp.identity._config import IdentityConfigError, IdentityMode, identity_mode, resource_url
from rivya_mcp.identity._crypto import KeyBox
from rivya_mcp.identity._person import Person
from rivya_mcp.identity._store import IdentityStore
from rivya_mcp.identity.issuer._issuer import IssuerOptions, IssuerTokenVerifier
from rivya_mcp.identity.login._cimd import ClientDocuments
from rivya_mcp.identity.login._login import LOGIN_SCOPE, KeyChecker, LoginOptions, RivyaLoginProvider
from rivya_mcp.settings import Secret, Settings

__all__ = ["Identity", "build_identity"]


@dataclass
class Identity:
    """What a server needs to know about its callers' identity (see the module docstring)."""

    mode: IdentityMode
    resource: str
    auth: AuthSettings
    verifier: TokenVerifier
    login: RivyaLoginProvider | None = None
    issuer_verifier: IssuerTokenVerifier | None = None

    @property
    def resource_metadata_url(self) -> str:
        """RFC 9728 §3.1: ``/.well-known/oauth-protected-resource`` + the resource's path."""
        return str(build_resource_metadata_url(AnyHttpUrl(self.resource)))

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return tuple(self.auth.required_scopes or ())

    async def start(self) -> None:
        """Before serving: rivya-login refuses a RIVYA_SECRET_KEY that can't open the stored keys."""
        if self.login is not None:
            await self.login.check_secret()

    async def aclose(self) -> None:
        if self.issuer_verifier is not None:
            await self.issuer_verifier.aclose()
        if self.login is not None:
            await self.login.documents.aclose()
            await self.login.store.aclose()

    async def rivya_key(self, person: Person) -> Secret | None:
        """The person's own Rivya key (rivya-login), decrypted now; None when they spend the operator's.

        Raises ``SecretKeyMismatch`` / ``SealedValueCorrupt`` when the stored key can't be opened:
        never fall back to another key then.
        """
        if person.kind != "rivya-login" or self.login is None:
            return None
        return await self.login.rivya_key(person)

    async def rivya_key_of(self, person_id: str) -> Secret | None:
        """``rivya_key`` by a person's id, for work no request carries (the recovery, the replicas'
        sweep, webhooks): None for a person who spends the operator's key. Raises like ``rivya_key``."""
        if self.login is None:
            return None
        return await self.login.rivya_key_of(person_id)


def build_identity(
    settings: Settings,
    *,
    store: IdentityStore | None = None,
    key_checker: KeyChecker | None = None,
    documents: ClientDocuments | None = None,
    http_client: httpx2.AsyncClient | None = None,
    clock: Callable[[], float] = time.time,
) -> Identity | None:
    """The identity the settings configure, or None when they configure none.

    ``store`` is required for rivya-login (the journal's database: see ``JournalIdentityStore``).
    ``documents`` fetches client metadata documents (default: public addresses only, or private
    ones too with ``RIVYA_ALLOW_PRIVATE_URLS``); ``http_client`` reads the team's issuer.
    Raises ``IdentityConfigError`` (or ``SecretKeyError``) with what to change.
    """
    mode = identity_mode(settings)
    if mode is None:
        return None
    assert settings.public_url is not None
    resource = resource_url(settings)
    if mode == "issuer":
        assert settings.oauth_issuer is not None
        options = IssuerOptions(
            issuer=settings.oauth_issuer,
            resource=resource,
            audience=settings.oauth_audience,
            required_scopes=settings.oauth_scopes,
            client_id=settings.oauth_client_id,
            client_secret=settings.oauth_client_secret,
        )
        verifier = IssuerTokenVerifier(options, http_client=http_client, clock=clock)
        # Strings, validated by AuthSettings, which keeps a path-less URL without a trailing slash:
        # clients compare the issuer they are sent to with the metadata's, exactly.
        auth = AuthSettings.model_validate(
            {
                "issuer_url": settings.oauth_issuer,
                "resource_server_url": resource,
                "required_scopes": list(settings.oauth_scopes) or None,
                "validate_token_resource": True,
            }
        )
        return Identity(mode, resource, auth, verifier, issuer_verifier=verifier)
    if store is None:
        raise IdentityConfigError("--rivya-login needs a store for sign-ins (the journal's database)")
    issuer = settings.public_url.rstrip("/")
    provider = RivyaLoginProvider(
        LoginOptions(issuer=issuer, resource=resource, rivya_base_url=settings.base_url),
        store,
        KeyBox(settings.secret_key),
        key_checker=key_checker,
        documents=documents or ClientDocuments(allow_private_urls=settings.allow_private_urls),
        clock=clock,
    )
    auth = AuthSettings.model_validate(
        {
            "issuer_url": issuer,
            "resource_server_url": resource,
            "required_scopes": [LOGIN_SCOPE],
            "client_registration_options": ClientRegistrationOptions(
                enabled=True, valid_scopes=[LOGIN_SCOPE], default_scopes=[LOGIN_SCOPE]
            ),
            "revocation_options": RevocationOptions(enabled=True),
            "validate_token_resource": True,
        }
    )
    return Identity(mode, resource, auth, ProviderTokenVerifier(provider), login=provider)  # type: ignore[arg-type]
