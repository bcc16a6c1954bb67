"""The reading side of range mode: one stream from one sender, with SEEK.

Theory of operation. :func:`open_range` sends a GET with the initial credit and starts a task
that drains the stream into a buffer, so the transport never stalls even when the application
does (yamux resets a writer that sees no window for 5 s; DESIGN.md §4). The buffer is bounded by
the credit window: the sender may only send what was granted, and credit is granted back only as
the application consumes (:class:`~ccnp2p.transfer.window.CreditWindow`). A sender that
overruns its credit, sends chunks out of order or sends a chunk that does not match its CID is
dropped (ABORT, :class:`~ccnp2p.transfer.errors.TransferFailed` for the application).

Range mode verifies each chunk against the CID it came with. It trusts the sender for which
CIDs make up the range; :func:`ccnp2p.transfer.fetch` verifies against the file tree instead.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import trio

from ccnp2p.errors import HashMismatch, ProtocolError, RemoteError
from ccnp2p.net.base import Network
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import run_blocking
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.errors import TransferAborted, TransferFailed
from ccnp2p.transfer.window import CreditWindow

logger = logging.getLogger(__name__)

BYE_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Credit window settings of one reader (see :class:`CreditWindow`)."""

    initial_bytes: int = 4 * 1024 * 1024
    min_bytes: int = 1024 * 1024
    max_bytes: int = 32 * 1024 * 1024

    def new_window(self) -> CreditWindow:
        return CreditWindow(
            initial_bytes=self.initial_bytes, min_bytes=self.min_bytes, max_bytes=self.max_bytes
        )


class RangeReader:
    """Reads one range at a time from one sender; ``async for`` yields verified bytes in order.

    Iteration ends at the end of the current range; :meth:`seek` starts another one on the
    same stream (no new stream, no new negotiation).
    """

    def __init__(self, framed: FramedStream, window: CreditWindow, offset: int, length: int | None):
        self._framed = framed
        self.window = window
        self._seq = 0
        self._pos = offset  # next byte of the current range the buffer will receive
        self._end = None if length is None else offset + length
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._range_done = False
        self._error: Exception | None = None
        self._send_lock = trio.Lock()
        self._lot = trio.lowlevel.ParkingLot()
        self.size: int | None = None
        self.bad_chunks = 0
        self.peak_buffered_bytes = 0

    # -- application side ----------------------------------------------------------------------

    def __aiter__(self) -> RangeReader:
        return self

    async def __anext__(self) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._range_done:
                raise StopAsyncIteration
            await self._lot.park()
        data = self._buffer.popleft()
        self._buffered -= len(data)
        await self._grant()
        return data

    async def read_all(self, limit: int = 1 << 30) -> bytes:
        """The rest of the current range (bounded by ``limit`` bytes)."""
        out = bytearray()
        async for data in self:
            out += data
            if len(out) > limit:
                raise ValueError("range is larger than the limit")
        return bytes(out)

    async def seek(self, offset: int, length: int | None = None) -> None:
        """Abandon the current range; the next bytes are ``[offset, offset + length)``."""
        if self._error is not None:
            raise self._error
        self._seq += 1
        self._pos = offset
        self._end = None if length is None else offset + length
        self._buffer.clear()
        self._buffered = 0
        self._range_done = False
        await self._send(m.Seek(self._seq, offset, length))
        await self._grant()

    async def _grant(self) -> None:
        credit = self.window.credit_to_grant(self._buffered)
        if credit and self._error is None:
            self.window.grant(credit, trio.current_time())
            await self._send(m.Credit(credit))

    async def _send(self, msg: m.Message) -> None:
        async with self._send_lock:
            try:
                await self._framed.send_msg(m.encode(msg))
            except NetworkError as exc:
                self._fail(TransferFailed(f"stream failed: {exc}"))
                raise self._error from exc  # type: ignore[misc]

    # -- stream side -----------------------------------------------------------------------

    async def receive_loop(self) -> None:
        """Drain the stream into the buffer until it ends; never raises for the peer's fault."""
        try:
            while True:
                payload = await self._framed.receive_msg()
                if payload is None:
                    self._fail(TransferFailed("sender closed the stream without DONE"))
                    return
                if not await self._handle(m.decode(payload)):
                    return
        except (RemoteError, ProtocolError) as exc:
            self._fail(TransferFailed(f"sender misbehaved: {exc}"))
            await self._abort(m.AbortCode.BAD_REQUEST, str(exc))
        except NetworkError as exc:
            self._fail(TransferFailed(f"stream failed: {exc}"))

    async def _handle(self, msg: m.Message) -> bool:
        if isinstance(msg, m.Chunk):
            await self._on_chunk(msg)
        elif isinstance(msg, m.Info):
            if msg.seq == self._seq:
                self.size = msg.size
        elif isinstance(msg, m.Done):
            if msg.seq == self._seq:
                self._range_done = True
                self._lot.unpark_all()
        elif isinstance(msg, m.Abort):
            self._fail(TransferAborted(msg.code, msg.reason))
            return False
        else:
            raise ProtocolError(f"unexpected {type(msg).__name__} from the sender")
        return True

    async def _on_chunk(self, chunk: m.Chunk) -> None:
        self.window.on_data(len(chunk.data), trio.current_time())  # FlowControlError: drop
        if chunk.seq != self._seq or self._range_done:
            await self._grant()  # data of an abandoned range: give its credit back
            return
        off = chunk.offset
        if off is None or not off <= self._pos < off + len(chunk.data):
            raise ProtocolError(f"chunk at {off} does not continue the range at {self._pos}")
        try:
            await run_blocking(chunk.cid.verify, chunk.data)
        except HashMismatch:
            self.bad_chunks += 1
            raise
        if chunk.seq != self._seq:  # a seek happened while we verified
            await self._grant()
            return
        stop = len(chunk.data) if self._end is None else min(len(chunk.data), self._end - off)
        piece = chunk.data[self._pos - off : stop]
        self._pos = off + stop
        if piece:
            self._buffer.append(piece)
            self._buffered += len(piece)
            self.peak_buffered_bytes = max(self.peak_buffered_bytes, self._buffered)
        # Trimmed bytes were paid for but are never consumed: grant them back now.
        await self._grant()
        self._lot.unpark_all()

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self._lot.unpark_all()

    async def _abort(self, code: m.AbortCode, reason: str) -> None:
        with trio.move_on_after(BYE_TIMEOUT_S):
            try:
                async with self._send_lock:
                    await self._framed.send_msg(m.encode(m.Abort(code.value, reason[:200])))
            except NetworkError:
                pass
        await self._framed.reset()

    async def close(self) -> None:
        """Say BYE (the sender answers DONE and closes) without waiting for the answer long."""
        with trio.move_on_after(BYE_TIMEOUT_S):
            try:
                if self._error is None:
                    await self._send(m.Bye())
                await self._framed.close()
                return
            except (NetworkError, TransferFailed):
                pass
        await self._framed.reset()


@asynccontextmanager
async def open_range(
    network: Network,
    peer: bytes,
    root: Cid,
    offset: int = 0,
    length: int | None = None,
    *,
    window: WindowConfig | None = None,
) -> AsyncIterator[RangeReader]:
    """Open a range-mode transfer of ``root`` from ``peer`` (a stored file or a live stream).

    Raises:
        TransferFailed: the stream could not be opened (the reader raises it later for
            failures during the transfer).
    """
    try:
        stream = await network.open_stream(peer, m.PROTOCOL_ID)
    except NetworkError as exc:
        raise TransferFailed(f"cannot open a transfer stream: {exc}") from exc
    framed = FramedStream(stream, m.MAX_FRAME_BYTES)
    cw = (window or WindowConfig()).new_window()
    reader = RangeReader(framed, cw, offset, length)
    credit = cw.credit_to_grant(0)
    cw.grant(credit, trio.current_time())
    try:
        await framed.send_msg(m.encode(m.Get(root, offset, length, credit)))
    except NetworkError as exc:
        await framed.reset()
        raise TransferFailed(f"cannot send the request: {exc}") from exc
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.receive_loop)
        try:
            yield reader
        finally:
            with trio.CancelScope(shield=True):
                await reader.close()
            nursery.cancel_scope.cancel()
