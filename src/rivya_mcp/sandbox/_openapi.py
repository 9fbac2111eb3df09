"""``GET /api/v1/openapi.json``: the sandbox's contract, stating its own profile's choices.

rivya-api.md §1: Rivya serves a public, read-only OpenAPI document derived from its request
schemas, error codes and catalog. Its text is not available to us, so this one is the sandbox's:
an OpenAPI 3.1 document of the endpoints the sandbox emulates, in which every point the docs leave
open reads as the running profile decides it (create and upload status, the file object's fields,
the status of ``insufficient_credits``, the ``Retry-After`` format, the webhook signature scheme).
Where OpenAPI has no word for a choice, an ``x-`` extension says it:

- ``x-error-codes`` on an error response: the ``error.code`` values answered with that status;
- ``x-webhook-signature`` (top level): the delivery signature scheme, its headers, what is
  signed and how the secret is used.

``rivya-mcp doctor`` compares a served document with the client's assumptions
(``rivya_mcp.client.CLIENT_CONTRACT``) and names each difference.
"""

from __future__ import annotations

from typing import Any

from rivya_mcp.sandbox._profile import Profile
from rivya_mcp.sandbox.webhooks._endpoints import EVENT_TYPES, STRIPE_HEADER, TEST_EVENT_TYPE, UNKNOWN_HEADERS

STATUSES = ["queued", "processing", "succeeded", "failed"]
API_STATUSES = ["available", "coming_soon", "studio_only"]
CATEGORIES = ["image", "video", "audio", "chat"]
FILE_KINDS = ["image", "video", "audio"]
# Every `error.code` the sandbox can answer on an API route.
AUTH_CODES = ["api_key_missing", "api_key_invalid"]
ALL_CODES = sorted(
    {
        *AUTH_CODES,
        "validation_failed",
        "not_found",
        "idempotency_conflict",
        "insufficient_credits",
        "rate_limited",
        "public_api_disabled",
        "internal_error",
        "webhook_url_rejected",
        "method_not_allowed",
    }
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, codes: list[str], *, retry_after: bool = False) -> dict[str, Any]:
    response = _json(_ref("Error"), description)
    response["x-error-codes"] = codes
    if retry_after:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/Retry-After"}}
    return response


def _errors(*extra: tuple[int, str, list[str]]) -> dict[str, Any]:
    """The error responses every authenticated operation may give, plus ``extra`` ones."""
    by_status: dict[int, tuple[str, list[str], bool]] = {
        401: ("The key is missing or cannot be verified.", list(AUTH_CODES), False),
        429: ("Too many requests in the current window.", ["rate_limited"], True),
        500: ("The sandbox hit an internal error.", ["internal_error"], False),
        503: ("The Public API is switched off for now.", ["public_api_disabled"], True),
    }
    for status, description, codes in extra:
        if status in by_status:
            old_description, old_codes, retry_after = by_status[status]
            by_status[status] = (f"{old_description} {description}", old_codes + codes, retry_after)
        else:
            by_status[status] = (description, codes, False)
    return {
        str(status): _error(description, codes, retry_after=retry_after)
        for status, (description, codes, retry_after) in sorted(by_status.items())
    }


def _file_schema(profile: Profile) -> dict[str, Any]:
    number = {"type": "number"} if profile.float_numbers else {"type": "integer"}
    properties: dict[str, Any] = {
        profile.file_id_field: {"type": "string", "description": "The file id."},
        "object": {"type": "string", "const": "file"},
        "url": {"type": "string", "format": "uri", "description": "Pass it in params.referenceMediaItems."},
        "name": {"type": "string"},
        profile.mime_field: {"type": "string", "description": "Detected from the file's bytes."},
        profile.size_field: {**number, "description": "Size in bytes."},
        "created_at": {"type": "string", "format": "date-time"},
    }
    if profile.file_kind:
        properties["kind"] = {"type": "string", "enum": FILE_KINDS}
    return {"type": "object", "required": [profile.file_id_field, "url"], "properties": properties}


def _signature(scheme: str) -> dict[str, Any]:
    if scheme == "stripe":
        return {
            "scheme": "stripe",
            "headers": [STRIPE_HEADER],
            "format": "t=<unix seconds>,v1=<hex>",
            "algorithm": "HMAC-SHA256",
            "signed_content": "{t}.{raw body}",
            "secret": "the signing_secret as text, whsec_ prefix included",
            "timestamp": "seconds",
        }
    if scheme == "unknown":
        return {
            "scheme": "sandbox-unknown",
            "headers": list(UNKNOWN_HEADERS),
            "format": "sha512=<hex>",
            "algorithm": "HMAC-SHA512",
            "signed_content": "{raw body}:{timestamp}",
            "secret": "the signing_secret as text",
            "timestamp": "seconds",
        }
    return {
        "scheme": "standard-webhooks",
        "headers": ["webhook-id", "webhook-timestamp", "webhook-signature"],
        "format": "v1,<base64> (space-separated list)",
        "algorithm": "HMAC-SHA256",
        "signed_content": "{webhook-id}.{webhook-timestamp}.{raw body}",
        "secret": "base64-decoded after the whsec_ prefix",
        "timestamp": "seconds",
    }


def openapi_document(profile: Profile, *, webhook_signing: str, base_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a sandbox running ``profile`` and signing with ``webhook_signing``."""
    number = {"type": "number"} if profile.float_numbers else {"type": "integer"}
    retry_after = (
        {"type": "string", "format": "http-date", "description": "An HTTP date (RFC 9110)."}
        if profile.retry_after == "http-date"
        else {"type": "integer", "minimum": 0, "description": "Whole seconds to wait."}
    )
    task_path = {"name": "taskId", "in": "path", "required": True, "schema": {"type": "string"}}
    file_path = {"name": "fileId", "in": "path", "required": True, "schema": {"type": "string"}}
    endpoint_path = {"name": "endpointId", "in": "path", "required": True, "schema": {"type": "string"}}
    idempotency_key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": (
            "Same key and same body: the original task is returned. Same key, different body: 409."
            + (
                " Same key and same body while the first request is still being processed: 409 as well."
                if profile.in_flight_conflict
                else ""
            )
        ),
    }
    not_found = (404, "No such resource on this account.", ["not_found"])
    invalid = (400, "The request is invalid.", ["validation_failed"])
    insufficient = (
        profile.insufficient_credits_status,
        "Not enough credits.",
        ["insufficient_credits"],
    )
    create_responses: dict[str, Any] = {
        str(profile.create_status): _json(_ref("Generation"), "A new task, as created (queued)."),
        **_errors(
            invalid,
            insufficient,
            (409, "The Idempotency-Key conflicts with an earlier request.", ["idempotency_conflict"]),
        ),
    }
    if profile.create_status != 200:
        create_responses["200"] = _json(_ref("Generation"), "A replay: the task first created under this key.")
    endpoint_ops = {"$ref": "#/components/schemas/WebhookEndpoint"}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Rivya Public API (sandbox)",
            "version": "v1",
            "description": f"The Rivya sandbox's contract, {profile.name} profile (docs/sandbox.md).",
            "x-sandbox-profile": profile.name,
        },
        "servers": [{"url": base_url}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "security": [],
                    "responses": {"200": _json(_ref("ModelList"), "Every model, callable or not.")},
                }
            },
            "/api/v1/generations": {
                "post": {
                    "operationId": "createGeneration",
                    "parameters": [idempotency_key],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("GenerationCreate")}},
                    },
                    "responses": create_responses,
                }
            },
            "/api/v1/generations/{taskId}": {
                "get": {
                    "operationId": "getGeneration",
                    "parameters": [task_path],
                    "responses": {
                        "200": _json(_ref("Generation"), "The task as it is now."),
                        **_errors(not_found),
                    },
                }
            },
            "/api/v1/files": {
                "post": {
                    "operationId": "uploadFile",
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": _ref("FileUpload")}},
                    },
                    "responses": {
                        str(profile.upload_status): _json(_ref("PublicApiFile"), "The stored file."),
                        **_errors(invalid),
                    },
                }
            },
            "/api/v1/files/{fileId}": {
                "get": {
                    "operationId": "getFile",
                    "parameters": [file_path],
                    "responses": {
                        "200": _json(_ref("PublicApiFile"), "The file's metadata."),
                        **_errors(not_found),
                    },
                }
            },
            "/api/v1/credits": {
                "get": {
                    "operationId": "getCredits",
                    "responses": {"200": _json(_ref("Credits"), "The balance."), **_errors()},
                }
            },
            "/api/v1/webhooks": {
                "get": {
                    "operationId": "listWebhooks",
                    "responses": {"200": _json(_ref("WebhookEndpointList"), "The endpoints."), **_errors()},
                },
                "post": {
                    "operationId": "createWebhook",
                    "requestBody": {"content": {"application/json": {"schema": _ref("WebhookEndpointCreate")}}},
                    "responses": {
                        "201": _json(endpoint_ops, "The endpoint, with its signing_secret (shown once)."),
                        **_errors(
                            (400, "Invalid, or the URL is refused.", ["validation_failed", "webhook_url_rejected"]),
                        ),
                    },
                },
            },
            "/api/v1/webhooks/{endpointId}": {
                "get": {
                    "operationId": "getWebhook",
                    "parameters": [endpoint_path],
                    "responses": {"200": _json(endpoint_ops, "The endpoint."), **_errors(not_found)},
                },
                "patch": {
                    "operationId": "updateWebhook",
                    "parameters": [endpoint_path],
                    "requestBody": {"content": {"application/json": {"schema": _ref("WebhookEndpointUpdate")}}},
                    "responses": {
                        "200": _json(endpoint_ops, "The endpoint; status active re-enables a disabled one."),
                        **_errors(not_found, invalid),
                    },
                },
                "delete": {
                    "operationId": "revokeWebhook",
                    "parameters": [endpoint_path],
                    "responses": {"200": _json(endpoint_ops, "The endpoint, revoked."), **_errors(not_found)},
                },
            },
            "/api/v1/webhooks/{endpointId}/rotate-secret": {
                "post": {
                    "operationId": "rotateWebhookSecret",
                    "parameters": [endpoint_path],
                    "responses": {
                        "200": _json(endpoint_ops, "The endpoint with its new signing_secret."),
                        **_errors(not_found),
                    },
                }
            },
            "/api/v1/webhooks/{endpointId}/deliveries": {
                "get": {
                    "operationId": "listWebhookDeliveries",
                    "parameters": [endpoint_path],
                    "responses": {
                        "200": _json({"type": "object"}, "Delivery attempts."),
                        **_errors(not_found),
                    },
                }
            },
            "/api/v1/webhooks/{endpointId}/test": {
                "post": {
                    "operationId": "sendWebhookTest",
                    "parameters": [endpoint_path],
                    "responses": {
                        "202": _json(_ref("WebhookEvent"), f"A signed {TEST_EVENT_TYPE} event is on its way."),
                        **_errors(not_found),
                    },
                }
            },
            "/api/v1/webhook-events": {
                "get": {
                    "operationId": "listWebhookEvents",
                    "responses": {"200": _json({"type": "object"}, "Recent events."), **_errors(invalid)},
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "This document.")},
                }
            },
        },
        "webhooks": {
            "generationEvent": {
                "post": {
                    "parameters": [
                        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                        for name in _signature(webhook_signing)["headers"]
                    ],
                    "requestBody": {"content": {"application/json": {"schema": _ref("WebhookEvent")}}},
                    "responses": {"200": {"description": "Any 2xx acknowledges the delivery."}},
                }
            }
        },
        "x-webhook-signature": _signature(webhook_signing),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "headers": {"Retry-After": {"schema": retry_after}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message", "requestId"],
                            "properties": {
                                "code": {"type": "string", "enum": ALL_CODES},
                                "message": {"type": "string"},
                                "requestId": {"type": "string"},
                            },
                        }
                    },
                },
                "GenerationCreate": {
                    "type": "object",
                    "required": ["model"],
                    "properties": {
                        "model": {"type": "string"},
                        "prompt": {"type": "string"},
                        "params": {"type": "object"},
                        "client_request_id": {"type": "string", "maxLength": 128},
                    },
                },
                "Generation": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": STATUSES},
                        "model": {"type": "string"},
                        "reserved_credits": number,
                        "final_credits": number,
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                        "result": {"oneOf": [_ref("GenerationResult"), {"type": "null"}]},
                        "error": {"oneOf": [_ref("TaskError"), {"type": "null"}]},
                    },
                },
                "GenerationResult": {
                    "type": "object",
                    "required": ["primary_url"],
                    "properties": {
                        "primary_url": {"type": "string", "format": "uri"},
                        "urls": {
                            "type": ["array", "null"] if not profile.list_result_urls else "array",
                            "items": {"type": "string"},
                        },
                    },
                },
                "TaskError": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": ["generation_failed", "content_moderated"]},
                        "message": {"type": "string"},
                    },
                },
                "FileUpload": {
                    "type": "object",
                    "required": ["file", "kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {"type": "string", "enum": FILE_KINDS},
                        "model": {"type": "string"},
                        "client_request_id": {"type": "string", "maxLength": 128},
                    },
                },
                "PublicApiFile": _file_schema(profile),
                "Credits": {
                    "type": "object",
                    "required": ["current_credits"],
                    "properties": {"current_credits": number},
                },
                "Model": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string"},
                        "display_name": {"type": "string"},
                        "category": {"type": "string", "enum": CATEGORIES},
                        "base_credits": number,
                        "supported_modes": {"type": ["array", "null"], "items": {"type": "string"}},
                        "max_prompt_length": {"type": ["integer", "null"]},
                        "reference_media": {"type": ["object", "null"]},
                        "api_status": {"type": "string", "enum": API_STATUSES},
                    },
                },
                "ModelList": {
                    "type": "object",
                    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
                },
                "WebhookEndpoint": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": {"type": "string"},
                        "url": {"type": "string"},
                        "status": {"type": "string", "enum": ["active", "disabled", "revoked"]},
                        "event_types": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
                        "signing_secret": {"type": "string"},
                        "failure_count": {"type": "integer"},
                        "disabled_at": {"type": ["string", "null"]},
                    },
                },
                "WebhookEndpointList": {
                    "type": "object",
                    "properties": {"data": {"type": "array", "items": _ref("WebhookEndpoint")}},
                },
                "WebhookEndpointCreate": {
                    "type": "object",
                    "required": ["url", "event_types"],
                    "properties": {
                        "name": {"type": "string"},
                        "url": {"type": "string"},
                        "event_types": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
                    },
                },
                "WebhookEndpointUpdate": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "url": {"type": "string"},
                        "event_types": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
                        "status": {"type": "string", "enum": ["active", "disabled"]},
                    },
                },
                "WebhookEvent": {
                    "type": "object",
                    "required": ["id", "type"],
                    "properties": {
                        "id": {"type": "string"},
                        "type": {"type": "string", "enum": [*EVENT_TYPES, TEST_EVENT_TYPE]},
                        "api_version": {"type": "string"},
                        "created_at": {"type": "string"},
                        "test": {"type": "boolean"},
                        profile.webhook_payload_key: {"type": "object", "description": "The generation (§3.3)."},
                    },
                },
            },
        },
    }
    return document
