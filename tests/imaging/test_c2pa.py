"""A file signed with C2PA Content Credentials stays valid: its XMP goes to a sidecar instead.

Each fixture is signed here with c2pa-python and a throwaway ES256 chain (a root and a leaf made
with ``cryptography``; tests/imaging/_c2pa.py); the reader trusts that root only. The control test proves the check can
fail: the same XMP written into the signed file breaks the manifest's hash.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PIL import Image

from rivya_mcp.imaging import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    _embed,
    carries_c2pa,
    embed_provenance,
)
from tests.imaging._c2pa import Chain, make_chain, read, sign
from tests.imaging._images import encode, noise
from tests.imaging._xmp_read import properties

FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}
PROVENANCE = Provenance(
    task_id="gen_signed",
    created_at=datetime(2026, 5, 11, 9, 30, tzinfo=UTC),
    model_id="flux-kontext-max",
    source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
)


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain()


@pytest.fixture(scope="module", params=sorted(FORMATS))
def signed(request: pytest.FixtureRequest, chain: Chain) -> Iterator[tuple[bytes, str]]:
    fmt, mime = FORMATS[request.param]
    yield sign(encode(noise((160, 120), seed=1), fmt), mime, chain), mime


def test_the_fixture_is_signed_and_trusted(signed: tuple[bytes, str], chain: Chain) -> None:
    data, mime = signed
    state, failures, manifest = read(data, mime, chain)
    assert state == "Trusted", failures
    assert manifest is not None and manifest["title"] == "signed fixture"
    assert carries_c2pa(data)


def test_a_signed_file_is_kept_byte_for_byte_and_stays_valid(signed: tuple[bytes, str], chain: Chain) -> None:
    data, mime = signed
    stamped = embed_provenance(data, PROVENANCE)
    assert stamped.placement == "sidecar"
    assert stamped.data == data
    assert "C2PA manifest" in stamped.reason
    state, failures, manifest = read(stamped.data, mime, chain)
    assert state == "Trusted", failures
    assert manifest == read(data, mime, chain)[2]
    assert stamped.sidecar is not None
    found = properties(stamped.sidecar)
    assert found["Iptc4xmpExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert found["photoshop:TransmissionReference"] == "gen_signed"
    with Image.open(io.BytesIO(stamped.data)) as image:
        image.load()  # still an image any reader opens


def test_control_writing_the_xmp_into_a_signed_file_breaks_it(
    signed: tuple[bytes, str], chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the C2PA check, the embedding itself works, and the manifest no longer matches.
    data, mime = signed
    for check in ("_jpeg_c2pa", "_png_c2pa", "_webp_c2pa"):
        monkeypatch.setattr(_embed, check, lambda _parts: None)
    forced = embed_provenance(data, PROVENANCE)
    assert forced.placement != "sidecar"
    state, failures, _ = read(forced.data, mime, chain)
    assert state == "Invalid"
    assert "assertion.dataHash.mismatch" in failures
