"""API keys: any well-formed ``rvya_sk_…`` key is an account; the key itself is never stored."""

from __future__ import annotations

import hashlib
import re

from rivya_mcp.sandbox._errors import SandboxError

KEY_PREFIX = "rvya_sk_"
# Sandbox decision: a key is well formed when it is `rvya_sk_` followed by 1–200 URL-safe
# characters; the real key alphabet and length are not documented.
_KEY_RE = re.compile(r"^rvya_sk_[A-Za-z0-9_\-]{1,200}$")


def account_id(api_key: str) -> str:
    """The non-secret account id shown in state and logs: ``acct_`` + 12 hex of the key's SHA-256."""
    return "acct_" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


def authenticate(authorization: str | None) -> str:
    """Return the account id for an ``Authorization`` header value, or raise the documented 401."""
    if authorization is None or not authorization.strip():
        raise SandboxError(401, "api_key_missing", "A valid Bearer API key is required.")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        if scheme.lower() == "bearer":
            raise SandboxError(401, "api_key_missing", "A valid Bearer API key is required.")
        raise SandboxError(401, "api_key_invalid", "The API key could not be verified.")
    if not _KEY_RE.match(token):
        raise SandboxError(401, "api_key_invalid", "The API key could not be verified.")
    return account_id(token)
