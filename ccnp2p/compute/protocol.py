"""``/ccn/compute/1.0.0``: computing contracts and live result streams.

One stream per reader. Messages are uvarint-framed DAG-CBOR maps with a type field ``t``.

Reader -> executor:
  * ``{t: "contract", calc: CID, lease_s: int, resume?: CID, offset?: int}``: asks the executor
    to compute ``calc`` (continuing from checkpoint ``resume``, for a reader at ``offset``). The
    executor fetches the calc and operator objects (from the reader if needed), checks that it
    runs the operator (installed, code hash matches), that params are valid and that it has a
    free slot, then answers ``{t: "accept"}`` or ``{t: "refuse", code, reason}``.
  * ``{t: "read", calc: CID, offset: int, upto: int, hb_ms?: int}``: subscribe from ``offset``;
    the executor may send bytes up to offset ``upto`` (the reader's credit), and sends a
    heartbeat after ``hb_ms`` of silence (a third of the reader's timeout).
  * ``{t: "credit", upto: int}``: more credit. ``upto`` never decreases.
Executor -> reader:
  * ``{t: "data", offset: int, data: bytes}``: never past the reader's ``upto``.
  * ``{t: "hb", produced: int, step: int}``: heartbeat when nothing was sent for ``hb_ms``
    (asked for in ``read``, at most ``HEARTBEAT_S``).
  * ``{t: "ckpt", step: int, offset: int, state: CID}``: a checkpoint was taken; readers copy it
    so that it outlives the executor.
  * ``{t: "done", result: CID, size: int}``: the end; the result CID names the whole output.
  * ``{t: "error", code: str, reason: str}``: the computation failed.

A reader that sees neither data nor a heartbeat for its timeout treats the executor as dead.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import trio

from ccnp2p.compute.checkpoint import CheckpointNote
from ccnp2p.compute.live import RESULT_CHUNK_BYTES, ComputeFailed, LiveResult
from ccnp2p.errors import CcnError, DecodeError, ProtocolError, RemoteError
from ccnp2p.net.base import Stream
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid

if TYPE_CHECKING:
    from ccnp2p.compute.service import ComputeService

log = logging.getLogger(__name__)

PROTOCOL_ID: Final = "/ccn/compute/1.0.0"
MAX_FRAME_BYTES: Final = 512 * 1024
DATA_BYTES: Final = 128 * 1024
WINDOW_BYTES: Final = 1024 * 1024
HEARTBEAT_S: Final = 2.0
READ_TIMEOUT_S: Final = 10.0
CONTRACT_TIMEOUT_S: Final = 30.0
DEFAULT_LEASE_S: Final = 600


class Refused(RemoteError):
    """The executor refused the contract (busy, no such operator, bad params...)."""

    code = "refused"


def encode(msg: dict[str, Any]) -> bytes:
    return dagcbor.encode(msg)


def decode(frame: bytes | None) -> dict[str, Any]:
    if frame is None:
        raise ProtocolError("stream ended unexpectedly")
    msg = dagcbor.decode(frame)
    if not isinstance(msg, dict) or not isinstance(msg.get("t"), str):
        raise DecodeError("compute message must be a map with a type")
    return msg


def _int(msg: dict[str, Any], key: str) -> int:
    v = msg.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ProtocolError(f"{key} must be a non-negative integer")
    return v


def _cid(msg: dict[str, Any], key: str) -> Cid:
    v = msg.get(key)
    if not isinstance(v, Cid):
        raise ProtocolError(f"{key} must be a CID")
    return v


# -- executor side ------------------------------------------------------------------------------


def _first_peer_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to handle for a failed session nursery: a peer's or the network's fault if
    that is all there is; anything else (cancellation included) is re-raised as the group."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    if leaves and all(isinstance(e, (CcnError, trio.TooSlowError)) for e in leaves):
        return leaves[0]
    return group


class _Grant:
    """How far a reader allows us to send; wakes the sender when it grows."""

    def __init__(self, upto: int) -> None:
        self.upto = upto
        self._changed = trio.Event()

    def raise_to(self, upto: int) -> None:
        self.upto = upto
        self._changed.set()
        self._changed = trio.Event()

    async def wait_change(self) -> None:
        await self._changed.wait()


class ComputeServer:
    """Serves contracts and reads for the node's executor."""

    def __init__(self, service: ComputeService) -> None:
        self.service = service
        self._inbound = trio.Semaphore(256)

    async def handle(self, stream: Stream) -> None:
        framed = FramedStream(stream, MAX_FRAME_BYTES)
        if self._inbound.value == 0:
            await stream.reset()
            return
        async with self._inbound:
            try:
                try:
                    await self._session(framed, stream.remote_peer)
                except BaseExceptionGroup as group:
                    raise _first_peer_error(group) from None
            except (CcnError, trio.TooSlowError) as exc:
                log.info("compute stream from %s ended: %s", stream.remote_peer.hex()[:12], exc)
                with trio.CancelScope(shield=True):
                    await stream.reset()

    async def _session(self, framed: FramedStream, peer: bytes) -> None:
        with trio.fail_after(CONTRACT_TIMEOUT_S):
            msg = decode(await framed.receive_msg())
            if msg["t"] == "contract":
                calc = _cid(msg, "calc")
                lease_s = min(_int(msg, "lease_s"), 24 * 3600)
                resume = msg.get("resume")
                if resume is not None and not isinstance(resume, Cid):
                    raise ProtocolError("resume must be a CID")
                at = _int(msg, "offset") if "offset" in msg else 0
                try:
                    await self.service.accept_contract(
                        calc, lease_s, hint=(peer,), resume=resume, reader_offset=at
                    )
                except CcnError as exc:
                    await framed.send_msg(
                        encode({"t": "refuse", "code": exc.code, "reason": str(exc)})
                    )
                    await framed.close()
                    return
                await framed.send_msg(encode({"t": "accept"}))
                msg = decode(await framed.receive_msg())
        if msg["t"] != "read":
            raise ProtocolError(f"unexpected message {msg['t']!r}")
        calc = _cid(msg, "calc")
        offset = _int(msg, "offset")
        upto = _int(msg, "upto")
        live = self.service.executor.running.get(calc)
        if live is not None:
            hb_s = HEARTBEAT_S
            if "hb_ms" in msg:
                hb_s = min(HEARTBEAT_S, max(0.1, _int(msg, "hb_ms") / 1000))
            await self._serve_live(framed, live, offset, upto, hb_s)
            return
        result = self.service.executor.results.get(calc)
        if result is None:
            await framed.send_msg(
                encode(
                    {"t": "error", "code": "not-running", "reason": f"{calc} is not computed here"}
                )
            )
            await framed.close()
            return
        await self._serve_stored(framed, result, offset, upto)

    async def _serve_live(
        self, framed: FramedStream, live: LiveResult, offset: int, upto: int, hb_s: float
    ) -> None:
        reader = object()
        grant = _Grant(upto)
        await live.want(reader, upto)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._credits, framed, live, reader, grant, nursery.cancel_scope)
                pos = offset
                told = -1  # the last checkpoint step this reader was told about

                async def tell_checkpoints() -> None:
                    nonlocal told
                    for note in list(live.checkpoints):
                        if note.step > told:
                            told = note.step
                            ckpt = {"t": "ckpt", "step": note.step, "offset": note.offset}
                            await framed.send_msg(encode({**ckpt, "state": note.state}))

                while True:
                    data = b""
                    with trio.move_on_after(hb_s):
                        while pos >= grant.upto:
                            await grant.wait_change()
                        data = await live.read_at(pos, min(DATA_BYTES, grant.upto - pos))
                        if not data:
                            break
                    # A checkpoint is always told before any byte after it is sent.
                    await tell_checkpoints()
                    if data:
                        await framed.send_msg(encode({"t": "data", "offset": pos, "data": data}))
                        pos += len(data)
                    else:
                        hb = {"t": "hb", "produced": live.produced, "step": max(live.step, 0)}
                        await framed.send_msg(encode(hb))
                assert live.result is not None
                await framed.send_msg(encode({"t": "done", "result": live.result, "size": pos}))
                nursery.cancel_scope.cancel()
        except ComputeFailed as exc:
            await framed.send_msg(
                encode({"t": "error", "code": "compute-failed", "reason": str(exc)})
            )
        finally:
            with trio.CancelScope(shield=True):
                await live.leave(reader)
        await framed.close()

    async def _credits(
        self,
        framed: FramedStream,
        live: LiveResult,
        reader: object,
        grant: _Grant,
        scope: trio.CancelScope,
    ) -> None:
        while True:
            frame = await framed.receive_msg()
            if frame is None:
                scope.cancel()  # the reader went away
                return
            msg = decode(frame)
            if msg["t"] != "credit":
                raise ProtocolError(f"unexpected message {msg['t']!r} during a read")
            upto = _int(msg, "upto")
            if upto > grant.upto:
                grant.raise_to(upto)
                await live.want(reader, upto)

    async def _serve_stored(
        self, framed: FramedStream, result: Cid, offset: int, upto: int
    ) -> None:
        # A finished result: send it under the same credit rules.
        pos = offset
        async for piece in self.service.node.open_reader(result, offset):
            view = memoryview(piece)
            while view:
                while pos >= upto:
                    msg = decode(await framed.receive_msg())
                    if msg["t"] == "credit":
                        upto = max(upto, _int(msg, "upto"))
                n = min(len(view), DATA_BYTES, upto - pos)
                await framed.send_msg(encode({"t": "data", "offset": pos, "data": bytes(view[:n])}))
                view = view[n:]
                pos += n
        await framed.send_msg(encode({"t": "done", "result": result, "size": pos}))
        await framed.close()


# -- reader side --------------------------------------------------------------------------------


async def remote_read(
    service: ComputeService,
    peer: bytes,
    calc: Cid,
    offset: int,
    *,
    contract: bool,
    lease_s: int = DEFAULT_LEASE_S,
    resume: Cid | None = None,
    copy: ResultCopy | None = None,
    on_done: list[Cid] | None = None,
) -> AsyncIterator[bytes]:
    """Read ``calc``'s output from ``peer`` (after a contract if ``contract``).

    Checkpoints the executor announces are handed to ``service.note_checkpoint`` (which copies
    them); bytes read are fed to ``copy`` (which keeps the output's chunks).

    Raises:
        Refused: the peer refused the contract.
        ComputeFailed: the computation failed there.
        ExecutorSilent: no data or heartbeat for the service's read timeout.
    """
    timeout = service.read_timeout_s
    stream = await service.node.network.open_stream(peer, PROTOCOL_ID)
    framed = FramedStream(stream, MAX_FRAME_BYTES)
    try:
        if contract:
            req: dict[str, Any] = {"t": "contract", "calc": calc, "lease_s": lease_s}
            if resume is not None:
                req.update(resume=resume, offset=offset)
            await framed.send_msg(encode(req))
            with trio.fail_after(CONTRACT_TIMEOUT_S):
                answer = decode(await framed.receive_msg())
            if answer["t"] == "refuse":
                raise Refused(str(answer.get("reason", "refused")))
            if answer["t"] != "accept":
                raise ProtocolError(f"unexpected answer {answer['t']!r} to a contract")
        upto = offset + WINDOW_BYTES
        hb_ms = max(100, int(timeout * 1000 / 3))  # three heartbeats per timeout
        read = {"t": "read", "calc": calc, "offset": offset, "upto": upto, "hb_ms": hb_ms}
        await framed.send_msg(encode(read))
        pos = offset
        while True:
            with trio.move_on_after(timeout) as silent:
                frame = await framed.receive_msg()
            if silent.cancelled_caught:
                raise ExecutorSilent(f"executor of {calc} silent for {timeout} s")
            msg = decode(frame)
            kind = msg["t"]
            if kind == "data":
                data = msg.get("data")
                if not isinstance(data, bytes) or _int(msg, "offset") != pos:
                    raise ProtocolError("data out of order")
                if pos + len(data) > upto:
                    raise ProtocolError("executor sent beyond the granted credit")
                if copy is not None:
                    await copy.feed(pos, data)
                pos += len(data)
                yield data
                if upto - pos < WINDOW_BYTES // 2:
                    upto = pos + WINDOW_BYTES
                    await framed.send_msg(encode({"t": "credit", "upto": upto}))
            elif kind == "hb":
                continue
            elif kind == "ckpt":
                note = CheckpointNote(_int(msg, "step"), _int(msg, "offset"), _cid(msg, "state"))
                # Copy it before reading past it: once we hold it, a crash of the executor
                # costs at most the steps since this checkpoint.
                if not await service.note_checkpoint(calc, note, peer):
                    # Reading past a checkpoint we could not copy would make a failover
                    # recompute more than one interval: treat the executor as gone.
                    raise ExecutorSilent(f"executor of {calc} did not deliver its checkpoint")
            elif kind == "done":
                result = _cid(msg, "result")
                if copy is not None:
                    await copy.finish(pos, result)
                if on_done is not None:
                    on_done.append(result)
                return
            elif kind == "error":
                if msg.get("code") == "not-running":
                    raise Refused(f"{calc} is not running there")
                raise ComputeFailed(f"{msg.get('code')}: {msg.get('reason')}")
            else:
                raise ProtocolError(f"unexpected message {kind!r}")
    finally:
        with trio.CancelScope(shield=True):
            await stream.reset()


class ResultCopy:
    """Keeps the chunks of an output read from offset 0, so the reader ends up holding (and
    verifying) the whole result: it rebuilds the file tree and checks the executor's result CID.
    Memory: one chunk of bytes plus the chunk CIDs."""

    def __init__(self, service: ComputeService) -> None:
        self.service = service
        self._buf = bytearray()
        self._chunks: list[tuple[Cid, int]] = []
        self._next = 0  # the output offset the next fed byte must have
        self.complete: Cid | None = None

    async def feed(self, pos: int, data: bytes) -> None:
        if pos != self._next:
            return  # started mid-way (a seek): no full copy possible
        self._buf += data
        self._next += len(data)
        while len(self._buf) >= RESULT_CHUNK_BYTES:
            await self._store(bytes(self._buf[:RESULT_CHUNK_BYTES]))
            del self._buf[:RESULT_CHUNK_BYTES]

    async def _store(self, chunk: bytes) -> None:
        cid = Cid.for_raw(chunk)
        await self.service.node.ablocks.put(cid, chunk, verify=False)
        self._chunks.append((cid, len(chunk)))

    async def finish(self, pos: int, result: Cid) -> None:
        if pos != self._next:
            return
        if self._buf:
            await self._store(bytes(self._buf))
            self._buf = bytearray()
        root = await self.service.store_tree(self._chunks)
        if root != result:
            log.warning("executor's result %s differs from the bytes it sent (%s)", result, root)
            return
        self.complete = root


class ExecutorSilent(RemoteError):
    """The executor sent neither data nor heartbeats within the timeout."""

    code = "executor-silent"
