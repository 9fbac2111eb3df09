"""A stateful emulator of the Rivya Public API v1 that renders real images (docs/sandbox.md)."""

from rivya_mcp.sandbox._app import create_app
from rivya_mcp.sandbox._clock import ManualClock
from rivya_mcp.sandbox._config import WEBHOOK_SIGNING_ENV, WEBHOOK_SIGNINGS, SandboxConfig, webhook_signing_from_env
from rivya_mcp.sandbox._faults import ConnectionDropped, FaultRule
from rivya_mcp.sandbox._profile import PROFILE_ENV, PROFILES, Profile, get_profile, profile_from_env
from rivya_mcp.sandbox._server import RunningSandbox, serve_sandbox, start_sandbox
from rivya_mcp.sandbox._state import SandboxState

__all__ = [
    "PROFILES",
    "PROFILE_ENV",
    "WEBHOOK_SIGNINGS",
    "WEBHOOK_SIGNING_ENV",
    "ConnectionDropped",
    "FaultRule",
    "ManualClock",
    "Profile",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "create_app",
    "get_profile",
    "profile_from_env",
    "serve_sandbox",
    "start_sandbox",
    "webhook_signing_from_env",
]
