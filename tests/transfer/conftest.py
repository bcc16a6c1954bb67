"""Fixtures for transfer tests: nodes (host + blockstore + service) on the in-memory network.

Blocking blockstore calls go through :func:`ccnp2p.store.aio.run_blocking`, which runs them
inline under ``MockClock`` (a worker thread would let virtual time jump past timeouts) and in
worker threads otherwise. The libp2p test uses the real clock and real threads.
"""

from __future__ import annotations

import io
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing

from ccnp2p.net.memory import MemoryHost, MemoryNetwork
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.files import import_stream
from ccnp2p.transfer import FetchConfig, TransferService


@pytest.fixture
def clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


@dataclass
class Node:
    host: MemoryHost
    store: Blockstore
    service: TransferService

    @property
    def peer_id(self) -> bytes:
        return self.host.peer_id


def make_data(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def put_file(store: Blockstore, data: bytes, chunk_bytes: int = 64 * 1024) -> Cid:
    return import_stream(store, io.BytesIO(data), chunk_bytes=chunk_bytes).root


@dataclass
class Cluster:
    hub: MemoryNetwork
    nursery: trio.Nursery
    tmp: Path
    count: int = 0

    async def node(
        self,
        *,
        up: float | None = None,
        down: float | None = None,
        config: FetchConfig | None = None,
    ) -> Node:
        self.count += 1
        host = self.hub.add_host(
            Identity.from_seed_int(100 + self.count),
            upload_bytes_per_s=up,
            download_bytes_per_s=down,
        )
        store = Blockstore(self.tmp / f"node{self.count}", durable=False)
        service = TransferService(host, store, fetch_config=config)
        await self.nursery.start(service.run)
        for other in self.hub._hosts.values():
            if other is not host:
                host.add_peer_addrs(other.peer_id, other.listen_addrs())
                other.add_peer_addrs(host.peer_id, host.listen_addrs())
        return Node(host, store, service)


@asynccontextmanager
async def open_cluster(tmp: Path, latency_s: float = 0.01) -> AsyncIterator[Cluster]:
    async with MemoryNetwork(seed=3, latency_s=latency_s) as hub, trio.open_nursery() as nursery:
        yield Cluster(hub, nursery, tmp)
        nursery.cancel_scope.cancel()


@pytest.fixture
def chunks_of() -> Iterator[Callable[[bytes, int], list[bytes]]]:
    yield lambda data, n: [data[i : i + n] for i in range(0, len(data), n)]
