"""An iterative Kademlia lookup as a pure state machine.

Theory of operation
-------------------
A lookup walks towards ``target`` by asking peers for the peers they know closer to it. It keeps
every candidate sorted by XOR distance, each in one :class:`PeerState`. The driver loops::

    step = lookup.next(now)          # QUERY these peers / WAITING until wake_at / FINISHED
    ... send requests, then for each answer:
    lookup.on_success(peer, closer_peers)   or   lookup.on_failure(peer)

Rules (after rust-libp2p ``query/peers/closest.rs``):

* At most ``alpha`` requests are outstanding while the lookup makes progress (an answer brought
  a new closest peer, or fewer than ``k`` candidates are known). After ``alpha`` answers in a
  row without progress the lookup is *stalled* and widens to ``k`` outstanding requests: this is
  the paper's "resend FIND_NODE to all k closest not yet queried".
* A request outstanding for longer than ``peer_timeout_s`` makes its peer *unresponsive*: it no
  longer holds a parallelism slot nor blocks termination, but a late answer is still accepted.
  Failed and unresponsive peers are skipped, so the lookup routes around dead peers instead of
  waiting on them (failure tolerance; we do not run S/Kademlia disjoint paths).
* The lookup finishes when the ``k`` closest candidates that did not fail have all answered, or
  when nothing is left to ask and nothing is outstanding.

Candidates are capped at ``max_candidates`` (the farthest uncontacted ones are dropped first),
so a peer flooding us with closer-peer lists cannot grow a lookup without bound.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ccnp2p.dht.keys import peer_key

ALPHA_VALUE: Final = 3
PEER_TIMEOUT_S: Final = 10.0
CANDIDATES_PER_K: Final = 8


class PeerState(Enum):
    """Where one candidate stands in the lookup."""

    NOT_CONTACTED = "not-contacted"
    WAITING = "waiting"
    UNRESPONSIVE = "unresponsive"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LookupState(Enum):
    """The lookup's phase: converging, widened after a stall, or done."""

    ITERATING = "iterating"
    STALLED = "stalled"
    FINISHED = "finished"


class StepKind(Enum):
    """What the driver should do next."""

    QUERY = "query"
    WAITING = "waiting"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class Step:
    """Decision of :meth:`ClosestPeersLookup.next`.

    Attributes:
        kind: query ``peers`` now, wait for answers, or stop.
        peers: peers to send a request to (only for ``QUERY``).
        wake_at: earliest request deadline; call ``next`` again then even if nothing answered.
    """

    kind: StepKind
    peers: tuple[bytes, ...] = ()
    wake_at: float | None = None


@dataclass(frozen=True, slots=True)
class LookupStatistics:
    """Counters a test or the simulator reads after a lookup."""

    queried: int
    succeeded: int
    failed: int
    hops: int


class _Peer:
    __slots__ = ("deadline", "distance", "hop", "peer_id", "state")

    def __init__(self, peer_id: bytes, distance: int, hop: int) -> None:
        self.peer_id = peer_id
        self.distance = distance
        self.hop = hop
        self.state = PeerState.NOT_CONTACTED
        self.deadline = 0.0


class ClosestPeersLookup:
    """Iterates towards the ``k`` peers closest to ``target`` (a keyspace position).

    Args:
        target: the key to approach, already hashed (:func:`~ccnp2p.dht.keys.kad_key`).
        seeds: the closest peers we know, usually from the routing table.
        local_peer_id: our own id, never queried even if a peer returns it.
    """

    def __init__(
        self,
        target: int,
        seeds: Iterable[bytes],
        *,
        k: int = 20,
        alpha: int = ALPHA_VALUE,
        peer_timeout_s: float = PEER_TIMEOUT_S,
        local_peer_id: bytes | None = None,
    ) -> None:
        if k < 1 or alpha < 1:
            raise ValueError("k and alpha must be positive")
        self.target = target
        self.k = k
        self.alpha = alpha
        self.peer_timeout_s = peer_timeout_s
        self.max_candidates = k * CANDIDATES_PER_K
        self._local = local_peer_id
        self._peers: dict[bytes, _Peer] = {}
        self._order: list[tuple[int, bytes]] = []
        self._state = LookupState.ITERATING
        self._no_progress = 0
        self._num_waiting = 0
        self._queried = 0
        for peer_id in seeds:
            self._add(peer_id, hop=1)

    @property
    def state(self) -> LookupState:
        return self._state

    @property
    def is_finished(self) -> bool:
        return self._state is LookupState.FINISHED

    def peer_state(self, peer_id: bytes) -> PeerState | None:
        peer = self._peers.get(peer_id)
        return None if peer is None else peer.state

    def next(self, now: float) -> Step:
        """Advance: expire overdue requests, pick peers to query, or declare the lookup done."""
        if self._state is LookupState.FINISHED:
            return Step(StepKind.FINISHED)
        self._expire_overdue(now)
        to_query: list[bytes] = []
        answered: int | None = 0
        for _, peer_id in self._order:
            peer = self._peers[peer_id]
            if peer.state is PeerState.WAITING:
                if self._at_capacity():
                    break
                answered = None  # a close peer is outstanding: cannot finish yet
            elif peer.state is PeerState.SUCCEEDED:
                if answered is not None:
                    answered += 1
                    if answered >= self.k:
                        self._state = LookupState.FINISHED
                        return Step(StepKind.FINISHED)
            elif peer.state is PeerState.NOT_CONTACTED:
                if self._at_capacity():
                    break
                peer.state = PeerState.WAITING
                peer.deadline = now + self.peer_timeout_s
                self._num_waiting += 1
                self._queried += 1
                to_query.append(peer_id)
                answered = None
        wake_at = self._earliest_deadline()
        if to_query:
            return Step(StepKind.QUERY, tuple(to_query), wake_at)
        if self._num_waiting > 0:
            return Step(StepKind.WAITING, (), wake_at)
        self._state = LookupState.FINISHED
        return Step(StepKind.FINISHED)

    def on_success(self, peer_id: bytes, closer_peers: Iterable[bytes]) -> bool:
        """``peer_id`` answered with ``closer_peers``; returns False if we were not asking it."""
        peer = self._peers.get(peer_id)
        if self._state is LookupState.FINISHED or peer is None:
            return False
        if peer.state is PeerState.WAITING:
            self._num_waiting -= 1
        elif peer.state is not PeerState.UNRESPONSIVE:
            return False
        peer.state = PeerState.SUCCEEDED
        progress = len(self._order) < self.k
        for other in closer_peers:
            if self._add(other, hop=peer.hop + 1) and self._order[0][1] == other:
                progress = True
        if progress:
            self._no_progress = 0
            self._state = LookupState.ITERATING
        elif self._state is LookupState.ITERATING:
            self._no_progress += 1
            if self._no_progress >= self.alpha:
                self._state = LookupState.STALLED
        return True

    def on_failure(self, peer_id: bytes) -> bool:
        """The request to ``peer_id`` failed; returns False if we were not asking it."""
        peer = self._peers.get(peer_id)
        if self._state is LookupState.FINISHED or peer is None:
            return False
        if peer.state is PeerState.WAITING:
            self._num_waiting -= 1
        elif peer.state is not PeerState.UNRESPONSIVE:
            return False
        peer.state = PeerState.FAILED
        return True

    def finish(self) -> None:
        """Stop now (the caller found what it wanted, e.g. enough providers)."""
        self._state = LookupState.FINISHED

    def result(self) -> list[bytes]:
        """Up to ``k`` peers that answered, closest first."""
        return [p.peer_id for p in self._succeeded()][: self.k]

    def statistics(self) -> LookupStatistics:
        succeeded = self._succeeded()
        failed = sum(1 for p in self._peers.values() if p.state is PeerState.FAILED)
        hops = succeeded[0].hop if succeeded else 0
        return LookupStatistics(self._queried, len(succeeded), failed, hops)

    def _succeeded(self) -> list[_Peer]:
        return [
            self._peers[pid]
            for _, pid in self._order
            if self._peers[pid].state is PeerState.SUCCEEDED
        ]

    def _expire_overdue(self, now: float) -> None:
        # A separate pass: the main one may stop at capacity before reaching a far peer whose
        # deadline passed, and would then keep reporting that deadline as the wake-up time.
        for peer in self._peers.values():
            if peer.state is PeerState.WAITING and now >= peer.deadline:
                peer.state = PeerState.UNRESPONSIVE
                self._num_waiting -= 1

    def _at_capacity(self) -> bool:
        if self._state is LookupState.STALLED:
            return self._num_waiting >= max(self.k, self.alpha)
        return self._num_waiting >= self.alpha

    def _earliest_deadline(self) -> float | None:
        deadlines = [p.deadline for p in self._peers.values() if p.state is PeerState.WAITING]
        return min(deadlines, default=None)

    def _add(self, peer_id: bytes, hop: int) -> bool:
        if peer_id in self._peers or peer_id == self._local:
            return False
        distance = peer_key(peer_id) ^ self.target
        entry = (distance, peer_id)
        if len(self._order) >= self.max_candidates:
            if entry > self._order[-1]:
                return False
            self._drop_farthest_uncontacted()
        bisect.insort(self._order, entry)
        self._peers[peer_id] = _Peer(peer_id, distance, hop)
        return True

    def _drop_farthest_uncontacted(self) -> None:
        for i in range(len(self._order) - 1, -1, -1):
            peer_id = self._order[i][1]
            if self._peers[peer_id].state is PeerState.NOT_CONTACTED:
                del self._order[i]
                del self._peers[peer_id]
                return
