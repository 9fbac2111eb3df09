"""A paid task from create to saved file, across restarts and replicas (no MCP here).

``Runtime`` holds what a server's tasks share (the API client, the journal, per-task locks, the
poll pace, replicas' coordination); ``TaskService`` creates, follows and saves tasks on it for
every caller: tool calls, the recovery pass, webhook deliveries, the Tasks extension. The rest
is what those need: the recovery pass, webhook completion, the live catalog, what a call costs,
what is done to an image before it is saved (a region edit's composite, provenance), where images go.
Whom a task is for is a plain ``Caller`` the transport passes in (``Runtime.acting_for``).
"""

from __future__ import annotations

from rivya_mcp.tasks._caller import SERVER, Caller, Keyring, UnknownTask, current_caller
from rivya_mcp.tasks._catalog import HARD_PROMPT_CAP, Limits, LiveCatalog, effective_limits
from rivya_mcp.tasks._cost import MAX_COUNT, CallCost, call_cost
from rivya_mcp.tasks._ledger import Ledger, saved_file
from rivya_mcp.tasks._pace import PollPacer, from_journal, is_settled, is_undocumented
from rivya_mcp.tasks._recovery import INTENT_MAX_AGE, MAX_FOLLOW_SECONDS, Recovery
from rivya_mcp.tasks._replicas import Coordinator
from rivya_mcp.tasks._runtime import (
    EMBEDDED_SANDBOX_UPSTREAM,
    JOURNAL_FILENAME,
    MISSING_KEY_HELP,
    WEBHOOK_FALLBACK_POLL_FACTOR,
    Runtime,
    WebhookState,
    open_journal,
)
from rivya_mcp.tasks._service import (
    MAX_DOWNLOAD_SECONDS,
    MAX_RESULT_BYTES,
    MIN_CALL_SECONDS,
    PROGRESS_TICK_SECONDS,
    RESEND_ATTEMPT_SECONDS,
    SAVE_LOCK_GRACE_SECONDS,
    URLLESS_LOOKS,
    Followed,
    Intent,
    IntentTooOld,
    OnStatus,
    SavedImage,
    StatusUpdate,
    TaskService,
    client_request_id,
    is_refusal,
    same_request,
)
from rivya_mcp.tasks._webhooks import (
    EVENT_TYPES,
    MAX_DELIVERY_BYTES,
    TEST_DELIVERY_WAIT_SECONDS,
    WEBHOOK_PATH,
    Delivery,
    EndpointRecord,
    SecretStore,
    WebhookReceiver,
    ensure_endpoint,
    event_generation,
    is_test_event,
    public_host,
    rotate_secret,
    webhook_url,
)
from rivya_mcp.tasks.images._disk import (
    DataFolderUnusable,
    OutputFolderUnusable,
    describe_os_error,
    describe_storage_error,
)
from rivya_mcp.tasks.images._downloads import origin_of, result_route, whole_image_type
from rivya_mcp.tasks.images._finishing import Finished, finish, finish_bytes, provenance_time
from rivya_mcp.tasks.images._spool import Spool
from rivya_mcp.tasks.images._storage import (
    IMAGE_TYPES,
    MIME_BY_EXTENSION,
    SAFE_NAME,
    image_filename,
    mime_for,
    resolve_served_file,
    save_atomically,
    sidecar_name,
    slugify,
)

__all__ = [
    "EMBEDDED_SANDBOX_UPSTREAM",
    "EVENT_TYPES",
    "HARD_PROMPT_CAP",
    "IMAGE_TYPES",
    "INTENT_MAX_AGE",
    "JOURNAL_FILENAME",
    "MAX_COUNT",
    "MAX_DELIVERY_BYTES",
    "MAX_DOWNLOAD_SECONDS",
    "MAX_FOLLOW_SECONDS",
    "MAX_RESULT_BYTES",
    "MIME_BY_EXTENSION",
    "MIN_CALL_SECONDS",
    "MISSING_KEY_HELP",
    "PROGRESS_TICK_SECONDS",
    "RESEND_ATTEMPT_SECONDS",
    "SAFE_NAME",
    "SAVE_LOCK_GRACE_SECONDS",
    "SERVER",
    "TEST_DELIVERY_WAIT_SECONDS",
    "URLLESS_LOOKS",
    "WEBHOOK_FALLBACK_POLL_FACTOR",
    "WEBHOOK_PATH",
    "CallCost",
    "Caller",
    "Coordinator",
    "DataFolderUnusable",
    "Delivery",
    "EndpointRecord",
    "Finished",
    "Followed",
    "Intent",
    "IntentTooOld",
    "Keyring",
    "Ledger",
    "Limits",
    "LiveCatalog",
    "OnStatus",
    "OutputFolderUnusable",
    "PollPacer",
    "Recovery",
    "Runtime",
    "SavedImage",
    "SecretStore",
    "Spool",
    "StatusUpdate",
    "TaskService",
    "UnknownTask",
    "WebhookReceiver",
    "WebhookState",
    "call_cost",
    "client_request_id",
    "current_caller",
    "describe_os_error",
    "describe_storage_error",
    "effective_limits",
    "ensure_endpoint",
    "event_generation",
    "finish",
    "finish_bytes",
    "from_journal",
    "image_filename",
    "is_refusal",
    "is_settled",
    "is_test_event",
    "is_undocumented",
    "mime_for",
    "open_journal",
    "origin_of",
    "provenance_time",
    "public_host",
    "resolve_served_file",
    "result_route",
    "rotate_secret",
    "same_request",
    "save_atomically",
    "saved_file",
    "sidecar_name",
    "slugify",
    "webhook_url",
    "whole_image_type",
]
