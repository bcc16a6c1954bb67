"""Lookup convergence over a fake network: peer tables in a dict, no event loop."""

from __future__ import annotations

import random
import statistics

from ccnp2p.dht.keys import kad_key, peer_key
from ccnp2p.dht.lookup import ClosestPeersLookup, LookupState, PeerState, StepKind
from ccnp2p.dht.routing import RoutingTable
from tests.dht.conftest import peer

K = 20


def build_world(n: int, seed: int) -> dict[bytes, RoutingTable]:
    """Each peer knows a random sample plus its true neighbours (a converged network)."""
    rng = random.Random(seed)
    ids = [peer(i) for i in range(n)]
    tables = {pid: RoutingTable(pid, k=K) for pid in ids}
    for pid, table in tables.items():
        for other in rng.sample(ids, 60):
            table.update(other, [], 0)
        key = peer_key(pid)
        for other in sorted(ids, key=lambda o: peer_key(o) ^ key)[:K]:
            table.update(other, [], 0)
    return tables


def run_lookup(
    tables: dict[bytes, RoutingTable],
    start: bytes,
    target: int,
    dead: frozenset[bytes] = frozenset(),
) -> ClosestPeersLookup:
    seeds = [i.peer_id for i in tables[start].closest(target, K)]
    lookup = ClosestPeersLookup(target, seeds, k=K, local_peer_id=start, peer_timeout_s=10)
    now = 0.0
    for _ in range(10_000):
        step = lookup.next(now)
        if step.kind is StepKind.FINISHED:
            return lookup
        if step.kind is StepKind.WAITING:
            assert step.wake_at is not None
            now = step.wake_at
            continue
        for p in step.peers:
            if p in dead:
                continue  # never answers: the lookup must time it out
            closer = [i.peer_id for i in tables[p].closest(target, K)]
            assert lookup.on_success(p, closer)
        now += 0.01
    raise AssertionError("lookup did not terminate")


def test_converges_to_true_closest() -> None:
    tables = build_world(300, seed=7)
    ids = list(tables)
    rng = random.Random(3)
    hops = []
    exact = 0
    for _ in range(30):
        target = kad_key(rng.randbytes(32))
        start = rng.choice(ids)
        lookup = run_lookup(tables, start, target)
        truth = sorted((p for p in ids if p != start), key=lambda p: peer_key(p) ^ target)[:K]
        exact += lookup.result() == truth
        hops.append(lookup.statistics().hops)
    assert exact >= 29
    assert statistics.median(hops) <= 4


def test_tolerates_dead_peers() -> None:
    tables = build_world(300, seed=8)
    ids = list(tables)
    rng = random.Random(4)
    dead = frozenset(rng.sample(ids, 90))
    alive = [p for p in ids if p not in dead]
    ok = 0
    for _ in range(20):
        target = kad_key(rng.randbytes(32))
        start = rng.choice(alive)
        lookup = run_lookup(tables, start, target, dead)
        truth = sorted((p for p in alive if p != start), key=lambda p: peer_key(p) ^ target)[:K]
        ok += lookup.result() == truth
        assert not set(lookup.result()) & dead
    assert ok >= 18


def test_alpha_bound_and_stall_widening() -> None:
    target = 0
    seeds = [peer(i) for i in range(1, 40)]
    lookup = ClosestPeersLookup(target, seeds, k=20, alpha=3)
    step = lookup.next(0)
    assert step.kind is StepKind.QUERY and len(step.peers) == 3
    assert lookup.next(0).kind is StepKind.WAITING
    for p in step.peers:  # three answers without progress: stalled
        lookup.on_success(p, [])
    assert lookup.state is LookupState.STALLED
    widened = lookup.next(1)
    assert len(widened.peers) == 20  # up to max(k, alpha) in flight while stalled


def test_timeout_marks_unresponsive_and_late_answer_counts() -> None:
    seeds = [peer(1), peer(2)]
    lookup = ClosestPeersLookup(0, seeds, k=2, alpha=1, peer_timeout_s=5)
    first = lookup.next(0).peers[0]
    step = lookup.next(1)
    assert step.kind is StepKind.WAITING and step.wake_at == 5
    second = lookup.next(5).peers[0]  # first timed out: its slot goes to the next peer
    assert lookup.peer_state(first) is PeerState.UNRESPONSIVE
    assert lookup.on_success(first, [])  # late answers are still welcome
    assert lookup.on_failure(second)
    assert lookup.next(6).kind is StepKind.FINISHED
    assert lookup.result() == [first]


def test_ignores_unsolicited_and_self() -> None:
    me = peer(0)
    lookup = ClosestPeersLookup(0, [peer(1), me], k=20, local_peer_id=me)
    assert not lookup.on_success(peer(9), [])
    step = lookup.next(0)
    assert step.peers == (peer(1),)
    lookup.on_success(peer(1), [me, peer(1)])
    assert lookup.next(0).kind is StepKind.FINISHED
    assert not lookup.on_failure(peer(1))


def test_candidates_are_bounded() -> None:
    lookup = ClosestPeersLookup(0, [peer(1)], k=2, alpha=1)
    lookup.next(0)
    lookup.on_success(peer(1), [peer(i) for i in range(2, 200)])
    assert len(lookup._order) <= lookup.max_candidates
