"""``/ccn/block/1.0.0``: fetch whole blocks by CID (objects, file nodes, single chunks).

A request/response protocol for small things. The reader sends one frame ``{"want": [CID...]}``
(at most :data:`MAX_WANTS`); the server answers one frame per wanted CID, in order, either
``{"cid": CID, "data": bytes}`` or ``{"cid": CID, "missing": true}``, then ``{"done": true}``
and closes. Every block is verified against its CID by the reader before anyone sees it; a peer
that sends a wrong block, an unasked CID or garbage is reported as a :class:`RemoteError` and the
caller moves on to the next provider. Streams of file chunks at speed use ``/ccn/transfer``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import trio

from ccnp2p.errors import CcnError, DecodeError, HashMismatch, NotFound, ProtocolError
from ccnp2p.net.base import Network, Stream
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.store.aio import AsyncBlocks
from ccnp2p.store.blockstore import MAX_BLOCK_BYTES

log = logging.getLogger(__name__)

PROTOCOL_ID: Final = "/ccn/block/1.0.0"
MAX_WANTS: Final = 32
MAX_FRAME_BYTES: Final = MAX_BLOCK_BYTES + 1024
REQUEST_TIMEOUT_S: Final = 30.0
MAX_INBOUND: Final = 64


def _decode_map(frame: bytes) -> dict[str, Any]:
    value = dagcbor.decode(frame)
    if not isinstance(value, dict):
        raise DecodeError("message must be a map")
    return value


class BlockService:
    """Serves blocks from a blockstore and fetches blocks from peers."""

    def __init__(self, network: Network, blocks: AsyncBlocks) -> None:
        self.network = network
        self.blocks = blocks
        self._inbound = trio.Semaphore(MAX_INBOUND)
        self.served = 0
        self.fetched = 0
        self.rejected = 0
        network.set_handler(PROTOCOL_ID, self._serve)

    async def _serve(self, stream: Stream) -> None:
        framed = FramedStream(stream, MAX_FRAME_BYTES)
        if self._inbound.value == 0:
            await stream.reset()  # overloaded: refuse rather than queue without bound
            return
        async with self._inbound:
            try:
                with trio.fail_after(REQUEST_TIMEOUT_S):
                    frame = await framed.receive_msg()
                    if frame is None:
                        return
                    wants = _decode_map(frame).get("want")
                    if not isinstance(wants, list) or len(wants) > MAX_WANTS:
                        raise ProtocolError("want must be a list of at most 32 CIDs")
                    for cid in wants:
                        if not isinstance(cid, Cid):
                            raise ProtocolError("want must hold CIDs")
                        await framed.send_msg(await self._answer(cid))
                    await framed.send_msg(dagcbor.encode({"done": True}))
                    await framed.close()
            except (CcnError, trio.TooSlowError) as exc:
                log.info("block request from %s dropped: %s", stream.remote_peer.hex()[:16], exc)
                await stream.reset()

    async def _answer(self, cid: Cid) -> bytes:
        try:
            data = await self.blocks.get(cid)
        except NotFound:
            return dagcbor.encode({"cid": cid, "missing": True})
        except CcnError as exc:  # corrupt on our disk: never served
            log.warning("not serving %s: %s", cid, exc)
            return dagcbor.encode({"cid": cid, "missing": True})
        self.served += 1
        return dagcbor.encode({"cid": cid, "data": data})

    async def fetch_from(self, peer: bytes, cids: Sequence[Cid]) -> dict[Cid, bytes]:
        """Ask ``peer`` for ``cids``; returns the verified blocks it had.

        Raises:
            NetworkError: the peer could not be reached or the stream broke.
            RemoteError: the peer answered with something wrong (bad hash, garbage).
        """
        if len(cids) > MAX_WANTS:
            raise ValueError(f"at most {MAX_WANTS} CIDs per request")
        got: dict[Cid, bytes] = {}
        with trio.fail_after(REQUEST_TIMEOUT_S):
            stream = await self.network.open_stream(peer, PROTOCOL_ID)
            framed = FramedStream(stream, MAX_FRAME_BYTES)
            try:
                await framed.send_msg(dagcbor.encode({"want": list(cids)}))
                for expected in cids:
                    frame = await framed.receive_msg()
                    if frame is None:
                        raise ProtocolError("peer ended the stream early")
                    msg = _decode_map(frame)
                    if msg.get("cid") != expected:
                        raise ProtocolError("peer answered for a CID in the wrong order")
                    data = msg.get("data")
                    if isinstance(data, bytes):
                        try:
                            expected.verify(data)
                        except HashMismatch:
                            self.rejected += 1
                            raise
                        got[expected] = data
                    elif msg.get("missing") is not True:
                        raise ProtocolError("answer has neither data nor missing")
                frame = await framed.receive_msg()
                if frame is None or _decode_map(frame).get("done") is not True:
                    raise ProtocolError("peer did not end the answer with done")
                await framed.close()
            except BaseException:
                with trio.CancelScope(shield=True):
                    await stream.reset()
                raise
        self.fetched += len(got)
        return got

    async def get_block(self, cid: Cid, providers: Sequence[bytes]) -> bytes:
        """Fetch one block from the first provider that has it, storing it locally."""
        errors: list[str] = []
        for peer in providers:
            if peer == self.network.peer_id:
                continue
            try:
                blocks = await self.fetch_from(peer, [cid])
            except (NetworkError, CcnError, trio.TooSlowError) as exc:
                errors.append(f"{peer.hex()[:12]}: {exc}")
                continue
            if cid in blocks:
                await self.blocks.put(cid, blocks[cid], verify=False)
                return blocks[cid]
        detail = "; ".join(errors[:3]) or "no provider had it"
        raise NotFound(f"block {cid} not found ({detail})", cid)
