"""A stateful emulator of the Rivya Public API v1 that renders real images (docs/sandbox.md)."""

from rivya_mcp.sandbox._app import create_app
from rivya_mcp.sandbox._auth import account_id
from rivya_mcp.sandbox._config import WEBHOOK_SIGNING_ENV, WEBHOOK_SIGNINGS, SandboxConfig, webhook_signing_from_env
from rivya_mcp.sandbox._openapi import openapi_document
from rivya_mcp.sandbox._profile import PROFILE_ENV, PROFILES, Profile, get_profile, profile_from_env
from rivya_mcp.sandbox._render import RenderSpec, output_size, render
from rivya_mcp.sandbox._server import RunningSandbox, serve_sandbox, start_sandbox
from rivya_mcp.sandbox._state import SandboxState
from rivya_mcp.sandbox.steering._clock import ManualClock
from rivya_mcp.sandbox.steering._faults import ConnectionDropped, FaultRule
from rivya_mcp.sandbox.webhooks._endpoints import new_secret, sign, url_problem

__all__ = [
    "PROFILES",
    "PROFILE_ENV",
    "WEBHOOK_SIGNINGS",
    "WEBHOOK_SIGNING_ENV",
    "ConnectionDropped",
    "FaultRule",
    "ManualClock",
    "Profile",
    "RenderSpec",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "account_id",
    "create_app",
    "get_profile",
    "new_secret",
    "openapi_document",
    "output_size",
    "profile_from_env",
    "render",
    "serve_sandbox",
    "sign",
    "start_sandbox",
    "url_problem",
    "webhook_signing_from_env",
]
