"""Content exchange over ``/ccn/transfer/1.0.0`` (spec: ``protocols/ccn-transfer.md``).

The node uses one object, :class:`TransferService`::

    service = TransferService(network, blockstore)           # fetch_config=, max_streams=
    service.set_live_source(registry)                         # LiveRegistry of LiveStreams
    nursery.start_soon(service.run)                           # serve; host fetches

    async with service.fetch(root, providers, offset=0, length=None) as download:
        async for data in download:                           # verified bytes, in order
            ...
    download.statistics                                       # bytes per peer, retries...

    async with service.open_range(peer, root, offset, length) as reader:
        async for data in reader: ...                         # one source; live streams too
        await reader.seek(offset, length)                     # same stream, another range

    service.statistics()                                      # server + all fetches

``fetch`` pulls a stored file's chunks from several providers in parallel (favouring the fastest,
bounded in flight and in its reorder buffer), verifies each against the file tree and stores it;
a provider that dies or lies costs only the chunks it held. ``open_range`` reads from one peer
in range mode, which is also how a subscriber follows a :class:`LiveStream` whose producer is
still running. Every transfer is credit-controlled by a :class:`CreditWindow` (a pure state
machine that grows to the link's bandwidth-delay product up to a cap), and ends with an explicit
DONE or ABORT message.
"""

from __future__ import annotations

from ccnp2p.transfer.client import RangeReader, WindowConfig
from ccnp2p.transfer.errors import LiveStreamFailed, TransferAborted, TransferFailed
from ccnp2p.transfer.fetch import FetchConfig, FetchStatistics
from ccnp2p.transfer.live import LiveRegistry, LiveState, LiveStream
from ccnp2p.transfer.messages import PROTOCOL_ID, AbortCode
from ccnp2p.transfer.service import Download, TransferService, TransferStatistics
from ccnp2p.transfer.sources import BlockstoreSource, ChunkSource, RangeSource, SourceChunk
from ccnp2p.transfer.window import CreditWindow, FlowControlError, SendCredit

__all__ = [
    "PROTOCOL_ID",
    "AbortCode",
    "BlockstoreSource",
    "ChunkSource",
    "CreditWindow",
    "Download",
    "FetchConfig",
    "FetchStatistics",
    "FlowControlError",
    "LiveRegistry",
    "LiveState",
    "LiveStream",
    "LiveStreamFailed",
    "RangeReader",
    "RangeSource",
    "SendCredit",
    "SourceChunk",
    "TransferAborted",
    "TransferFailed",
    "TransferService",
    "TransferStatistics",
    "WindowConfig",
]
