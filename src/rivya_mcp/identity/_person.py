"""Who is calling: the :class:`Person` behind the access token of the current HTTP request.

Both token verifiers (the team's issuer, rivya-login) answer with a :class:`PersonAccessToken`: the
SDK's ``AccessToken`` carrying the person it was issued to. The SDK's bearer middleware puts it in
its auth context for the request, which the MCP runner carries into the tool handler, so a handler
(or anything it calls) asks :func:`current_person`.

A person id is stable and safe to store as a journal owner:

- ``oauth:<issuer>#<subject>`` behind the team's identity provider (the token's ``sub``, unique
  only per issuer, hence the issuer with it; an issuer never contains ``#``: RFC 8414 forbids a
  fragment);
- ``rivya:<32 hex>`` for rivya-login: a keyed fingerprint of the person's Rivya key (Rivya's
  credits call names no account, so a key is the account we can tell apart; see docs/identity.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict

__all__ = ["Person", "PersonAccessToken", "current_person", "issuer_person_id", "login_person_id"]

PersonKind = Literal["issuer", "rivya-login"]
ISSUER_PREFIX = "oauth:"
LOGIN_PREFIX = "rivya:"
# 128 bits of the fingerprint: unique among any number of people a server will ever see.
LOGIN_ID_HEX = 32


@dataclass(frozen=True)
class Person:
    """One person, as the token of this request says. Holds nothing secret.

    ``id`` is the stable owner string; ``display_name`` is for people and operators (usage tables),
    never for access decisions. For ``kind == "rivya-login"`` the person's own Rivya key is fetched
    and decrypted at call time: ``await identity.rivya_key(person)``.
    """

    id: str
    display_name: str
    kind: PersonKind
    issuer: str
    subject: str
    client_id: str
    scopes: tuple[str, ...] = ()

    @property
    def spends_own_key(self) -> bool:
        """True when this person's calls must spend their own Rivya key, not the operator's."""
        return self.kind == "rivya-login"


class PersonAccessToken(AccessToken):
    """The SDK's access token with the person it was issued to (never rendered to a client)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    person: Person


def issuer_person_id(issuer: str, subject: str) -> str:
    return f"{ISSUER_PREFIX}{issuer}#{subject}"


def login_person_id(fingerprint: str) -> str:
    return f"{LOGIN_PREFIX}{fingerprint[:LOGIN_ID_HEX]}"


def current_person(token: AccessToken | None = None) -> Person | None:
    """The person of the current request (from the SDK's ``get_access_token()``), or None.

    None means the request carried no identity token: stdio, the single bearer token, or no auth at
    all. The caller decides what that means (one operator, one history).
    """
    token = token if token is not None else get_access_token()
    return token.person if isinstance(token, PersonAccessToken) else None
