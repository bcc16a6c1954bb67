"""Tunables of the DHT, with the defaults of libp2p kad-dht where it has one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ccnp2p.dht.lookup import ALPHA_VALUE
from ccnp2p.dht.providers import MAX_PROVIDERS_PER_KEY, PROVIDER_TTL_S, REPUBLISH_INTERVAL_S
from ccnp2p.dht.records import RECORD_TTL_S
from ccnp2p.dht.routing import K_VALUE
from ccnp2p.dht.wire import MAX_MESSAGE_BYTES

PROTOCOL_ID: Final = "/ccn/kad/1.0.0"
LIBP2P_PROTOCOL_ID: Final = "/ipfs/kad/1.0.0"


class Mode(Enum):
    """Whether we answer DHT requests (server) or only ask (client)."""

    AUTO = "auto"  # server when the network reports listen addresses, client otherwise
    SERVER = "server"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class DhtConfig:
    """DHT parameters. Durations are in seconds of ``trio.current_time()``.

    Attributes:
        protocol_id: the stream protocol; ``/ipfs/kad/1.0.0`` joins the public libp2p DHT.
        k: bucket size, replication factor and lookup width.
        alpha: requests in flight per lookup while it converges.
        request_timeout_s: per request, dial to answer; a late peer is skipped by its lookup.
        refresh_interval_s: a bucket not looked up for this long is refreshed.
        max_outbound_requests: requests in flight across all lookups of this node.
        max_inbound_streams_per_peer: concurrent inbound streams one peer may hold.
        max_inbound_streams: concurrent inbound streams in total.
        max_requests_per_stream: requests served on one inbound stream before we close it.
        stream_idle_timeout_s: an inbound stream silent this long is closed.
        verify_queue_size: peers waiting for a liveness ping (newcomers, eviction candidates).
    """

    protocol_id: str = PROTOCOL_ID
    mode: Mode = Mode.AUTO
    k: int = K_VALUE
    alpha: int = ALPHA_VALUE
    request_timeout_s: float = 10.0
    refresh_interval_s: float = 600.0
    provider_ttl_s: float = PROVIDER_TTL_S
    republish_interval_s: float = REPUBLISH_INTERVAL_S
    record_ttl_s: float = RECORD_TTL_S
    max_providers_per_key: int = MAX_PROVIDERS_PER_KEY
    max_provider_records: int = 100_000
    max_records: int = 100_000
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_outbound_requests: int = 64
    max_inbound_streams_per_peer: int = 8
    max_inbound_streams: int = 512
    max_requests_per_stream: int = 64
    stream_idle_timeout_s: float = 60.0
    verify_queue_size: int = 128
    verify_workers: int = 4
    sweep_interval_s: float = 3600.0
