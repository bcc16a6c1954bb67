"""Answering DHT requests: a sans-IO function from request to response.

The driver reads a request off a stream, calls :meth:`RequestHandler.handle` with the time and
the sender, and writes back whatever comes out (``None``: no response is due). Everything here
is synchronous and deterministic, so every message type is unit-tested without a network.

Behaviour follows libp2p kad-dht: FIND_NODE, GET_PROVIDERS and GET_VALUE answer with up to ``k``
closer peers (never the requester itself); GET_PROVIDERS adds the providers we store; GET_VALUE
adds the record we store; PUT_VALUE validates and echoes; PING echoes; ADD_PROVIDER gets no
response (as in go-libp2p/kubo) and only records providers whose id is the sender's: a peer may
announce itself, never someone else.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ccnp2p.dht.addrs import peer_from_wire, peer_to_wire
from ccnp2p.dht.keys import kad_key
from ccnp2p.dht.providers import ProviderStore
from ccnp2p.dht.records import RecordStore
from ccnp2p.dht.routing import PeerInfo, RoutingTable
from ccnp2p.dht.wire import Message, MessageType, Record, WirePeer
from ccnp2p.errors import ProtocolError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Handled:
    """What answering a request produced: the response and whether we stored something."""

    response: Message | None
    stored: bool = False


class RequestHandler:
    """Turns one request into one response using the node's table and stores.

    Args:
        known_addrs: the addresses the transport knows for a peer (to fill ADD_PROVIDER records
            that carry none, and to describe closer peers).
    """

    def __init__(
        self,
        table: RoutingTable,
        providers: ProviderStore,
        records: RecordStore,
        known_addrs: Callable[[bytes], list[str]],
    ) -> None:
        self.table = table
        self.providers = providers
        self.records = records
        self._known_addrs = known_addrs

    def handle(self, sender: bytes, request: Message, now: float) -> Handled:
        """Answer ``request`` from ``sender``.

        Raises:
            ProtocolError: the request is meaningless (e.g. a record whose key differs from the
                message key); the driver drops the stream.
            InvalidRecord: a PUT_VALUE record fails validation.
        """
        kind = request.type
        if kind is MessageType.PING:
            return Handled(Message(MessageType.PING))
        if kind is MessageType.FIND_NODE:
            return Handled(
                Message(kind, request.key, closer_peers=self._closer(request.key, sender))
            )
        if kind is MessageType.GET_PROVIDERS:
            providers = tuple(
                peer_to_wire(p) for p in self.providers.get(request.key, now, self.table.k)
            )
            closer = self._closer(request.key, sender)
            return Handled(
                Message(kind, request.key, closer_peers=closer, provider_peers=providers)
            )
        if kind is MessageType.ADD_PROVIDER:
            return Handled(None, self._add_provider(sender, request, now))
        if kind is MessageType.GET_VALUE:
            value = self.records.get(request.key, now)
            record = None if value is None else Record(request.key, value)
            closer = self._closer(request.key, sender)
            return Handled(Message(kind, request.key, record=record, closer_peers=closer))
        return self._put_value(request, now)

    def _closer(self, key: bytes, sender: bytes) -> tuple[WirePeer, ...]:
        peers = self.table.closest(kad_key(key), self.table.k + 1)
        return tuple(peer_to_wire(p) for p in peers if p.peer_id != sender)[: self.table.k]

    def _add_provider(self, sender: bytes, request: Message, now: float) -> bool:
        if not request.key:
            raise ProtocolError("ADD_PROVIDER without a key")
        stored = False
        for wire_peer in request.provider_peers:
            info = peer_from_wire(wire_peer)
            if info is None or info.peer_id != sender:
                logger.debug("ignoring a provider record not about its sender")
                continue
            addrs = info.addrs or tuple(self._known_addrs(sender))
            stored = self.providers.add(request.key, PeerInfo(sender, addrs), now) or stored
        return stored

    def _put_value(self, request: Message, now: float) -> Handled:
        record = request.record
        if record is None or record.key != request.key:
            raise ProtocolError("PUT_VALUE record missing or under another key")
        stored = self.records.put(record.key, record.value, now)  # raises InvalidRecord
        return Handled(request, stored)
