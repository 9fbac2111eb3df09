"""Who is calling: an OAuth resource server, the rivya-login authorization server, people's stored keys.

Two ways to know the person behind an HTTP request (see docs/identity.md):

- **behind the team's identity provider** (``--oauth-issuer``): :class:`IssuerTokenVerifier`
  checks access tokens that provider issued for ``{public_url}/mcp`` (JWT against its JWKS, or
  opaque by introspection); the person is the token's subject there, and calls spend the
  operator's Rivya key;
- **sign in with your own Rivya key** (``--rivya-login``): :class:`RivyaLoginProvider` makes this
  server an OAuth 2.1 authorization server whose consent page takes the person's Rivya key, checks
  it, and keeps it sealed (``RIVYA_SECRET_KEY``) in an :class:`IdentityStore`; calls spend the
  person's own key, fetched with :meth:`Identity.rivya_key`.

Wiring: ``identity = build_identity(settings, store=JournalIdentityStore(journal_store))`` then
``mount_identity(app, identity, open_paths={webhook_path})`` on the HTTP app; in a tool handler,
``person = current_person()`` (None without an identity token). ``IDENTITY_MIGRATION`` is the
journal schema step that holds rivya-login's tables.
"""

from __future__ import annotations

from rivya_mcp.identity._cimd import ClientDocumentError, ClientDocuments
from rivya_mcp.identity._config import IdentityConfigError, IdentityMode, identity_mode, resource_url
from rivya_mcp.identity._crypto import KeyBox, SealedValueCorrupt, SecretKeyError, SecretKeyMismatch
from rivya_mcp.identity._identity import Identity, build_identity
from rivya_mcp.identity._issuer import IssuerOptions, IssuerTokenVerifier
from rivya_mcp.identity._journal_store import IdentityStoreUnavailable, JournalIdentityStore
from rivya_mcp.identity._login import LOGIN_SCOPE, KeyCheck, LoginOptions, RivyaLoginProvider, rivya_key_checker
from rivya_mcp.identity._memory_store import MemoryIdentityStore
from rivya_mcp.identity._mount import identity_routes, login_metadata, mount_identity
from rivya_mcp.identity._person import Person, PersonAccessToken, current_person
from rivya_mcp.identity._schema import IDENTITY_MIGRATION, ensure_identity_schema
from rivya_mcp.identity._store import IdentityStore

__all__ = [
    "IDENTITY_MIGRATION",
    "LOGIN_SCOPE",
    "ClientDocumentError",
    "ClientDocuments",
    "Identity",
    "IdentityConfigError",
    "IdentityMode",
    "IdentityStore",
    "IdentityStoreUnavailable",
    "IssuerOptions",
    "IssuerTokenVerifier",
    "JournalIdentityStore",
    "KeyBox",
    "KeyCheck",
    "LoginOptions",
    "MemoryIdentityStore",
    "Person",
    "PersonAccessToken",
    "RivyaLoginProvider",
    "SealedValueCorrupt",
    "SecretKeyError",
    "SecretKeyMismatch",
    "build_identity",
    "current_person",
    "ensure_identity_schema",
    "identity_mode",
    "identity_routes",
    "login_metadata",
    "mount_identity",
    "resource_url",
    "rivya_key_checker",
]
