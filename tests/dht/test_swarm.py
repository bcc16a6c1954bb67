"""500 nodes on the in-memory network, under an autojump MockClock.

Measures what the issue asks for: lookups find the true k closest (brute force) in >= 95% of
cases, and with 30% of the nodes crashed provider lookups still succeed in >= 90%. The figures
are printed (run with ``-s``) so they can be quoted.
"""

from __future__ import annotations

import random
import statistics
import time

import trio
import trio.testing

from ccnp2p.dht.config import DhtConfig
from ccnp2p.dht.keys import kad_key, peer_key
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.objects.cid import Cid
from tests.dht.swarm import Swarm

NODES = 500
LOOKUPS = 100
K = 20


async def test_500_nodes(autojump_clock: trio.testing.MockClock) -> None:
    started = time.perf_counter()
    rng = random.Random(2024)
    config = DhtConfig(refresh_interval_s=24 * 3600)
    async with MemoryNetwork(seed=7, latency_s=0.02) as hub, trio.open_nursery() as nursery:
        swarm = Swarm(hub, nursery, config)
        await swarm.join_all(range(1, NODES + 1))
        await trio.sleep(30)
        joined = time.perf_counter()
        nodes = swarm.nodes
        ids = [n.peer_id for n in nodes]

        exact = 0
        hops = []
        for _ in range(LOOKUPS):
            key = rng.randbytes(32)
            node = rng.choice(nodes)
            result = await node.lookup(key)
            target = kad_key(key)
            truth = sorted(
                (p for p in ids if p != node.peer_id), key=lambda p: peer_key(p) ^ target
            )
            exact += set(result.peers) == set(truth[:K])
            hops.append(result.statistics.hops)
        looked_up = time.perf_counter()

        cids = [Cid.for_raw(b"content %d" % i) for i in range(50)]
        providers = rng.sample(range(NODES), len(cids))
        for cid, index in zip(cids, providers, strict=True):
            await nodes[index].provide(cid)
        await trio.sleep(1)
        doomed = rng.sample([i for i in range(NODES) if i not in providers], int(0.3 * NODES))
        for index in doomed:
            swarm.crash(index)
        alive = [n for i, n in enumerate(nodes) if i not in set(doomed)]
        found = 0
        for cid, index in zip(cids, providers, strict=True):
            asker = rng.choice(alive)
            got = await asker.find_providers(cid, limit=1)
            found += [p.peer_id for p in got] == [nodes[index].peer_id]
        nursery.cancel_scope.cancel()
    done = time.perf_counter()
    print(
        f"\n{NODES} nodes: join {joined - started:.1f}s wall; {LOOKUPS} lookups: "
        f"{exact}% exact k closest, median hops {statistics.median(hops)} "
        f"({looked_up - joined:.1f}s wall); providers with 30% crashed: "
        f"{found}/{len(cids)} ({done - looked_up:.1f}s wall); total {done - started:.1f}s"
    )
    assert exact >= 95
    assert found >= 0.9 * len(cids)
