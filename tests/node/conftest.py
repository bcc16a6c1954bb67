"""Small networks of real Nodes over the in-memory network (virtual time)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ccnp2p.compute.api import OperatorImpl
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.node import Node
from ccnp2p.objects.keys import Identity
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.pins import PinSet
from tests.node.ops_for_tests import test_operators

CPU_BOX = Hardware(cpu=2, memory=8 << 30, bandwidth=10_000_000)
GPU_BOX = Hardware(cpu=2, memory=8 << 30, gpu="sim-gpu", gpu_memory=16 << 30, bandwidth=10_000_000)


@asynccontextmanager
async def memory_nodes(
    tmp_path: Path,
    n: int,
    *,
    latency_s: float = 0.01,
    hardware: Sequence[Hardware] = (),
    ops: Callable[[int], list[OperatorImpl]] = lambda i: test_operators(),
) -> AsyncIterator[list[Node]]:
    """``n`` nodes on one simulated network, each bootstrapped to node 0."""
    async with MemoryNetwork(seed=1, latency_s=latency_s) as hub, trio.open_nursery() as nursery:
        nodes = []
        for i in range(n):
            ident = Identity.from_seed_int(1000 + i)
            root = tmp_path / f"node{i}"
            root.mkdir()
            node = Node(
                ident,
                Blockstore(root, durable=False),
                PinSet(root / "store.sqlite"),
                hub.add_host(ident),
                seed=i,
                threaded_io=False,
                registry=OperatorRegistry(ops(i)),
                hardware=hardware[i] if i < len(hardware) else CPU_BOX,
                wall_time=trio.current_time,
            )
            await nursery.start(node.run)
            nodes.append(node)
        seed = nodes[0]
        for node in nodes[1:]:
            await node.bootstrap([PeerInfo(seed.peer_id, tuple(seed.network.listen_addrs()))])
        for node in nodes:
            await node.compute.announce()  # capability records now that the DHT is connected
        yield nodes
        nursery.cancel_scope.cancel()
