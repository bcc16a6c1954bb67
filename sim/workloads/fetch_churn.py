"""``fetch-churn``: content fetches while nodes crash and come back.

Setup: ``files`` files of ``file_bytes`` random bytes are each added (imported, announced) by
``replicas`` distinct nodes. Then readers, random alive nodes that do not hold the file yet,
read random files end to end with :meth:`Node.open_reader` (Poisson arrivals) while the churn
timeline crashes and restarts nodes, replicas included unless ``protect_replicas``. A restarted
replica rejoins and re-announces what it had pinned, as a restarted daemon would.

Measured: fetch success and failure causes, virtual time to the last byte, throughput, and
integrity: every completed fetch is hashed and compared with the published bytes (a mismatch
is counted as ``corrupt``; it must stay 0).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from sim import plots
from sim.stats import distribution, fraction
from sim.workloads.base import Workload, parse_params, register
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class FetchParams:
    files: int = 8
    file_bytes: int = 1_048_576
    chunk_bytes: int = 262_144
    replicas: int = 3
    fetches_per_s: float = 1.0
    fetch_timeout_s: float = 120.0
    protect_replicas: bool = False


@dataclass(frozen=True, slots=True)
class Published:
    root: Cid
    size: int
    sha256: bytes
    holders: frozenset[int]


@register("fetch-churn")
class FetchChurn(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.params = parse_params(FetchParams, spec.workload)
        if self.params.files < 1 or self.params.replicas < 1:
            raise ValueError("files and replicas must be at least 1")
        self.files: list[Published] = []
        self.latencies: list[float] = []
        self.throughputs: list[float] = []
        self.failures: Counter[str] = Counter()
        self.corrupt = 0
        self.bytes_fetched = 0
        self.empty = OperatorRegistry([])

    def registry(self, sn: SimNode) -> OperatorRegistry:
        return self.empty  # content only: keep operator announcements out of the DHT

    async def setup(self, world: World) -> None:
        p = self.params
        seeds = set(world.seeds)
        pool = [sn.index for sn in world.nodes if sn.index not in seeds]
        if len(pool) < p.replicas + 1:
            raise ValueError("not enough nodes for the replicas plus a reader")
        for f in range(p.files):
            data = np.random.default_rng([self.spec.seed, f]).bytes(p.file_bytes)
            holders = self.rng.sample(pool, p.replicas)
            root: Cid | None = None
            for i in holders:
                sn = world.nodes[i]
                assert sn.node is not None
                result = await sn.node.add_bytes(data, chunk_bytes=p.chunk_bytes)
                root = result.root
                sn.pinned.append(root)
                world.record("publish", i, nbytes=len(data), detail=str(root))
            assert root is not None
            self.files.append(
                Published(root, len(data), hashlib.sha256(data).digest(), frozenset(holders))
            )

    def churnable(self, world: World) -> list[int]:
        nodes = super().churnable(world)
        if self.params.protect_replicas:
            holders = set().union(*(f.holders for f in self.files))
            nodes = [i for i in nodes if i not in holders]
        return nodes

    @property
    def drain_s(self) -> float:
        return self.params.fetch_timeout_s

    async def run(self, world: World, duration_s: float) -> None:
        def fire() -> None:
            pub = self.files[self.rng.randrange(len(self.files))]
            try:
                reader = world.random_alive(self.rng, exclude=pub.holders)
            except LookupError:
                return
            self.launch(world, reader, lambda: self._fetch(world, reader, pub))

        await self.poisson(world, self.params.fetches_per_s, duration_s, fire)

    async def _fetch(self, world: World, reader: SimNode, pub: Published) -> None:
        node = reader.node
        assert node is not None
        t0 = world.now()
        digest = hashlib.sha256()
        got = 0
        cached = reader.blocks.has(pub.root)
        error = ""
        try:
            with trio.move_on_after(self.params.fetch_timeout_s) as timeout:
                async for piece in node.open_reader(pub.root):
                    digest.update(piece)
                    got += len(piece)
            if timeout.cancelled_caught:
                error = "timeout"
        except CcnError as exc:
            error = type(exc).__name__
        except trio.Cancelled:
            self.failures["origin-crashed" if not world.stopping else "run-ended"] += 1
            raise
        latency = world.now() - t0
        self.bytes_fetched += got
        if not error and (got != pub.size or digest.digest() != pub.sha256):
            self.corrupt += 1
            error = "corrupt"
        if error:
            self.failures[error] += 1
        else:
            self.latencies.append(latency)
            self.throughputs.append(got / latency if latency > 0 else 0.0)
        world.record(
            "fetch",
            reader.index,
            ok=not error,
            latency_s=latency,
            nbytes=got,
            detail=error or ("cached" if cached else ""),
        )

    def summarize(self, world: World) -> dict[str, Any]:
        ok = len(self.latencies)
        attempted = ok + sum(self.failures.values())
        return {
            "files": self.params.files,
            "file_bytes": self.params.file_bytes,
            "replicas": self.params.replicas,
            "fetches_launched": self.launched,
            "fetches_skipped": self.skipped,
            "fetches_ok": ok,
            "fetches_failed": dict(sorted(self.failures.items())),
            "success_fraction": fraction(ok, attempted),
            "corrupt": self.corrupt,
            "bytes_fetched": self.bytes_fetched,
            "latency_s": distribution(self.latencies),
            "throughput_bytes_per_s": distribution(self.throughputs),
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        return [
            plots.cdf(out_dir / "fetch-latency.png", self.latencies, "fetch latency", "virtual s"),
            plots.churn_timeline(out_dir / "churn.png", world.recorder, outcome_event="fetch"),
        ]
