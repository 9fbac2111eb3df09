"""Sign in with your own Rivya key (``--rivya-login``): this server as its own authorization server,
its consent page, client metadata documents and redirect rules.

Part of identity's inside: its modules are imported by identity's own; what others use is exported
by ``rivya_mcp.identity``.
"""
