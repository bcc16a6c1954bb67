"""Runs one scenario under virtual time and writes its outputs.

Phases (each stamped on the events it records): ``setup`` (nodes start and join), ``prepare``
(the workload's setup: publishing...), ``measure`` (the workload runs for ``duration_s`` while
the churn timeline plays) and ``drain`` (in-flight operations may finish).

Determinism: everything random is drawn from generators seeded by the scenario seed, and trio's
own scheduler randomness (the order of tasks woken at the same instant) is seeded too, so one
seed gives a byte-identical ``summary.json``. Wall-clock measurements (speed, memory) are kept
out of it, in ``perf.json``.
"""

from __future__ import annotations

import cProfile
import io
import json
import platform
import pstats
import random
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import trio.testing

from sim.churn import TimelineEntry, churn_timeline, churning_nodes
from sim.progress import Progress
from sim.recorder import Recorder
from sim.spec import Action, ScenarioSpec
from sim.stats import distribution, rounded
from sim.workloads import Workload, make_workload
from sim.world import World

PHASES = ("setup", "prepare", "measure", "drain")


@dataclass
class RunResult:
    summary: dict[str, Any]
    perf: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def seed_trio_scheduler(seed: int) -> None:
    """Make trio's choice among tasks runnable at the same instant reproducible.

    trio shuffles (or reverses) each batch of runnable tasks with a module-level
    ``random.Random`` to shake out ordering assumptions; seeding it keeps that and makes it
    repeatable. Private API: if a trio release renames it, runs stay correct but may differ
    between invocations (the determinism test says so).
    """
    core_run = getattr(getattr(trio, "_core", None), "_run", None)
    r = getattr(core_run, "_r", None)
    if isinstance(r, random.Random):
        r.seed(seed)


class _Run:
    def __init__(self, spec: ScenarioSpec, progress: Progress | None) -> None:
        self.spec = spec
        self.progress = progress
        self.recorder = Recorder(progress)
        self.workload: Workload = make_workload(spec)
        self.world = World(spec, self.recorder, self.workload.registry)
        self.virtual: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.timeline: list[TimelineEntry] = []
        self.snapshot: dict[str, Any] = {}
        self._phase_v = 0.0
        self._phase_w = 0.0
        self._phase_c = 0.0
        self._events_rng = random.Random(f"events:{spec.seed}")

    def _enter(self, phase: str, total_s: float = 0.0) -> None:
        now_v, now_w, now_c = trio.current_time(), time.perf_counter(), time.process_time()
        previous = self.recorder.phase
        if phase != previous:
            self.virtual[previous] = now_v - self._phase_v
            self.wall[previous] = now_w - self._phase_w
            self.cpu[previous] = now_c - self._phase_c
        self._phase_v, self._phase_w, self._phase_c = now_v, now_w, now_c
        self.recorder.phase = phase
        if self.progress is not None:
            self.progress.set_phase(phase, now_v, total_s)

    async def main(self) -> None:
        spec, world, workload = self.spec, self.world, self.workload
        self._phase_v, self._phase_w = trio.current_time(), time.perf_counter()
        self._phase_c = time.process_time()
        if self.progress is not None:
            boot = spec.bootstrap
            self.progress.set_phase("setup", 0.0, boot.join_window_s + boot.settle_s)
        async with world.hub, trio.open_nursery() as root:
            await world.start(root)
            self._enter("prepare")
            await workload.setup(world)
            churnable = workload.churnable(world)
            self.timeline = churn_timeline(
                spec.churn, churnable, spec.duration_s, spec.seed, spec.events
            )
            self._enter("measure", spec.duration_s)
            t0 = trio.current_time()
            async with trio.open_nursery() as measured:
                measured.start_soon(self._play, t0, churnable)
                await workload.run(world, spec.duration_s)
                measured.cancel_scope.cancel()
            self._enter("drain", workload.drain_s)
            await workload.drain()
            self._enter("end")
            self.snapshot = self._snapshot()
            world.stopping = True
            root.cancel_scope.cancel()

    async def _play(self, t0: float, churnable: list[int]) -> None:
        world = self.world
        for entry in self.timeline:
            await trio.sleep_until(t0 + entry.at_s)
            if entry.event is None:
                if entry.action is Action.CRASH:
                    world.crash(entry.node, silent=entry.silent)
                elif entry.action is Action.RESTART:
                    await world.restart(entry.node)
                continue
            event = entry.event
            if event.action is Action.CRASH:
                alive = [i for i in churnable if world.nodes[i].alive]
                for i in self._pick(alive, event.count, event.fraction, len(churnable)):
                    world.crash(i, silent=event.silent)
            elif event.action is Action.RESTART:
                dead = [sn.index for sn in world.nodes if not sn.alive]
                for i in self._pick(dead, event.count, event.fraction, len(dead)):
                    await world.restart(i)
            elif event.action is Action.PARTITION:
                world.partition(event.groups)
            elif event.action is Action.HEAL:
                world.heal()

    def _pick(self, pool: list[int], count: int, frac: float, base: int) -> list[int]:
        n = min(len(pool), count or round(frac * base))
        return sorted(self._events_rng.sample(pool, n)) if n else []

    def _snapshot(self) -> dict[str, Any]:
        """Counters read at the end of the run (current incarnations of every node)."""
        world = self.world
        net = world.hub.statistics()
        sent = failed = served = 0
        sizes = []
        for sn in world.nodes:
            if sn.node is None:
                continue
            counters = sn.node.dht.rpc.counters
            sent += counters.requests_sent
            failed += counters.requests_failed
            served += counters.requests_served
            if sn.alive:
                sizes.append(float(len(sn.node.dht.table)))
        return {
            "network": {
                "hosts_alive": net.hosts_alive,
                "streams_opened": net.streams_opened,
                "bytes_sent": net.bytes_sent,
                "dials": net.dials,
                "dial_failures": net.dial_failures,
            },
            "dht_rpc": {"requests_sent": sent, "requests_failed": failed, "served": served},
            "routing_table_size": distribution(sizes),
        }

    def summary(self) -> dict[str, Any]:
        spec, world, rec = self.spec, self.world, self.recorder
        joins = rec.of("join")
        return {
            "scenario": spec.to_dict(),
            "world": {
                "nodes": len(world.nodes),
                "gpu_nodes": sum(sn.profile.gpus > 0 for sn in world.nodes),
                "churning_nodes": len(churning_nodes(self.timeline)),
            },
            "virtual_time_s": {p: rounded(self.virtual.get(p, 0.0)) for p in PHASES},
            "joins": {
                "count": len(joins),
                "ok": sum(bool(e.ok) for e in joins),
                "latency_s": distribution([e.latency_s for e in joins if e.latency_s]),
            },
            "churn": {
                "crashes": len(rec.of("crash")),
                "restarts": len(rec.of("restart")),
                "partitions": len(rec.of("partition")),
            },
            **self.snapshot,
            "events": rec.counts(),
            "workload": self.workload.summarize(world),
        }

    def perf(self, total_wall_s: float) -> dict[str, Any]:
        measure_v = self.virtual.get("measure", 0.0)
        measure_w = self.wall.get("measure", 0.0)
        measure_c = self.cpu.get("measure", 0.0)
        return {
            "nodes": self.spec.nodes,
            "scenario": self.spec.name,
            "wall_s": {p: round(self.wall.get(p, 0.0), 3) for p in PHASES}
            | {"total": round(total_wall_s, 3)},
            "cpu_s": {p: round(self.cpu.get(p, 0.0), 3) for p in PHASES},
            "virtual_s": {p: round(self.virtual.get(p, 0.0), 3) for p in PHASES},
            "measure_sim_s_per_wall_s": round(measure_v / measure_w, 3) if measure_w else None,
            "measure_wall_s_per_sim_s": round(measure_w / measure_v, 4) if measure_v else None,
            # CPU time is what an idle machine would give as wall time (shared hosts vary).
            "measure_sim_s_per_cpu_s": round(measure_v / measure_c, 3) if measure_c else None,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "events": len(self.recorder.events),
            "python": platform.python_version(),
        }


def run_scenario(
    spec: ScenarioSpec,
    out_dir: Path | None = None,
    *,
    plots: bool = True,
    progress: Progress | None = None,
    profile: bool = False,
) -> RunResult:
    """Run ``spec`` to the end; write outputs to ``out_dir`` when given."""
    spec.check()
    run = _Run(spec, progress)
    seed_trio_scheduler(spec.seed)
    clock = trio.testing.MockClock(autojump_threshold=0)
    profiler = cProfile.Profile() if profile else None
    wall0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        trio.run(run.main, clock=clock)
    finally:
        if profiler is not None:
            profiler.disable()
        if progress is not None:
            progress.finish()
    result = RunResult(run.summary(), run.perf(time.perf_counter() - wall0))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        result.files += _write_outputs(run, result, out_dir, plots)
        if profiler is not None:
            path = out_dir / "profile.txt"
            buf = io.StringIO()
            stats = pstats.Stats(profiler, stream=buf)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats(40)
            path.write_text(buf.getvalue())
            stats.dump_stats(out_dir / "profile.pstats")
            result.files.append(path)
    return result


def summary_json(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=True) + "\n"


def _write_outputs(run: _Run, result: RunResult, out_dir: Path, plots: bool) -> list[Path]:
    files = [out_dir / "summary.json", out_dir / "perf.json", out_dir / "events.csv"]
    files[0].write_text(summary_json(result.summary))
    files[1].write_text(json.dumps(result.perf, indent=2, sort_keys=True) + "\n")
    run.recorder.write_csv(files[2])
    if plots:
        files += run.workload.plots(run.world, out_dir)
    return files
