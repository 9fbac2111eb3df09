"""Who is calling, handed from identity to the tasks layer as a plain value.

The HTTP app knows the person behind each request (``rivya_mcp.identity``: the token's subject at
the team's issuer, or a rivya-login person); the tasks layer knows only ``tasks.Caller``. This
module is the one place that turns the first into the second:

- ``caller_source(identity)``: for each request, the person and, with rivya-login, their own key,
  decrypted for that request. A person whose stored key can't be opened gets an error, never the
  operator's key.
- ``keyring(identity)``: a person's own key by their id, for what no request carries (the recovery,
  the replicas' sweep, webhooks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp import MCPError
from mcp.types import INVALID_REQUEST

from rivya_mcp.identity import Identity, SealedValueCorrupt, SecretKeyMismatch, current_person
from rivya_mcp.settings import Secret
from rivya_mcp.tasks import Caller, Keyring

__all__ = ["caller_source", "keyring"]


def caller_source(identity: Identity | None) -> Callable[[], Awaitable[Caller]] | None:
    """The caller of the current request (None without identity: everyone is the server's person)."""
    if identity is None:
        return None

    async def who() -> Caller:
        person = current_person()
        if person is None:
            # Behind RequireToken every MCP request carries a person; refuse rather than guess one.
            raise MCPError(INVALID_REQUEST, "this request carries no access token of a person")
        try:
            key = await identity.rivya_key(person)
        except (SecretKeyMismatch, SealedValueCorrupt):
            # Never another key instead: this person's calls wait until their own can be read.
            raise MCPError(
                INVALID_REQUEST, "the Rivya key stored for this sign-in can't be read on this server: sign in again"
            ) from None
        if person.spends_own_key and key is None:
            raise MCPError(INVALID_REQUEST, "no Rivya key is stored for this sign-in: sign in again")
        return Caller(person=person.id, api_key=key, name=person.display_name)

    return who


def keyring(identity: Identity | None) -> Keyring | None:
    """People's own keys by id (rivya-login only; None otherwise: everyone spends the operator's)."""
    if identity is None or identity.login is None:
        return None

    async def key_of(person_id: str) -> Secret | None:
        return await identity.rivya_key_of(person_id)

    return key_of
