"""Live streams: serving a producer that is still running (a computation's output).

Theory of operation. A :class:`LiveStream` is an append-only sequence of raw chunks. The producer
calls :meth:`LiveStream.append` per chunk, then :meth:`~LiveStream.finish` or
:meth:`~LiveStream.fail`. Subscribers (one per transfer, through :class:`LiveRegistry`) read by
offset and wait when they are at the end of what exists.

Memory policy, which is what lets one producer feed subscribers of any speed:

* Every chunk is written to the blockstore as it is produced, before it is visible. Only the most
  recent ``tail_bytes`` of chunks stay in memory; a subscriber behind the tail reads from disk.
  So a slow subscriber costs disk reads, never memory, and never holds anyone back.
* The index (CID, offset and size per chunk, ~100 bytes per chunk) is the only per-stream state
  that grows with the stream's length.
* Each subscriber's transfer holds at most one chunk at a time (the sender reads a chunk only
  when the subscriber has credit for it), so per-subscriber memory is bounded by the credit
  window whatever the subscriber's speed.
* Backpressure on the producer, if ``ahead_bytes`` is set: :meth:`~LiveStream.append` waits while
  the producer is more than ``ahead_bytes`` ahead of the *fastest* subscriber, so a computation
  runs only as far ahead of its readers as that buffer allows; slow subscribers never stall it.
  ``ahead_bytes=None`` never blocks the producer (disk, not memory, absorbs the difference).
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Final

import trio

from ccnp2p.errors import LocalError
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import run_blocking
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.files import MAX_CHUNK_BYTES
from ccnp2p.transfer.errors import LiveStreamFailed
from ccnp2p.transfer.sources import RangeSource, SourceChunk

DEFAULT_TAIL_BYTES: Final = 4 * 1024 * 1024


class LiveState(Enum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class LiveStatistics:
    """Counters a test or the node can check (memory is asserted here, not through RSS)."""

    chunks: int
    produced_bytes: int
    tail_bytes: int
    peak_tail_bytes: int
    subscribers: int
    memory_reads: int
    store_reads: int
    producer_waits: int


class LiveStream:
    """A stream still being produced, served by offset (see the module docstring).

    Args:
        cid: the name subscribers ask for (a calc CID).
        store: where chunks go as they are produced.
        tail_bytes: the most recent bytes kept in memory for subscribers that keep up.
        ahead_bytes: how far the producer may run ahead of the fastest subscriber
            (``None``: unbounded, chunks are on disk anyway).
    """

    def __init__(
        self,
        cid: Cid,
        store: Blockstore,
        *,
        tail_bytes: int = DEFAULT_TAIL_BYTES,
        ahead_bytes: int | None = None,
    ) -> None:
        self.cid = cid
        self.state = LiveState.RUNNING
        self.failure = ""
        self._store = store
        self._tail_limit = tail_bytes
        self._ahead = ahead_bytes
        self._offsets: list[int] = []
        self._cids: list[Cid] = []
        self._produced = 0
        self._tail: deque[tuple[int, bytes]] = deque()  # (chunk index, bytes), oldest first
        self._tail_bytes = 0
        self._peak_tail = 0
        self._positions: dict[int, int] = {}  # subscriber id -> next offset it will read
        self._next_sub = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._memory_reads = 0
        self._store_reads = 0
        self._producer_waits = 0

    @property
    def produced_bytes(self) -> int:
        return self._produced

    # -- producer --------------------------------------------------------------------------

    async def append(self, data: bytes) -> Cid:
        """Store one chunk and make it visible to subscribers; returns its CID.

        Waits (see ``ahead_bytes``) while the producer is too far ahead of every subscriber.
        """
        if self.state is not LiveState.RUNNING:
            raise LocalError(f"live stream {self.cid} is {self.state.value}")
        if not 0 < len(data) <= MAX_CHUNK_BYTES:
            raise LocalError("a live chunk must hold 1 byte to 1 MiB")
        while self._ahead is not None and self._produced - self._front() > self._ahead:
            self._producer_waits += 1
            await self._lot.park()
        cid = Cid.for_raw(data)
        await run_blocking(lambda: self._store.put(cid, data, verify=False))
        if self.state is not LiveState.RUNNING:  # fail()ed while we were writing
            raise LocalError(f"live stream {self.cid} is {self.state.value}")
        self._offsets.append(self._produced)
        self._cids.append(cid)
        self._produced += len(data)
        self._tail.append((len(self._cids) - 1, data))
        self._tail_bytes += len(data)
        while self._tail_bytes > self._tail_limit and len(self._tail) > 1:
            self._tail_bytes -= len(self._tail.popleft()[1])
        self._peak_tail = max(self._peak_tail, self._tail_bytes)
        self._lot.unpark_all()
        return cid

    def finish(self) -> None:
        """The producer is done: subscribers reach the end after the last chunk."""
        if self.state is LiveState.RUNNING:
            self.state = LiveState.FINISHED
            self._lot.unpark_all()

    def fail(self, reason: str) -> None:
        """The producer failed: subscribers past the last chunk get :class:`LiveStreamFailed`."""
        if self.state is LiveState.RUNNING:
            self.state = LiveState.FAILED
            self.failure = reason
            self._lot.unpark_all()

    def _front(self) -> int:
        return max(self._positions.values(), default=0)

    # -- subscribers ---------------------------------------------------------------------------

    def subscribe(self) -> LiveRange:
        """A reader of this stream for one transfer (close it with ``aclose``)."""
        self._next_sub += 1
        self._positions[self._next_sub] = 0
        return LiveRange(self, self._next_sub)

    def _unsubscribe(self, sub: int) -> None:
        self._positions.pop(sub, None)
        self._lot.unpark_all()

    def _advance(self, sub: int, offset: int) -> None:
        if sub in self._positions:
            self._positions[sub] = offset
            self._lot.unpark_all()  # the producer may be waiting for the front to move

    def size(self) -> int | None:
        return self._produced if self.state is LiveState.FINISHED else None

    async def chunk_at(self, offset: int) -> SourceChunk | None:
        """The chunk containing ``offset``, waiting for the producer to reach it."""
        while offset >= self._produced:
            if self.state is LiveState.FINISHED:
                return None
            if self.state is LiveState.FAILED:
                raise LiveStreamFailed(f"producer of {self.cid} failed: {self.failure}")
            await self._lot.park()
        i = bisect.bisect_right(self._offsets, offset) - 1
        end = self._offsets[i + 1] if i + 1 < len(self._offsets) else self._produced
        return SourceChunk(self._cids[i], self._offsets[i], end - self._offsets[i])

    async def read(self, chunk: SourceChunk) -> bytes:
        """From the in-memory tail if it is still there, else from the blockstore."""
        i = bisect.bisect_right(self._offsets, chunk.offset) - 1
        if self._tail and self._tail[0][0] <= i:
            data = self._tail[i - self._tail[0][0]][1]
            self._memory_reads += 1
            await trio.lowlevel.checkpoint()
            return data
        self._store_reads += 1
        return await run_blocking(self._store.get, chunk.cid)

    def statistics(self) -> LiveStatistics:
        return LiveStatistics(
            chunks=len(self._cids),
            produced_bytes=self._produced,
            tail_bytes=self._tail_bytes,
            peak_tail_bytes=self._peak_tail,
            subscribers=len(self._positions),
            memory_reads=self._memory_reads,
            store_reads=self._store_reads,
            producer_waits=self._producer_waits,
        )


class LiveRange:
    """One subscriber's view of a :class:`LiveStream` (a :class:`RangeSource`)."""

    __slots__ = ("_stream", "_sub")

    def __init__(self, stream: LiveStream, sub: int) -> None:
        self._stream = stream
        self._sub = sub

    def size(self) -> int | None:
        return self._stream.size()

    async def chunk_at(self, offset: int) -> SourceChunk | None:
        self._stream._advance(self._sub, offset)
        return await self._stream.chunk_at(offset)

    async def read(self, chunk: SourceChunk) -> bytes:
        return await self._stream.read(chunk)

    async def aclose(self) -> None:
        self._stream._unsubscribe(self._sub)
        await trio.lowlevel.checkpoint()


class LiveRegistry:
    """A :class:`~ccnp2p.transfer.sources.ChunkSource` of live streams, keyed by their CID.

    The registry holds at most ``max_streams`` streams; the node removes a stream once its
    result is stored and published (finished streams are then served from the blockstore).
    """

    def __init__(self, max_streams: int = 1024) -> None:
        self._streams: dict[Cid, LiveStream] = {}
        self._max = max_streams

    def add(self, stream: LiveStream) -> None:
        if len(self._streams) >= self._max and stream.cid not in self._streams:
            raise LocalError(f"too many live streams (max {self._max})")
        self._streams[stream.cid] = stream

    def remove(self, cid: Cid) -> None:
        self._streams.pop(cid, None)

    def get(self, cid: Cid) -> LiveStream | None:
        return self._streams.get(cid)

    async def open(self, root: Cid) -> RangeSource | None:
        await trio.lowlevel.checkpoint()
        stream = self._streams.get(root)
        return None if stream is None else stream.subscribe()
