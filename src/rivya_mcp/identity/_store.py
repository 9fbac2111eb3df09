"""What rivya-login keeps, and the small typed interface of wherever it keeps it.

Nothing here is a usable secret: authorization codes, tokens and consent requests are stored by
their SHA-256 (each is 256 random bits, so the hash can't be reversed or guessed), people's Rivya
keys and registered clients' secrets are sealed (``_crypto.KeyBox``). Times are whole epoch
seconds from the injected clock.

Two implementations: :class:`MemoryIdentityStore` (tests, and nothing else: a restart forgets
every sign-in) and ``JournalIdentityStore`` over the journal's ``Store`` (SQLite or the PostgreSQL
database replicas share), in ``_journal_store``.

Single-use and rotation are check-and-set operations of the store (``use_code``,
``rotate_token``), so two replicas answering the same code or refresh token at once can't both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "ClientRecord",
    "CodeRecord",
    "ConsentRecord",
    "IdentityStore",
    "PersonRecord",
    "TokenRecord",
]

TokenKind = Literal["access", "refresh"]
TokenState = Literal["active", "rotated", "revoked"]
ClientSource = Literal["dcr", "cimd"]


@dataclass(frozen=True)
class ClientRecord:
    """A registered (DCR) client, or a client metadata document (CIMD) as last fetched."""

    client_id: str
    metadata: str  # OAuthClientInformationFull as JSON, without its secret
    secret_box: str | None  # the DCR client secret, sealed; None for public clients
    source: ClientSource
    created_at: int
    fresh_until: int | None = None  # CIMD: fetch the document again after this


@dataclass(frozen=True)
class ConsentRecord:
    """An authorization request waiting on the consent page."""

    request_hash: str
    client_id: str
    params: str  # the SDK's AuthorizationParams as JSON
    expires_at: int
    csrf_hash: str | None = None
    attempts: int = 0


@dataclass(frozen=True)
class CodeRecord:
    code_hash: str
    client_id: str
    person_id: str
    family: str  # every token issued from this code shares it; revoking the family revokes them all
    params: str  # AuthorizationParams as JSON: scopes, PKCE challenge, redirect URI, resource
    expires_at: int
    used: bool = False


@dataclass(frozen=True)
class TokenRecord:
    token_hash: str
    kind: TokenKind
    family: str
    client_id: str
    person_id: str
    scopes: tuple[str, ...]
    resource: str
    expires_at: int
    state: TokenState = "active"


@dataclass(frozen=True)
class PersonRecord:
    person_id: str
    display_name: str
    key_box: str  # the person's Rivya key, sealed with their person id as context
    created_at: int
    updated_at: int


class IdentityStore(Protocol):
    """Clients, consent requests, codes, tokens (by hash) and people. Async: a store may be remote."""

    async def put_client(self, record: ClientRecord) -> None:
        """Insert or replace (a CIMD document fetched again replaces its last copy)."""

    async def get_client(self, client_id: str) -> ClientRecord | None: ...

    async def put_consent(self, record: ConsentRecord) -> None: ...

    async def get_consent(self, request_hash: str) -> ConsentRecord | None: ...

    async def set_consent_csrf(self, request_hash: str, csrf_hash: str) -> None: ...

    async def count_consent_attempt(self, request_hash: str) -> int:
        """Add one failed key attempt; the new count (0 when the request is gone)."""

    async def delete_consent(self, request_hash: str) -> bool:
        """True when this call removed it (a consent is answered once)."""

    async def put_code(self, record: CodeRecord) -> None: ...

    async def get_code(self, code_hash: str) -> CodeRecord | None: ...

    async def use_code(self, code_hash: str) -> bool:
        """Mark the code used; True only for the one call that found it unused."""

    async def put_token(self, record: TokenRecord) -> None: ...

    async def get_token(self, token_hash: str) -> TokenRecord | None: ...

    async def rotate_token(self, token_hash: str) -> bool:
        """``active`` → ``rotated``; True only for the one call that found it active."""

    async def revoke_family(self, family: str) -> int:
        """Every token of the family → ``revoked``; how many changed."""

    async def put_person(self, record: PersonRecord) -> None:
        """Insert, or update the name and sealed key of a person who signs in again (keeps created_at)."""

    async def get_person(self, person_id: str) -> PersonRecord | None: ...

    async def get_meta(self, name: str) -> str | None: ...

    async def put_meta_if_absent(self, name: str, value: str) -> str:
        """Store ``value`` unless the name has one; the stored value either way."""

    async def purge(self, now: int) -> None:
        """Forget expired consent requests, codes and tokens (people and clients stay)."""

    async def aclose(self) -> None:
        """Release what the store itself opened (never what it was given)."""
