"""The floor for cold start: a bare MCPServer with one tool, run over stdio by the same interpreter."""

from mcp.server import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


if __name__ == "__main__":
    server.run()
