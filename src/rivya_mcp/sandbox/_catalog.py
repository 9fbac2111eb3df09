"""``GET /api/v1/models``: the documented list shape (rivya-api.md §3.1), built from the manifests."""

from __future__ import annotations

from typing import Any

from rivya_mcp.manifest import Manifest, Param, load_manifests
from rivya_mcp.sandbox._profile import DEFAULT, Profile

# Sandbox decision: the docs show `supported_modes: ["text-to-image"]` only; the edit mode is
# called "image-to-image" here.
MODE_NAMES = {"generate": "text-to-image", "edit": "image-to-image"}


def _param_row(param: Param) -> dict[str, Any]:
    # Sandbox decision: the element shape of `params[]` is not documented; it mirrors the model
    # page's parameter table (key, type, required, default, options/range, description).
    row: dict[str, Any] = {
        "key": param.key,
        "type": param.type,
        "required": param.required,
        "default": param.default,
        "description": param.description,
    }
    if param.options is not None:
        row["options"] = list(param.options)
    for name in ("min", "max", "step", "max_length"):
        value = getattr(param, name)
        if value is not None:
            row[name] = value
    return row


def model_entry(manifest: Manifest, profile: Profile = DEFAULT) -> dict[str, Any]:
    """One element of the model list."""
    needs_refs = [MODE_NAMES.get(name, name) for name, spec in manifest.modes.items() if spec.min_references > 0]
    takes_refs = any(spec.max_references > 0 for spec in manifest.modes.values())
    all_need_refs = bool(manifest.modes) and len(needs_refs) == len(manifest.modes)
    if all_need_refs:
        input_status = "requires_files_api"
    elif needs_refs:
        input_status = "partial_requires_files"
    elif "url" in manifest.inputs:
        input_status = "available_url_input"
    else:
        input_status = "available_text"
    reference_media = (
        {
            "max_files": manifest.upload.max_files,
            "kinds": list(manifest.upload.kinds),
            **stated_upload_limit(manifest.upload.max_bytes, profile),
            "mime_types": list(manifest.upload.mime_types),
        }
        if takes_refs
        else None
    )
    entry = {
        "id": manifest.id,
        "display_name": manifest.display_name,
        "category": manifest.category,
        "runtime": manifest.raw.get("runtime", "async_task"),
        "base_credits": profile.number(manifest.base_credits),
        "billing_type": manifest.billing_type,
        "supported_modes": [MODE_NAMES.get(name, name) for name in manifest.modes],
        "max_prompt_length": manifest.max_prompt_length,
        "reference_media": reference_media,
        "params": [_param_row(p) for p in manifest.params],
        "api_status": "available",
        "api_input_status": input_status,
        "supported_api_inputs": list(manifest.inputs),
        "requires_files_api": all_need_refs,
        "requires_upload_for_modes": needs_refs,
        "url_input_supported": "url" in manifest.inputs,
        "file_kinds": list(manifest.upload.kinds) if takes_refs else [],
        "chat_capabilities": None,
        "notices": [],
    }
    return profile.with_extras(entry, "model")


def stated_upload_limit(manifest_bytes: int, profile: Profile) -> dict[str, int | float]:
    """The upload limit as this profile's catalog states it, in the unit it states it in.

    Sandbox decision (the element shape of ``reference_media`` is not documented, §3.1): the
    default profile states ``max_size_mb`` in its own megabytes (a MiB, which is what it enforces),
    as the model pages write "10 MB"; the variant states ``max_bytes``, its 10 × 10**6 bytes. A
    byte count of 10 MiB would contradict the manifest's "10 MB" (10,000,000 bytes, the stricter
    reading) at every start, though both say the same thing in the profile's own words.
    """
    if profile.catalog_size_unit == "MB":
        return {"max_size_mb": round(manifest_bytes / 1_000_000)}
    return {"max_bytes": profile.number(upload_limit(manifest_bytes, profile.megabyte))}


def upload_limit(manifest_bytes: int, megabyte: int) -> int:
    """The upload limit in bytes when the documented "N MB" is read with a ``megabyte`` of that size.

    The manifests hold the stricter reading (N × 10**6 bytes); the default profile reads the docs'
    MB as MiB, as it always has.
    """
    return round(manifest_bytes / 1_000_000) * megabyte


# What the docs say the list also holds (§3.1): models that are not callable through the API, and
# chat models. The odd values are the ones a catalog grown by hand ends up with: nulls for lists, a
# number written as a string, and one entry nobody can read (credits "varies"). Listed by a profile
# with ``catalog_oddities`` only; their ids start with ``sandbox-`` so no manifest can ever clash.
ODD_ENTRIES: tuple[dict[str, Any], ...] = (
    {
        "id": "sandbox-chat",
        "display_name": "Sandbox Chat",
        "category": "chat",
        "runtime": "chat",
        "base_credits": 1,
        "billing_type": "FIXED",
        "supported_modes": None,
        "max_prompt_length": None,
        "reference_media": None,
        "params": None,
        "api_status": "available",
        "api_input_status": None,
        "supported_api_inputs": ["text"],
        "requires_files_api": False,
        "requires_upload_for_modes": None,
        "url_input_supported": False,
        "file_kinds": None,
        "chat_capabilities": {"streaming": True, "web_search": False, "attachments": ["image"]},
        "notices": None,
    },
    {
        "id": "sandbox-image-next",
        "display_name": "Sandbox Image Next",
        "category": "image",
        "runtime": "async_task",
        "base_credits": 6,
        "billing_type": "FIXED",
        "supported_modes": ["text-to-image"],
        "max_prompt_length": "5000",
        "reference_media": None,
        "params": [],
        "api_status": "coming_soon",
        "api_input_status": "available_text",
        "supported_api_inputs": ["text"],
        "requires_files_api": False,
        "requires_upload_for_modes": [],
        "url_input_supported": False,
        "file_kinds": [],
        "chat_capabilities": None,
        "notices": [{"level": "info", "message": "Rolling out soon."}],
    },
    {
        "id": "sandbox-studio-video",
        "display_name": "Sandbox Studio Video",
        "category": "video",
        "runtime": "async_task",
        "base_credits": "varies",
        "billing_type": "PER_SECOND",
        "supported_modes": ["text-to-video"],
        "max_prompt_length": None,
        "reference_media": {"max_files": None, "kinds": ["image"], "max_bytes": None},
        "params": [],
        "api_status": "studio_only",
        "api_input_status": None,
        "supported_api_inputs": [],
        "requires_files_api": None,
        "requires_upload_for_modes": [],
        "url_input_supported": None,
        "file_kinds": ["image"],
        "chat_capabilities": None,
        "notices": [],
    },
)


def model_list(profile: Profile = DEFAULT) -> dict[str, Any]:
    entries = [model_entry(m, profile) for m in load_manifests().values()]
    if profile.catalog_oddities:
        entries += [profile.with_extras(entry, "model") for entry in ODD_ENTRIES]
    body = {"object": "list", "data": entries}
    return profile.with_extras(body, "list")
