"""Sealing: how a secret kept in the store is encrypted under a master key held outside it.

A sealed value reads ``sg-sealed:v1:<key id>:<base64url(nonce ‖ ciphertext)>``. ``v1`` is
AES-256-GCM with a random 96-bit nonce under a key derived from the master key (HKDF-SHA256);
the key id, also derived from the master key, names which master key sealed it, so a rotation
can tell what it has already re-wrapped and a wrong key is told apart from a tampered value.
The associated data is the store key's name and the header, so a value moved to another key, or
given another key id, does not open.

No store and no web framework here: only bytes in and bytes out.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from supportgate.errors import SealingError
from supportgate.settings import MASTER_KEY_BYTES

__all__ = ["MasterKey", "sealed_by"]

_MAGIC: Final = b"sg-sealed:"
_VERSION: Final = b"v1"
_NONCE_BYTES: Final = 12


def _derive(material: bytes, purpose: bytes, length: int) -> bytes:
    return HKDF(algorithm=SHA256(), length=length, salt=None, info=b"supportgate sealing " + purpose).derive(material)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sealed_by(blob: bytes) -> str | None:
    """The id of the master key that sealed ``blob``, or None if it is not a sealed value at all."""
    if not blob.startswith(_MAGIC):
        return None
    parts = blob[len(_MAGIC) :].split(b":", 2)
    return parts[1].decode("ascii", "replace") if len(parts) == 3 else ""


class MasterKey:
    """A master key, ready to seal and open; its material never leaves it (nor its repr)."""

    __slots__ = ("_aead", "id")

    def __init__(self, material: bytes) -> None:
        if len(material) != MASTER_KEY_BYTES:
            raise ValueError(f"a master key is {MASTER_KEY_BYTES} bytes")
        self._aead = AESGCM(_derive(material, _VERSION + b" aes-256-gcm", 32))
        self.id: str = _b64(_derive(material, b"key id", 8))
        """Names this key in sealed values and messages; says nothing about the key itself."""

    def __repr__(self) -> str:
        return f"MasterKey(id={self.id!r})"

    def _header(self) -> bytes:
        return _MAGIC + _VERSION + b":" + self.id.encode("ascii") + b":"

    def seal(self, name: str, plaintext: bytes) -> bytes:
        """``plaintext`` sealed for the store key ``name``."""
        header = self._header()
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, name.encode() + b"\0" + header)
        return header + _b64(nonce + sealed).encode("ascii")

    def unseal(self, name: str, blob: bytes) -> bytes:
        """The plaintext of ``blob``, read from the store key ``name``.

        Raises:
            SealingError: if ``blob`` is not sealed, is sealed by another master key, is in a
                format this version does not know, or was altered or moved from another key.
        """
        if not blob.startswith(_MAGIC):
            raise SealingError(f"the secret {name} in the store is not sealed")
        version, key_id, body = [*blob[len(_MAGIC) :].split(b":", 2), b"", b""][:3]
        if version != _VERSION:
            shown = version.decode("ascii", "replace")[:8]
            raise SealingError(f"the secret {name} in the store is sealed in a format this version lacks ({shown})")
        sealer = key_id.decode("ascii", "replace")[:16]
        if sealer != self.id:
            raise SealingError(
                f"the secret {name} in the store is sealed under master key {sealer}, "
                f"not under the master key configured ({self.id})"
            )
        try:
            raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], name.encode() + b"\0" + self._header())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealingError(
                f"the secret {name} in the store does not open under master key {self.id}: "
                "it was altered, or moved from another key"
            ) from None
