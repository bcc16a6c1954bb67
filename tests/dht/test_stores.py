from __future__ import annotations

import pytest

from ccnp2p.dht.errors import InvalidRecord, UnknownNamespace
from ccnp2p.dht.providers import ProviderStore, ProvideSchedule
from ccnp2p.dht.records import RecordStore, ValidatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.dht.validators import (
    TEST_NAMESPACE,
    SignedSeqValidator,
    make_signed_record,
    owner_key,
)
from ccnp2p.errors import QuotaExceeded
from ccnp2p.objects import dagcbor
from ccnp2p.objects.keys import Identity
from tests.dht.conftest import peer

HOUR = 3600.0


def test_providers_expire_after_48h_and_dedupe() -> None:
    store = ProviderStore()
    store.add(b"k", PeerInfo(peer(1), ("/ip4/1.1.1.1/tcp/1",)), 0)
    store.add(b"k", PeerInfo(peer(1), ()), 10)  # refresh keeps addrs, no duplicate
    store.add(b"k", PeerInfo(peer(2)), 20)
    assert [p.peer_id for p in store.get(b"k", 30)] == [peer(2), peer(1)]
    assert store.get(b"k", 30)[1].addrs == ("/ip4/1.1.1.1/tcp/1",)
    assert store.next_expiry() == 10 + 48 * HOUR
    assert [p.peer_id for p in store.get(b"k", 10 + 48 * HOUR)] == [peer(2)]
    assert store.expire(20 + 48 * HOUR) == 1
    assert len(store) == 0 and store.get(b"k", 0) == []


def test_providers_bounded_per_key_and_in_total() -> None:
    store = ProviderStore(max_per_key=2, max_total=3)
    for n in range(3):
        store.add(b"a", PeerInfo(peer(n)), n)
    assert [p.peer_id for p in store.get(b"a", 5)] == [peer(2), peer(1)]  # oldest evicted
    assert store.add(b"b", PeerInfo(peer(5)), 5)
    assert not store.add(b"c", PeerInfo(peer(6)), 5)  # full: new records refused
    assert len(store) == 3


def test_provide_schedule() -> None:
    sched = ProvideSchedule(interval_s=22 * HOUR, max_keys=1)
    sched.add(b"k", 0)
    assert sched.due(22 * HOUR - 1) == [] and sched.due(22 * HOUR) == [b"k"]
    assert sched.next_deadline() == 22 * HOUR
    with pytest.raises(QuotaExceeded):
        sched.add(b"other", 0)


@pytest.fixture
def registry() -> ValidatorRegistry:
    reg = ValidatorRegistry()
    reg.register(TEST_NAMESPACE, SignedSeqValidator())
    return reg


def test_validator_accepts_signed_and_rejects_bad(registry: ValidatorRegistry) -> None:
    alice, bob = Identity.from_seed_int(1), Identity.from_seed_int(2)
    key = owner_key(TEST_NAMESPACE, alice)
    good = make_signed_record(alice, key, 1, b"hi")
    registry.validate(key, good)
    with pytest.raises(InvalidRecord, match="signature"):  # replayed under another key
        registry.validate(owner_key(TEST_NAMESPACE, bob), good)
    with pytest.raises(InvalidRecord, match="not signed by the peer"):  # bob writes alice's key
        registry.validate(key, make_signed_record(bob, key, 1, b"hi"))
    fields = dagcbor.decode(good)
    fields["seq"] = 9  # tampered after signing
    with pytest.raises(InvalidRecord, match="signature"):
        registry.validate(key, dagcbor.encode(fields))
    with pytest.raises(InvalidRecord, match="DAG-CBOR"):
        registry.validate(key, b"\xff")
    with pytest.raises(UnknownNamespace):
        registry.validate(b"/nope/x", good)


def test_longest_namespace_wins(registry: ValidatorRegistry) -> None:
    class Reject:
        def validate(self, key: bytes, value: bytes) -> None:
            raise InvalidRecord("no")

        def select(self, key: bytes, values: object) -> int:
            return 0

    registry.register("/test/sub/", Reject())
    assert isinstance(registry.for_key(b"/test/sub/x"), Reject)
    assert isinstance(registry.for_key(b"/test/x"), SignedSeqValidator)
    with pytest.raises(ValueError):
        registry.register("ccn", Reject())


def test_record_store_keeps_highest_seq_and_expires(registry: ValidatorRegistry) -> None:
    alice = Identity.from_seed_int(1)
    key = owner_key(TEST_NAMESPACE, alice)
    v1, v2 = (make_signed_record(alice, key, s, b"x") for s in (1, 2))
    store = RecordStore(registry, ttl_s=10, max_records=2)
    assert store.put(key, v2, 0)
    assert not store.put(key, v1, 1)
    assert store.get(key, 5) == v2
    assert store.get(key, 10) is None
    with pytest.raises(InvalidRecord):
        store.put(key, b"junk", 0)


def test_record_store_bounded(registry: ValidatorRegistry) -> None:
    store = RecordStore(registry, max_records=2)
    ids = [Identity.from_seed_int(n) for n in range(1, 4)]
    for i, ident in enumerate(ids):
        key = owner_key(TEST_NAMESPACE, ident)
        store.put(key, make_signed_record(ident, key, 0, b""), i)
    assert len(store) == 2
    assert store.get(owner_key(TEST_NAMESPACE, ids[0]), 5) is None
    assert store.next_expiry() == 1 + 36 * HOUR
    assert store.expire(2 + 36 * HOUR) == 2
