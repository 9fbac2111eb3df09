"""The MCP layer: manifest-derived tools, progress, results, resources and transports."""

from rivya_mcp.server._app import build_server
from rivya_mcp.server._security import RemoteBindRefused
from rivya_mcp.server._transports import build_http_app, serve

__all__ = ["RemoteBindRefused", "build_http_app", "build_server", "serve"]
