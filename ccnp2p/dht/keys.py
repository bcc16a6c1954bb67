"""The Kademlia keyspace: 256-bit keys and their XOR distance.

Following libp2p kad-dht, every identifier is hashed with SHA-256 before it enters the keyspace:
a peer's key is ``sha256(peer id bytes)``, a content key is ``sha256(multihash)`` and a record's
key is ``sha256(record key bytes)``. Hashing spreads identifiers uniformly, so an attacker cannot
choose a peer id next to a target without grinding hashes, and it lets peers of any id format
share one space.

Keys are plain ``int`` (the digest read big-endian): XOR and ``bit_length`` on Python ints are
the fastest distance arithmetic available, which matters to the simulator's thousands of nodes.
"""

from __future__ import annotations

import hashlib
import random
from typing import Final, NewType

from ccnp2p.objects.cid import Cid

KEY_BITS: Final = 256
KadKey = NewType("KadKey", int)


def kad_key(raw: bytes) -> KadKey:
    """Map any identifier (peer id, multihash, record key) into the keyspace."""
    return KadKey(int.from_bytes(hashlib.sha256(raw).digest(), "big"))


def peer_key(peer_id: bytes) -> KadKey:
    """The keyspace position of a peer: ``sha256(peer id bytes)``."""
    return kad_key(peer_id)


def content_key(cid: Cid) -> bytes:
    """The wire key under which providers of ``cid`` are stored: its multihash.

    libp2p kad-dht keys providers by multihash, not by CID, so a CIDv0 and a CIDv1 of the same
    bytes meet at the same peers.
    """
    return cid.multihash


def distance(a: int, b: int) -> int:
    """XOR distance between two keys."""
    return a ^ b


def bucket_index(local: int, other: int) -> int:
    """Index of the k-bucket ``other`` falls in, seen from ``local``; -1 when they are equal.

    Bucket ``i`` holds keys whose distance has its highest set bit at position ``i``, i.e. keys in
    ``[2**i, 2**(i+1))`` away. Half the keyspace lands in bucket 255, a quarter in 254, and so on.
    """
    return (local ^ other).bit_length() - 1


def random_raw_key_in_bucket(
    local: int, index: int, rng: random.Random, max_tries: int = 1 << 15
) -> bytes | None:
    """A random 32-byte raw key whose hash falls in bucket ``index``, or None if too costly.

    A refresh looks up a random key inside a bucket's range, but the wire carries the pre-image
    and SHA-256 cannot be inverted, so we grind: bucket ``i`` needs about ``2**(255-i)`` tries.
    Deep buckets (beyond ``max_tries``) are refreshed by the self-lookup instead.
    """
    for _ in range(max_tries):
        raw = rng.randbytes(32)
        if bucket_index(local, kad_key(raw)) == index:
            return raw
    return None
