"""Multi-source fetch: a file's chunks from several providers at once, output in order.

Theory of operation. Chunks are numbered in file order. A *supply* task walks the file tree
(fetching missing tree nodes on the way, verified by CID) and admits chunk indices only while
fewer than ``reorder_chunks`` lie between the output position and the newest admitted index: so
everything a fetch holds (chunks pending, in flight, being verified or waiting to be output) is
bounded by ``reorder_chunks`` chunks, whatever the providers or the consumer do.

The scheduler (:meth:`MultiFetch._assign`, synchronous, run after every event) gives the lowest
pending index to the provider with the earliest expected completion, ``(queued bytes + size) /
rate``, so faster providers get proportionally more, within each provider's credit window and
``max_in_flight_chunks`` overall. When no pending work is left and a provider sits idle, it
duplicates the oldest chunk held by a single slower provider (end-game), so one slow peer cannot
hold the output back.

Each received chunk is verified against the CID the *tree* names for that index (in a worker
thread, then stored). A chunk that does not match drops its provider for this fetch; a provider
that fails, refuses or falls silent is dropped too, and only the chunks it held go back to the
pending set. The fetch fails only when chunks remain and no provider is left to ask.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import trio

from ccnp2p.errors import CcnError, DecodeError, HashMismatch, NotFound
from ccnp2p.net.base import Network
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import run_blocking
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.files import ChunkRef, FileReader
from ccnp2p.transfer.client import WindowConfig
from ccnp2p.transfer.errors import TransferFailed
from ccnp2p.transfer.peers import PeerSession, Wanted, fetch_one_block

logger = logging.getLogger(__name__)

REF_BATCH: Final = 64


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Bounds of one multi-source fetch.

    Attributes:
        max_in_flight_chunks: chunks requested and not yet received, over all providers.
        reorder_chunks: chunks held at most (pending + in flight + waiting for output).
        peer_timeout_s: a provider silent this long with requests outstanding is dropped.
        store: also store verified chunks (and tree nodes) in the blockstore.
        verify_threads: worker threads hashing (and storing) received chunks.
    """

    max_in_flight_chunks: int = 32
    reorder_chunks: int = 64
    peer_timeout_s: float = 30.0
    store: bool = True
    verify_threads: int = 2
    window: WindowConfig = field(default_factory=WindowConfig)


@dataclass(slots=True)
class FetchStatistics:
    """Counters of fetches (one per fetch, and summed by the service)."""

    bytes_by_peer: dict[bytes, int] = field(default_factory=dict)
    chunks_fetched: int = 0
    chunks_local: int = 0
    retries: int = 0
    bad_chunks: int = 0
    duplicates: int = 0
    peers_dropped: int = 0
    bytes_out: int = 0
    peak_held_chunks: int = 0

    def add(self, other: FetchStatistics) -> None:
        for peer, n in other.bytes_by_peer.items():
            self.bytes_by_peer[peer] = self.bytes_by_peer.get(peer, 0) + n
        self.chunks_fetched += other.chunks_fetched
        self.chunks_local += other.chunks_local
        self.retries += other.retries
        self.bad_chunks += other.bad_chunks
        self.duplicates += other.duplicates
        self.peers_dropped += other.peers_dropped
        self.bytes_out += other.bytes_out
        self.peak_held_chunks = max(self.peak_held_chunks, other.peak_held_chunks)


class MultiFetch:
    """One fetch of ``[offset, offset + length)`` of ``root`` (see the module docstring)."""

    def __init__(
        self,
        network: Network,
        store: Blockstore,
        root: Cid,
        providers: Sequence[bytes],
        offset: int,
        length: int | None,
        config: FetchConfig,
    ) -> None:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("offset and length must be non-negative")
        self.network = network
        self.store = store
        self.root = root
        self.offset = offset
        self.length = length
        self.config = config
        self.stats = FetchStatistics()
        self.sessions = [
            PeerSession(network, p, config.window.new_window(), config.peer_timeout_s)
            for p in dict.fromkeys(providers)
            if p != network.peer_id
        ]
        self._refs: dict[int, ChunkRef] = {}
        self._pending: list[int] = []  # heap of indices waiting for a provider
        self._holders: dict[int, list[PeerSession]] = {}
        self._excluded: dict[int, set[bytes]] = {}
        self._ready: dict[int, bytes] = {}
        self._next_index = 0  # next index the supply will admit
        self._out_index = 0
        self._exhausted = False
        self._changed = trio.Event()
        self._limiter = trio.CapacityLimiter(config.verify_threads)
        self._nursery: trio.Nursery | None = None
        self._error: TransferFailed | None = None
        self._losses = False  # a provider was dropped or refused a chunk: check for dead ends

    # -- driver ------------------------------------------------------------------------------

    async def run(self, out: trio.MemorySendChannel[bytes]) -> None:
        """Fetch and send the bytes, in order, into ``out`` (the caller closes it).

        Raises:
            TransferFailed: the bytes could not be fetched.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for session in self.sessions:
                nursery.start_soon(self._run_session, session)
            nursery.start_soon(self._supply)
            await self._emit(out)
            nursery.cancel_scope.cancel()
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _fail(self, error: TransferFailed) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    async def _emit(self, out: trio.MemorySendChannel[bytes]) -> None:
        while self._error is None:
            data = self._ready.pop(self._out_index, None)
            if data is not None:
                self._refs.pop(self._out_index, None)
                self._out_index += 1
                self.stats.bytes_out += len(data)
                self._wake()  # the supply may admit more
                if data:
                    await out.send(data)
            elif self._exhausted and self._out_index == self._next_index:
                return
            else:
                await self._changed.wait()

    # -- supply: walk the tree, admit indices ------------------------------------------------

    async def _supply(self) -> None:
        try:
            await self._supply_refs()
        except TransferFailed as exc:
            self._fail(exc)
        except (DecodeError, CcnError) as exc:
            self._fail(TransferFailed(f"cannot read the file tree of {self.root}: {exc}"))

    async def _supply_refs(self) -> None:
        end = None if self.length is None else self.offset + self.length
        pos = self.offset
        refs: Iterator[ChunkRef] | None = None
        while True:
            while self._next_index - self._out_index >= self.config.reorder_chunks:
                await self._changed.wait()
            room = self.config.reorder_chunks - (self._next_index - self._out_index)
            try:
                if refs is None:
                    remaining = None if end is None else max(0, end - pos)
                    refs = await self._open_refs(pos, remaining)
                batch = await run_blocking(_take_local, self.store, refs, room)
            except NotFound as exc:
                if not isinstance(exc.cid, Cid):
                    raise
                await self._fetch_node(exc.cid)
                refs = None  # the walk died with the exception; restart it at ``pos``
                continue
            if not batch:
                self._exhausted = True
                self._wake()
                return
            for ref, local in batch:
                self._admit(ref, local)
                pos = ref.file_offset + ref.size
            self._assign()

    async def _open_refs(self, pos: int, length: int | None) -> Iterator[ChunkRef]:
        def walk() -> Iterator[ChunkRef]:
            return FileReader(self.store.get, self.root).chunk_refs(pos, length)

        return await run_blocking(walk)

    async def _fetch_node(self, cid: Cid) -> None:
        providers = sorted(
            (s for s in self.sessions if s.alive), key=lambda s: -s.rate
        )  # fastest first
        peer, data = await fetch_one_block(
            self.network, [s.peer for s in providers], cid, self.config.peer_timeout_s
        )
        self._count_peer_bytes(peer, len(data))
        await run_blocking(lambda: self.store.put(cid, data, verify=False))

    def _admit(self, ref: ChunkRef, local: bytes | None) -> None:
        index = self._next_index
        self._next_index += 1
        self._refs[index] = ref
        if local is not None:
            self.stats.chunks_local += 1
            self._ready[index] = _trim(ref, local)
        else:
            heapq.heappush(self._pending, index)
        held = self._next_index - self._out_index
        self.stats.peak_held_chunks = max(self.stats.peak_held_chunks, held)
        self._wake()

    # -- scheduling --------------------------------------------------------------------------

    def _assign(self) -> None:
        """Hand pending chunks to providers (see the module docstring); never blocks."""
        in_flight = sum(len(s.requested) for s in self.sessions)
        deferred: list[int] = []
        while self._pending and in_flight < self.config.max_in_flight_chunks:
            index = heapq.heappop(self._pending)
            session = self._best_for(index)
            if session is None:
                deferred.append(index)
                if len(deferred) >= len(self.sessions) + 1:
                    break
                continue
            self._give(session, index)
            in_flight += 1
        for index in deferred:
            heapq.heappush(self._pending, index)
        if not self._pending:
            self._end_game(in_flight)
        if self._losses:
            self._check_stuck()

    def _best_for(self, index: int) -> PeerSession | None:
        size = self._refs[index].size
        excluded = self._excluded.get(index, ())
        best: PeerSession | None = None
        best_eta = 0.0
        fastest = max((s.rate for s in self.sessions), default=0.0) or 1.0
        for s in self.sessions:
            if s.peer in excluded or not s.can_take(size):
                continue
            eta = (s.requested_bytes + size) / (s.rate or fastest)
            if best is None or eta < best_eta:
                best, best_eta = s, eta
        return best

    def _give(self, session: PeerSession, index: int) -> None:
        ref = self._refs[index]
        self._holders.setdefault(index, []).append(session)
        session.queue(Wanted(index, ref.cid, ref.size))

    def _end_game(self, in_flight: int) -> None:
        for idle in self.sessions:
            if not idle.alive or idle.requested or in_flight >= self.config.max_in_flight_chunks:
                continue
            for index in sorted(self._holders):
                holders = self._holders[index]
                if (
                    index in self._refs
                    and index not in self._ready
                    and len(holders) == 1
                    and holders[0] is not idle
                    and idle.peer not in self._excluded.get(index, ())
                    and (idle.rate == 0 or holders[0].rate < idle.rate)
                ):
                    self.stats.duplicates += 1
                    self._give(idle, index)
                    in_flight += 1
                    break

    def _check_stuck(self) -> None:
        """Fail if chunks are pending and no live provider may ever serve them."""
        for index in self._pending:
            excluded = self._excluded.get(index, set())
            if not any(s.alive and s.peer not in excluded for s in self.sessions):
                self._fail(TransferFailed(f"no provider left for chunk {self._refs[index].cid}"))
                return

    def _release(self, session: PeerSession, index: int) -> bool:
        """Forget that ``session`` holds ``index``; True if nobody holds it any more."""
        holders = self._holders.get(index)
        if holders is None:
            return False
        if session in holders:
            holders.remove(session)
        if holders:
            return False
        del self._holders[index]
        return True

    def _requeue(self, index: int) -> None:
        if index in self._refs and index not in self._ready:
            self.stats.retries += 1
            heapq.heappush(self._pending, index)

    # -- session events ----------------------------------------------------------------------

    async def _run_session(self, session: PeerSession) -> None:
        await session.run(self._on_chunk, self._on_missing)
        self.stats.peers_dropped += 1
        self._losses = True
        logger.debug("[%s] provider dropped: %s", session.tag, session.failure)
        for wanted in list(session.requested):
            if self._release(session, wanted.index):
                self._requeue(wanted.index)
        session.requested.clear()
        session.requested_bytes = 0
        self._assign()
        self._wake()

    def _on_missing(self, session: PeerSession, wanted: Wanted) -> None:
        self._losses = True
        self._excluded.setdefault(wanted.index, set()).add(session.peer)
        if self._release(session, wanted.index):
            self._requeue(wanted.index)
        self._assign()

    def _on_chunk(self, session: PeerSession, wanted: Wanted, data: bytes) -> None:
        self._count_peer_bytes(session.peer, len(data))
        self._release(session, wanted.index)
        if wanted.index in self._ready or wanted.index not in self._refs:
            self._assign()  # a duplicate that lost the race
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._verify, session, wanted, data)
        self._assign()

    async def _verify(self, session: PeerSession, wanted: Wanted, data: bytes) -> None:
        store = self.store if self.config.store else None
        try:
            await run_blocking(_verify_and_store, store, wanted, data, limiter=self._limiter)
        except HashMismatch:
            self.stats.bad_chunks += 1
            self._excluded.setdefault(wanted.index, set()).add(session.peer)
            session.drop(f"sent a chunk that does not match {wanted.cid}")
            if wanted.index not in self._holders:
                self._requeue(wanted.index)
            self._assign()
            return
        ref = self._refs.get(wanted.index)
        if ref is not None and wanted.index not in self._ready:
            self.stats.chunks_fetched += 1
            self._ready[wanted.index] = _trim(ref, data)
            self._wake()

    def _count_peer_bytes(self, peer: bytes, n: int) -> None:
        self.stats.bytes_by_peer[peer] = self.stats.bytes_by_peer.get(peer, 0) + n


def _verify_and_store(store: Blockstore | None, wanted: Wanted, data: bytes) -> None:
    if len(data) != wanted.size:
        raise HashMismatch(f"chunk {wanted.cid} has {len(data)} bytes, expected {wanted.size}")
    wanted.cid.verify(data)
    if store is not None:
        try:
            store.put(wanted.cid, data, verify=False)
        except CcnError as exc:  # a full disk must not fail the read itself
            logger.warning("could not store fetched chunk %s: %s", wanted.cid, exc)


def _take_local(
    store: Blockstore, refs: Iterator[ChunkRef], n: int
) -> list[tuple[ChunkRef, bytes | None]]:
    """Up to ``n`` refs, each with its bytes when the chunk is already stored here."""
    out: list[tuple[ChunkRef, bytes | None]] = []
    for ref in itertools.islice(refs, n):
        local = None
        if store.has(ref.cid):
            try:
                local = store.get(ref.cid)
            except CcnError:
                local = None  # corrupt (now quarantined) or gone: fetch it
        out.append((ref, local))
    return out


def _trim(ref: ChunkRef, data: bytes) -> bytes:
    return data if ref.start == 0 and ref.end == len(data) else data[ref.start : ref.end]
