"""Where a paid image goes: its download (SSRF rules, whole or not at all), what is done to it before
it is saved (a region edit's composite, provenance), its name and atomic save, the bytes kept when
the output folder refuses them, and what a folder's failure means.

Part of the tasks layer's inside: its modules are imported by the tasks layer's own; what others
use is exported by ``rivya_mcp.tasks``.
"""
