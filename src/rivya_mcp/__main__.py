"""`python -m rivya_mcp` is the same as the `rivya-mcp` command."""

from rivya_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
