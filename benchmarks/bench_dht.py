"""Benchmark: DHT lookups on a loopback testnet of real daemons, and memory per simulated node.

1. Starts ``--daemons`` daemons (separate processes, real libp2p on 127.0.0.1), joins them from
   this process with one more Node, and runs ``--lookups`` FIND_NODE lookups for random keys,
   one at a time (latency) and ``--concurrency`` at a time (throughput).
2. Builds ``--sim-nodes`` Nodes on the in-memory network, bootstraps them, and reports the
   Python heap per node (tracemalloc) and the process RSS growth per node.

    python -m benchmarks.bench_dht [--daemons 20] [--lookups 200] [--sim-nodes 1000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import trio
import trio.testing

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.net.libp2p import open_libp2p_network
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.node import Node, parse_peer_multiaddr
from ccnp2p.objects.keys import Identity
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.testnet import Testnet

HW = Hardware(cpu=2, memory=8 << 30)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def lookups_against(addrs: list[str], n: int, concurrency: int, work: Path) -> None:
    ident = Identity.generate()
    async with open_libp2p_network(ident, ["/ip4/127.0.0.1/tcp/0"]) as net:
        node = Node(
            ident,
            Blockstore(work / "bench-node"),
            None,
            net,
            registry=OperatorRegistry(),
            hardware=HW,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await node.bootstrap([parse_peer_multiaddr(a) for a in addrs])
            rng = random.Random(1)
            latencies: list[float] = []
            hops: list[int] = []
            t0 = time.perf_counter()
            for _ in range(n):
                start = time.perf_counter()
                res = await node.dht.lookup(rng.randbytes(32))
                latencies.append(time.perf_counter() - start)
                hops.append(res.statistics.hops)
            seq_s = time.perf_counter() - t0

            async def worker(count: int) -> None:
                for _ in range(count):
                    await node.dht.lookup(rng.randbytes(32))

            t0 = time.perf_counter()
            async with trio.open_nursery() as inner:
                for _ in range(concurrency):
                    inner.start_soon(worker, n // concurrency)
            par_s = time.perf_counter() - t0
            med = statistics.median(latencies) * 1000
            p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1] * 1000
            print(f"sequential: {n / seq_s:7.1f} lookups/s, median {med:.1f} ms, p99 {p99:.1f} ms")
            print(f"median hops {statistics.median(hops)}, table size {len(node.dht.table)}")
            conc_rate = (n // concurrency) * concurrency / par_s
            print(f"{concurrency} concurrent: {conc_rate:7.1f} lookups/s")
            nursery.cancel_scope.cancel()


async def sim_memory(n: int, work: Path) -> None:
    tracemalloc.start()
    rss0 = rss_bytes()
    heap0 = tracemalloc.get_traced_memory()[0]
    async with MemoryNetwork(seed=1, latency_s=0.01) as hub, trio.open_nursery() as nursery:
        nodes = []
        for i in range(n):
            ident = Identity.from_seed_int(50_000 + i)
            node = Node(
                ident,
                Blockstore(work / f"sim{i}", durable=False),
                None,
                hub.add_host(ident),
                seed=i,
                threaded_io=False,
                registry=OperatorRegistry(),
                hardware=HW,
                wall_time=trio.current_time,
            )
            await nursery.start(node.run)
            nodes.append(node)
        first = PeerInfo(nodes[0].peer_id, tuple(nodes[0].network.listen_addrs()))
        for node in nodes[1:]:
            await node.bootstrap([first])
        await trio.sleep(120)  # let routing-table verification settle (virtual time)
        heap = tracemalloc.get_traced_memory()[0] - heap0
        rss = rss_bytes() - rss0
        tables = statistics.mean(len(x.dht.table) for x in nodes)
        print(
            f"{n} in-memory nodes: {heap / n / 1024:.1f} KiB Python heap per node, "
            f"{rss / n / 1024:.1f} KiB RSS per node, mean routing table {tables:.0f} peers"
        )
        nursery.cancel_scope.cancel()
    tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemons", type=int, default=20)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--sim-nodes", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccn-bench-dht-") as tmp:
        work = Path(tmp)
        if args.daemons:
            t0 = time.perf_counter()
            with Testnet(work / "net", args.daemons) as net:
                print(f"{args.daemons} daemons up in {time.perf_counter() - t0:.1f} s")
                addrs = [d.addr for d in net.daemons]
                trio.run(lookups_against, addrs, args.lookups, args.concurrency, work)
        if args.sim_nodes:
            trio.run(
                sim_memory,
                args.sim_nodes,
                work,
                clock=trio.testing.MockClock(autojump_threshold=0),
            )


if __name__ == "__main__":
    main()
