from __future__ import annotations

from ccnp2p.dht.keys import bucket_index, peer_key
from ccnp2p.dht.routing import RoutingTable, UpdateStatus
from tests.dht.conftest import peer

ME = peer(0)


def same_bucket_peers(table: RoutingTable, index: int, count: int) -> list[bytes]:
    out = []
    n = 1
    while len(out) < count:
        candidate = peer(n)
        if bucket_index(table.local_key, peer_key(candidate)) == index:
            out.append(candidate)
        n += 1
    return out


def test_placement_and_self() -> None:
    table = RoutingTable(ME, k=4)
    assert table.update(ME, [], 0).status is UpdateStatus.SELF
    for n in range(1, 30):
        table.update(peer(n), ["/ip4/127.0.0.1/tcp/1"], 0)
    for index, size in table.bucket_sizes().items():
        assert size <= 4
        for info in table.peers():
            if bucket_index(table.local_key, peer_key(info.peer_id)) == index:
                break
        else:
            raise AssertionError("bucket without its peers")
    assert ME not in table


def test_closest_is_sorted_by_xor_distance() -> None:
    table = RoutingTable(ME, k=20)
    peers = [peer(n) for n in range(1, 60)]
    for p in peers:
        table.update(p, [], 0)
    target = peer_key(peer(999))
    expected = sorted((p for p in peers if p in table), key=lambda p: peer_key(p) ^ target)[:5]
    assert [i.peer_id for i in table.closest(target, 5)] == expected


def test_update_moves_to_tail_and_keeps_addrs() -> None:
    table = RoutingTable(ME, k=3)
    a, b = same_bucket_peers(table, 255, 2)
    table.update(a, ["/ip4/1.1.1.1/tcp/1"], 0)
    table.update(b, [], 0)
    assert table.update(a, [], 1).status is UpdateStatus.UPDATED
    assert table.get(a) is not None and table.get(a).addrs == ("/ip4/1.1.1.1/tcp/1",)  # type: ignore[union-attr]


def test_full_bucket_pings_oldest_and_keeps_it_if_alive() -> None:
    table = RoutingTable(ME, k=2, ping_timeout_s=5)
    a, b, c, d = same_bucket_peers(table, 255, 4)
    table.update(a, [], 0)
    table.update(b, [], 0)
    assert table.update(c, [], 59).status is UpdateStatus.DISCARDED  # a was seen recently
    assert not table.wants(c, 59) and table.wants(c, 60)
    result = table.update(c, [], 61)
    assert result.status is UpdateStatus.PENDING and result.ping == a
    assert table.update(d, [], 61).status is UpdateStatus.DISCARDED  # one pending slot
    assert not table.wants(d, 61)
    table.update(a, [], 62)  # the ping answered
    assert a in table and c not in table
    assert table.next_deadline() is None


def test_full_bucket_evicts_oldest_when_ping_fails() -> None:
    table = RoutingTable(ME, k=2, ping_timeout_s=5)
    a, b, c = same_bucket_peers(table, 255, 3)
    table.update(a, [], 0)
    table.update(b, [], 0)
    table.update(c, [], 100)
    promoted = table.remove(a)
    assert promoted is not None and promoted.peer_id == c
    assert set(i.peer_id for i in table.peers()) == {b, c}


def test_pending_applies_after_timeout() -> None:
    table = RoutingTable(ME, k=2, ping_timeout_s=5)
    a, b, c = same_bucket_peers(table, 255, 3)
    table.update(a, [], 0)
    table.update(b, [], 0)
    table.update(c, [], 100)
    assert table.poll(104.9) == []
    assert table.next_deadline() == 105
    assert table.poll(105) == [a]
    assert c in table and a not in table


def test_stale_buckets_and_mark_refreshed() -> None:
    table = RoutingTable(ME)
    assert table.stale_buckets(0, 600) == [255]  # an empty table only looks for anybody
    for n in range(1, 400):
        table.update(peer(n), [], 0)
    deepest = min(table.bucket_sizes())
    assert table.stale_buckets(0, 600) == list(range(255, max(deepest, 244) - 1, -1))
    target = table.local_key ^ (1 << 255)
    table.mark_refreshed(target, 100)
    assert 255 not in table.stale_buckets(200, 600)
    assert 255 in table.stale_buckets(700, 600)
