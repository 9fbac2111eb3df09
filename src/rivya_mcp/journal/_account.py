"""Whose task a journal row is: the upstream it was sent to and a keyed fingerprint of the API key.

A create recorded under one upstream (the sandbox) or one account (one API key) must never be
re-sent, polled or listed under another: the re-send would be charged to whoever is configured
now. Both parts are pure functions here; the journal stores their results with every row.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["NO_ACCOUNT", "Owner", "account_fingerprint", "normalise_upstream"]

# The account of a server that has no API key: it can create nothing, and matches no recorded row.
NO_ACCOUNT = ""

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Owner(NamedTuple):
    """Whose rows a scoped journal reads and writes: the upstream and the account, side by side.

    Every owned table (``tasks``, ``mcp_tasks``) stores both in its own ``upstream`` and
    ``account`` columns, and a scoped journal narrows every read and write to the pair (one
    ``WHERE`` clause, ``TaskJournal._mine``). A row with ``NULL`` in them belongs to nobody
    known: listed at most, never acted on. Finer owners (a person behind one account) are a
    further column next to these two, narrowed the same way.
    """

    upstream: str  # the normalised base URL (``normalise_upstream``)
    account: str  # the keyed fingerprint of the API key (``account_fingerprint``), or NO_ACCOUNT


def normalise_upstream(base_url: str) -> str:
    """One spelling per API endpoint: ``HTTPS://Rivya.ai:443/`` and ``https://rivya.ai`` are the same.

    Scheme and host are lower-cased, a default port and trailing slashes dropped; user info, query
    and fragment are not part of a base URL's identity (and user info could hold a secret).
    """
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # not a number: keep the URL's own spelling rather than guess
        return base_url.strip().rstrip("/")
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def account_fingerprint(secret: bytes, api_key: str) -> str:
    """HMAC-SHA256 of the key under the journal's own random secret.

    Never the key, never a plain hash of it: a plain hash could be matched against a leaked key
    list, and would be the same in every journal, so two copies could be linked by it.
    """
    if not secret:
        raise ValueError("the fingerprint secret must not be empty")
    return hmac.new(secret, api_key.encode("utf-8"), hashlib.sha256).hexdigest()
