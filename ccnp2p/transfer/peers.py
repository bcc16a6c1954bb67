"""Want-mode streams to providers: the per-peer half of a multi-source fetch.

A :class:`PeerSession` owns one ``/ccn/transfer/1.0.0`` stream to one provider for the whole
fetch. The scheduler (:mod:`ccnp2p.transfer.fetch`) queues chunks on it without blocking
(:meth:`PeerSession.queue`); the session's own task turns them into WANT messages carrying just
enough credit, and its receive loop matches each CHUNK or DONTHAVE to the oldest outstanding
want (the sender answers in order), so a reply for anything else is a protocol error.

A :class:`~ccnp2p.transfer.window.CreditWindow` per session bounds the bytes requested from that
peer and measures its round trip and delivery rate, which the scheduler uses to favour the
fastest peers. A provider with requests outstanding that says nothing for ``timeout_s`` is
treated as dead (a crash without a reset looks exactly like that).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import trio

from ccnp2p.errors import CcnError, RemoteError
from ccnp2p.net.base import Network
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import peer_id_to_str
from ccnp2p.store.aio import run_blocking
from ccnp2p.store.files import MAX_CHUNK_BYTES
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.errors import TransferAborted, TransferFailed
from ccnp2p.transfer.window import CreditWindow, FlowControlError

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Wanted:
    """One block requested from a peer: the fetch's index for it, its CID and expected size."""

    index: int
    cid: Cid
    size: int


OnChunk = Callable[["PeerSession", Wanted, bytes], None]
OnMissing = Callable[["PeerSession", Wanted], None]


class PeerSession:
    """One provider's stream during a fetch (see the module docstring)."""

    def __init__(self, network: Network, peer: bytes, window: CreditWindow, timeout_s: float):
        self.network = network
        self.peer = peer
        self.tag = peer_id_to_str(peer)[-8:]
        self.window = window
        self.timeout_s = timeout_s
        self.requested: deque[Wanted] = deque()  # sent or about to be sent, in order
        self.requested_bytes = 0
        self._unsent: list[Wanted] = []
        self._wake = trio.Event()
        self._scope = trio.CancelScope()
        self._silence: trio.CancelScope | None = None
        self.alive = True
        self.failure = ""
        self.bytes_received = 0
        self.chunks_received = 0

    @property
    def rate(self) -> float:
        """Measured delivery rate in bytes/s (0 until measured)."""
        return self.window.rate_bytes_per_s

    def can_take(self, size: int) -> bool:
        """Whether ``size`` more bytes fit this peer's window (any chunk fits an idle peer)."""
        if not self.alive or len(self.requested) >= m.MAX_OUTSTANDING_WANTS:
            return False
        return not self.requested or self.requested_bytes + size <= self.window.window_bytes

    def queue(self, wanted: Wanted) -> None:
        """Ask this peer for ``wanted`` (non-blocking; the session's task sends the WANT)."""
        self.requested.append(wanted)
        self.requested_bytes += wanted.size
        self._unsent.append(wanted)
        if self._silence is not None and math.isinf(self._silence.deadline):
            self._silence.deadline = trio.current_time() + self.timeout_s
        self._wake.set()

    def drop(self, reason: str) -> None:
        """End this session now (bad chunk, protocol error); its wants go back to the fetch."""
        if self.alive:
            self.alive = False
            self.failure = reason
        self._scope.cancel()

    async def run(self, on_chunk: OnChunk, on_missing: OnMissing) -> None:
        """Serve the session until :meth:`drop` or failure; never raises for the peer's fault."""
        with self._scope:
            try:
                stream = await self.network.open_stream(self.peer, m.PROTOCOL_ID)
            except NetworkError as exc:
                self.drop(f"cannot open a stream: {exc}")
                return
            framed = FramedStream(stream, m.MAX_FRAME_BYTES)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._guard, self._send_loop(framed))
                    await self._guard(self._receive_loop(framed, on_chunk, on_missing))
            finally:
                self.alive = False
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                    await framed.reset()

    async def _guard(self, work: Awaitable[None]) -> None:
        """Turn the peer's faults into :meth:`drop` (and so a cancelled session)."""
        try:
            await work
        except (RemoteError, NetworkError) as exc:
            self.drop(str(exc))

    async def _send_loop(self, framed: FramedStream) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._unsent:
                batch = self._unsent[: m.MAX_WANT_CIDS]
                del self._unsent[: m.MAX_WANT_CIDS]
                # Credit so that everything requested fits, counting credit the peer still holds.
                credit = max(0, self.requested_bytes - self.window.outstanding)
                if credit:
                    self.window.grant(credit, trio.current_time())
                want = m.Want(tuple(w.cid for w in batch), credit)
                await framed.send_msg(m.encode(want))

    async def _receive_loop(
        self, framed: FramedStream, on_chunk: OnChunk, on_missing: OnMissing
    ) -> None:
        while True:
            with trio.CancelScope() as silence:
                self._silence = silence
                if self.requested:
                    silence.deadline = trio.current_time() + self.timeout_s
                payload = await framed.receive_msg()
            self._silence = None
            if silence.cancelled_caught:
                raise TransferFailed(f"{self.tag}: silent for {self.timeout_s} s")
            if payload is None:
                raise TransferFailed(f"{self.tag}: closed the stream")
            msg = m.decode(payload)
            if isinstance(msg, m.Abort):
                raise TransferAborted(msg.code, msg.reason)
            if not isinstance(msg, m.Chunk | m.DontHave) or not self.requested:
                raise FlowControlError(f"{self.tag}: unexpected {type(msg).__name__}")
            head = self.requested[0]
            if isinstance(msg, m.Chunk) and (msg.seq != 0 or msg.offset is not None):
                raise FlowControlError(f"{self.tag}: a want-mode chunk has seq 0 and no offset")
            if msg.cid != head.cid:
                raise FlowControlError(f"{self.tag}: answered {msg.cid}, expected {head.cid}")
            self.requested.popleft()
            self.requested_bytes -= head.size
            if isinstance(msg, m.DontHave):
                on_missing(self, head)
                continue
            self.window.on_data(len(msg.data), trio.current_time())
            self.bytes_received += len(msg.data)
            self.chunks_received += 1
            on_chunk(self, head, msg.data)


async def fetch_one_block(
    network: Network, providers: Sequence[bytes], cid: Cid, timeout_s: float
) -> tuple[bytes, bytes]:
    """Fetch a single block (a file-tree node) from the first provider that has it.

    Returns:
        ``(peer, data)`` with ``data`` verified against ``cid``.

    Raises:
        TransferFailed: no provider delivered it.
    """
    failures = []
    for peer in providers:
        try:
            with trio.fail_after(timeout_s):
                return peer, await _one_block(network, peer, cid)
        except (CcnError, trio.TooSlowError) as exc:
            failures.append(f"{peer_id_to_str(peer)[-8:]}: {exc}")
    raise TransferFailed(f"no provider delivered {cid}: {'; '.join(failures) or 'no providers'}")


async def _one_block(network: Network, peer: bytes, cid: Cid) -> bytes:
    stream = await network.open_stream(peer, m.PROTOCOL_ID)
    framed = FramedStream(stream, m.MAX_FRAME_BYTES)
    try:
        await framed.send_msg(m.encode(m.Want((cid,), MAX_CHUNK_BYTES)))
        payload = await framed.receive_msg()
        msg = None if payload is None else m.decode(payload)
        if isinstance(msg, m.Abort):
            raise TransferAborted(msg.code, msg.reason)
        if not isinstance(msg, m.Chunk) or msg.cid != cid:
            raise TransferFailed(f"no block in the answer ({type(msg).__name__})")
        await run_blocking(cid.verify, msg.data)
        await framed.send_msg(m.encode(m.Bye()))
        await framed.close()
        return msg.data
    except BaseException:
        with trio.CancelScope(shield=True):
            await framed.reset()
        raise
