"""The sandbox's webhooks (rivya-api.md §3.8): endpoints and their URL rules, signed deliveries with
retries and faults, the event log. ``docs/sandbox.md#webhooks`` has every decision.

Part of the sandbox's inside: its modules import the sandbox's own and are imported by them; what
others use is exported by ``rivya_mcp.sandbox``.
"""
