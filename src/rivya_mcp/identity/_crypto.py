"""What identity keeps secret at rest: sealed with AES-256-GCM under keys derived from RIVYA_SECRET_KEY.

One operator secret (``RIVYA_SECRET_KEY``) gives, through HKDF-SHA256 with a distinct ``info`` per
use, three independent keys: the AES-GCM key that seals people's Rivya keys and registered clients'
secrets; the HMAC key of person ids (a keyed fingerprint of a Rivya key, so the id reveals nothing
and cannot be matched against a leaked key list); and a short key id stamped on every sealed value.

The key id is what makes a wrong or rotated secret fail closed with a clear message: a value sealed
under another secret is recognised before any decryption is tried (``SecretKeyMismatch``), instead
of surfacing as a bare authentication-tag failure. A value whose tag does not verify under the right
key was altered or moved to another row (the row's identity is the associated data):
``SealedValueCorrupt``. Neither ever falls back to anything.

Sealed form: ``v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``, text, so both stores keep it in
a TEXT column. Nonces are 96 random bits: far below the birthday bound for the number of values a
server seals (one per sign-in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rivya_mcp.settings import Secret

__all__ = [
    "MIN_SECRET_CHARS",
    "SECRET_KEY_ENV",
    "KeyBox",
    "SealedValueCorrupt",
    "SecretKeyError",
    "SecretKeyMismatch",
]

SECRET_KEY_ENV = "RIVYA_SECRET_KEY"
# 32 characters of a random token are >= 190 bits; a short secret is refused rather than stretched.
MIN_SECRET_CHARS = 32
_VERSION = "v1"
_SALT = b"rivya-mcp identity"
_NONCE_BYTES = 12
_GENERATE_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


class SecretKeyError(ValueError):
    """RIVYA_SECRET_KEY is missing or too short for what it protects."""


class SecretKeyMismatch(RuntimeError):
    """A stored value was sealed under another RIVYA_SECRET_KEY (changed, rotated, or another server's)."""


class SealedValueCorrupt(RuntimeError):
    """A stored value does not decrypt under the right key: altered, truncated, or moved to another row."""


def _derive(material: bytes, info: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info.encode()).derive(material)


class KeyBox:
    """Seals and opens short secrets; fingerprints Rivya keys. Never holds or logs a plaintext."""

    __slots__ = ("_aead", "_fingerprint_key", "key_id")

    def __init__(self, secret: Secret | str | None) -> None:
        material = secret.reveal() if isinstance(secret, Secret) else (secret or "")
        material = material.strip()
        if not material:
            raise SecretKeyError(
                f"{SECRET_KEY_ENV} is not set: it is the key material people's Rivya keys are encrypted with "
                f"(every replica needs the same value); {_GENERATE_HINT}"
            )
        if len(material) < MIN_SECRET_CHARS:
            raise SecretKeyError(
                f"{SECRET_KEY_ENV} is {len(material)} characters long; use at least {MIN_SECRET_CHARS} random "
                f"characters; {_GENERATE_HINT}"
            )
        raw = material.encode("utf-8")
        self._aead = AESGCM(_derive(raw, "rivya-mcp identity: sealed values v1"))
        self._fingerprint_key = _derive(raw, "rivya-mcp identity: person ids v1")
        # 48 bits: tells secrets apart, reveals nothing about them.
        self.key_id = _derive(raw, "rivya-mcp identity: key id v1", length=6).hex()

    def __repr__(self) -> str:
        return f"KeyBox(key_id={self.key_id!r})"

    def seal(self, plaintext: str, *, context: str) -> str:
        """``plaintext`` encrypted and bound to ``context`` (the row it belongs to)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), _associated(context))
        return f"{_VERSION}.{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode('ascii')}"

    def open(self, sealed: str, *, context: str) -> str:
        """The plaintext of a value from :meth:`seal` with the same ``context``; raises, never guesses."""
        version, _, rest = sealed.partition(".")
        key_id, _, payload = rest.partition(".")
        if version != _VERSION or not key_id or not payload:
            raise SealedValueCorrupt(f"a stored value for {context!r} is not in the sealed format")
        if not hmac.compare_digest(key_id, self.key_id):
            raise SecretKeyMismatch(
                f"stored sign-ins were encrypted with a different {SECRET_KEY_ENV} (key id {key_id}; this server's "
                f"is {self.key_id}). Set {SECRET_KEY_ENV} back to the value they were stored with (every replica "
                "must share one); if that value is lost, the stored sign-ins are unreadable and everyone must "
                "sign in again (see docs/identity.md, 'Changing RIVYA_SECRET_KEY')."
            )
        try:
            blob = base64.urlsafe_b64decode(payload.encode("ascii"))
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated(context))
        except (InvalidTag, ValueError) as exc:
            raise SealedValueCorrupt(
                f"a stored value for {context!r} does not decrypt: it was altered or belongs to another row"
            ) from exc
        return plain.decode("utf-8")

    def fingerprint(self, value: str) -> str:
        """HMAC-SHA256 of ``value`` under this server's own key (hex): stable, unlinkable elsewhere."""
        return hmac.new(self._fingerprint_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def _associated(context: str) -> bytes:
    return b"rivya-mcp identity\x00" + context.encode("utf-8")
