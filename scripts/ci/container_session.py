#!/usr/bin/env python3
"""What scripts/ci/container.sh checks against the running container, from outside it.

    python scripts/ci/container_session.py URL TOKEN [HOST_OUTPUT_DIR]

- ``GET /healthz`` answers 200 without a token (what a probe sends);
- ``/mcp`` without the token, or with another one, is refused with 401;
- an MCP session with the bearer token lists the tools and generates an image against a sandbox
  (the server's embedded one, or the compose stack's); the image reads back whole through
  ``resources/read``, and with ``HOST_OUTPUT_DIR`` it is also in the output volume, seen from the
  host there.

Exits 0 when all hold, 1 with the reason otherwise.
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path, PurePosixPath

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import BlobResourceContents, TextContent
from PIL import Image

CONTAINER_OUTPUT_DIR = PurePosixPath("/var/lib/rivya/out")
TOOLS = {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"}


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"container check failed: {what}")
    print(f"ok   {what}")


async def session(url: str, token: str, host_output: Path | None) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        check(tools == TOOLS, f"tools/list over the bearer-token session: {sorted(tools)}")
        result = await client.call_tool("generate_image", {"prompt": "a container ship at dusk", "aspectRatio": "1:1"})
        text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
        check(not result.is_error and result.structured_content is not None, f"generate_image: {text.splitlines()[0]}")
        assert result.structured_content is not None
        read = await client.read_resource(result.structured_content["resource_uri"])
    (blob,) = read.contents
    assert isinstance(blob, BlobResourceContents)
    with Image.open(io.BytesIO(base64.b64decode(blob.blob))) as image:
        image.verify()
    check(True, f"the image reads back whole through resources/read: {result.structured_content['resource_uri']}")
    saved = PurePosixPath(result.structured_content["saved_path"])
    if host_output is None:
        return
    check(CONTAINER_OUTPUT_DIR in saved.parents, f"the image was saved in the output volume: {saved}")
    on_host = host_output / saved.relative_to(CONTAINER_OUTPUT_DIR)
    with Image.open(on_host) as image:
        image.verify()
    check(True, f"the image is a whole picture, seen from the host: {on_host}")


def main(argv: list[str]) -> int:
    url, token = argv[1].rstrip("/"), argv[2]
    host_output = Path(argv[3]) if len(argv) > 3 else None
    health = httpx2.get(f"{url}/healthz", timeout=5)
    check(
        health.status_code == 200 and health.json() == {"status": "ok"},
        f"GET /healthz without a token: {health.status_code}",
    )
    probe = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for label, headers in (("no token", {}), ("a wrong token", {"Authorization": "Bearer not-the-token"})):
        refused = httpx2.post(f"{url}/mcp", json=probe, headers=headers, timeout=5)
        check(refused.status_code == 401, f"/mcp with {label} is refused: {refused.status_code}")
    anyio.run(session, url, token, host_output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
