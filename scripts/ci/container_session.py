#!/usr/bin/env python3
"""What scripts/ci/container.sh checks against the running container, from outside it.

    python scripts/ci/container_session.py URL TOKEN HOST_OUTPUT_DIR

- ``GET /healthz`` answers 200 without a token (what a probe sends);
- ``/mcp`` without the token, or with another one, is refused with 401;
- an MCP session with the bearer token lists the tools and generates an image against the
  server's embedded sandbox (``--sandbox``); the image lands in the output volume, seen from the
  host at ``HOST_OUTPUT_DIR``.

Exits 0 when all hold, 1 with the reason otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent
from PIL import Image

CONTAINER_OUTPUT_DIR = PurePosixPath("/var/lib/rivya/out")
TOOLS = {"generate_image", "edit_image", "upload_reference", "get_task", "get_credits", "list_tasks"}


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"container check failed: {what}")
    print(f"ok   {what}")


async def session(url: str, token: str, host_output: Path) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0)) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        check(tools == TOOLS, f"tools/list over the bearer-token session: {sorted(tools)}")
        result = await client.call_tool("generate_image", {"prompt": "a container ship at dusk", "aspectRatio": "1:1"})
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    check(not result.is_error and result.structured_content is not None, f"generate_image succeeded: {text[:300]}")
    assert result.structured_content is not None
    saved = PurePosixPath(result.structured_content["saved_path"])
    check(CONTAINER_OUTPUT_DIR in saved.parents, f"the image was saved in the output volume: {saved}")
    on_host = host_output / saved.relative_to(CONTAINER_OUTPUT_DIR)
    with Image.open(on_host) as image:
        image.verify()
    check(True, f"the image is a whole picture, seen from the host: {on_host}")


def main(argv: list[str]) -> int:
    url, token, host_output = argv[1].rstrip("/"), argv[2], Path(argv[3])
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
