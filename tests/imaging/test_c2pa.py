"""A file signed with C2PA Content Credentials stays valid: its XMP goes to a sidecar instead.

Each fixture is signed here with c2pa-python and a throwaway ES256 chain (a root and a leaf made
with ``cryptography``); the reader trusts that root only. The control test proves the check can
fail: the same XMP written into the signed file breaks the manifest's hash.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from rivya_mcp.imaging import (
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    TRAINED_ALGORITHMIC_MEDIA,
    Provenance,
    _embed,
    carries_c2pa,
    embed_provenance,
)
from tests.imaging._images import encode, noise
from tests.imaging._xmp_read import properties

# A fixed validity window around any plausible run date: no clock is read to make the chain.
NOT_BEFORE, NOT_AFTER = datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, tzinfo=UTC)
FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}
PROVENANCE = Provenance(
    task_id="gen_signed",
    created_at=datetime(2026, 5, 11, 9, 30, tzinfo=UTC),
    model_id="flux-kontext-max",
    source_type=COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
)


@dataclass(frozen=True)
class Chain:
    certificates: bytes  # leaf, then root (PEM)
    key: bytes  # the leaf's private key (PKCS#8 PEM)
    root: str  # the trust anchor (PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test")]
    )


def _usage(*, sign: bool, certs: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=certs,
        crl_sign=certs,
        encipher_only=False,
        decipher_only=False,
    )


@pytest.fixture(scope="module")
def chain() -> Chain:
    """An ES256 root and leaf, as C2PA requires of a signer: a CA root, a leaf for signing with an EKU."""
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(_name("throwaway test root"))
        .issuer_name(_name("throwaway test root"))
        .public_key(root_key.public_key())
        .serial_number(1)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(sign=False, certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("throwaway test signer"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=True, certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Chain(
        certificates=leaf.public_bytes(pem) + root.public_bytes(pem),
        key=leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        root=root.public_bytes(pem).decode(),
    )


def _sign(data: bytes, mime: str, chain: Chain) -> bytes:
    """``data`` with a C2PA manifest, as a generator that signs its output would send it."""
    manifest = {
        "claim_generator_info": [{"name": "rivya-mcp tests", "version": "1"}],
        "title": "signed fixture",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA}]},
            }
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain.certificates, chain.key, None))
    out = io.BytesIO()
    with signer, c2pa.Builder(manifest) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def _read(data: bytes, mime: str, chain: Chain) -> tuple[str | None, list[str], dict[str, Any] | None]:
    """(validation state, failure codes, active manifest) with only the throwaway root trusted."""
    context = c2pa.Context(settings=c2pa.Settings.from_dict({"trust": {"trust_anchors": chain.root}}))
    with context, c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
        results = reader.get_validation_results() or {}
        failures = [item["code"] for item in results.get("activeManifest", {}).get("failure", [])]
        return reader.get_validation_state(), failures, reader.get_active_manifest()


@pytest.fixture(scope="module", params=sorted(FORMATS))
def signed(request: pytest.FixtureRequest, chain: Chain) -> Iterator[tuple[bytes, str]]:
    fmt, mime = FORMATS[request.param]
    yield _sign(encode(noise((160, 120), seed=1), fmt), mime, chain), mime


def test_the_fixture_is_signed_and_trusted(signed: tuple[bytes, str], chain: Chain) -> None:
    data, mime = signed
    state, failures, manifest = _read(data, mime, chain)
    assert state == "Trusted", failures
    assert manifest is not None and manifest["title"] == "signed fixture"
    assert carries_c2pa(data)


def test_a_signed_file_is_kept_byte_for_byte_and_stays_valid(signed: tuple[bytes, str], chain: Chain) -> None:
    data, mime = signed
    stamped = embed_provenance(data, PROVENANCE)
    assert stamped.placement == "sidecar"
    assert stamped.data == data
    assert "C2PA manifest" in stamped.reason
    state, failures, manifest = _read(stamped.data, mime, chain)
    assert state == "Trusted", failures
    assert manifest == _read(data, mime, chain)[2]
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
    state, failures, _ = _read(forced.data, mime, chain)
    assert state == "Invalid"
    assert "assertion.dataHash.mismatch" in failures
