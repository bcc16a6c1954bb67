"""Moving kad-dht messages over the Network seam: outbound requests and inbound streams.

One request per outbound stream (open, send, read one answer, close), bounded by a global limiter
and a per-request deadline. Inbound streams may carry several requests in a row, as libp2p peers
reuse them; each is bounded by an idle timeout, a request count, and per-peer and total limits on
concurrent streams. Whatever a peer sends that does not decode, or is too large, ends that stream
(reset), is counted and logged, and never reaches the node's other work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from ccnp2p.dht.config import DhtConfig
from ccnp2p.dht.wire import Message, MessageType, decode_message, encode_message
from ccnp2p.errors import ProtocolError, RemoteError
from ccnp2p.net.base import Network, Stream
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects.keys import peer_id_to_str

logger = logging.getLogger(__name__)
_CLOSE_TIMEOUT_S = 1.0

RequestError = (NetworkError, RemoteError, trio.TooSlowError)
"""What a failed request raises: catch this tuple, never a bare Exception."""


@dataclass(slots=True)
class RpcCounters:
    """Traffic counters (mutable; snapshot them with :func:`dataclasses.replace`)."""

    requests_sent: int = 0
    requests_failed: int = 0
    requests_served: int = 0
    bad_messages: int = 0
    streams_refused: int = 0
    by_type: dict[str, int] = field(default_factory=dict)


def short(peer_id: bytes) -> str:
    """A log-friendly peer id prefix."""
    return peer_id_to_str(peer_id)[-8:] if peer_id else "?"


class Rpc:
    """Sends requests and serves inbound streams for one node."""

    def __init__(self, network: Network, config: DhtConfig) -> None:
        self.network = network
        self.config = config
        self.counters = RpcCounters()
        self._limiter = trio.CapacityLimiter(config.max_outbound_requests)
        self._inbound_by_peer: dict[bytes, int] = {}
        self._inbound_total = 0

    def inbound_streams(self) -> int:
        """Inbound streams being served now."""
        return self._inbound_total

    async def request(
        self, peer_id: bytes, message: Message, *, expect_response: bool = True
    ) -> Message | None:
        """Send ``message`` to ``peer_id``; return its answer (None if none was expected).

        Raises:
            NetworkError, RemoteError, trio.TooSlowError: see :data:`RequestError`.
        """
        self.counters.requests_sent += 1
        try:
            async with self._limiter:
                with trio.fail_after(self.config.request_timeout_s):
                    return await self._exchange(peer_id, message, expect_response)
        except RequestError:
            self.counters.requests_failed += 1
            raise

    async def _exchange(
        self, peer_id: bytes, message: Message, expect_response: bool
    ) -> Message | None:
        stream = await self.network.open_stream(peer_id, self.config.protocol_id)
        framed = FramedStream(stream, self.config.max_message_bytes)
        try:
            await framed.send_msg(encode_message(message))
            if not expect_response:
                return None
            data = await framed.receive_msg()
            if data is None:
                raise ProtocolError(f"{message.type.name}: stream closed without an answer")
            reply = decode_message(data)
            if reply.type is not message.type:
                raise ProtocolError(f"asked {message.type.name}, got {reply.type.name}")
            return reply
        finally:
            await _close_quietly(stream)

    async def serve(
        self, stream: Stream, handle: Callable[[bytes, Message], Message | None]
    ) -> None:
        """Serve requests on an inbound stream until EOF, a limit, or a misbehaving peer.

        ``handle`` answers one request (None: no answer due); a :class:`RemoteError` it raises
        ends the stream like a malformed message would.
        """
        peer = stream.remote_peer
        if (
            self._inbound_by_peer.get(peer, 0) >= self.config.max_inbound_streams_per_peer
            or self._inbound_total >= self.config.max_inbound_streams
        ):
            self.counters.streams_refused += 1
            logger.debug("%s: too many inbound streams, refusing one", short(peer))
            await _reset_quietly(stream)
            return
        self._inbound_by_peer[peer] = self._inbound_by_peer.get(peer, 0) + 1
        self._inbound_total += 1
        try:
            await self._serve_loop(stream, peer, handle)
        finally:
            self._inbound_total -= 1
            left = self._inbound_by_peer.pop(peer) - 1
            if left:
                self._inbound_by_peer[peer] = left

    async def _serve_loop(
        self, stream: Stream, peer: bytes, handle: Callable[[bytes, Message], Message | None]
    ) -> None:
        framed = FramedStream(stream, self.config.max_message_bytes)
        try:
            for _ in range(self.config.max_requests_per_stream):
                with trio.move_on_after(self.config.stream_idle_timeout_s) as idle:
                    more = await self._serve_one(framed, peer, handle)
                if idle.cancelled_caught or not more:
                    break
        except RemoteError as exc:
            self.counters.bad_messages += 1
            logger.info("%s: dropping stream: %s (%s)", short(peer), exc, exc.code)
            await _reset_quietly(stream)
            return
        except NetworkError as exc:
            logger.debug("%s: inbound stream failed: %s", short(peer), exc)
            await _reset_quietly(stream)
            return
        await _close_quietly(stream)

    async def _serve_one(
        self, framed: FramedStream, peer: bytes, handle: Callable[[bytes, Message], Message | None]
    ) -> bool:
        data = await framed.receive_msg()
        if data is None:
            return False
        request = decode_message(data)
        self.counters.requests_served += 1
        name = request.type.name
        self.counters.by_type[name] = self.counters.by_type.get(name, 0) + 1
        reply = handle(peer, request)
        if reply is not None:
            await framed.send_msg(encode_message(reply))
        return True

    async def ping(self, peer_id: bytes) -> bool:
        """True if ``peer_id`` answers a PING on our protocol in time."""
        try:
            await self.request(peer_id, Message(MessageType.PING))
        except RequestError:
            return False
        return True


async def _close_quietly(stream: Stream) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT_S):
        try:
            await stream.close()
        except NetworkError:
            pass


async def _reset_quietly(stream: Stream) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_TIMEOUT_S):
        try:
            await stream.reset()
        except NetworkError:
            pass
