"""Behind the team's authorization server (``--oauth-issuer``): discovery, its keys, token checks.

Part of identity's inside: its modules are imported by identity's own; what others use is exported
by ``rivya_mcp.identity``.
"""
