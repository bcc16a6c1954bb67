"""The simulated world: real :class:`~ccnp2p.node.Node` objects on one :class:`MemoryNetwork`.

Theory of operation
-------------------
Only links and the clock are simulated. Each :class:`SimNode` is one machine: an identity, an
in-memory blockstore that survives restarts (the "disk"), a profile from the
:class:`~sim.topology.Topology`, and the current *incarnation*: a ``Node`` over a fresh
``MemoryHost``, running in its own cancel scope with a nursery for the operations the workload
starts on it (lookups, fetches). A crash kills the host (peers see resets, or nothing when
silent) and cancels that scope, so the node's background loops and its in-flight operations stop
with it, as they would when the process dies. A restart builds a new ``Node`` over the same
blockstore, rejoins through the seed nodes and re-announces what the node had pinned.

Joining, by ``bootstrap.mode``:

* ``protocol``: the first ``seeds`` nodes start at t=0; every other node starts at a random time
  in ``join_window_s`` and runs the real DHT bootstrap (connect to the seeds, look itself up).
* ``oracle``: all nodes start at t=0 with empty tables, then each table is filled from global
  knowledge with up to ``k`` random peers per non-empty bucket, as if the network had run for a
  while. Cheap (no lookups), so 10,000-node runs spend their time on the workload.

Compute: every node advertises the same simulated hardware (:func:`sim_hardware`: 4 cores, 8 GiB,
a 24 GiB GPU when its profile has one, its upload rate as bandwidth) so capability records do not
depend on the machine running the simulation. A workload may install its own operators
(:meth:`~sim.workloads.base.Workload.registry`); by default nodes run the built-ins.

Ground truth: :meth:`World.true_closest` answers "which alive nodes are really the ``k``
closest to this key" with numpy over the top 64 bits of every peer key (exact unless two keys
share those bits, which is checked).
"""

from __future__ import annotations

import bisect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np
import trio

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.config import DhtConfig
from ccnp2p.dht.keys import KEY_BITS, peer_key
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.errors import CcnError
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.node import Node
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.memblocks import MemBlocks
from sim.links import IdentifyingHost
from sim.recorder import Recorder
from sim.spec import BootstrapMode, LatencyModel, ScenarioSpec
from sim.topology import NodeProfile, Topology

if TYPE_CHECKING:
    from trio_typing import TaskStatus

log = logging.getLogger(__name__)

REJOIN_FALLBACK_PEERS = 3
SIM_CPUS = 4
SIM_MEMORY_BYTES = 8 << 30
SIM_GPU_MEMORY_BYTES = 24 << 30

RegistryFor = Callable[["SimNode"], OperatorRegistry | None]


def sim_hardware(profile: NodeProfile) -> Hardware:
    """What a simulated machine advertises (independent of the host running the simulation)."""
    gpu = profile.gpus > 0
    return Hardware(
        cpu=SIM_CPUS,
        memory=SIM_MEMORY_BYTES,
        gpu="sim-gpu" if gpu else "",
        gpu_memory=SIM_GPU_MEMORY_BYTES if gpu else 0,
        bandwidth=int(profile.up_bytes_per_s or 0),
    )


@dataclass(eq=False)
class SimNode:
    """One simulated machine across its incarnations."""

    index: int
    identity: Identity
    blocks: MemBlocks
    profile: NodeProfile
    key: int
    node: Node | None = None
    alive: bool = False
    incarnation: int = 0
    scope: trio.CancelScope | None = None
    nursery: trio.Nursery | None = None
    pinned: list[Cid] = field(default_factory=list)

    @property
    def peer_id(self) -> bytes:
        return self.identity.peer_id

    def info(self) -> PeerInfo:
        assert self.node is not None
        return PeerInfo(self.peer_id, tuple(self.node.network.listen_addrs()))


class World:
    """Builds and drives the nodes of one run. Enter :attr:`hub` before :meth:`start`."""

    def __init__(
        self, spec: ScenarioSpec, recorder: Recorder, registry_for: RegistryFor | None = None
    ) -> None:
        self.spec = spec
        self.recorder = recorder
        self.registry_for = registry_for
        self._builtins: OperatorRegistry | None = None
        self.rng = random.Random(f"world:{spec.seed}")
        self.topology = Topology(spec.topology, spec.nodes, spec.seed)
        lat = spec.topology.latency
        if lat.model is LatencyModel.CONSTANT:
            self.hub = MemoryNetwork(seed=spec.seed, latency_s=lat.ms / 1000.0)
        else:
            self.hub = MemoryNetwork(seed=spec.seed, latency_fn=self.topology.latency_s)
        self.dht_config = DhtConfig(
            k=spec.dht.k, alpha=spec.dht.alpha, request_timeout_s=spec.dht.request_timeout_s
        )
        self.nodes: list[SimNode] = []
        for i, profile in enumerate(self.topology.profiles):
            ident = Identity.from_seed_int((spec.seed << 32) + i + 1)
            key = peer_key(ident.peer_id)
            self.nodes.append(SimNode(i, ident, MemBlocks(), profile, key))
            self.topology.bind(ident.peer_id, i)
        self.by_peer = {sn.peer_id: sn for sn in self.nodes}
        self.listen_addrs: dict[bytes, tuple[str, ...]] = {}
        self.seeds = list(range(spec.bootstrap.seeds))
        self._keys64 = np.array([sn.key >> (KEY_BITS - 64) for sn in self.nodes], dtype=np.uint64)
        self._alive = np.zeros(len(self.nodes), dtype=bool)
        self._root: trio.Nursery | None = None
        self.stopping = False

    # -- time ---------------------------------------------------------------------------------

    @staticmethod
    def now() -> float:
        return trio.current_time()

    def record(self, event: str, node: int = -1, **fields: object) -> None:
        self.recorder.add(trio.current_time(), event, node, **fields)

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, root: trio.Nursery) -> None:
        """Start every node and join the network (see the module docstring)."""
        self._root = root
        if self.spec.bootstrap.mode is BootstrapMode.ORACLE:
            await self._start_oracle()
        else:
            await self._start_protocol()
        await trio.sleep(self.spec.bootstrap.settle_s)

    async def _start_protocol(self) -> None:
        for i in self.seeds:
            await self._launch(self.nodes[i])
        for i in self.seeds[1:]:
            await self._join(self.nodes[i], [self.nodes[0].info()])
        others = [sn for sn in self.nodes if sn.index not in set(self.seeds)]
        window = self.spec.bootstrap.join_window_s
        times = sorted(self.rng.uniform(0.0, window) for _ in others)
        seed_infos = [self.nodes[i].info() for i in self.seeds]
        start = trio.current_time()
        async with trio.open_nursery() as joins:
            for sn, at in zip(others, times, strict=True):
                await trio.sleep_until(start + at)
                await self._launch(sn)
                joins.start_soon(self._join, sn, seed_infos)

    async def _join(self, sn: SimNode, peers: list[PeerInfo]) -> None:
        assert sn.node is not None
        t0 = trio.current_time()
        try:
            known = await sn.node.bootstrap(peers)
        except CcnError as exc:
            self.record("join", sn.index, ok=False, detail=str(exc)[:80])
            return
        self.record(
            "join", sn.index, ok=known > 0, latency_s=trio.current_time() - t0, value=float(known)
        )

    async def _start_oracle(self) -> None:
        for sn in self.nodes:
            await self._launch(sn)
        # Let every node's first refresh run against its empty table before filling it, so the
        # filled tables count as fresh (next refresh after refresh_interval_s).
        await trio.sleep(0.001)
        self.fill_tables_from_oracle()

    def fill_tables_from_oracle(self) -> None:
        k = self.spec.dht.k
        order = sorted(self.nodes, key=lambda sn: sn.key)
        keys = [sn.key for sn in order]
        now = trio.current_time()
        for sn in self.nodes:
            assert sn.node is not None
            table, host = sn.node.dht.table, sn.node.network
            for depth in range(KEY_BITS):
                shift = KEY_BITS - 1 - depth
                flipped = (sn.key >> shift) ^ 1
                lo = bisect.bisect_left(keys, flipped << shift)
                hi = bisect.bisect_left(keys, (flipped + 1) << shift)
                if hi > lo:
                    picks = range(lo, hi) if hi - lo <= k else self.rng.sample(range(lo, hi), k)
                    for j in picks:
                        peer = order[j].info()
                        host.add_peer_addrs(peer.peer_id, peer.addrs)
                        table.update(peer.peer_id, peer.addrs, now)
                # Stop once no other node shares our prefix one bit deeper.
                same = sn.key >> shift
                lo2 = bisect.bisect_left(keys, same << shift)
                hi2 = bisect.bisect_left(keys, (same + 1) << shift)
                if hi2 - lo2 <= 1:
                    break
        self.record("oracle-fill", value=float(len(self.nodes)))

    async def _launch(self, sn: SimNode) -> None:
        """Start a new incarnation of ``sn`` (fresh host and Node over the same blockstore)."""
        assert self._root is not None
        if sn.incarnation == 0:
            host = self.hub.add_host(
                sn.identity,
                upload_bytes_per_s=sn.profile.up_bytes_per_s,
                download_bytes_per_s=sn.profile.down_bytes_per_s,
            )
        else:
            host = self.hub.restart(sn.peer_id)
        sn.incarnation += 1
        self.listen_addrs[sn.peer_id] = tuple(host.listen_addrs())
        sn.node = Node(
            sn.identity,
            cast(Blockstore, sn.blocks),  # duck-typed: see ccnp2p.store.memblocks
            None,
            IdentifyingHost(host, self.listen_addrs),
            dht_config=self.dht_config,
            seed=(self.spec.seed * 1_000_003 + sn.index) * 64 + sn.incarnation,
            threaded_io=False,
            registry=self._registry(sn),
            hardware=sim_hardware(sn.profile),
            wall_time=trio.current_time,
        )
        await self._root.start(self._incarnation, sn, sn.node)
        sn.alive = True
        self._alive[sn.index] = True
        if sn.incarnation == 1:
            self.record("node-start", sn.index)

    def _registry(self, sn: SimNode) -> OperatorRegistry:
        registry = self.registry_for(sn) if self.registry_for is not None else None
        if registry is not None:
            return registry
        if self._builtins is None:  # shared: a registry only maps operator CIDs to code
            self._builtins = OperatorRegistry.with_builtins(entry_points_too=False)
        return self._builtins

    async def _incarnation(
        self, sn: SimNode, node: Node, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                await nursery.start(node.run)
                sn.scope, sn.nursery = scope, nursery
                task_status.started()

    def crash(self, index: int, *, silent: bool = True) -> bool:
        sn = self.nodes[index]
        if not sn.alive:
            return False
        sn.alive = False
        self._alive[index] = False
        self.hub.crash(sn.peer_id, silent=silent)
        assert sn.scope is not None
        sn.scope.cancel()
        sn.scope = sn.nursery = None
        self.record("crash", index, detail="silent" if silent else "reset")
        return True

    async def restart(self, index: int) -> bool:
        """Bring a crashed node back: new incarnation, rejoin, re-announce its pins."""
        sn = self.nodes[index]
        if sn.alive:
            return False
        await self._launch(sn)
        self.record("restart", index)
        self.spawn(sn, self._rejoin, sn)
        return True

    async def _rejoin(self, sn: SimNode) -> None:
        peers = [self.nodes[i].info() for i in self.seeds if self.nodes[i].alive and i != sn.index]
        if not peers:
            alive = [i for i in self.alive_indices() if i != sn.index]
            chosen = self.rng.sample(alive, min(REJOIN_FALLBACK_PEERS, len(alive)))
            peers = [self.nodes[i].info() for i in chosen]
        await self._join(sn, peers)
        assert sn.node is not None
        for cid in sn.pinned:
            await sn.node.provide(cid)

    def spawn(self, sn: SimNode, fn: Callable[..., Awaitable[object]], *args: object) -> bool:
        """Run ``fn(*args)`` as part of ``sn``'s current incarnation (dies with it)."""
        if not sn.alive or sn.nursery is None:
            return False
        sn.nursery.start_soon(fn, *args)
        return True

    # -- partitions ---------------------------------------------------------------------------

    def partition(self, groups: int) -> None:
        indices = list(range(len(self.nodes)))
        self.rng.shuffle(indices)
        parts = [[self.nodes[i].peer_id for i in indices[g::groups]] for g in range(max(groups, 1))]
        self.hub.partition(parts)
        self.record("partition", value=float(groups))

    def heal(self) -> None:
        self.hub.heal()
        self.record("heal")

    # -- queries ------------------------------------------------------------------------------

    def alive_indices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self._alive)]

    def random_alive(self, rng: random.Random, exclude: frozenset[int] = frozenset()) -> SimNode:
        alive = self.alive_indices()
        choices = [i for i in alive if i not in exclude] if exclude else alive
        if not choices:
            raise LookupError("no alive node")
        return self.nodes[choices[rng.randrange(len(choices))]]

    def true_closest(self, target: int, count: int) -> list[int]:
        """Indices of the ``count`` alive nodes closest to ``target`` (a keyspace int)."""
        alive = np.flatnonzero(self._alive)
        if alive.size == 0:
            return []
        t64 = np.uint64(target >> (KEY_BITS - 64))
        dist = self._keys64[alive] ^ t64
        take = min(count + 1, alive.size)
        part = (
            np.argpartition(dist, take - 1)[:take] if take < alive.size else np.arange(alive.size)
        )
        cand = alive[part]
        cand_sorted = sorted(cand.tolist(), key=lambda i: self.nodes[i].key ^ target)
        if take < alive.size or len(set(self._keys64[cand].tolist())) < len(cand):
            # Exactness check: the boundary must not tie in the top 64 bits.
            cutoff = int(dist[part].max())
            if int(np.count_nonzero(dist <= cutoff)) > take:
                full = sorted(alive.tolist(), key=lambda i: self.nodes[i].key ^ target)
                return full[:count]
        return cand_sorted[:count]
