"""Every manifest passes the meta-schema; the loader refuses what does not."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rivya_mcp.manifest import (
    SCHEMA_FILENAME,
    ManifestError,
    get_manifest,
    load_manifests,
    manifests_dir,
    parse_manifest,
)


def _meta() -> dict[str, Any]:
    return json.loads((manifests_dir() / SCHEMA_FILENAME).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _raw(model_id: str) -> dict[str, Any]:
    return json.loads((manifests_dir() / f"{model_id}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_both_kontext_models_are_shipped() -> None:
    manifests = load_manifests()
    assert set(manifests) >= {"flux-kontext-max", "flux-kontext-pro"}


@pytest.mark.parametrize(("model_id", "credits"), [("flux-kontext-max", 8), ("flux-kontext-pro", 4)])
def test_documented_header_facts(model_id: str, credits: int) -> None:
    m = get_manifest(model_id)
    assert m.base_credits == credits
    assert m.billing_type == "FIXED"
    assert m.inputs == ("text", "file")
    assert m.max_prompt_length is None
    assert m.upload.max_files == 1
    assert m.upload.kinds == ("image",)
    assert m.upload.max_bytes == 10_000_000  # "10 MB", the stricter reading
    assert m.upload.mime_types == ("image/jpeg", "image/png", "image/webp")
    assert [p.key for p in m.params] == [
        "aspectRatio",
        "outputFormat",
        "enableTranslation",
        "promptUpsampling",
        "safetyTolerance",
        "watermark",
    ]


def test_pro_and_max_share_the_parameter_table() -> None:
    assert get_manifest("flux-kontext-max").params == get_manifest("flux-kontext-pro").params


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="flux-kontext-max"):
        get_manifest("no-such-model")


def _mutations() -> list[tuple[str, Any]]:
    def drop_params(m: dict[str, Any]) -> None:
        del m["params"]

    def select_without_options(m: dict[str, Any]) -> None:
        del m["params"][0]["options"]

    def bad_type(m: dict[str, Any]) -> None:
        m["params"][0]["type"] = "enum"

    def negative_credits(m: dict[str, Any]) -> None:
        m["base_credits"] = -1

    def unknown_field(m: dict[str, Any]) -> None:
        m["surprise"] = True

    def number_default_is_string(m: dict[str, Any]) -> None:
        m["params"][4]["default"] = "2"

    def duplicate_key(m: dict[str, Any]) -> None:
        m["params"].append(copy.deepcopy(m["params"][0]))

    def narrowing_without_reason(m: dict[str, Any]) -> None:
        del m["params"][4]["narrow"]["edit"]["why"]

    return [
        ("params", drop_params),
        ("options", select_without_options),
        ("params/0/type", bad_type),
        ("base_credits", negative_credits),
        ("surprise", unknown_field),
        ("params/4/default", number_default_is_string),
        ("repeats", duplicate_key),
        ("why", narrowing_without_reason),
    ]


@pytest.mark.parametrize(("where", "mutate"), _mutations(), ids=[w for w, _ in _mutations()])
def test_meta_schema_refuses_broken_manifests(where: str, mutate: Any) -> None:
    data = _raw("flux-kontext-max")
    parse_manifest(copy.deepcopy(data), _meta())  # the real one passes
    mutate(data)
    with pytest.raises(ManifestError):
        parse_manifest(data, _meta())


def test_shipped_manifests_are_meta_checked_before_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_manifests defers the meta-schema check (startup time); the first use runs it."""
    from rivya_mcp.manifest import _loader, validate_arguments

    monkeypatch.setattr(_loader, "_meta_checked", False)
    checked: list[str] = []
    real = _loader.check_manifest
    monkeypatch.setattr(_loader, "check_manifest", lambda data, meta: (checked.append(data["id"]), real(data, meta)))
    validate_arguments(get_manifest("flux-kontext-max"), "generate", {"prompt": "a kite"})
    assert set(checked) == set(load_manifests())
    validate_arguments(get_manifest("flux-kontext-max"), "generate", {"prompt": "a kite"})
    assert len(checked) == len(load_manifests())  # once per process


def test_a_broken_shipped_manifest_is_refused_before_use(monkeypatch: pytest.MonkeyPatch) -> None:
    from rivya_mcp.manifest import _loader, to_wire_params

    manifest = get_manifest("flux-kontext-max")
    broken = copy.deepcopy(manifest.raw)
    broken["base_credits"] = -1
    monkeypatch.setattr(_loader, "_meta_checked", False)
    object.__setattr__(manifest, "raw", broken)  # frozen dataclass; restored below
    try:
        with pytest.raises(ManifestError):
            to_wire_params(manifest, "generate", {"prompt": "a kite"})
    finally:
        object.__setattr__(manifest, "raw", _raw("flux-kontext-max"))
