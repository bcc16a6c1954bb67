from __future__ import annotations

import hashlib
import random

from ccnp2p.dht.keys import (
    bucket_index,
    content_key,
    distance,
    kad_key,
    peer_key,
    random_raw_key_in_bucket,
)
from ccnp2p.objects.cid import Cid
from tests.dht.conftest import peer


def test_peer_key_is_sha256_of_peer_id() -> None:
    pid = peer(1)
    assert peer_key(pid) == int.from_bytes(hashlib.sha256(pid).digest(), "big")


def test_content_key_is_multihash() -> None:
    cid = Cid.for_raw(b"hello")
    assert content_key(cid) == cid.multihash
    assert kad_key(content_key(cid)) == int.from_bytes(
        hashlib.sha256(cid.multihash).digest(), "big"
    )


def test_distance_is_a_metric() -> None:
    a, b, c = (peer_key(peer(i)) for i in range(3))
    assert distance(a, a) == 0
    assert distance(a, b) == distance(b, a) > 0
    assert distance(a, c) <= distance(a, b) + distance(b, c)  # XOR triangle inequality


def test_bucket_index() -> None:
    assert bucket_index(0, 0) == -1
    assert bucket_index(0, 1) == 0
    assert bucket_index(0b1000, 0b0001) == 3
    assert bucket_index(0, 1 << 255) == 255


def test_random_raw_key_in_bucket() -> None:
    rng = random.Random(1)
    local = peer_key(peer(0))
    for index in (255, 250, 245):
        raw = random_raw_key_in_bucket(local, index, rng)
        assert raw is not None
        assert bucket_index(local, kad_key(raw)) == index
    assert random_raw_key_in_bucket(local, 10, rng, max_tries=100) is None
