"""What the client assumes about the Rivya API, written down once as data, and a comparison of
those assumptions with a served OpenAPI document (``GET /api/v1/openapi.json``, rivya-api.md §1).

The assumptions come from the docs (rivya-api.md); where the docs are silent the client assumes
as little as it can and tolerates every plausible reading (``_models``, ``_retry``), so most
differences a document can show are *tolerated*: they are named, and do not count against it. A
difference that breaks an assumption the client cannot do without (a path it calls, a field it
must read, a status value it cannot place) is a *problem*. ``rivya-mcp doctor`` prints them all.

Extensions a document may use, since OpenAPI has no word for them (the sandbox's uses both):
``x-error-codes`` on an error response (the codes sent with that status) and a top-level
``x-webhook-signature`` (``{"scheme": …, "headers": […]}``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._models import TERMINAL_STATUSES, UPLOAD_BYTES_KEYS, UPLOAD_MB_KEYS

__all__ = ["CLIENT_CONTRACT", "ClientContract", "ContractFinding", "compare_openapi"]

Level = Literal["ok", "note", "warn", "problem"]


@dataclass(frozen=True)
class ClientContract:
    """Every assumption the client makes about the API's wire format."""

    operations: tuple[tuple[str, str], ...]
    """(method, path template) of every call the client makes."""
    statuses: tuple[str, ...]
    """The task status values (§3.3); others are read as "not finished"."""
    terminal_statuses: frozenset[str]
    generation_required: tuple[str, ...]
    """Fields a task must carry for the client to use it."""
    generation_read: tuple[str, ...]
    """Fields the client reads when present."""
    result_fields: tuple[str, ...]
    file_id_fields: tuple[str, ...]
    """Any one of these names the file id (§3.6: both spellings appear in the docs)."""
    file_mime_fields: tuple[str, ...]
    file_size_fields: tuple[str, ...]
    file_kind_field: str
    """Read when present; the client sends the kind it uploaded when it is not (§3.2 requires it)."""
    api_statuses: tuple[str, ...]
    """Catalog ``api_status`` values (§3.1); only ``callable_api_status`` allows a create."""
    callable_api_status: str
    categories: tuple[str, ...]
    error_statuses: Mapping[str, int | None]
    """Every error code the client knows, with its documented HTTP status (None: not documented)."""
    retry_after_formats: tuple[str, ...]
    event_types: tuple[str, ...]
    webhook_schemes: Mapping[str, str]
    """Names a document may give the signature scheme → the client's convention (``_webhook_signatures``)."""
    client_request_id_max: int
    upload_limit_keys: tuple[str, ...] = field(default=())


CLIENT_CONTRACT: Final = ClientContract(
    operations=(
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/generations"),
        ("GET", "/api/v1/generations/{}"),
        ("POST", "/api/v1/files"),
        ("GET", "/api/v1/files/{}"),
        ("GET", "/api/v1/credits"),
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("GET", "/api/v1/webhooks/{}"),
        ("PATCH", "/api/v1/webhooks/{}"),
        ("DELETE", "/api/v1/webhooks/{}"),
        ("POST", "/api/v1/webhooks/{}/rotate-secret"),
        ("POST", "/api/v1/webhooks/{}/test"),
        ("GET", "/api/v1/webhook-events"),
    ),
    statuses=("queued", "processing", "succeeded", "failed"),
    terminal_statuses=TERMINAL_STATUSES,
    generation_required=("id", "status"),
    generation_read=("model", "reserved_credits", "final_credits", "created_at", "updated_at", "result", "error"),
    result_fields=("primary_url", "urls"),
    file_id_fields=("id", "file_id"),
    file_mime_fields=("mimeType", "mime_type"),
    file_size_fields=("size", "bytes", "size_bytes", "sizeBytes", "file_size", "fileSize"),
    file_kind_field="kind",
    api_statuses=("available", "coming_soon", "studio_only"),
    callable_api_status="available",
    categories=("image", "video", "audio", "chat"),
    # rivya-api.md §4's table; insufficient_credits is named without a status (§3.5).
    error_statuses={
        "public_api_disabled": 503,
        "api_key_missing": 401,
        "api_key_invalid": 401,
        "api_key_revoked": 401,
        "api_key_expired": 401,
        "api_scope_denied": 403,
        "rate_limited": 429,
        "validation_failed": 400,
        "not_found": 404,
        "webhook_url_rejected": 400,
        "chat_model_not_supported": 400,
        "chat_session_conflict": 409,
        "chat_attachment_not_supported": 400,
        "idempotency_conflict": 409,
        "insufficient_credits": None,
    },
    retry_after_formats=("seconds", "http-date"),
    event_types=("generation.succeeded", "generation.failed"),
    webhook_schemes={
        "standard-webhooks": "standard",
        "standard": "standard",
        "svix": "standard",
        "stripe": "stripe",
        "hex": "hex",
        "hmac-sha256": "hex",
    },
    client_request_id_max=128,
    upload_limit_keys=UPLOAD_BYTES_KEYS + UPLOAD_MB_KEYS,
)


@dataclass(frozen=True)
class ContractFinding:
    """One point compared: ``ok`` (as assumed), ``note`` (differs, tolerated), ``warn`` (differs,
    something degrades), ``problem`` (differs in a way the client cannot work with)."""

    subject: str
    level: Level
    detail: str


_PARAM = re.compile(r"\{[^}]*\}")


def _template(path: str) -> str:
    return _PARAM.sub("{}", path.rstrip("/"))


def _resolve(document: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """``node`` with a local ``$ref`` followed (a few levels at most: documents can be cyclic)."""
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and depth < 8:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = document
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, Mapping) else None
        node, depth = target, depth + 1
    return node if node is not None else {}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _schema(document: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    found = _mapping(_mapping(document.get("components")).get("schemas")).get(name)
    resolved = _resolve(document, found) if found is not None else None
    return resolved if isinstance(resolved, Mapping) else None


def _properties(document: Mapping[str, Any], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    if schema is None:
        return {}
    props: dict[str, Any] = {}
    for part in [schema, *(schema.get("allOf") or [])]:
        part = _resolve(document, part)
        if isinstance(part, Mapping) and isinstance(part.get("properties"), Mapping):
            props.update(part["properties"])
    return props


def _enum(document: Mapping[str, Any], node: Any) -> list[str] | None:
    node = _resolve(document, node)
    if isinstance(node, Mapping) and isinstance(node.get("enum"), list):
        return [str(v) for v in node["enum"]]
    return None


def _operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    paths = document.get("paths")
    if not isinstance(paths, Mapping):
        return
    for path, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        for method, operation in item.items():
            if method.lower() in {"get", "post", "put", "patch", "delete"} and isinstance(operation, Mapping):
                yield method.upper(), _template(str(path)), operation


def _listing(values: list[str] | set[str] | tuple[str, ...]) -> str:
    return ", ".join(sorted(values))


def compare_openapi(document: Mapping[str, Any], contract: ClientContract = CLIENT_CONTRACT) -> list[ContractFinding]:
    """Every assumption of ``contract`` checked against ``document``, each difference named.

    Pure and total: any JSON object is accepted, and a point the document does not describe is a
    ``note`` saying so (the client then keeps its own reading), never an error.
    """
    findings: list[ContractFinding] = []
    add = findings.append
    ops = {(method, path): op for method, path, op in _operations(document)}

    # Paths the client calls.
    if not ops:
        add(ContractFinding("paths", "note", "the document lists no operations; nothing to compare"))
    else:
        missing = [f"{m} {p}" for m, p in contract.operations if (m, p) not in ops]
        if missing:
            add(ContractFinding("paths", "problem", "not in the document, but the client calls: " + "; ".join(missing)))
        else:
            add(
                ContractFinding("paths", "ok", f"all {len(contract.operations)} operations the client calls are listed")
            )

    # Create status: any 2xx is read as success.
    create = ops.get(("POST", "/api/v1/generations"))
    if create is not None:
        responses = _mapping(create.get("responses"))
        success = sorted(str(code) for code in responses if str(code).startswith("2"))
        level: Level = "ok" if success else "problem"
        add(ContractFinding("create status", level, f"{', '.join(success) or 'no 2xx'} (the client accepts any 2xx)"))

    # The generation object.
    generation = _schema(document, "Generation")
    if generation is None:
        add(ContractFinding("Generation", "note", "no Generation schema; the client keeps the docs' fields (§3.3)"))
    else:
        props = _properties(document, generation)
        absent = [name for name in contract.generation_required if name not in props]
        if absent:
            add(ContractFinding("Generation fields", "problem", f"missing {', '.join(absent)}, which the client needs"))
        unread = [name for name in contract.generation_read if name not in props]
        add(
            ContractFinding(
                "Generation fields",
                "note" if unread else "ok",
                f"not described: {', '.join(unread)} (read when present)" if unread else "as assumed",
            )
        )
        statuses = _enum(document, props.get("status"))
        if statuses is None:
            add(ContractFinding("task statuses", "note", "no enumeration given; the client knows the four of §3.3"))
        else:
            unknown = set(statuses) - set(contract.statuses)
            absent_statuses = set(contract.statuses) - set(statuses)
            if unknown:
                add(
                    ContractFinding(
                        "task statuses",
                        "problem",
                        f"unknown to the client: {_listing(unknown)} (read as not finished: a task that ends in "
                        "one is followed until each wait runs out)",
                    )
                )
            if absent_statuses:
                add(ContractFinding("task statuses", "note", f"not listed: {_listing(absent_statuses)}"))
            if not unknown and not absent_statuses:
                add(ContractFinding("task statuses", "ok", _listing(statuses)))
        result = _resolve(document, props.get("result"))
        result_props: dict[str, Any] = {}
        for option in (
            [result, *(result.get("oneOf") or result.get("anyOf") or [])] if isinstance(result, Mapping) else []
        ):
            result_props.update(_properties(document, _resolve(document, option)))
        if result_props:
            if "primary_url" not in result_props:
                add(
                    ContractFinding("result fields", "problem", "no primary_url, the one result field the client needs")
                )
            else:
                absent_result = [f for f in contract.result_fields if f not in result_props]
                add(
                    ContractFinding(
                        "result fields",
                        "note" if absent_result else "ok",
                        f"not described: {', '.join(absent_result)}" if absent_result else "primary_url, urls",
                    )
                )

    # The file object (PublicApiFile, §3.6).
    file_schema = _schema(document, "PublicApiFile") or _schema(document, "File")
    if file_schema is None:
        add(ContractFinding("file object", "note", "no PublicApiFile schema; the client reads every spelling it knows"))
    else:
        props = _properties(document, file_schema)
        id_field = [f for f in contract.file_id_fields if f in props]
        if not id_field:
            add(
                ContractFinding(
                    "file object",
                    "problem",
                    f"no id field ({' or '.join(contract.file_id_fields)}): cannot name a file",
                )
            )
        if "url" not in props:
            add(ContractFinding("file object", "problem", "no url: a reference cannot be passed on"))
        parts = [
            f"id as {id_field[0]}" if id_field else None,
            next((f"MIME type as {f}" for f in contract.file_mime_fields if f in props), "no MIME type field"),
            next((f"size as {f}" for f in contract.file_size_fields if f in props), "no size field"),
            "kind echoed" if contract.file_kind_field in props else "no kind (the client sends the kind it uploaded)",
        ]
        tolerated = [p for p in parts if p is not None]
        differs = id_field[:1] != [contract.file_id_fields[0]] or contract.file_kind_field not in props
        if id_field and "url" in props:
            add(ContractFinding("file object", "note" if differs else "ok", "; ".join(tolerated)))

    # Error codes and the statuses they come with.
    error_schema = _schema(document, "Error")
    codes: list[str] | None = None
    if error_schema is not None:
        inner = _resolve(document, _properties(document, error_schema).get("error"))
        codes = _enum(document, _properties(document, inner if isinstance(inner, Mapping) else None).get("code"))
    if codes is None:
        add(
            ContractFinding(
                "error codes", "note", "no enumeration of error.code; the client picks by code, then status"
            )
        )
    else:
        unknown_codes = set(codes) - set(contract.error_statuses)
        absent_codes = set(contract.error_statuses) - set(codes)
        details = []
        if unknown_codes:
            details.append(f"unknown to the client (handled by HTTP status): {_listing(unknown_codes)}")
        if absent_codes:
            details.append(f"not listed: {_listing(absent_codes)}")
        add(ContractFinding("error codes", "note" if details else "ok", "; ".join(details) or f"{len(codes)} codes"))
    stated: dict[str, set[int]] = {}
    for _method, _path, operation in _operations(document):
        for status, raw_response in _mapping(operation.get("responses")).items():
            response = _resolve(document, raw_response)
            if (
                str(status).isdigit()
                and isinstance(response, Mapping)
                and isinstance(response.get("x-error-codes"), list)
            ):
                for code in response["x-error-codes"]:
                    stated.setdefault(str(code), set()).add(int(status))
    if stated:
        moved = [
            f"{code} is {'/'.join(map(str, sorted(statuses)))} (docs: {contract.error_statuses[code]})"
            for code, statuses in sorted(stated.items())
            if contract.error_statuses.get(code) is not None and statuses != {contract.error_statuses[code]}
        ]
        undocumented = [
            f"{code} is {'/'.join(map(str, sorted(statuses)))}"
            for code, statuses in sorted(stated.items())
            if code in contract.error_statuses and contract.error_statuses[code] is None
        ]
        detail = "; ".join(moved + undocumented) or "as documented"
        add(
            ContractFinding(
                "error statuses", "note" if moved or undocumented else "ok", detail + " (the client goes by code)"
            )
        )

    # Retry-After.
    headers = _mapping(_mapping(document.get("components")).get("headers"))
    retry_after = _resolve(document, headers.get("Retry-After")) if headers else None
    if isinstance(retry_after, Mapping):
        schema = _resolve(document, retry_after.get("schema"))
        kind = (
            "http-date"
            if isinstance(schema, Mapping) and schema.get("format") == "http-date"
            else "seconds"
            if isinstance(schema, Mapping) and schema.get("type") in ("integer", "number")
            else None
        )
        if kind in contract.retry_after_formats:
            add(ContractFinding("Retry-After", "ok", f"{kind} (the client reads seconds or an HTTP date)"))
        else:
            add(ContractFinding("Retry-After", "note", "format not stated; the client reads seconds or an HTTP date"))

    # The catalog.
    model = _schema(document, "Model")
    if model is not None:
        props = _properties(document, model)
        api_statuses = _enum(document, props.get("api_status"))
        if api_statuses is not None:
            extra = set(api_statuses) - set(contract.api_statuses)
            add(
                ContractFinding(
                    "api_status values",
                    "note" if extra else "ok",
                    f"unknown: {_listing(extra)} (read as not callable)" if extra else _listing(api_statuses),
                )
            )
        categories = _enum(document, props.get("category"))
        if categories is not None:
            extra = set(categories) - set(contract.categories)
            add(
                ContractFinding(
                    "model categories",
                    "note" if extra else "ok",
                    f"unknown: {_listing(extra)}" if extra else _listing(categories),
                )
            )

    # Webhooks: the event types and the signature scheme.
    event = _schema(document, "WebhookEvent")
    if event is not None:
        types = _enum(document, _properties(document, event).get("type"))
        if types is not None:
            missing_types = set(contract.event_types) - set(types)
            level = "warn" if missing_types else "ok"
            detail = f"missing: {_listing(missing_types)}" if missing_types else _listing(types)
            add(ContractFinding("webhook event types", level, detail))
    signature = document.get("x-webhook-signature")
    if isinstance(signature, Mapping) and isinstance(signature.get("scheme"), str):
        scheme = signature["scheme"]
        named = ", ".join(str(h) for h in signature.get("headers", []) if isinstance(h, str))
        convention = contract.webhook_schemes.get(scheme.lower())
        if convention is not None:
            add(ContractFinding("webhook signature", "ok", f"{scheme} ({named}): the client's {convention} convention"))
        else:
            add(
                ContractFinding(
                    "webhook signature",
                    "warn",
                    f"{scheme} ({named}) is not a convention the client knows: deliveries would not verify, and "
                    "tasks would finish by polling at the documented pace",
                )
            )
    else:
        add(
            ContractFinding(
                "webhook signature", "note", "not stated; learned from a test delivery (doctor --public-url)"
            )
        )

    # client_request_id's cap.
    create_body = _schema(document, "GenerationCreate")
    if create_body is not None:
        cap = _resolve(document, _properties(document, create_body).get("client_request_id"))
        if isinstance(cap, Mapping) and isinstance(cap.get("maxLength"), int):
            level = "ok" if cap["maxLength"] >= contract.client_request_id_max else "warn"
            add(ContractFinding("client_request_id", level, f"at most {cap['maxLength']} characters (client: 128)"))
    return findings
