"""uvicorn serving an ASGI app on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

STARTUP_TIMEOUT = 10.0


class ThreadedServer:
    """uvicorn serving an ASGI app on a free loopback port, in a thread."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sock: socket.socket | None = None,
        lifespan: Literal["on", "off"] = "on",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        # ``sock``: one bound already, when the app must know its own address (a public URL).
        # ``tls``: (certificate, key) to serve HTTPS.
        self._sock = sock if sock is not None else socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.scheme = "https" if tls is not None else "http"
        certfile, keyfile = (str(tls[0]), str(tls[1])) if tls is not None else (None, None)
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan=lifespan, ssl_certfile=certfile, ssl_keyfile=keyfile
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.scheme.upper()} server did not start")
            time.sleep(0.005)  # another thread's event loop; nothing to await here
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(STARTUP_TIMEOUT)
        self._sock.close()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"
