"""``placement-dag``: our DAG placement vs the best placement found by brute force.

Each of ``trials`` trials draws a small DAG (:func:`sim.bruteforce.random_dag`: 3-6 ``sift``
calcs, 2-3 levels, each file on 1-2 nodes, a reader holding none), publishes its files on their
holders, defines the calcs on the reader and reads the root to the end through the network,
with affinity placement. The executors each calc actually ran on (from the nodes' executor
history) form an assignment; its cost in bytes moved is compared with the cheapest of all
``nodes ** calcs`` assignments (:func:`sim.bruteforce.best_assignment`), both priced by the same
model (:func:`sim.bruteforce.cost`): the ratio is 1.0 when the network placed optimally.

Every trial has its own seed (``scenario seed : trial``) and fresh files, so trials do not share
cached data; the network (identities, links, DHT) is the same for all of them. Measured input
bytes fetched over ``/ccn/transfer`` are reported beside the model's file bytes as a check.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.objects.cid import Cid
from sim import plots
from sim.bruteforce import Dag, best_assignment, cost, random_dag
from sim.ops import sim_registry
from sim.stats import distribution, fraction, rounded
from sim.workloads.base import Workload, parse_params, register
from sim.workloads.compute_util import (
    Published,
    ReadOutcome,
    executors_of,
    fetched_bytes,
    publish,
    read_calc,
    run_on,
)
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class DagParams:
    trials: int = 40
    file_sizes: tuple[int, ...] = (32 << 10, 64 << 10, 128 << 10, 256 << 10)
    strides: tuple[int, ...] = (1, 4, 64)
    chunk_bytes: int = 64 << 10
    min_calcs: int = 3
    max_calcs: int = 6
    read_timeout_s: float = 300.0


@dataclass(frozen=True, slots=True)
class Trial:
    index: int
    calcs: int
    depth: int
    ours: int
    best: int
    assignment: tuple[int, ...]
    best_assignment: tuple[int, ...]
    ok: bool
    files_moved_measured: int

    @property
    def ratio(self) -> float:
        if self.best == 0:
            return 1.0 if self.ours == 0 else float("inf")
        return self.ours / self.best


@register("placement-dag")
class PlacementDag(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        raw = dict(spec.workload)
        for key in ("file_sizes", "strides"):
            if key in raw:
                raw[key] = tuple(raw[key])
        self.params = parse_params(DagParams, raw)
        self.trials: list[Trial] = []
        self.registry_shared = sim_registry()

    def registry(self, sn: SimNode) -> OperatorRegistry:
        return self.registry_shared

    def churnable(self, world: World) -> list[int]:
        return []

    async def run(self, world: World, duration_s: float) -> None:
        for t in range(self.params.trials):
            await self._trial(world, t)

    async def _trial(self, world: World, t: int) -> None:
        p = self.params
        rng = random.Random(f"dag:{self.spec.seed}:{t}")
        dag = random_dag(
            rng,
            len(world.nodes),
            file_sizes=p.file_sizes,
            strides=p.strides,
            min_calcs=p.min_calcs,
            max_calcs=p.max_calcs,
        )
        files: list[Published] = []
        for f, (size, holders) in enumerate(zip(dag.file_sizes, dag.file_holders, strict=True)):
            data = np.random.default_rng([self.spec.seed, t, f]).bytes(size)
            files.append(await publish(world, holders, data, p.chunk_bytes))
        reader = world.nodes[dag.reader]
        cids: dict[int, Cid] = {}

        async def define() -> None:
            node = reader.node
            assert node is not None
            for i in range(len(dag.calcs) - 1, -1, -1):  # children first
                c = dag.calcs[i]
                ins = [cids[ch] for ch in c.children] + [files[f].root for f in c.files]
                params: dict[str, object] = {"stride": c.stride, "tag": f"{t}:{i}"}
                cids[i] = await node.calc("sift", ins, params)

        await run_on(world, reader, define, p.read_timeout_s)
        fetched0 = fetched_bytes(world)
        got: list[ReadOutcome] = []

        async def read() -> None:
            got.append(await read_calc(reader, cids[0], p.read_timeout_s))

        await run_on(world, reader, read, p.read_timeout_s + 1.0)
        ok = bool(got) and got[0].ok
        assignment = tuple(self._executor(world, cids[i]) for i in range(len(dag.calcs)))
        measured = fetched_bytes(world) - fetched0
        trial = self._score(dag, t, ok, assignment, measured, len(world.nodes))
        self.trials.append(trial)
        world.record(
            "dag-trial",
            dag.reader,
            ok=ok,
            latency_s=got[0].last_byte_s if got else None,
            nbytes=trial.ours,
            value=rounded(trial.ratio) if trial.ratio != float("inf") else -1.0,
            detail=f"calcs={trial.calcs} depth={trial.depth} best={trial.best}",
        )

    @staticmethod
    def _executor(world: World, calc: Cid) -> int:
        found = executors_of(world, calc)
        return found[0] if found else -1

    def _score(
        self, dag: Dag, t: int, ok: bool, assignment: tuple[int, ...], measured: int, nodes: int
    ) -> Trial:
        best, best_row = best_assignment(dag, nodes)
        ours = cost(dag, assignment) if ok and min(assignment) >= 0 else -1
        return Trial(t, len(dag.calcs), dag.depth(), ours, best, assignment, best_row, ok, measured)

    def summarize(self, world: World) -> dict[str, Any]:
        done = [t for t in self.trials if t.ok and t.ours >= 0]
        ratios = [t.ratio for t in done]
        return {
            "trials": len(self.trials),
            "trials_ok": len(done),
            "ratio_ours_over_best": distribution(ratios),
            "optimal_fraction": fraction(sum(t.ours == t.best for t in done), len(done)),
            "within_10pct_fraction": fraction(sum(r <= 1.1 for r in ratios), len(done)),
            "bytes_ours_total": sum(t.ours for t in done),
            "bytes_best_total": sum(t.best for t in done),
            "per_trial": [
                {
                    "trial": t.index,
                    "calcs": t.calcs,
                    "depth": t.depth,
                    "ours": t.ours,
                    "best": t.best,
                    "ratio": rounded(t.ratio) if t.ratio != float("inf") else None,
                    "assignment": list(t.assignment),
                    "best_assignment": list(t.best_assignment),
                    "input_bytes_fetched_measured": t.files_moved_measured,
                }
                for t in self.trials
            ],
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        ratios = [t.ratio for t in self.trials if t.ok and t.ours >= 0]
        return [
            plots.cdf(
                out_dir / "placement-dag-ratio.png",
                ratios,
                "bytes moved: our placement / brute-force best",
                "ratio (1 = optimal)",
            )
        ]
