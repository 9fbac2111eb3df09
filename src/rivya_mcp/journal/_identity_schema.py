"""rivya-login's tables (``rivya_mcp.identity``) as a step of the journal's schema.

They live in the journal's database (the SQLite file in the data folder, or the PostgreSQL
database replicas share), so the step is in ``MIGRATIONS`` like every other: a server opens one
journal and finds the sign-in tables in place. The rules over them are identity's; only their
shape is here, because the journal owns the one list of schema steps. Every statement is
``IF NOT EXISTS``: a database where an interim rivya-login server created the tables itself
migrates through the step without a change.

Secrets are never stored usable: codes, tokens and consent requests by their SHA-256 hex, Rivya keys
and client secrets sealed with AES-GCM (``rivya_mcp.identity``). Times are whole epoch seconds
(BIGINT on both engines), so expiry is a plain comparison; scopes are space-separated (OAuth's own
spelling).
"""

from __future__ import annotations

from rivya_mcp.journal._store import Migration

__all__ = ["IDENTITY_STEP", "IDENTITY_TABLES"]

IDENTITY_TABLES = (
    "identity_clients",
    "identity_consents",
    "identity_codes",
    "identity_tokens",
    "identity_people",
    "identity_meta",
)

IDENTITY_STEP = Migration(
    common=(
        # Registered (DCR) clients, and client metadata documents (CIMD) as last fetched.
        """
        CREATE TABLE IF NOT EXISTS identity_clients (
            client_id    TEXT PRIMARY KEY,
            metadata     TEXT NOT NULL,
            secret_box   TEXT,
            source       TEXT NOT NULL,
            created_at   BIGINT NOT NULL,
            fresh_until  BIGINT
        )
        """,
        # Authorization requests waiting on the consent page (minutes).
        """
        CREATE TABLE IF NOT EXISTS identity_consents (
            request_hash TEXT PRIMARY KEY,
            client_id    TEXT NOT NULL,
            params       TEXT NOT NULL,
            csrf_hash    TEXT,
            attempts     INTEGER NOT NULL DEFAULT 0,
            expires_at   BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS identity_codes (
            code_hash    TEXT PRIMARY KEY,
            client_id    TEXT NOT NULL,
            person_id    TEXT NOT NULL,
            family       TEXT NOT NULL,
            params       TEXT NOT NULL,
            expires_at   BIGINT NOT NULL,
            used         INTEGER NOT NULL DEFAULT 0
        )
        """,
        # Access and refresh tokens. A rotated refresh token stays until it expires: presenting it
        # again is a replay, and revokes its whole family.
        """
        CREATE TABLE IF NOT EXISTS identity_tokens (
            token_hash   TEXT PRIMARY KEY,
            kind         TEXT NOT NULL,
            family       TEXT NOT NULL,
            client_id    TEXT NOT NULL,
            person_id    TEXT NOT NULL,
            scopes       TEXT NOT NULL,
            resource     TEXT NOT NULL,
            expires_at   BIGINT NOT NULL,
            state        TEXT NOT NULL DEFAULT 'active'
        )
        """,
        "CREATE INDEX IF NOT EXISTS identity_tokens_family ON identity_tokens (family)",
        "CREATE INDEX IF NOT EXISTS identity_tokens_expiry ON identity_tokens (expires_at)",
        # One row per person: their Rivya key, sealed.
        """
        CREATE TABLE IF NOT EXISTS identity_people (
            person_id    TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            key_box      TEXT NOT NULL,
            created_at   BIGINT NOT NULL,
            updated_at   BIGINT NOT NULL
        )
        """,
        # The sealed check value that tells, at start-up, whether RIVYA_SECRET_KEY is the one the
        # stored keys were sealed with.
        "CREATE TABLE IF NOT EXISTS identity_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)
