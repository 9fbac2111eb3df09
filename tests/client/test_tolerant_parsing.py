"""Where the docs are loose, the client reads every plausible answer (issue 13, item 5).

Tables of wire bodies against what the typed models make of them. The docs state the four status
values in lower case, show credits and sizes as integers, list ``result.urls`` "when available",
and never show the file object (rivya-api.md §3.3, §3.5, §3.6).
"""

from __future__ import annotations

from typing import Any

import pytest

from rivya_mcp.client import Credits, Generation, ModelInfo, RivyaFile
from rivya_mcp.manifest import get_manifest
from rivya_mcp.references import format_size

TASK = {"id": "7f1c0a52-4c7e-4d47-9a8e-1d2b3c4d5e6f", "model": "flux-kontext-max"}
URL = "https://media.example/result.png"


@pytest.mark.parametrize(
    ("status", "normalised", "terminal"),
    [
        ("succeeded", "succeeded", True),
        ("SUCCEEDED", "succeeded", True),
        ("Failed", "failed", True),
        (" processing ", "processing", False),
        ("QUEUED", "queued", False),
        ("Expired", "expired", False),  # unknown: kept, never terminal (the wait loop bounds it)
    ],
)
def test_statuses_compare_case_insensitively(status: str, normalised: str, terminal: bool) -> None:
    generation = Generation.model_validate({**TASK, "status": status})
    assert generation.status == normalised
    assert generation.is_terminal is terminal


@pytest.mark.parametrize(
    ("result", "urls", "all_urls"),
    [
        ({"primary_url": URL, "urls": [URL]}, [URL], [URL]),
        ({"primary_url": URL, "urls": None}, [], [URL]),
        ({"primary_url": URL}, [], [URL]),
        ({"primary_url": None, "urls": None}, [], []),
        ({"urls": [URL, URL + "?2"]}, [URL, URL + "?2"], [URL, URL + "?2"]),
    ],
)
def test_a_succeeded_task_without_a_url_list_parses(
    result: dict[str, Any], urls: list[str], all_urls: list[str]
) -> None:
    generation = Generation.model_validate({**TASK, "status": "succeeded", "result": result})
    assert generation.result is not None
    assert generation.result.urls == urls
    assert generation.result.all_urls == all_urls


@pytest.mark.parametrize(
    ("wire", "parsed", "kind"),
    [(8, 8, int), (8.0, 8, int), (7.5, 7.5, float), (0.0, 0, int)],
)
def test_numbers_are_int_or_float(wire: float, parsed: float, kind: type) -> None:
    generation = Generation.model_validate(
        {**TASK, "status": "succeeded", "reserved_credits": wire, "final_credits": wire}
    )
    credits = Credits.model_validate({"current_credits": wire})
    info = ModelInfo.model_validate({"id": "flux-kontext-max", "base_credits": wire})
    for value in (generation.reserved_credits, generation.final_credits, credits.current_credits, info.base_credits):
        assert value == parsed and type(value) is kind


def test_a_non_number_is_still_refused() -> None:
    with pytest.raises(ValueError):
        Credits.model_validate({"current_credits": "lots"})


@pytest.mark.parametrize(
    "wire",
    [
        {"id": "file_abc", "url": URL, "mimeType": "image/png", "size": 1234},
        {"file_id": "file_abc", "url": URL, "mime_type": "image/png", "bytes": 1234.0},
        {"file_id": "file_abc", "url": URL, "mime_type": "image/png", "size_bytes": 1234},
        {"id": "file_abc", "url": URL, "mimeType": "image/png", "file_size": 1234, "livemode": False, "x": {"y": 1}},
    ],
)
def test_file_object_spellings(wire: dict[str, Any]) -> None:
    file = RivyaFile.model_validate({**wire, "kind": "image"})
    assert (file.id, file.url, file.mime_type, file.size) == ("file_abc", URL, "image/png", 1234)
    # The reference item is always the documented camelCase shape, whatever came in.
    assert file.as_reference_item() == {"url": URL, "kind": "image", "mimeType": "image/png"}


def test_unknown_fields_are_ignored_everywhere() -> None:
    extra = {"livemode": False, "object": "generation", "x_sandbox": {"profile": "variant"}}
    generation = Generation.model_validate(
        {**TASK, **extra, "status": "failed", "error": {"code": "generation_failed", "message": "m", "type": "x"}}
    )
    assert generation.is_terminal and generation.error is not None
    assert generation.error.code == "generation_failed"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (10_000_000, "10 MB"),
        (10_200_000, "10.2 MB"),
        (10_485_760, "10.5 MB (10,485,760 bytes)"),
        (10_000_001, "10 MB (10,000,001 bytes)"),
        (64_000, "64 KB"),
    ],
)
def test_sizes_are_decimal_megabytes(size: int, text: str) -> None:
    assert format_size(size) == text


def test_the_local_upload_limit_is_the_stricter_reading_of_10_mb() -> None:
    # rivya-api.md §3.6 says "10 MB"; a file of 10,000,001 bytes might be refused upstream.
    assert get_manifest("flux-kontext-max").upload.max_bytes == 10_000_000
