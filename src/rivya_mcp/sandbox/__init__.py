"""A stateful emulator of the Rivya Public API v1 that renders real images (docs/sandbox.md)."""

from rivya_mcp.sandbox._app import create_app
from rivya_mcp.sandbox._clock import ManualClock
from rivya_mcp.sandbox._config import SandboxConfig
from rivya_mcp.sandbox._faults import ConnectionDropped, FaultRule
from rivya_mcp.sandbox._server import RunningSandbox, serve_sandbox, start_sandbox
from rivya_mcp.sandbox._state import SandboxState

__all__ = [
    "ConnectionDropped",
    "FaultRule",
    "ManualClock",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "create_app",
    "serve_sandbox",
    "start_sandbox",
]
