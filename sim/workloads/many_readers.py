"""``many-readers``: N readers on different nodes read one calc at the same instant.

Setup: one input of ``input_bytes`` on ``holders`` nodes. Each of ``rounds`` rounds defines a
fresh calc (``sift`` with ``stride``, a per-round ``tag``) and ``readers`` distinct random nodes
that hold no copy start reading it at the same virtual instant. The network should compute it
once: every reader ranks the same executor (deterministic ranking), and an executor runs one
execution per calc however many contracts it receives.

Measured per round: executions of the calc across all nodes (should be 1), and per reader the
virtual time to the first and to the last byte and whether its bytes were complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.objects.cid import Cid
from sim import plots
from sim.ops import sift_output_bytes, sim_registry
from sim.stats import distribution, histogram
from sim.workloads.base import Workload, parse_params, register
from sim.workloads.compute_util import (
    Published,
    ReadOutcome,
    executors_of,
    publish,
    read_calc,
    run_on,
)
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class ManyReadersParams:
    readers: int = 20
    rounds: int = 3
    holders: int = 3
    input_bytes: int = 4 << 20
    chunk_bytes: int = 256 << 10
    stride: int = 1
    read_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.readers < 1 or self.rounds < 1 or self.holders < 1:
            raise ValueError("readers, rounds and holders must be positive")


@dataclass(frozen=True, slots=True)
class ReaderResult:
    round: int
    reader: int
    outcome: ReadOutcome


@register("many-readers")
class ManyReaders(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.params = parse_params(ManyReadersParams, spec.workload)
        self.input: Published | None = None
        self.executions: list[int] = []  # per round
        self.executors: list[tuple[int, ...]] = []
        self.results: list[ReaderResult] = []
        self.registry_shared = sim_registry()

    def registry(self, sn: SimNode) -> OperatorRegistry:
        return self.registry_shared

    def churnable(self, world: World) -> list[int]:
        return []

    @property
    def drain_s(self) -> float:
        return self.params.read_timeout_s

    async def setup(self, world: World) -> None:
        p = self.params
        seeds = set(world.seeds)
        pool = [sn.index for sn in world.nodes if sn.index not in seeds]
        if len(pool) < p.holders + p.readers:
            raise ValueError("not enough nodes for the holders and the readers")
        data = np.random.default_rng([self.spec.seed, 0]).bytes(p.input_bytes)
        self.input = await publish(world, self.rng.sample(pool, p.holders), data, p.chunk_bytes)

    async def run(self, world: World, duration_s: float) -> None:
        assert self.input is not None
        pub = self.input
        p = self.params
        pool = [sn.index for sn in world.nodes if sn.index not in set(world.seeds)]
        for rnd in range(p.rounds):
            # Readers hold no copy of the input *now*: with stride 1 the result has the input's
            # bytes (the same CID), so last round's readers hold it, and a reader holding the
            # input rightly computes locally rather than wait for someone else's stream.
            free = [i for i in pool if i not in pub.holders and not self._holds(world, i, pub.root)]
            if len(free) < p.readers:
                raise ValueError(f"round {rnd}: fewer than {p.readers} nodes without the input")
            readers = sorted(self.rng.sample(free, p.readers))
            cid = await self._define(world, world.nodes[readers[0]], rnd)
            if cid is None:
                continue
            await self._read_together(world, rnd, cid, readers)
            execs = executors_of(world, cid)
            self.executors.append(tuple(execs))
            nodes = [n for i in execs if (n := world.nodes[i].node) is not None]
            self.executions.append(
                sum(h.calc == cid for n in nodes for h in n.compute.executor.history)
            )
            world.record("executions", value=float(self.executions[-1]), detail=f"round {rnd}")

    @staticmethod
    def _holds(world: World, index: int, root: Cid) -> bool:
        node = world.nodes[index].node
        return node is not None and node.holds(root)

    async def _define(self, world: World, definer: SimNode, rnd: int) -> Cid | None:
        """The round's calc, defined on ``definer`` (one of the readers)."""
        assert self.input is not None
        roots = [self.input.root]
        params: dict[str, object] = {"stride": self.params.stride, "tag": f"round-{rnd}"}
        cids: list[Cid] = []

        async def define() -> None:
            assert definer.node is not None
            cids.append(await definer.node.calc("sift", roots, params))

        await run_on(world, definer, define, self.params.read_timeout_s)
        return cids[0] if cids else None

    async def _read_together(self, world: World, rnd: int, cid: Cid, readers: list[int]) -> None:
        p = self.params
        async with trio.open_nursery() as nursery:
            for i in readers:
                sn = world.nodes[i]

                async def one(sn: SimNode = sn) -> None:
                    async def read() -> None:
                        got = await read_calc(sn, cid, p.read_timeout_s)
                        self.results.append(ReaderResult(rnd, sn.index, got))
                        world.record(
                            "calc-read",
                            sn.index,
                            ok=got.ok,
                            latency_s=got.last_byte_s,
                            nbytes=got.nbytes,
                            value=got.first_byte_s,
                            detail=f"round {rnd}" + (f" {got.error}" if got.error else ""),
                        )

                    await run_on(world, sn, read, p.read_timeout_s + 1.0)

                nursery.start_soon(one)

    def summarize(self, world: World) -> dict[str, Any]:
        p = self.params
        expected = sift_output_bytes(p.input_bytes, p.stride)
        ok = [r for r in self.results if r.outcome.ok and r.outcome.nbytes == expected]
        return {
            "readers": p.readers,
            "rounds": p.rounds,
            "input_bytes": p.input_bytes,
            "output_bytes": expected,
            "executions_per_round": self.executions,
            "executions_histogram": histogram(self.executions),
            "executors_per_round": [list(e) for e in self.executors],
            "reads": len(self.results),
            "reads_complete": len(ok),
            "first_byte_s": distribution([r.outcome.first_byte_s for r in ok]),
            "last_byte_s": distribution([r.outcome.last_byte_s for r in ok]),
            "per_reader": [
                {
                    "round": r.round,
                    "reader": r.reader,
                    "ok": r.outcome.ok,
                    "bytes": r.outcome.nbytes,
                    "first_byte_s": round(r.outcome.first_byte_s, 6),
                    "last_byte_s": round(r.outcome.last_byte_s, 6),
                }
                for r in sorted(self.results, key=lambda r: (r.round, r.reader))
            ],
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        ok = [r for r in self.results if r.outcome.ok]
        return [
            plots.cdfs(
                out_dir / "many-readers-latency.png",
                {
                    "first byte": [r.outcome.first_byte_s for r in ok],
                    "last byte": [r.outcome.last_byte_s for r in ok],
                },
                f"{self.params.readers} simultaneous readers of one calc "
                f"(executions per round: {self.executions})",
                "virtual s since the read began",
            )
        ]
