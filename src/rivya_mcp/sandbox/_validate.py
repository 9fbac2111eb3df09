"""Validation of a create body against the same manifests the rest of the package uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rivya_mcp.manifest import REFERENCE_ITEMS_KEY, Manifest, Mode, check_wire_params, load_manifests
from rivya_mcp.sandbox._errors import validation_failed

MAX_CLIENT_REQUEST_ID = 128  # the Files API's documented cap; assumed to hold here too (rivya-api.md §3.2)
TOP_LEVEL_KEYS = frozenset({"model", "prompt", "params", "client_request_id"})
REFERENCE_ITEM_KEYS = frozenset({"url", "kind", "name", "mimeType", "durationSeconds", "durationToken"})


@dataclass(frozen=True)
class ReferenceTarget:
    """What a reference URL points at: an uploaded file or an earlier result of the same account."""

    source: Literal["file", "task"]
    id: str


# Given a reference URL, return its target, or a problem phrased for the caller.
ReferenceResolver = Callable[[str], "ReferenceTarget | str"]


@dataclass(frozen=True)
class CreateRequest:
    manifest: Manifest
    mode: Mode
    prompt: str | None
    params: dict[str, Any]
    client_request_id: str | None
    references: list[ReferenceTarget] = field(default_factory=list)


def validate_create(body: Any, resolve: ReferenceResolver) -> CreateRequest:
    """Check a ``POST /api/v1/generations`` body; raise ``validation_failed`` naming every problem."""
    if not isinstance(body, dict):
        raise validation_failed(["body: must be a JSON object"])
    problems: list[str] = []
    if "files" in body:
        # Documented: reference media goes only in params.referenceMediaItems (rivya-api.md §3.2).
        problems.append("files: top-level files are not accepted; pass references in params.referenceMediaItems")
    # Sandbox decision: other unknown top-level fields are refused too, so that client mistakes
    # surface in tests instead of being silently ignored.
    unknown = sorted(set(body) - TOP_LEVEL_KEYS - {"files"})
    if unknown:
        problems.append(f"unknown field(s): {', '.join(unknown)}")

    model_id = body.get("model")
    manifest: Manifest | None = None
    if not isinstance(model_id, str) or not model_id:
        problems.append("model: is required and must be a string")
    else:
        manifest = load_manifests().get(model_id)
        if manifest is None:
            problems.append(f"model: unknown model {model_id!r}")

    client_request_id = body.get("client_request_id")
    if client_request_id is not None and (
        not isinstance(client_request_id, str) or len(client_request_id) > MAX_CLIENT_REQUEST_ID
    ):
        problems.append(f"client_request_id: must be a string of at most {MAX_CLIENT_REQUEST_ID} characters")

    params = body.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append("params: must be an object")
        params = {}

    prompt = body.get("prompt")
    if manifest is None:
        raise validation_failed(problems)

    problems.extend(_check_prompt(manifest, prompt))
    mode: Mode = "edit" if REFERENCE_ITEMS_KEY in params else "generate"
    references: list[ReferenceTarget] = []
    if mode not in manifest.modes:
        problems.append(f"params.{REFERENCE_ITEMS_KEY}: {manifest.id} does not take reference media")
    else:
        if mode == "edit":
            references = _check_references(manifest, mode, params[REFERENCE_ITEMS_KEY], resolve, problems)
        problems.extend(check_wire_params(manifest, mode, params))
    if problems:
        raise validation_failed(problems)
    return CreateRequest(
        manifest=manifest,
        mode=mode,
        prompt=prompt,
        params=dict(params),
        client_request_id=client_request_id,
        references=references,
    )


def _check_prompt(manifest: Manifest, prompt: Any) -> list[str]:
    if prompt is None:
        return ["prompt: is required"] if manifest.prompt_required else []
    if not isinstance(prompt, str):
        return ["prompt: must be a string"]
    if manifest.prompt_required and not prompt.strip():
        return ["prompt: must not be empty"]
    if manifest.max_prompt_length is not None and len(prompt) > manifest.max_prompt_length:
        return [f"prompt: must be at most {manifest.max_prompt_length} characters"]
    return []


def _check_references(
    manifest: Manifest, mode: Mode, items: Any, resolve: ReferenceResolver, problems: list[str]
) -> list[ReferenceTarget]:
    where = f"params.{REFERENCE_ITEMS_KEY}"
    if not isinstance(items, list):
        problems.append(f"{where}: must be a list")
        return []
    spec = manifest.modes[mode]
    limit = min(spec.max_references, manifest.upload.max_files)
    if len(items) > limit:
        problems.append(f"{where}: {manifest.id} takes at most {limit} reference(s), got {len(items)}")
    if len(items) < spec.min_references:
        problems.append(f"{where}: needs at least {spec.min_references} reference(s)")
    targets: list[ReferenceTarget] = []
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: must be an object")
            continue
        extra = sorted(set(item) - REFERENCE_ITEM_KEYS)
        if extra:
            problems.append(f"{at}: unknown field(s): {', '.join(extra)}")
        kind = item.get("kind")
        if kind not in manifest.upload.kinds:
            problems.append(f"{at}.kind: must be one of {', '.join(manifest.upload.kinds)}")
        mime = item.get("mimeType")
        if mime is not None and mime not in manifest.upload.mime_types:
            problems.append(f"{at}.mimeType: must be one of {', '.join(manifest.upload.mime_types)}")
        name = item.get("name")
        if name is not None and not isinstance(name, str):
            problems.append(f"{at}.name: must be a string")
        url = item.get("url")
        if not isinstance(url, str) or not url:
            problems.append(f"{at}.url: is required")
            continue
        target = resolve(url)
        if isinstance(target, str):
            problems.append(f"{at}.url: {target}")
        else:
            targets.append(target)
    return targets
