"""Signing and reading C2PA Content Credentials in tests: a throwaway ES256 chain (a root and a
leaf made with ``cryptography``) and c2pa-python, trusting that root only. Shared by the imaging
tests and the server's (a signed result saved through the whole server stays valid)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rivya_mcp.imaging import TRAINED_ALGORITHMIC_MEDIA

# A fixed validity window around any plausible run date: no clock is read to make the chain.
NOT_BEFORE, NOT_AFTER = datetime(2000, 1, 1, tzinfo=UTC), datetime(2099, 12, 31, tzinfo=UTC)


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


def make_chain() -> Chain:
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


def sign(data: bytes, mime: str, chain: Chain) -> bytes:
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


def read(data: bytes, mime: str, chain: Chain) -> tuple[str | None, list[str], dict[str, Any] | None]:
    """(validation state, failure codes, active manifest) with only the throwaway root trusted."""
    context = c2pa.Context(settings=c2pa.Settings.from_dict({"trust": {"trust_anchors": chain.root}}))
    with context, c2pa.Reader(mime, io.BytesIO(data), context=context) as reader:
        results = reader.get_validation_results() or {}
        failures = [item["code"] for item in results.get("activeManifest", {}).get("failure", [])]
        return reader.get_validation_state(), failures, reader.get_active_manifest()
