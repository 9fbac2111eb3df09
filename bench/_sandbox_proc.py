"""The Rivya sandbox in its own process, recording the time of every API request it answers.

``python bench/_sandbox_proc.py --port P [--config JSON]``. Besides the sandbox's own routes it
serves ``GET /_bench/requests`` (``[{method, path, start, end, status}]``, wall-clock seconds) and
``POST /_bench/requests`` (clear). The recording wraps the sandbox app from outside, so faults
injected by the sandbox are recorded too.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from rivya_mcp.sandbox import SandboxConfig, create_app

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]
RECORD_PATH = "/_bench/requests"


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.records: list[dict[str, Any]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == RECORD_PATH:
            await self._answer(scope, send)
            return
        if not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        record: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "start": time.time()}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            record["end"] = time.time()
            self.records.append(record)

    async def _answer(self, scope: MutableMapping[str, Any], send: Send) -> None:
        if scope["method"] == "POST":
            self.records.clear()
        body = json.dumps(self.records).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="{}", help="SandboxConfig fields as JSON")
    args = parser.parse_args()
    config = SandboxConfig(**json.loads(args.config))
    app = RequestLog(create_app(config))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
