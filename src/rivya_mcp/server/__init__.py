"""What an agent sees: the tools and their schemas, results and previews, progress, resources,
and the MCP Tasks and Apps extensions. How hosts reach it is ``rivya_mcp.transport``'s job."""

from __future__ import annotations

from rivya_mcp.server import _task_states as task_policy
from rivya_mcp.server._app import SERVER_NAME, RawArguments, build_server, build_tool_bodies, descriptions, runtime_of
from rivya_mcp.server._call_failures import CallState, call_failure
from rivya_mcp.server._errors import ToolFailure, ToolInputError, failure_for_exception, failure_for_task_error
from rivya_mcp.server._preview import (
    MAX_PREVIEW_ENCODED_BYTES,
    PREVIEW_LONGEST_SIDE,
    base64_text,
    make_preview,
)
from rivya_mcp.server._preview import RACY_NS as PREVIEW_RACY_NS
from rivya_mcp.server._preview import trusted as preview_cache_trusted
from rivya_mcp.server._progress import ProgressReporter, describe, describe_status
from rivya_mcp.server._results import IMAGE_URI_PREFIX, TASKS_URI, task_output, task_result
from rivya_mcp.server._safety import safety_refusal_hint
from rivya_mcp.server._schemas import (
    MAX_WAIT_SECONDS,
    CreditsOutput,
    TaskListOutput,
    TaskOutput,
    UploadOutput,
    flat_output_schema,
    generation_tool_schema,
)
from rivya_mcp.server._tools import HAND_OVER, UNOWNED_NOTE, ToolBodies
from rivya_mcp.server._validation import coerce_scalars
from rivya_mcp.server._viewer import (
    META_KEY,
    VIEWER_TOOLS,
    VIEWER_URI,
    arguments_from_params,
    changed_from_defaults,
    choices,
    edit_arguments,
    elapsed_seconds,
    viewer_data,
    viewer_html,
)

__all__ = [
    "HAND_OVER",
    "IMAGE_URI_PREFIX",
    "MAX_PREVIEW_ENCODED_BYTES",
    "MAX_WAIT_SECONDS",
    "META_KEY",
    "PREVIEW_LONGEST_SIDE",
    "PREVIEW_RACY_NS",
    "SERVER_NAME",
    "TASKS_URI",
    "UNOWNED_NOTE",
    "VIEWER_TOOLS",
    "VIEWER_URI",
    "CallState",
    "CreditsOutput",
    "ProgressReporter",
    "RawArguments",
    "TaskListOutput",
    "TaskOutput",
    "ToolBodies",
    "ToolFailure",
    "ToolInputError",
    "UploadOutput",
    "arguments_from_params",
    "base64_text",
    "build_server",
    "build_tool_bodies",
    "call_failure",
    "changed_from_defaults",
    "choices",
    "coerce_scalars",
    "describe",
    "describe_status",
    "descriptions",
    "edit_arguments",
    "elapsed_seconds",
    "failure_for_exception",
    "failure_for_task_error",
    "flat_output_schema",
    "generation_tool_schema",
    "make_preview",
    "preview_cache_trusted",
    "runtime_of",
    "safety_refusal_hint",
    "task_output",
    "task_policy",
    "task_result",
    "viewer_data",
    "viewer_html",
]
