"""What a sender can serve: the ``ChunkSource`` interface and the blockstore implementation.

A sender answers a GET for a root CID by asking its sources, in order, to :meth:`ChunkSource.open`
it. The node plugs in two kinds: stored files (:class:`BlockstoreSource`, here) and live streams
by calc CID (:class:`ccnp2p.transfer.live.LiveRegistry`). An opened :class:`RangeSource` is
pull-based: the sender asks for the chunk covering a byte offset only when it has credit to send
one, and reads its bytes only then, so a sender holds at most one chunk per subscriber whatever
the subscriber's speed.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

import trio

from ccnp2p.errors import CcnError, DecodeError, NotFound
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import run_blocking
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.files import ChunkRef, FileReader

REF_BATCH: Final = 64  # chunk refs resolved per thread hop


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """A chunk a source can send: its CID, its place in the stream and its size."""

    cid: Cid
    offset: int
    size: int


class RangeSource(Protocol):
    """One root opened for one transfer (one subscriber)."""

    def size(self) -> int | None:
        """Total size in bytes, or ``None`` while it is not known yet (a live stream)."""
        ...

    async def chunk_at(self, offset: int) -> SourceChunk | None:
        """The chunk containing byte ``offset``; waits for a live producer; ``None`` past the end.

        Raises:
            LiveStreamFailed: the producer failed before producing ``offset``.
        """
        ...

    async def read(self, chunk: SourceChunk) -> bytes:
        """The bytes of ``chunk`` (verified by whoever stored them)."""
        ...

    async def aclose(self) -> None:
        """Release what the transfer held (a live stream's subscriber cursor)."""
        ...


class ChunkSource(Protocol):
    """Something that may be able to serve a root CID."""

    async def open(self, root: Cid) -> RangeSource | None:
        """Open ``root`` for one transfer, or return ``None`` if this source does not have it."""
        ...


class BlockstoreSource:
    """Serves files (and single raw chunks) stored in a :class:`Blockstore`."""

    __slots__ = ("_store",)

    def __init__(self, store: Blockstore) -> None:
        self._store = store

    async def open(self, root: Cid) -> RangeSource | None:
        def load() -> FileReader | None:
            if not self._store.has(root):
                return None
            try:
                return FileReader(self._store.get, root)
            except (NotFound, DecodeError):
                return None  # not a file, or a partial tree: we cannot serve it

        reader = await run_blocking(load)
        return None if reader is None else StoredRange(self._store, reader)


class StoredRange:
    """A stored file opened for one transfer; walks the tree lazily, a batch of refs at a time."""

    __slots__ = ("_batch", "_next_offset", "_reader", "_refs", "_store")

    def __init__(self, store: Blockstore, reader: FileReader) -> None:
        self._store = store
        self._reader = reader
        self._refs: Iterator[ChunkRef] | None = None
        self._next_offset = -1  # file offset where the cached walk continues
        self._batch: deque[ChunkRef] = deque()

    def size(self) -> int | None:
        return self._reader.size

    async def chunk_at(self, offset: int) -> SourceChunk | None:
        if offset >= self._reader.size:
            return None
        while self._batch and _end(self._batch[0]) <= offset:
            self._batch.popleft()
        if self._batch and self._batch[0].file_offset <= offset:
            return _source_chunk(self._batch[0])
        if self._batch or offset != self._next_offset or self._refs is None:
            # A seek (or the first call): restart the tree walk at the new offset.
            self._refs = self._reader.chunk_refs(offset)
            self._batch.clear()
        refs = self._refs
        self._batch.extend(await run_blocking(lambda: list(itertools.islice(refs, REF_BATCH))))
        if not self._batch:
            return None
        self._next_offset = _end(self._batch[-1])
        return _source_chunk(self._batch[0])

    async def read(self, chunk: SourceChunk) -> bytes:
        data = await run_blocking(self._store.get, chunk.cid)
        if len(data) != chunk.size:
            raise CcnError(f"chunk {chunk.cid} has {len(data)} bytes, the file says {chunk.size}")
        return data

    async def aclose(self) -> None:
        self._batch.clear()
        self._refs = None
        await trio.lowlevel.checkpoint()


def _end(ref: ChunkRef) -> int:
    return ref.file_offset + ref.size


def _source_chunk(ref: ChunkRef) -> SourceChunk:
    return SourceChunk(ref.cid, ref.file_offset, ref.size)
