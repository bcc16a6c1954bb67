"""A computation's output while it is being produced: stored as it goes, readable by many.

Theory of operation. The executor's operator writes bytes into a :class:`LiveResult`. Complete
chunks (:data:`RESULT_CHUNK_BYTES`, fixed so every executor of a calc produces the same result
CID) are stored in the blockstore at once and only their CIDs stay in memory; the incomplete
tail (< one chunk) is the only output data held in memory. Readers read by offset: from stored
chunks, from the tail, or they wait for more.

Pull-based: the producer may only run ahead while some reader wants more. Each reader announces
how far it wants to read (``want(reader, offset)``, the end of its credit); ``write`` blocks while
everything produced is already past every reader's want. So the executor computes no further than
its fastest subscriber's credit allows; slower subscribers read the stored chunks later and never
hold the producer or the fast subscriber back. Memory per subscriber is one position.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Final

import trio

from ccnp2p.errors import CcnError, LocalError, NotFound
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import AsyncBlocks
from ccnp2p.store.files import tree_over

RESULT_CHUNK_BYTES: Final = 256 * 1024


class LiveState(Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ComputeFailed(CcnError):
    """The executor's computation failed; ``code`` says why (as reported on the wire)."""

    code = "compute-failed"


class LiveResult:
    """The output of one execution of one calc on this node."""

    def __init__(self, calc: Cid, blocks: AsyncBlocks) -> None:
        self.calc = calc
        self._blocks = blocks
        self._chunks: list[tuple[Cid, int]] = []
        self._stored_bytes = 0
        self._tail = bytearray()
        self.state = LiveState.RUNNING
        self.result: Cid | None = None
        self.error: str = ""
        self._changed = trio.Condition()
        self._wants: dict[object, float] = {}
        self.checkpoints: list[Any] = []  # CheckpointNote, newest last (bounded by the executor)
        self.step = -1  # the last step the operator reported
        self.fetch: Callable[[Cid], Awaitable[bytes]] | None = None  # for a restored prefix

    def restore(self, chunks: list[tuple[Cid, int]], tail: bytes) -> None:
        """Continue after a checkpoint: the output so far is ``chunks`` + ``tail``.

        The chunk bytes may live elsewhere (the executor that wrote them); reads of them go
        through :attr:`fetch`.
        """
        if self.produced:
            raise LocalError("restore on a result that already has output")
        self._chunks = list(chunks)
        self._stored_bytes = sum(size for _, size in chunks)
        self._tail = bytearray(tail)

    @property
    def chunks(self) -> list[tuple[Cid, int]]:
        return list(self._chunks)

    @property
    def tail(self) -> bytes:
        return bytes(self._tail)

    # -- producer side -------------------------------------------------------------------------

    @property
    def produced(self) -> int:
        return self._stored_bytes + len(self._tail)

    def _wanted(self) -> float:
        return max(self._wants.values(), default=-math.inf)

    async def write(self, data: bytes) -> None:
        """Append output; waits while no reader wants bytes past what exists."""
        if self.state is not LiveState.RUNNING:
            raise LocalError("write after the result was finished")
        async with self._changed:
            while self.produced >= self._wanted():
                await self._changed.wait()
        view = memoryview(data)
        while view:
            room = RESULT_CHUNK_BYTES - len(self._tail)
            self._tail += view[:room]
            view = view[room:]
            if len(self._tail) == RESULT_CHUNK_BYTES:
                await self._store_tail()
        await self._notify()

    async def _store_tail(self) -> None:
        data = bytes(self._tail)
        cid = Cid.for_raw(data)
        await self._blocks.put(cid, data, verify=False)
        self._chunks.append((cid, len(data)))
        self._stored_bytes += len(data)
        self._tail = bytearray()

    async def finish(self) -> Cid:
        """Store the tail, build the file tree, and return the result CID."""
        if self._tail:
            await self._store_tail()
        root, nodes = tree_over(self._chunks)
        for cid, enc in nodes:
            await self._blocks.put(cid, enc, verify=False)
        self.result = root
        self.state = LiveState.DONE
        await self._notify()
        return root

    async def fail(self, message: str) -> None:
        self.state = LiveState.FAILED
        self.error = message
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- reader side ---------------------------------------------------------------------------

    async def want(self, reader: object, upto: float) -> None:
        """Reader ``reader`` wants bytes up to offset ``upto`` (its credit's end)."""
        self._wants[reader] = upto
        await self._notify()

    async def leave(self, reader: object) -> None:
        self._wants.pop(reader, None)
        await self._notify()

    @property
    def readers(self) -> int:
        return len(self._wants)

    async def read_at(self, offset: int, max_bytes: int) -> bytes:
        """Bytes from ``offset`` (waits for them); ``b""`` when the result ends before it.

        Raises:
            ComputeFailed: the computation failed.
        """
        async with self._changed:
            while offset >= self.produced and self.state is LiveState.RUNNING:
                await self._changed.wait()
        if self.state is LiveState.FAILED:
            raise ComputeFailed(self.error)
        if offset >= self.produced:
            return b""
        if offset >= self._stored_bytes:
            start = offset - self._stored_bytes
            return bytes(self._tail[start : start + max_bytes])
        return await self._read_stored(offset, max_bytes)

    async def _read_stored(self, offset: int, max_bytes: int) -> bytes:
        index, base = divmod(offset, RESULT_CHUNK_BYTES)
        cid, size = self._chunks[index]
        try:
            data = await self._blocks.get(cid)
        except NotFound:
            if self.fetch is None:
                raise
            data = await self.fetch(cid)
        return data[base : min(size, base + max_bytes)]

    async def note_checkpoint(self, note: Any) -> None:
        self.checkpoints.append(note)
        await self._notify()

    def statistics(self) -> dict[str, int | str]:
        return {
            "produced": self.produced,
            "tail_bytes": len(self._tail),
            "readers": self.readers,
            "state": self.state.value,
        }


WriteHook = Callable[[int], None]
