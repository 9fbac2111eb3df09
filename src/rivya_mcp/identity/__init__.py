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

from rivya_mcp.identity._config import IdentityConfigError, IdentityMode, identity_mode, resource_url
from rivya_mcp.identity._crypto import KeyBox, SealedValueCorrupt, SecretKeyError, SecretKeyMismatch
from rivya_mcp.identity._identity import Identity, build_identity
from rivya_mcp.identity._journal_store import IdentityStoreUnavailable, JournalIdentityStore
from rivya_mcp.identity._memory_store import MemoryIdentityStore
from rivya_mcp.identity._mount import identity_routes, login_metadata, mount_identity
from rivya_mcp.identity._person import Person, PersonAccessToken, current_person
from rivya_mcp.identity._schema import IDENTITY_MIGRATION, IDENTITY_TABLES, ensure_identity_schema
from rivya_mcp.identity._store import ClientRecord, CodeRecord, ConsentRecord, IdentityStore, PersonRecord, TokenRecord
from rivya_mcp.identity.issuer._claims import (
    ALLOWED_ALGORITHMS,
    audience_problem,
    check_algorithms,
    issuer_problem,
    lifetime_problem,
    scopes_of,
    subject_of,
)
from rivya_mcp.identity.issuer._discovery import discover_issuer, metadata_urls
from rivya_mcp.identity.issuer._issuer import IssuerOptions, IssuerTokenVerifier
from rivya_mcp.identity.issuer._issuer_http import IssuerUnavailable, check_issuer_url, read_json
from rivya_mcp.identity.login._cimd import (
    CACHE_DEFAULT_SECONDS,
    CACHE_MAX_SECONDS,
    CACHE_MIN_SECONDS,
    MAX_DOCUMENT_BYTES,
    ClientDocumentError,
    ClientDocuments,
    cache_seconds,
    client_id_url_problem,
)
from rivya_mcp.identity.login._login import LOGIN_SCOPE, KeyCheck, LoginOptions, RivyaLoginProvider, rivya_key_checker
from rivya_mcp.identity.login._redirects import (
    is_loopback_redirect,
    redirect_matches,
    redirect_shown_as,
    redirect_uri_problem,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CACHE_DEFAULT_SECONDS",
    "CACHE_MAX_SECONDS",
    "CACHE_MIN_SECONDS",
    "IDENTITY_MIGRATION",
    "IDENTITY_TABLES",
    "LOGIN_SCOPE",
    "MAX_DOCUMENT_BYTES",
    "ClientDocumentError",
    "ClientDocuments",
    "ClientRecord",
    "CodeRecord",
    "ConsentRecord",
    "Identity",
    "IdentityConfigError",
    "IdentityMode",
    "IdentityStore",
    "IdentityStoreUnavailable",
    "IssuerOptions",
    "IssuerTokenVerifier",
    "IssuerUnavailable",
    "JournalIdentityStore",
    "KeyBox",
    "KeyCheck",
    "LoginOptions",
    "MemoryIdentityStore",
    "Person",
    "PersonAccessToken",
    "PersonRecord",
    "RivyaLoginProvider",
    "SealedValueCorrupt",
    "SecretKeyError",
    "SecretKeyMismatch",
    "TokenRecord",
    "audience_problem",
    "build_identity",
    "cache_seconds",
    "check_algorithms",
    "check_issuer_url",
    "client_id_url_problem",
    "current_person",
    "discover_issuer",
    "ensure_identity_schema",
    "identity_mode",
    "identity_routes",
    "is_loopback_redirect",
    "issuer_problem",
    "lifetime_problem",
    "login_metadata",
    "metadata_urls",
    "mount_identity",
    "read_json",
    "redirect_matches",
    "redirect_shown_as",
    "redirect_uri_problem",
    "resource_url",
    "rivya_key_checker",
    "scopes_of",
    "subject_of",
]
