"""Content identifiers: CIDv1 with sha2-256, raw (0x55) for chunks, dag-cbor (0x71) for objects.

:class:`Cid` is a small immutable value type. Building one from data is on the hot path of every
put and every verified fetch, so binary CIDs are assembled by hand here; the ``multiformats``
package does the multibase text encoding and is used by the tests as an independent reference.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from multiformats import multibase

from ccnp2p.errors import HashMismatch, InvalidCid

RAW: Final = 0x55
DAG_CBOR: Final = 0x71
SHA2_256: Final = 0x12
IDENTITY_HASH: Final = 0x00
_DIGEST_BYTES: Final = 32
_CODECS: Final = {RAW: "raw", DAG_CBOR: "dag-cbor"}
# Prefix for each codec: cid-version 1, codec varint, multihash code, digest length.
_PREFIX: Final = {
    RAW: bytes([0x01, RAW, SHA2_256, _DIGEST_BYTES]),
    DAG_CBOR: bytes([0x01, DAG_CBOR, SHA2_256, _DIGEST_BYTES]),
}
MAX_CID_BYTES: Final = 128


def encode_uvarint(value: int) -> bytes:
    """Unsigned LEB128 as used by multiformats and libp2p framing."""
    if value < 0:
        raise ValueError("uvarint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_uvarint(data: bytes | memoryview, pos: int = 0) -> tuple[int, int]:
    """Decode a uvarint at ``pos``; returns (value, new_pos). At most 9 bytes (63 bits)."""
    result = 0
    shift = 0
    for i in range(9):
        if pos + i >= len(data):
            raise InvalidCid("truncated varint")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise InvalidCid("non-minimal varint")
            return result, pos + i + 1
        shift += 7
    raise InvalidCid("varint too long")


@dataclass(frozen=True, slots=True)
class Cid:
    """A CIDv1: a codec and a sha2-256 digest.

    Attributes:
        codec: ``RAW`` for chunks, ``DAG_CBOR`` for objects.
        digest: the 32-byte sha2-256 digest of the block's bytes.
    """

    codec: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.codec not in _CODECS:
            raise InvalidCid(f"unsupported codec 0x{self.codec:x}")
        if len(self.digest) != _DIGEST_BYTES:
            raise InvalidCid("digest must be 32 bytes")

    @classmethod
    def for_raw(cls, data: bytes | bytearray | memoryview) -> Cid:
        """CID of a raw chunk."""
        return cls(RAW, hashlib.sha256(data).digest())

    @classmethod
    def for_object(cls, encoded: bytes) -> Cid:
        """CID of a DAG-CBOR encoded object."""
        return cls(DAG_CBOR, hashlib.sha256(encoded).digest())

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> Cid:
        """Parse a binary CIDv1; the whole input must be consumed."""
        data = bytes(data)
        if len(data) > MAX_CID_BYTES:
            raise InvalidCid("CID too long")
        version, pos = decode_uvarint(data, 0)
        if version != 1:
            raise InvalidCid(f"unsupported CID version {version}")
        codec, pos = decode_uvarint(data, pos)
        mh_code, pos = decode_uvarint(data, pos)
        if mh_code != SHA2_256:
            raise InvalidCid(f"unsupported multihash 0x{mh_code:x}")
        length, pos = decode_uvarint(data, pos)
        digest = data[pos:]
        if length != _DIGEST_BYTES or len(digest) != length:
            raise InvalidCid("bad multihash length")
        return cls(codec, digest)

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a multibase CID string (base32 ``b...`` canonical; any multibase accepted)."""
        text = text.strip()
        if not text or len(text) > 2 * MAX_CID_BYTES:
            raise InvalidCid(f"not a CID: {text[:80]!r}")
        if text.startswith("Qm"):
            raise InvalidCid("CIDv0 is not supported; use a CIDv1 (b...)")
        try:
            raw = multibase.decode(text)
        except Exception as exc:  # multiformats raises several unrelated types
            raise InvalidCid(f"not a CID: {text[:80]!r}") from exc
        return cls.from_bytes(raw)

    def __bytes__(self) -> bytes:
        return _PREFIX[self.codec] + self.digest

    @property
    def multihash(self) -> bytes:
        """The multihash (what the DHT keys provider records by)."""
        return bytes([SHA2_256, _DIGEST_BYTES]) + self.digest

    @property
    def is_raw(self) -> bool:
        return self.codec == RAW

    @property
    def codec_name(self) -> str:
        return _CODECS[self.codec]

    def __str__(self) -> str:
        return "b" + _b32(bytes(self))

    def __repr__(self) -> str:
        return f"Cid({self})"

    def verify(self, data: bytes | bytearray | memoryview) -> None:
        """Raise :class:`HashMismatch` unless ``data`` hashes to this CID."""
        if hashlib.sha256(data).digest() != self.digest:
            raise HashMismatch(f"bytes do not match {self}")


def _b32(data: bytes) -> str:
    import base64

    return base64.b32encode(data).decode("ascii").rstrip("=").lower()
