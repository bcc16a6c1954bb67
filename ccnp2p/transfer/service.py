"""The transfer service: what the node composes (serve, fetch, subscribe, statistics)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import trio
from trio import TaskStatus  # type: ignore[attr-defined]

from ccnp2p.errors import CcnError
from ccnp2p.net.base import Network
from ccnp2p.objects.cid import Cid
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.client import RangeReader, WindowConfig, open_range
from ccnp2p.transfer.errors import TransferFailed
from ccnp2p.transfer.fetch import FetchConfig, FetchStatistics, MultiFetch
from ccnp2p.transfer.server import ServerStatistics, TransferServer
from ccnp2p.transfer.sources import BlockstoreSource, ChunkSource

logger = logging.getLogger(__name__)

OUTPUT_BUFFER_CHUNKS: Final = 2


@dataclass(frozen=True, slots=True)
class TransferStatistics:
    """Service-wide counters: the sending side and all finished and running fetches."""

    server: ServerStatistics
    fetch: FetchStatistics
    fetches_active: int
    fetches_failed: int


class Download:
    """An in-order byte iterator over a running fetch; ``aclose`` (or ``async with``) stops it.

    Attributes:
        statistics: this fetch's counters (bytes per peer, retries, bad chunks...).
    """

    def __init__(self, fetch: MultiFetch, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        self._fetch = fetch
        self._receive = receive
        self.cancel_scope = trio.CancelScope()
        self.error: TransferFailed | None = None

    @property
    def statistics(self) -> FetchStatistics:
        return self._fetch.stats

    def __aiter__(self) -> Download:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            if self.error is not None:
                raise self.error from None
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stop the fetch (idempotent); bytes not read yet are dropped."""
        self.cancel_scope.cancel()
        await self._receive.aclose()

    async def __aenter__(self) -> Download:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class TransferService:
    """Serves and fetches content over ``/ccn/transfer/1.0.0``.

    Args:
        network: the node's Network seam.
        store: the node's blockstore (served, and where fetched chunks are stored).
        fetch_config: bounds for :meth:`fetch`.
        max_streams: inbound transfers served at once (more are refused with OVERLOADED).
    """

    def __init__(
        self,
        network: Network,
        store: Blockstore,
        *,
        fetch_config: FetchConfig | None = None,
        max_streams: int = 256,
    ) -> None:
        self.network = network
        self.store = store
        self.fetch_config = fetch_config or FetchConfig()
        self._live: ChunkSource | None = None
        self._server = TransferServer(store, [BlockstoreSource(store)], max_streams=max_streams)
        self._nursery: trio.Nursery | None = None
        self._fetch_totals = FetchStatistics()
        self._active: set[MultiFetch] = set()
        self._failed = 0

    def set_live_source(self, source: ChunkSource) -> None:
        """Serve live streams (e.g. a :class:`~ccnp2p.transfer.live.LiveRegistry`) before
        stored files: a GET for a root the live source has is answered from it."""
        self._live = source
        self._server.sources = [source, BlockstoreSource(self.store)]

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve the protocol and host fetches until cancelled (start it in the node's nursery)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.network.set_handler(m.PROTOCOL_ID, self._server.handle)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    def fetch(
        self,
        root: Cid,
        providers: Sequence[bytes],
        offset: int = 0,
        length: int | None = None,
        *,
        config: FetchConfig | None = None,
    ) -> Download:
        """Fetch ``[offset, offset + length)`` of the file ``root`` from ``providers`` at once.

        Chunks found in the local blockstore are not fetched. Iterating the result yields the
        bytes in order; it raises :class:`TransferFailed` if no provider can deliver them.
        """
        if self._nursery is None:
            raise RuntimeError("TransferService.run() must be running")
        fetch = MultiFetch(
            self.network, self.store, root, providers, offset, length, config or self.fetch_config
        )
        send, receive = trio.open_memory_channel[bytes](OUTPUT_BUFFER_CHUNKS)
        download = Download(fetch, receive)
        self._nursery.start_soon(self._run_fetch, fetch, send, download)
        return download

    async def _run_fetch(
        self, fetch: MultiFetch, send: trio.MemorySendChannel[bytes], download: Download
    ) -> None:
        self._active.add(fetch)
        try:
            with download.cancel_scope:
                await fetch.run(send)
        except TransferFailed as exc:
            download.error = exc
            self._failed += 1
        except (CcnError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            download.error = TransferFailed(f"fetch of {fetch.root} failed: {exc!r}")
            self._failed += 1
        except Exception as exc:  # a bug must fail this fetch, not the node
            logger.exception("fetch of %s crashed", fetch.root)
            download.error = TransferFailed(f"fetch of {fetch.root} crashed: {exc!r}")
            self._failed += 1
        finally:
            await send.aclose()
            self._active.discard(fetch)
            self._fetch_totals.add(fetch.stats)

    def open_range(
        self,
        peer: bytes,
        root: Cid,
        offset: int = 0,
        length: int | None = None,
        *,
        window: WindowConfig | None = None,
    ) -> AbstractAsyncContextManager[RangeReader]:
        """Single-source range read with :meth:`RangeReader.seek`; also how a live stream is
        subscribed to (the reader waits for data the producer has not made yet)."""
        return open_range(self.network, peer, root, offset, length, window=window)

    def statistics(self) -> TransferStatistics:
        totals = FetchStatistics()
        totals.add(self._fetch_totals)
        for fetch in self._active:
            totals.add(fetch.stats)
        return TransferStatistics(
            server=self._server.stats,
            fetch=totals,
            fetches_active=len(self._active),
            fetches_failed=self._failed,
        )


async def read_all(chunks: AsyncIterator[bytes], limit: int = 1 << 31) -> bytes:
    """Join an async byte iterator (bounded by ``limit`` bytes); a convenience for callers."""
    out = bytearray()
    async for data in chunks:
        out += data
        if len(out) > limit:
            raise ValueError("more bytes than the limit")
    return bytes(out)
