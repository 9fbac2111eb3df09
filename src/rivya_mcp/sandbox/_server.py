"""Running the sandbox over real HTTP: in a background thread (tests, demos) or as a CLI server."""

from __future__ import annotations

import copy
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from uvicorn.config import LOGGING_CONFIG

from rivya_mcp.sandbox._app import create_app
from rivya_mcp.sandbox._config import SandboxConfig
from rivya_mcp.sandbox._persist import PersistingApp, SandboxFolder
from rivya_mcp.sandbox._state import SandboxState
from rivya_mcp.sandbox.steering._clock import Clock
from rivya_mcp.sandbox.steering._faults import ConnectionDropped

STARTUP_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class _HideDrops(logging.Filter):
    """uvicorn logs every app exception; a dropped connection is not an error worth a traceback.

    Either a deliberate ``drop`` fault, or a client that left mid-body (the app logs that at INFO).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], (ConnectionDropped, ClientDisconnect)))


def _hide_drops() -> None:
    error_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideDrops) for f in error_logger.filters):
        error_logger.addFilter(_HideDrops())


def stderr_log_config() -> dict[str, Any]:
    """uvicorn's logging config with the access log moved to stderr (stdout may be a protocol channel).

    uvicorn's access log line is ``client - "METHOD /path HTTP/1.1" status``: no headers, so the
    Authorization header never reaches a log.
    """
    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["access"]["stream"] = "ext://sys.stderr"
    config["loggers"]["rivya_mcp.sandbox"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class RunningSandbox:
    """A sandbox served by uvicorn in a daemon thread. Use as a context manager, or call ``stop()``."""

    def __init__(
        self,
        app: Starlette,
        server: uvicorn.Server,
        thread: threading.Thread,
        base_url: str,
        *,
        persisting: PersistingApp | None = None,
    ) -> None:
        self.app = app
        self.base_url = base_url
        self._server = server
        self._thread = thread
        self._persisting = persisting

    @property
    def keeps_state(self) -> bool:
        """Its tasks and files outlive a restart (``start_sandbox(state_dir=...)`` took the folder)."""
        return self._persisting is not None

    @property
    def state(self) -> SandboxState:
        state: SandboxState = self.app.state.sandbox
        return state

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        if self._persisting is not None:
            self._persisting.close()
            self._persisting = None

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _bound_socket(host: str, port: int, *, fallback: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP matters: asyncio turns TCP_NODELAY on only for sockets whose protocol
    # field says TCP, and without it every response waits ~40 ms on the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if not fallback:
            sock.close()
            raise
        sock.bind((host, 0))  # the port of the last run is taken: any free one
    sock.listen(128)
    return sock


def start_sandbox(
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Clock | None = None,
    state_dir: Path | None = None,
) -> RunningSandbox:
    """Serve a new sandbox on ``host:port`` (0 picks a free port); return once it is listening.

    With ``state_dir`` (the embedded sandbox) its tasks and files are kept there and restored at
    the next start, which asks for the same port again (``_persist``), unless another process's
    sandbox holds that folder: then this one keeps nothing (``RunningSandbox.keeps_state``).
    """
    app = create_app(config, clock=clock)
    served: Starlette | PersistingApp = app
    persisting = None
    if state_dir is not None:
        folder = SandboxFolder(state_dir)
        if folder.acquire():
            persisting = PersistingApp(app, app.state.sandbox, folder)
            served = persisting
            saved_port = folder.load(app.state.sandbox)
            port = port or saved_port or 0
    try:
        sock = _bound_socket(host, port, fallback=persisting is not None)
    except BaseException:
        if persisting is not None:
            persisting.folder.release()
        raise
    bound_port = sock.getsockname()[1]
    if persisting is not None:
        persisting.port = bound_port
    # log_config=None leaves the host program's logging alone; access_log off keeps test output quiet.
    server = uvicorn.Server(uvicorn.Config(served, log_config=None, access_log=False, lifespan="on"))
    _hide_drops()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="rivya-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            if persisting is not None:
                persisting.folder.release()
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.005)  # waiting on another thread's event loop; there is no clock to inject here
    url_host = f"[{host}]" if ":" in host else host
    return RunningSandbox(app, server, thread, f"http://{url_host}:{bound_port}", persisting=persisting)


async def serve_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 8765, *, log_level: str = "info"
) -> None:
    """Serve a sandbox until cancelled (or interrupted); logs go to stderr."""
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=stderr_log_config(), log_level=log_level, lifespan="on")
    )
    _hide_drops()
    try:
        await server.serve()
    except BaseException:
        if server.started:
            with anyio.CancelScope(shield=True):
                await server.shutdown()
        raise
