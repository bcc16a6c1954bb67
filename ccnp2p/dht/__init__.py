"""Kademlia DHT speaking the libp2p kad-dht wire protocol (spec: protocols/ccn-kad.md).

Sans-IO core: :mod:`.keys`, :mod:`.routing`, :mod:`.lookup`, :mod:`.wire`, :mod:`.providers`,
:mod:`.records`, :mod:`.server`. Trio driver over the Network seam: :mod:`.node` (with
:mod:`.rpc`). Record validators plug in through :class:`.records.ValidatorRegistry`.
"""

from __future__ import annotations

from ccnp2p.dht.config import DhtConfig, Mode
from ccnp2p.dht.node import KadDht, LookupResult
from ccnp2p.dht.records import Validator, ValidatorRegistry
from ccnp2p.dht.routing import PeerInfo

__all__ = [
    "DhtConfig",
    "KadDht",
    "LookupResult",
    "Mode",
    "PeerInfo",
    "Validator",
    "ValidatorRegistry",
]
