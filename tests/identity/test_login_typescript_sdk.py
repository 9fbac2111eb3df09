"""rivya-login with the TypeScript MCP SDK's client auth (@modelcontextprotocol/client), DCR and CIMD.

The SDK runs its own flow (tests/identity/js/tsclient.mjs); the script's browser submits the consent
form. The refresh is the SDK's answer to a 401: the server's clock moves past the access token's
hour, the next call is refused, the SDK refreshes and retries, and nobody signs in again.
"""

from __future__ import annotations

from typing import Any

import pytest

from rivya_mcp.sandbox import RunningSandbox
from tests.identity._login import DocumentHost, login_server
from tests.identity._node import NodeScript


def _flow(script: NodeScript, server: Any, document: str | None) -> None:
    first = script.send(op="connect")
    if document:
        assert first["clientId"] == document  # CIMD: the document's URL is the client id
    else:
        assert first["clientId"] and not first["clientId"].startswith("https://")  # registered (DCR)
    me = first["me"]
    assert me["kind"] == "rivya-login" and me["own_key"] is True and me["name"] == "Grace"
    assert me["person"].startswith("rivya:") and me["scopes"] == ["images"]
    assert first["signIns"] == 1 and first["access"].startswith("rmcp_at_")

    server.clock.offset = 3600 + 1  # the access token's hour is over
    second = script.send(op="whoami")
    assert second["me"]["person"] == me["person"]
    assert second["signIns"] == 1, "a refresh, not a second sign-in"
    assert second["access"] != first["access"] and second["refresh"] != first["refresh"]
    assert script.send(op="status")["status"] == 200

    assert script.send(op="revoke")["status"] == 200
    assert script.send(op="status")["status"] == 401


@pytest.mark.parametrize("registration", ["dcr", "cimd"])
def test_typescript_sdk_signs_in_refreshes_and_is_revoked(
    sandbox: RunningSandbox,
    documents: DocumentHost,
    memory_identity_store: Any,
    rivya_key: str,
    registration: str,
) -> None:
    document = documents.publish("ts-sdk.json", client_name="TypeScript SDK test client")
    fetcher = documents.fetcher() if registration == "cimd" else None
    with login_server(sandbox, memory_identity_store, fetcher) as server:
        args = [server.resource, *([document] if registration == "cimd" else [])]
        script = NodeScript("tsclient.mjs", *args, env={"RIVYA_TEST_KEY": rivya_key})
        try:
            _flow(script, server, document if registration == "cimd" else None)
        finally:
            script.close()
