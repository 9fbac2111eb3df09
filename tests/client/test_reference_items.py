"""``RivyaFile.as_reference_item``: the kind and MIME type an item needs, from the file object when it
echoes them, else from what the caller knows, else (the kind) from the MIME type's family."""

from __future__ import annotations

from typing import Any

import pytest

from rivya_mcp.client import RivyaFile

URL = "https://files.example/ref.png"


@pytest.mark.parametrize(
    ("echoed", "known", "expected"),
    [
        ({"kind": "image", "mimeType": "image/png"}, {}, {"kind": "image", "mimeType": "image/png"}),
        ({"mime_type": "image/webp"}, {}, {"kind": "image", "mimeType": "image/webp"}),  # the variant's object
        ({}, {"kind": "image", "mime_type": "image/jpeg"}, {"kind": "image", "mimeType": "image/jpeg"}),
        ({}, {}, {}),  # nothing known: nothing invented
        ({"mimeType": "video/mp4"}, {}, {"kind": "video", "mimeType": "video/mp4"}),
        ({"mimeType": "application/pdf"}, {}, {"mimeType": "application/pdf"}),  # no kind of that family
        # What the API said wins over what the caller offers.
        ({"kind": "image", "mimeType": "image/png"}, {"kind": "video", "mime_type": "image/jpeg"},
         {"kind": "image", "mimeType": "image/png"}),
    ],
)  # fmt: skip
def test_reference_item(echoed: dict[str, Any], known: dict[str, str], expected: dict[str, str]) -> None:
    file = RivyaFile.model_validate({"id": "f1", "url": URL, **echoed})
    item = file.as_reference_item(**known)
    assert item == {"url": URL, **expected}


def test_with_known_fills_only_what_is_missing() -> None:
    bare = RivyaFile.model_validate({"file_id": "f2", "url": URL})
    filled = bare.with_known(kind="image", mime_type="image/png")
    assert (filled.kind, filled.mime_type) == ("image", "image/png")
    echoed = RivyaFile.model_validate({"id": "f3", "url": URL, "kind": "image", "mimeType": "image/webp"})
    assert echoed.with_known(kind="video", mime_type="image/png") is echoed
