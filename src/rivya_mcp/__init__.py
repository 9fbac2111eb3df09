"""rivya-mcp: an MCP server for Rivya's image models, with a local sandbox of the Rivya API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
