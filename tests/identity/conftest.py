"""Fixtures of the identity tests: the Rivya sandbox (to check keys), a document host, stores."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from rivya_mcp.identity import IdentityStore, JournalIdentityStore, MemoryIdentityStore
from rivya_mcp.journal import MIGRATIONS
from rivya_mcp.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tests._journals import store_for
from tests.identity._login import DocumentHost, document_host
from tests.identity._node import NodeScript


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_sandbox(SandboxConfig())
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def rivya_key() -> str:
    """A fresh Rivya account in the sandbox (any well-formed key is one)."""
    return f"rvya_sk_identity_{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocumentHost]:
    with document_host(tmp_path_factory.mktemp("cimd-tls")) as host:
        yield host


@pytest.fixture
async def sqlite_identity_store(tmp_path: Path) -> AsyncIterator[IdentityStore]:
    """rivya-login's store on a SQLite journal (the migration appended, as it will ship)."""
    store = store_for(str(tmp_path / "journal.sqlite3"))
    store.migrate(MIGRATIONS)  # rivya-login's tables are a step of the journal's
    try:
        yield JournalIdentityStore(store, ensure_schema=False)
    finally:
        store.close()


@pytest.fixture
def memory_identity_store() -> IdentityStore:
    return MemoryIdentityStore()


@dataclass
class AuthServer:
    script: NodeScript
    issuer: str
    kid: str
    secrets: dict[str, str]

    def token(self, resource: str, *, scope: str | None = "images", client: str = "svc") -> str:
        data = {"grant_type": "client_credentials", "resource": resource}
        if scope is not None:
            data["scope"] = scope
        response = httpx2.post(f"{self.issuer}/token", data=data, auth=(client, self.secrets[client]), timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def revoke(self, token: str, *, client: str) -> None:
        response = httpx2.post(
            f"{self.issuer}/token/revocation", data={"token": token}, auth=(client, self.secrets[client]), timeout=10
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def authserver() -> Iterator[AuthServer]:
    script = NodeScript("authserver.mjs")
    try:
        ready = script.ready
        yield AuthServer(script, ready["issuer"], ready["kid"], ready["secrets"])
    finally:
        script.close()
