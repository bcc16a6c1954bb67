"""Conversions between the seam's text multiaddrs and the wire's binary ones.

Addresses in DHT messages are hints from untrusted peers: one that does not parse is dropped,
never an error. Conversions are memoised (bounded) because every FIND_NODE answer carries up to
twenty peers and the simulator runs hundreds of thousands of them.
"""

from __future__ import annotations

import functools
import logging

from multiaddr import Multiaddr

from ccnp2p.dht.routing import MAX_ADDRS_PER_PEER, PeerInfo
from ccnp2p.dht.wire import ConnectionType, WirePeer

logger = logging.getLogger(__name__)
# Above the number of peers a simulated network has (10,000 nodes): a smaller LRU thrashes,
# every answer missing the cache and parsing twenty multiaddrs again.
_CACHE_ENTRIES = 1 << 16


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def addr_to_bytes(text: str) -> bytes | None:
    """Binary form of a text multiaddr, or None if it does not parse."""
    try:
        return bytes(Multiaddr(text).to_bytes())
    except Exception:  # a third-party parser: any failure just means "not an address"
        return None


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def addr_from_bytes(raw: bytes) -> str | None:
    """Text form of a binary multiaddr, or None if it does not parse."""
    if not raw:
        return None
    try:
        text = str(Multiaddr(raw))
    except Exception:  # untrusted bytes from the wire
        return None
    return text or None


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def peer_to_wire(
    info: PeerInfo, connection: ConnectionType = ConnectionType.NOT_CONNECTED
) -> WirePeer:
    """Our view of a peer, as sent in ``closerPeers`` / ``providerPeers`` (both immutable,
    so one wire form serves every answer that names the peer)."""
    addrs = tuple(b for b in (addr_to_bytes(a) for a in info.addrs) if b is not None)
    return WirePeer(info.peer_id, addrs, connection)


def peer_from_wire(peer: WirePeer) -> PeerInfo | None:
    """A peer from the wire with its parseable addresses; None if it has no id."""
    if not peer.id:
        return None
    addrs = [a for a in (addr_from_bytes(raw) for raw in peer.addrs) if a is not None]
    return PeerInfo(peer.id, tuple(addrs[:MAX_ADDRS_PER_PEER]))
