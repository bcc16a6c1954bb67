"""Ed25519 identities that are libp2p identities.

A public key travels as the libp2p ``PublicKey`` protobuf (``KeyType Ed25519 = 1``, 32 raw bytes),
so a peer id is the identity multihash of that protobuf and every signer in ccnp2p is also a
dialable libp2p peer. The private key is kept as the 32-byte seed in the repo dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from multiformats import multibase

from ccnp2p.errors import DecodeError, RepoError, SignatureError

# libp2p crypto.proto: message PublicKey { required KeyType Type = 1; required bytes Data = 2; }
_ED25519_PB_PREFIX: Final = bytes([0x08, 0x01, 0x12, 0x20])
_IDENTITY_MH_PREFIX: Final = bytes([0x00, 0x24])  # identity multihash, 36 bytes follow
SEED_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An ed25519 public key, 32 raw bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise DecodeError("ed25519 public key must be 32 bytes")

    @classmethod
    def from_protobuf(cls, data: bytes) -> PublicKey:
        """Parse a libp2p ``PublicKey`` protobuf; only ed25519 is accepted."""
        if len(data) != 36 or not data.startswith(_ED25519_PB_PREFIX):
            raise DecodeError("only libp2p ed25519 public keys are accepted")
        return cls(data[4:])

    @classmethod
    def from_peer_id(cls, peer_id: bytes) -> PublicKey:
        """Ed25519 peer ids inline the key (identity multihash), so it can be recovered."""
        if len(peer_id) != 38 or not peer_id.startswith(_IDENTITY_MH_PREFIX):
            raise DecodeError("peer id does not inline an ed25519 key")
        return cls.from_protobuf(peer_id[2:])

    def to_protobuf(self) -> bytes:
        return _ED25519_PB_PREFIX + self.raw

    @property
    def peer_id(self) -> bytes:
        """Binary libp2p peer id (identity multihash of the protobuf key)."""
        return _IDENTITY_MH_PREFIX + self.to_protobuf()

    @property
    def peer_id_str(self) -> str:
        return peer_id_to_str(self.peer_id)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError("signature does not verify") from exc


class Identity:
    """An ed25519 key pair: signs objects and records, and is the node's libp2p identity."""

    __slots__ = ("_private", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise RepoError("identity seed must be 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = PublicKey(raw)

    @classmethod
    def generate(cls) -> Identity:
        return cls(os.urandom(SEED_BYTES))

    @classmethod
    def from_seed_int(cls, n: int) -> Identity:
        """A deterministic identity for tests and the simulator (never for real nodes)."""
        return cls(n.to_bytes(SEED_BYTES, "big"))

    @classmethod
    def load_or_create(cls, path: Path) -> Identity:
        """Load the seed at ``path`` or create it with owner-only permissions."""
        if path.exists():
            seed = path.read_bytes()
            if len(seed) != SEED_BYTES:
                raise RepoError(f"identity file {path} is corrupt")
            return cls(seed)
        ident = cls.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, ident.seed)
            os.fsync(fd)
        finally:
            os.close(fd)
        return ident

    @property
    def seed(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def peer_id(self) -> bytes:
        return self.public.peer_id

    @property
    def peer_id_str(self) -> str:
        return self.public.peer_id_str

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Identity({self.peer_id_str})"


def peer_id_to_str(peer_id: bytes) -> str:
    """The usual base58btc text form (``12D3KooW...`` for ed25519), without multibase prefix."""
    return str(multibase.encode(peer_id, "base58btc"))[1:]


def peer_id_from_str(text: str) -> bytes:
    try:
        return bytes(multibase.decode("z" + text.strip()))
    except Exception as exc:
        raise DecodeError(f"not a peer id: {text[:80]!r}") from exc
