"""``dht-lookups``: FIND_NODE lookups at scale, checked against brute force.

Random alive nodes look up random keys (Poisson arrivals, ``lookups_per_node_per_min`` per
node). Each lookup is the real :meth:`KadDht.lookup`; when it ends, its result is compared with
the true ``k`` closest alive nodes (:meth:`World.true_closest`, excluding the origin).

Measured: hops (the keyspace path length to the closest peer found, as the lookup counts it),
virtual latency, peers queried, and accuracy: how much of the true closest set was found
(``overlap``), how often all of it was (``exact``) and how often the single closest was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.keys import kad_key
from ccnp2p.errors import CcnError
from sim import plots
from sim.stats import distribution, fraction, histogram, rounded
from sim.workloads.base import Workload, parse_params, register
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class LookupParams:
    lookups_per_node_per_min: float = 1.0
    check_closest: bool = True


@dataclass(frozen=True, slots=True)
class LookupOutcome:
    hops: int
    latency_s: float
    queried: int
    overlap: float
    exact: bool
    closest_found: bool


@register("dht-lookups")
class DhtLookups(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.params = parse_params(LookupParams, spec.workload)
        self.outcomes: list[LookupOutcome] = []
        self.failures = 0
        self.empty = OperatorRegistry([])

    def registry(self, sn: SimNode) -> OperatorRegistry:
        # DHT lookups only: nodes run no operators, so they publish no capability or operator
        # provider records (a 10,000-node network announcing 12 built-ins each at once would
        # measure those announcements, not the lookups).
        return self.empty

    async def run(self, world: World, duration_s: float) -> None:
        rate = self.params.lookups_per_node_per_min * len(world.nodes) / 60.0

        def fire() -> None:
            origin = world.random_alive(self.rng)
            target = self.rng.randbytes(32)
            self.launch(world, origin, lambda: self._lookup(world, origin, target))

        await self.poisson(world, rate, duration_s, fire)

    async def _lookup(self, world: World, origin: SimNode, target: bytes) -> None:
        node = origin.node
        assert node is not None
        t0 = world.now()
        try:
            result = await node.dht.lookup(target)
        except CcnError as exc:
            self.failures += 1
            world.record("lookup", origin.index, ok=False, detail=type(exc).__name__)
            return
        latency = world.now() - t0
        stats = result.statistics
        overlap, exact, first = 1.0, True, True
        k = world.spec.dht.k
        if self.params.check_closest:
            truth = [
                world.nodes[i].peer_id
                for i in world.true_closest(kad_key(target), k + 1)
                if i != origin.index
            ][:k]
            got = set(result.peers)
            overlap = len(got.intersection(truth)) / len(truth) if truth else 1.0
            exact = got == set(truth)
            first = bool(result.peers) and bool(truth) and result.peers[0] == truth[0]
        outcome = LookupOutcome(stats.hops, latency, stats.queried, overlap, exact, first)
        self.outcomes.append(outcome)
        world.record(
            "lookup",
            origin.index,
            ok=bool(result.peers),
            latency_s=latency,
            hops=stats.hops,
            queried=stats.queried,
            value=overlap,
            detail="exact" if exact else "",
        )

    def summarize(self, world: World) -> dict[str, Any]:
        out = self.outcomes
        n = len(out)
        return {
            "lookups_launched": self.launched,
            "lookups_skipped": self.skipped,
            "lookups_completed": n,
            "lookups_failed": self.failures,
            "hops": distribution([o.hops for o in out]),
            "hops_histogram": histogram([o.hops for o in out]),
            "latency_s": distribution([o.latency_s for o in out]),
            "queried": distribution([o.queried for o in out]),
            "accuracy": {
                "checked": self.params.check_closest,
                "mean_overlap": rounded(sum(o.overlap for o in out) / n) if n else 0.0,
                "exact_fraction": fraction(sum(o.exact for o in out), n),
                "closest_found_fraction": fraction(sum(o.closest_found for o in out), n),
            },
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        hops = [float(o.hops) for o in self.outcomes]
        lat = [o.latency_s * 1000 for o in self.outcomes]
        return [
            plots.cdf(out_dir / "lookup-hops.png", hops, "lookup hops", "hops", discrete=True),
            plots.cdf(out_dir / "lookup-latency.png", lat, "lookup latency", "virtual ms"),
            plots.churn_timeline(out_dir / "churn.png", world.recorder),
        ]
