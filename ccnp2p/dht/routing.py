"""The routing table: 256 k-buckets that never do I/O.

Theory of operation
-------------------
Bucket ``i`` holds up to ``k`` peers whose XOR distance from us has its top bit at ``i``
(:func:`~ccnp2p.dht.keys.bucket_index`). Inside a bucket, peers are kept least-recently-seen
first. Any successful exchange with a peer is reported with :meth:`RoutingTable.update`, which
moves the peer to the tail.

Eviction policy: **ping before evict, with one pending slot per bucket** (original Kademlia, as in
rust-libp2p ``kbucket.rs``). Long-lived peers are the most likely to stay online, so a full bucket
never drops its oldest entry for a newcomer on trust alone:

0. A newcomer arrives at a full bucket whose oldest entry was seen within ``fresh_s`` (60 s):
   every entry is known to be alive, so the newcomer is discarded with no ping at all.
1. A newcomer arrives at a full bucket with a stale oldest entry and no pending entry: it
   becomes the bucket's *pending* entry, and :meth:`update` returns
   ``UpdateResult(PENDING, ping=<oldest peer>)``. The table does not ping; the driver does,
   and reports back.
2. The oldest answers: the driver calls :meth:`update` for it, it moves to the tail and the
   pending entry is dropped (the old peer proved alive, the newcomer loses).
3. The oldest fails: the driver calls :meth:`remove`, and the pending entry takes the free slot.
4. Nobody reports within ``ping_timeout_s``: :meth:`poll` (or the next :meth:`update` touching
   that bucket) evicts the oldest and inserts the pending entry.

While a bucket's pending slot is taken, further newcomers to it are discarded; they will be met
again in later lookups. This bounds the table at ``256 * (k + 1)`` entries whatever peers send.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ccnp2p.dht.keys import KEY_BITS, KadKey, bucket_index, peer_key

K_VALUE: Final = 20
PING_TIMEOUT_S: Final = 10.0
MAX_ADDRS_PER_PEER: Final = 16
FRESH_S: Final = 60.0
REFRESH_DEPTH: Final = 12  # buckets 255..244 are refreshed by random lookups


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A peer and the multiaddrs (text, no ``/p2p`` suffix) it can be dialled on."""

    peer_id: bytes
    addrs: tuple[str, ...] = ()


class UpdateStatus(Enum):
    """What :meth:`RoutingTable.update` did with a peer."""

    INSERTED = "inserted"
    UPDATED = "updated"
    PENDING = "pending"
    DISCARDED = "discarded"
    SELF = "self"


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The table's decision; ``ping`` asks the driver to check that peer is still alive."""

    status: UpdateStatus
    ping: bytes | None = None
    evicted: bytes | None = None


@dataclass(slots=True)
class _Pending:
    info: PeerInfo
    victim: bytes
    deadline: float


class _Bucket:
    __slots__ = ("entries", "pending", "seen_at")

    def __init__(self) -> None:
        self.entries: OrderedDict[bytes, PeerInfo] = OrderedDict()
        self.seen_at: dict[bytes, float] = {}
        self.pending: _Pending | None = None

    def oldest_is_fresh(self, now: float, fresh_s: float) -> bool:
        oldest = next(iter(self.entries))
        return now - self.seen_at[oldest] < fresh_s


class RoutingTable:
    """k-buckets around ``local_peer_id``; decisions out, no I/O.

    Args:
        local_peer_id: our own binary peer id (never inserted).
        k: bucket capacity and lookup width.
        ping_timeout_s: how long a pending newcomer waits for the driver's ping verdict.
        fresh_s: a full bucket whose oldest entry was seen this recently holds only live peers,
            so a newcomer is discarded without a ping (bounds pings to one per bucket per
            ``fresh_s`` however many peers we meet).
    """

    def __init__(
        self,
        local_peer_id: bytes,
        *,
        k: int = K_VALUE,
        ping_timeout_s: float = PING_TIMEOUT_S,
        fresh_s: float = FRESH_S,
    ) -> None:
        if k < 1:
            raise ValueError("k must be positive")
        self.local_peer_id = local_peer_id
        self.local_key = peer_key(local_peer_id)
        self.k = k
        self.ping_timeout_s = ping_timeout_s
        self.fresh_s = fresh_s
        self._buckets = [_Bucket() for _ in range(KEY_BITS)]
        self._keys: dict[bytes, KadKey] = {}
        self._refreshed_at = [float("-inf")] * KEY_BITS

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, peer_id: object) -> bool:
        return peer_id in self._keys

    def peers(self) -> Iterator[PeerInfo]:
        """Every peer in the table, bucket by bucket."""
        for bucket in self._buckets:
            yield from bucket.entries.values()

    def get(self, peer_id: bytes) -> PeerInfo | None:
        key = self._keys.get(peer_id)
        if key is None:
            return None
        return self._buckets[bucket_index(self.local_key, key)].entries[peer_id]

    def bucket_sizes(self) -> dict[int, int]:
        """Occupancy of the non-empty buckets, for statistics and tests."""
        return {i: len(b.entries) for i, b in enumerate(self._buckets) if b.entries}

    def update(self, peer_id: bytes, addrs: Sequence[str], now: float) -> UpdateResult:
        """Record that ``peer_id`` answered us (or was verified to serve the protocol)."""
        if peer_id == self.local_peer_id:
            return UpdateResult(UpdateStatus.SELF)
        key = self._keys.get(peer_id)
        if key is None:
            key = peer_key(peer_id)
        bucket = self._buckets[bucket_index(self.local_key, key)]
        evicted = self._apply_expired(bucket, now)
        info = PeerInfo(peer_id, tuple(addrs)[:MAX_ADDRS_PER_PEER])
        if peer_id in bucket.entries:
            if not info.addrs:
                info = bucket.entries[peer_id]
            bucket.entries[peer_id] = info
            bucket.entries.move_to_end(peer_id)
            bucket.seen_at[peer_id] = now
            if bucket.pending is not None and bucket.pending.victim == peer_id:
                bucket.pending = None  # the old peer proved alive: the newcomer loses
            return UpdateResult(UpdateStatus.UPDATED, evicted=evicted)
        if len(bucket.entries) < self.k:
            self._insert(bucket, info, key, now)
            return UpdateResult(UpdateStatus.INSERTED, evicted=evicted)
        if bucket.pending is None and bucket.oldest_is_fresh(now, self.fresh_s):
            return UpdateResult(UpdateStatus.DISCARDED, evicted=evicted)
        if bucket.pending is None:
            victim = next(iter(bucket.entries))
            bucket.pending = _Pending(info, victim, now + self.ping_timeout_s)
            return UpdateResult(UpdateStatus.PENDING, ping=victim, evicted=evicted)
        if bucket.pending.info.peer_id == peer_id:
            if info.addrs:
                bucket.pending.info = info
            return UpdateResult(UpdateStatus.PENDING, evicted=evicted)
        return UpdateResult(UpdateStatus.DISCARDED, evicted=evicted)

    def remove(self, peer_id: bytes) -> PeerInfo | None:
        """Drop a peer that failed; a pending newcomer takes its place. Returns the promoted one."""
        key = self._keys.pop(peer_id, None)
        if key is None:
            return None
        bucket = self._buckets[bucket_index(self.local_key, key)]
        del bucket.entries[peer_id]
        del bucket.seen_at[peer_id]
        pending = bucket.pending
        if pending is None:
            return None
        bucket.pending = None
        self._insert(bucket, pending.info, peer_key(pending.info.peer_id), pending.deadline)
        return pending.info

    def poll(self, now: float) -> list[bytes]:
        """Apply every pending entry whose ping verdict is overdue; returns evicted peers."""
        evicted = []
        for bucket in self._buckets:
            if bucket.pending is not None:
                victim = self._apply_expired(bucket, now)
                if victim is not None:
                    evicted.append(victim)
        return evicted

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next has work, so a driver can sleep until then."""
        deadlines = [b.pending.deadline for b in self._buckets if b.pending is not None]
        return min(deadlines, default=None)

    def closest(self, key: int, count: int | None = None) -> list[PeerInfo]:
        """The ``count`` (default k) known peers nearest ``key``, nearest first."""
        n = self.k if count is None else count
        nearest = heapq.nsmallest(n, self._keys.items(), key=lambda item: item[1] ^ key)
        return [self.get_known(peer_id) for peer_id, _ in nearest]

    def get_known(self, peer_id: bytes) -> PeerInfo:
        """Like :meth:`get` for a peer known to be present (raises KeyError otherwise)."""
        key = self._keys[peer_id]
        return self._buckets[bucket_index(self.local_key, key)].entries[peer_id]

    def mark_refreshed(self, key: int, now: float) -> None:
        """A lookup for ``key`` just completed: its bucket needs no refresh for a while."""
        index = bucket_index(self.local_key, key)
        if index >= 0:
            self._refreshed_at[index] = now

    def stale_buckets(self, now: float, interval_s: float) -> list[int]:
        """Buckets not looked up in ``interval_s``, farthest first, down to the deepest occupied one
        (at most ``REFRESH_DEPTH`` of them)."""
        # Buckets deeper than our deepest occupied one are empty because the network is small,
        # not because we missed peers: refreshing them would find nothing new.
        occupied = [i for i, b in enumerate(self._buckets) if b.entries]
        lowest = max(KEY_BITS - REFRESH_DEPTH, min(occupied, default=KEY_BITS - 1))
        return [
            i
            for i in range(KEY_BITS - 1, lowest - 1, -1)
            if now - self._refreshed_at[i] >= interval_s
        ]

    def wants(self, peer_id: bytes, now: float) -> bool:
        """Whether verifying ``peer_id`` could get it into the table (saves useless pings)."""
        if peer_id == self.local_peer_id or peer_id in self._keys:
            return False
        bucket = self._buckets[bucket_index(self.local_key, peer_key(peer_id))]
        if len(bucket.entries) < self.k:
            return True
        return bucket.pending is None and not bucket.oldest_is_fresh(now, self.fresh_s)

    def _insert(self, bucket: _Bucket, info: PeerInfo, key: KadKey, now: float) -> None:
        bucket.entries[info.peer_id] = info
        bucket.seen_at[info.peer_id] = now
        self._keys[info.peer_id] = key

    def _apply_expired(self, bucket: _Bucket, now: float) -> bytes | None:
        pending = bucket.pending
        if pending is None or now < pending.deadline:
            return None
        bucket.pending = None
        victim = pending.victim
        if victim in bucket.entries:
            del bucket.entries[victim]
            del bucket.seen_at[victim]
            del self._keys[victim]
        if len(bucket.entries) < self.k:
            self._insert(bucket, pending.info, peer_key(pending.info.peer_id), now)
        return victim
