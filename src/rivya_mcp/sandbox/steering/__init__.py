"""How tests and demos steer the sandbox, outside the Rivya API: fault rules, the clock, magic
prompt tokens, the request log and the ``/_sandbox/`` control routes.

Part of the sandbox's inside: its modules import the sandbox's own and are imported by them; what
others use is exported by ``rivya_mcp.sandbox``.
"""
