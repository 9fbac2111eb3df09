"""Data URI references: encodings, sizes checked before decoding, declared vs real type."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from rivya_mcp.manifest import UploadPolicy
from rivya_mcp.references import ReferenceError, load_reference

from .conftest import image_bytes

pytestmark = pytest.mark.anyio

PNG = image_bytes("PNG")


async def refused(source: str, policy: UploadPolicy) -> ReferenceError:
    with pytest.raises(ReferenceError) as info:
        await load_reference(source, policy=policy)
    return info.value


async def test_base64_png(policy: UploadPolicy) -> None:
    ref = await load_reference("data:image/png;base64," + base64.b64encode(PNG).decode(), policy=policy)
    assert (ref.mime_type, ref.filename, ref.source_kind, ref.path) == ("image/png", "reference.png", "data_uri", None)
    assert ref.data == PNG and ref.notes == ()


async def test_wrapped_and_urlsafe_base64(policy: UploadPolicy) -> None:
    encoded = base64.urlsafe_b64encode(PNG).decode().rstrip("=")
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert (await load_reference("data:image/png;base64," + wrapped, policy=policy)).data == PNG


async def test_percent_encoded_image(policy: UploadPolicy) -> None:
    ref = await load_reference("data:image/png," + urllib.parse.quote_from_bytes(PNG), policy=policy)
    assert ref.data == PNG


async def test_percent_encoded_text_is_not_an_image(policy: UploadPolicy) -> None:
    error = await refused("data:text/plain,hello%20world", policy)
    assert error.reason == "not_an_image" and "look like text" in error.message


async def test_wrong_declared_mime_signature_wins_and_says_so(policy: UploadPolicy) -> None:
    jpeg = image_bytes("JPEG")
    ref = await load_reference("data:image/png;base64," + base64.b64encode(jpeg).decode(), policy=policy)
    assert ref.mime_type == "image/jpeg" and ref.filename == "reference.jpg"
    assert ref.notes and "declared image/png" in ref.notes[0]


async def test_corrupt_base64(policy: UploadPolicy) -> None:
    error = await refused("data:image/png;base64,iVBOR!!!w0KGgo$$", policy)
    assert error.reason == "bad_data_uri" and "base64" in error.message


async def test_no_comma(policy: UploadPolicy) -> None:
    assert (await refused("data:image/png;base64", policy)).reason == "bad_data_uri"


async def test_oversized_is_refused_before_decoding(policy: UploadPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_decode(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an oversized data URI")

    monkeypatch.setattr(base64, "b64decode", must_not_decode)
    huge = "data:image/png;base64," + "A" * (15 * 1024 * 1024)
    error = await refused(huge, policy)
    assert error.reason == "too_large"
    assert "the limit is 10 MB" in error.message


async def test_decoded_size_is_checked_too(small_policy: UploadPolicy) -> None:
    # Under the encoded ceiling (whitespace slack) but over the decoded limit.
    data = PNG + b"\0" * (small_policy.max_bytes + 1 - len(PNG))
    error = await refused("data:image/png;base64," + base64.b64encode(data).decode(), small_policy)
    assert error.reason == "too_large"


async def test_oversized_percent_encoded(small_policy: UploadPolicy) -> None:
    error = await refused("data:image/png," + "%00" * (small_policy.max_bytes + 100), small_policy)
    assert error.reason == "too_large"


async def test_ids_are_not_loaded_here(policy: UploadPolicy) -> None:
    # The server resolves ids before loading; one that reaches the loader is only a relative name.
    assert (await refused("file_abc", policy)).reason == "relative_path"
    assert (await refused("3f0c2a9e-8d1b-4c55-a1f2-0b7e6d5c4a39", policy)).reason == "relative_path"


@pytest.mark.parametrize("source", ["file:///etc/passwd", "ftp://example.com/a.png", "javascript:alert(1)"])
async def test_unsupported_schemes(policy: UploadPolicy, source: str) -> None:
    assert (await refused(source, policy)).reason == "unsupported_scheme"
