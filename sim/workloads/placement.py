"""``placement``: bytes moved by affinity placement vs a random capable peer vs the reader.

Setup: ``inputs`` files, each added on ``holders_per_input`` random nodes. Every node runs the
source-affinity operator ``sift`` (:mod:`sim.ops`; ``stride`` = input bytes per output byte).

Sizes. Each input is ``input_bytes`` real bytes standing for ``nominal_input_bytes`` (1 GiB by
default): moving real GiBs through one process would take hours and no insight, and every
byte count here (inputs moved, outputs streamed) is proportional to the input size, so bytes are
reported both as measured and scaled by ``nominal_input_bytes / input_bytes``. Link speeds are
*not* scaled (that would slow the DHT's small messages too), so virtual times are those of the
real sizes.

Measured phase: ``reads`` rounds, one after the other. Each round draws 1..``inputs_per_calc``
inputs and a reader that holds none of them; then, for each policy in ``policies`` in turn, all
nodes switch to it (:attr:`ccnp2p.sched.placement.Placer.policy`), the reader defines a fresh
calc (same inputs and stride, the policy as ``tag``) and reads it to the end. So every policy
faces the same world, inputs and reader. Bytes moved per read are measured (see
:mod:`sim.workloads.compute_util`); after each read, cached copies of the inputs are evicted
from non-holders so no policy profits from another's cache.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.objects.cid import Cid
from ccnp2p.sched.placement import PlacementPolicy
from sim import plots
from sim.ops import sim_registry
from sim.stats import distribution, fraction, rounded
from sim.workloads.base import Workload, parse_params, register
from sim.workloads.compute_util import (
    Published,
    ReadOutcome,
    evict,
    executors_of,
    fetched_bytes,
    publish,
    read_calc,
    run_on,
    set_policy,
    wire_bytes,
)
from sim.world import SimNode, World

POLICIES: tuple[PlacementPolicy, ...] = ("affinity", "random", "reader")
GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class PlacementParams:
    inputs: int = 10
    holders_per_input: int = 10
    input_bytes: int = 1 << 20
    nominal_input_bytes: int = GIB
    chunk_bytes: int = 256 << 10
    reads: int = 50
    inputs_per_calc: int = 1
    stride: int = 1024
    policies: tuple[str, ...] = POLICIES
    read_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if not set(self.policies) <= set(POLICIES) or not self.policies:
            raise ValueError(f"policies must be among {', '.join(POLICIES)}")
        if self.inputs < 1 or self.holders_per_input < 1 or self.input_bytes < 1:
            raise ValueError("inputs, holders_per_input and input_bytes must be positive")
        if not 1 <= self.inputs_per_calc <= min(self.inputs, 4):
            raise ValueError("inputs_per_calc must be in 1..min(inputs, 4)")


@dataclass(frozen=True, slots=True)
class PolicyRead:
    round: int
    policy: str
    reader: int
    executors: tuple[int, ...]
    held_inputs: bool  # the executor held every input
    ok: bool
    input_bytes_moved: int
    output_bytes_moved: int
    wire_bytes: int
    last_byte_s: float
    holder_candidate: bool | None  # affinity only: a holder of each input was a candidate


@register("placement")
class PlacementWorkload(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        raw = dict(spec.workload)
        if "policies" in raw:
            raw["policies"] = tuple(raw["policies"])
        self.params = parse_params(PlacementParams, raw)
        self.files: list[Published] = []
        self.reads: list[PolicyRead] = []
        self.registry_shared = sim_registry()

    def registry(self, sn: SimNode) -> OperatorRegistry:
        return self.registry_shared

    @property
    def scale(self) -> float:
        return self.params.nominal_input_bytes / self.params.input_bytes

    def churnable(self, world: World) -> list[int]:
        return []

    async def setup(self, world: World) -> None:
        p = self.params
        pool = self.churnable_pool(world)
        if len(pool) <= p.holders_per_input:
            raise ValueError("not enough nodes for the holders plus a reader")
        for f in range(p.inputs):
            data = np.random.default_rng([self.spec.seed, f]).bytes(p.input_bytes)
            holders = self.rng.sample(pool, p.holders_per_input)
            self.files.append(await publish(world, holders, data, p.chunk_bytes))

    @staticmethod
    def churnable_pool(world: World) -> list[int]:
        seeds = set(world.seeds)
        return [sn.index for sn in world.nodes if sn.index not in seeds]

    async def run(self, world: World, duration_s: float) -> None:
        p = self.params
        pool = self.churnable_pool(world)
        for rnd in range(p.reads):
            chosen = self.rng.sample(self.files, self.rng.randint(1, p.inputs_per_calc))
            held = set().union(*(pub.holders for pub in chosen))
            reader = world.nodes[self.rng.choice([i for i in pool if i not in held])]
            for policy in p.policies:
                await self._one(world, rnd, cast(PlacementPolicy, policy), reader, chosen)
        set_policy(world, "affinity")

    async def _one(
        self,
        world: World,
        rnd: int,
        policy: PlacementPolicy,
        reader: SimNode,
        chosen: list[Published],
    ) -> None:
        p = self.params
        set_policy(world, policy)
        node = reader.node
        assert node is not None
        cids: list[Cid] = []
        candidate: list[bool | None] = [None]

        async def define() -> None:
            params: dict[str, object] = {"stride": p.stride, "tag": f"{rnd}:{policy}"}
            cids.append(await node.calc("sift", [pub.root for pub in chosen], params))
            if policy == "affinity":
                plan = await node.compute.plan(cids[0])
                peers = {c.peer_id for c in plan.candidates}
                candidate[0] = all(
                    any(world.nodes[h].peer_id in peers for h in pub.holders) for pub in chosen
                )

        await run_on(world, reader, define, p.read_timeout_s)
        if not cids:
            return
        fetched0, wire0 = fetched_bytes(world), wire_bytes(world)
        outcome: list[ReadOutcome] = []

        async def read() -> None:
            outcome.append(await read_calc(reader, cids[0], p.read_timeout_s))

        await run_on(world, reader, read, p.read_timeout_s + 1.0)
        execs = tuple(executors_of(world, cids[0]))
        got = outcome[0] if outcome else None
        ok = got is not None and got.ok
        moved_out = got.nbytes if got is not None and execs != (reader.index,) else 0
        pr = PolicyRead(
            round=rnd,
            policy=policy,
            reader=reader.index,
            executors=execs,
            held_inputs=bool(execs) and all(e in pub.holders for pub in chosen for e in execs),
            ok=ok,
            input_bytes_moved=fetched_bytes(world) - fetched0,
            output_bytes_moved=moved_out,
            wire_bytes=wire_bytes(world) - wire0,
            last_byte_s=got.last_byte_s if got is not None else -1.0,
            holder_candidate=candidate[0],
        )
        self.reads.append(pr)
        world.record(
            "calc-read",
            reader.index,
            ok=ok,
            latency_s=pr.last_byte_s,
            nbytes=pr.input_bytes_moved + pr.output_bytes_moved,
            value=float(pr.wire_bytes),
            detail=f"{policy} exec={'+'.join(map(str, execs))}"
            + ("" if got is None or got.ok else f" {got.error}"),
        )
        for pub in chosen:
            evict(world, pub)

    # -- results -------------------------------------------------------------------------------

    def data_bytes(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for r in self.reads:
            out[r.policy] += r.input_bytes_moved + r.output_bytes_moved
        return {pol: out[pol] for pol in self.params.policies}

    def summarize(self, world: World) -> dict[str, Any]:
        p = self.params
        per: dict[str, Any] = {}
        for pol in p.policies:
            mine = [r for r in self.reads if r.policy == pol]
            moved = sum(r.input_bytes_moved + r.output_bytes_moved for r in mine)
            per[pol] = {
                "reads": len(mine),
                "ok": sum(r.ok for r in mine),
                "input_bytes_moved": sum(r.input_bytes_moved for r in mine),
                "output_bytes_moved": sum(r.output_bytes_moved for r in mine),
                "data_bytes_moved": moved,
                "data_bytes_moved_nominal": round(moved * self.scale),
                "data_gib_moved_nominal": rounded(moved * self.scale / GIB),
                "wire_bytes": sum(r.wire_bytes for r in mine),
                "executor_held_inputs_fraction": fraction(
                    sum(r.held_inputs for r in mine), len(mine)
                ),
                "executions_per_read": distribution([float(len(r.executors)) for r in mine]),
                "last_byte_s": distribution([r.last_byte_s for r in mine if r.ok]),
            }
        data = self.data_bytes()
        ratios = {
            f"{pol}_over_affinity": (
                rounded(data[pol] / data["affinity"]) if data["affinity"] else None
            )
            for pol in p.policies
            if pol != "affinity" and "affinity" in data
        }
        aff = [r for r in self.reads if r.policy == "affinity"]
        return {
            "inputs": p.inputs,
            "holders_per_input": p.holders_per_input,
            "input_bytes": p.input_bytes,
            "nominal_input_bytes": p.nominal_input_bytes,
            "scale": rounded(self.scale),
            "stride": p.stride,
            "rounds": p.reads,
            "policies": per,
            "data_bytes_ratio": ratios,
            "affinity_holder_among_candidates_fraction": fraction(
                sum(bool(r.holder_candidate) for r in aff), len(aff)
            ),
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        data = self.data_bytes()
        per_read = {
            pol: [
                (r.input_bytes_moved + r.output_bytes_moved) * self.scale / GIB
                for r in self.reads
                if r.policy == pol
            ]
            for pol in self.params.policies
        }
        return [
            plots.bars(
                out_dir / "placement-bytes.png",
                {pol: b * self.scale / GIB for pol, b in data.items()},
                f"data moved by {self.params.reads} calc reads (nominal GiB)",
                "GiB (nominal)",
            ),
            plots.cdfs(
                out_dir / "placement-per-read.png",
                per_read,
                "data moved per calc read",
                "GiB (nominal)",
            ),
        ]
