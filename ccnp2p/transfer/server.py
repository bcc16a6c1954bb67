"""The sending side of ``/ccn/transfer/1.0.0``: one handler per inbound stream.

Theory of operation. The first message decides the mode. A GET opens *range mode*: the sender
streams the chunks covering a byte range of a root (a stored file or a live stream) with an INFO
first and a DONE last, then waits for a SEEK (a new range on the same stream) or a BYE. A WANT
opens *want mode*: the sender streams the listed blocks in order (DONTHAVE for missing ones),
and more WANTs may follow until BYE.

Two tasks run per stream: :meth:`_Session.control` reads the reader's messages (CREDIT, SEEK,
WANT, BYE, ABORT) and updates the session; the sending loop waits until the next chunk fits in
the credit it holds, and only then reads that chunk from its source, so the sender holds at most
one chunk per stream. A SEEK interrupts a sending loop waiting on a live producer or on credit;
it never interrupts a send, so frames are never torn. Anything the reader does wrong (a bad
message, credit overflow, a full want queue) ends the stream with an ABORT; nothing it sends can
raise out of the handler.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import trio

from ccnp2p.errors import CcnError, DecodeError, NotFound, RemoteError
from ccnp2p.net.base import Stream
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import peer_id_to_str
from ccnp2p.store.aio import run_blocking
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.errors import LiveStreamFailed
from ccnp2p.transfer.sources import ChunkSource, RangeSource, SourceChunk
from ccnp2p.transfer.window import SendCredit

logger = logging.getLogger(__name__)

T = TypeVar("T")

REQUEST_TIMEOUT_S: Final = 30.0  # for the first message
CREDIT_IDLE_TIMEOUT_S: Final = 300.0  # a reader that grants nothing for this long is gone
ABORT_SEND_TIMEOUT_S: Final = 5.0


@dataclass(slots=True)
class ServerStatistics:
    """Counters of the sending side (asserted on by tests; reported by the node)."""

    streams_served: int = 0
    streams_active: int = 0
    peak_streams_active: int = 0
    chunks_sent: int = 0
    bytes_sent: int = 0
    held_bytes: int = 0  # chunk bytes read from a source and not yet sent, all streams
    peak_held_bytes: int = 0
    aborts_sent: dict[str, int] = field(default_factory=dict)
    refused_overloaded: int = 0


FRAME_SEND_TIMEOUT_S = 30.0


class _Stop(Exception):
    """Ends a session with an ABORT of the given code (internal control flow)."""

    def __init__(self, code: m.AbortCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class _Session:
    """State of one inbound stream (either mode)."""

    def __init__(self, server: TransferServer, framed: FramedStream) -> None:
        self.server = server
        self.framed = framed
        self.credit = SendCredit()
        self.seq = 0
        self.last_seq = 0
        self.queued_cids = 0
        self.sending = False  # a frame is being written (cancelling now tears it)
        self.offset = 0
        self.length: int | None = None
        self.wants: deque[m.Want | m.Seek] = deque()  # queued work of the sending loop
        self.bye = False
        self.changed = trio.Event()
        self.interrupt: trio.CancelScope | None = None
        self.last_credit_at = trio.current_time()

    def wake(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def wait_change(self) -> None:
        deadline = self.last_credit_at + CREDIT_IDLE_TIMEOUT_S
        with trio.move_on_at(deadline) as scope:
            await self.changed.wait()
        if scope.cancelled_caught:
            raise _Stop(m.AbortCode.CANCELLED, "no credit granted for too long")

    async def interruptible(self, fn: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``fn`` unless a SEEK/BYE interrupts it (then return ``None``)."""
        result: T | None = None
        with trio.CancelScope() as scope:
            self.interrupt = scope
            try:
                result = await fn()
            finally:
                self.interrupt = None
        return result

    async def send(self, msg: m.Message) -> None:
        """Send one whole frame. Cancellation waits for the frame to be written (up to
        :data:`FRAME_SEND_TIMEOUT_S`), so an ABORT can always follow it cleanly; only a frame
        that could not be finished in that time leaves ``sending`` set (then we reset)."""
        data = m.encode(msg)
        self.sending = True
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + FRAME_SEND_TIMEOUT_S
            await self.framed.send_msg(data)
        if scope.cancelled_caught:
            raise _Stop(m.AbortCode.CANCELLED, "reader stopped reading mid-frame")
        self.sending = False
        await trio.lowlevel.checkpoint_if_cancelled()

    async def control(self, range_mode: bool) -> None:
        """Apply the reader's messages until BYE or EOF."""
        while True:
            msg = await _receive(self.framed)
            if msg is None:
                raise _Stop(m.AbortCode.CANCELLED, "reader closed the stream")
            if isinstance(msg, m.Credit):
                self._add_credit(msg.nbytes)
            elif isinstance(msg, m.Seek) and range_mode:
                if msg.seq <= self.last_seq:
                    raise _Stop(m.AbortCode.BAD_REQUEST, "SEEK sequence numbers must increase")
                self.last_seq = msg.seq
                self.wants.clear()  # only the newest seek matters
                self.wants.append(msg)
                self._interrupt()
            elif isinstance(msg, m.Want) and not range_mode:
                self.queued_cids += len(msg.cids)
                if self.queued_cids > m.MAX_OUTSTANDING_WANTS:
                    raise _Stop(m.AbortCode.BAD_REQUEST, "too many outstanding WANTs")
                self.wants.append(msg)
                if msg.credit:
                    self._add_credit(msg.credit)
            elif isinstance(msg, m.Bye):
                self.bye = True
                self._interrupt()
                return
            elif isinstance(msg, m.Abort):
                raise _Stop(m.AbortCode.CANCELLED, f"reader aborted: {msg.code}")
            else:
                raise _Stop(m.AbortCode.BAD_REQUEST, f"unexpected {type(msg).__name__}")
            self.wake()

    def _add_credit(self, nbytes: int) -> None:
        try:
            self.credit.add(nbytes)
        except RemoteError as exc:
            raise _Stop(m.AbortCode.FLOW_CONTROL, str(exc)) from None
        self.last_credit_at = trio.current_time()

    def _interrupt(self) -> None:
        if self.interrupt is not None:
            self.interrupt.cancel()
        self.wake()

    async def wait_credit(self, nbytes: int, seq: int, range_mode: bool) -> bool:
        """Wait until ``nbytes`` fit the credit; False if a BYE (or in range mode a SEEK) came."""
        while not self.credit.can_send(nbytes):
            if self.bye or (range_mode and (seq != self.seq or self.wants)):
                return False
            await self.wait_change()
        return True

    async def send_chunk(self, seq: int, chunk: SourceChunk, data: bytes, off: int | None) -> None:
        stats = self.server.stats
        stats.held_bytes += len(data)
        stats.peak_held_bytes = max(stats.peak_held_bytes, stats.held_bytes)
        try:
            self.credit.consume(len(data))
            await self.send(m.Chunk(seq, chunk.cid, off, data))
        finally:
            stats.held_bytes -= len(data)
        stats.chunks_sent += 1
        stats.bytes_sent += len(data)


class TransferServer:
    """Serves ``/ccn/transfer/1.0.0`` streams from a list of chunk sources and a blockstore."""

    def __init__(
        self, store: Blockstore, sources: Sequence[ChunkSource], *, max_streams: int = 256
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.max_streams = max_streams
        self.stats = ServerStatistics()

    async def handle(self, stream: Stream) -> None:
        """The stream handler: serve one stream to its end; never raises for a peer's fault."""
        framed = FramedStream(stream, m.MAX_FRAME_BYTES)
        stats = self.stats
        if stats.streams_active >= self.max_streams:
            stats.refused_overloaded += 1
            await self._abort(framed, m.AbortCode.OVERLOADED, "too many transfers")
            return
        stats.streams_served += 1
        stats.streams_active += 1
        stats.peak_streams_active = max(stats.peak_streams_active, stats.streams_active)
        tag = peer_id_to_str(stream.remote_peer)[-8:]
        try:
            session = _Session(self, framed)
            await self._serve(session)
        except _Stop as stop:
            logger.debug("[%s] transfer aborted: %s: %s", tag, stop.code.value, stop)
            if session.sending:  # a frame was cut short: an ABORT after it would be garbage
                await framed.reset()
            else:
                await self._abort(framed, stop.code, str(stop))
        except NetworkError as exc:
            logger.debug("[%s] transfer stream failed: %r", tag, exc)
            await framed.reset()
        finally:
            stats.streams_active -= 1

    async def _serve(self, session: _Session) -> None:
        first: m.Message | None = None
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            first = await _receive(session.framed)
        if isinstance(first, m.Get):
            await self._serve_range(session, first)
        elif isinstance(first, m.Want):
            session.wants.append(first)
            session.queued_cids = len(first.cids)
            if first.credit:
                session._add_credit(first.credit)
            await self._run(session, self._send_wants(session), range_mode=False)
        else:
            raise _Stop(m.AbortCode.BAD_REQUEST, "a transfer starts with GET or WANT")

    async def _serve_range(self, session: _Session, get: m.Get) -> None:
        source = await self._open(get)
        try:
            if get.credit:
                session._add_credit(get.credit)
            session.offset, session.length = get.offset, get.length
            await self._run(session, self._send_ranges(session, source), range_mode=True)
        finally:
            with trio.CancelScope(shield=True):
                await source.aclose()

    async def _open(self, get: m.Get) -> RangeSource:
        for source in self.sources:
            opened = await source.open(get.root)
            if opened is not None:
                return opened
        raise _Stop(m.AbortCode.NOT_FOUND, f"{get.root} is not here")

    async def _run(self, session: _Session, sending: Awaitable[None], range_mode: bool) -> None:
        failure: list[Exception] = []

        async def guard(work: Awaitable[None]) -> None:
            try:
                await work
            except (_Stop, NetworkError) as exc:
                failure.append(exc)
                nursery.cancel_scope.cancel()

        async def send_then_close() -> None:
            await sending
            await session.send(m.Done(session.seq))
            await session.framed.close()
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(guard, session.control(range_mode))
            nursery.start_soon(guard, send_then_close())
        if failure:
            raise failure[0]

    async def _send_ranges(self, session: _Session, source: RangeSource) -> None:
        """Stream the current range; after DONE, wait for a SEEK or BYE (then return)."""
        while True:
            size = source.size()
            await session.send(m.Info(session.seq, size))
            finished = await self._send_range(session, source)
            if finished:
                if size is None and source.size() is not None:  # a live stream finished
                    await session.send(m.Info(session.seq, source.size()))
                await session.send(m.Done(session.seq))
            while not session.wants and not session.bye:
                await session.changed.wait()
            if session.bye:
                return
            seek = session.wants.popleft()
            assert isinstance(seek, m.Seek)
            session.seq, session.offset, session.length = seek.seq, seek.offset, seek.length

    async def _send_range(self, session: _Session, source: RangeSource) -> bool:
        """Send one range; False if a SEEK/BYE cut it short."""
        seq, pos = session.seq, session.offset
        end = None if session.length is None else pos + session.length
        while end is None or pos < end:
            try:
                chunk = await session.interruptible(functools.partial(source.chunk_at, pos))
            except LiveStreamFailed as exc:
                raise _Stop(m.AbortCode.PRODUCER_FAILED, str(exc)) from None
            except (NotFound, DecodeError, CcnError) as exc:
                raise _Stop(m.AbortCode.INTERNAL, f"cannot read {pos}: {exc}") from None
            if session.bye or session.wants:
                return False
            if chunk is None:
                return True
            if not await session.wait_credit(chunk.size, seq, range_mode=True):
                return False
            data = await self._read(source, chunk)
            await session.send_chunk(seq, chunk, data, chunk.offset)
            pos = chunk.offset + chunk.size
        return True

    async def _read(self, source: RangeSource, chunk: SourceChunk) -> bytes:
        try:
            return await source.read(chunk)
        except CcnError as exc:
            raise _Stop(m.AbortCode.INTERNAL, f"cannot read chunk {chunk.cid}: {exc}") from None

    async def _send_wants(self, session: _Session) -> None:
        """Serve WANTed blocks in order until BYE."""
        while True:
            while not session.wants:
                if session.bye:
                    return
                await session.changed.wait()
            want = session.wants[0]
            assert isinstance(want, m.Want)
            for cid in want.cids:
                size = await run_blocking(_size_or_none, self.store, cid)
                if size is None:
                    await session.send(m.DontHave(cid))
                    continue
                if not await session.wait_credit(size, session.seq, range_mode=False):
                    return  # BYE with wants outstanding: the reader no longer cares
                try:
                    data = await run_blocking(self.store.get, cid)
                except CcnError:
                    await session.send(m.DontHave(cid))  # vanished or corrupt since the stat
                    continue
                await session.send_chunk(0, SourceChunk(cid, 0, len(data)), data, None)
            session.wants.popleft()
            session.queued_cids -= len(want.cids)

    async def _abort(self, framed: FramedStream, code: m.AbortCode, reason: str) -> None:
        self.stats.aborts_sent[code.value] = self.stats.aborts_sent.get(code.value, 0) + 1
        with trio.move_on_after(ABORT_SEND_TIMEOUT_S):
            try:
                await framed.send_msg(m.encode(m.Abort(code.value, reason[:200])))
                await framed.close()
                return
            except NetworkError:
                pass
        await framed.reset()


def _size_or_none(store: Blockstore, cid: Cid) -> int | None:
    try:
        return store.size_of(cid)
    except NotFound:
        return None


async def _receive(framed: FramedStream) -> m.Message | None:
    """The next message, or ``None`` at EOF; any malformed input becomes a BAD_REQUEST stop."""
    try:
        payload = await framed.receive_msg()
        return None if payload is None else m.decode(payload)
    except RemoteError as exc:  # DecodeError, FrameTooLarge, TruncatedFrame
        raise _Stop(m.AbortCode.BAD_REQUEST, str(exc)) from None
