"""Failover experiment: recovery time and recomputed work after an executor crash.

Real Nodes on the in-memory network under virtual time; a seekable operator whose steps take
one virtual second is read by one node and its executor is crashed silently at a random step.
Over many seeds it reports, for heartbeat timeout x RTT, the recovery time (crash to the next
byte at the reader) next to the model ``timeout + 3 RTT + loading one checkpoint``, and, for
several checkpoint intervals, the steps recomputed.

    python -m sim.failover [--seeds 5] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import tempfile
from pathlib import Path
from typing import Any

import trio
import trio.testing

from ccnp2p.compute.api import InputStream, OperatorImpl, OperatorSpec, OutputStream, RunContext
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.node import Node
from ccnp2p.objects.keys import Identity
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.blockstore import Blockstore

STEPS = 40
SIZE = 50_000
STEP_S = 0.2


class SlowChain(OperatorImpl):
    """Seekable, no inputs; each step takes STEP_S virtual seconds and writes SIZE bytes."""

    spec = OperatorSpec(
        name="slowchain", version="1", affinity="result", seek=True, min_inputs=0, max_inputs=0
    )
    impl_id = "sim:slowchain@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        h = hashlib.sha256(b"slow").digest()
        first = 0
        if ctx.resume is not None:
            h, first = ctx.resume.state, ctx.resume.step + 1
        for step in range(first, STEPS):
            await trio.sleep(STEP_S)
            h = hashlib.sha256(h).digest()
            await out.write((h * (SIZE // 32 + 1))[:SIZE])
            await ctx.step_done(step, lambda h=h: h)  # type: ignore[misc]


async def one_run(
    tmp: Path, seed: int, timeout_s: float, rtt_s: float, every: int
) -> dict[str, float]:
    rng = random.Random(seed)
    kill_step = rng.randint(3, STEPS - 5)
    hw = Hardware(cpu=2, memory=8 << 30)
    async with MemoryNetwork(seed=seed, latency_s=rtt_s / 2) as hub, trio.open_nursery() as n:
        nodes = []
        for i in range(5):
            ident = Identity.from_seed_int(7000 + 10 * seed + i)
            root = tmp / f"s{seed}-{timeout_s}-{rtt_s}-{every}-{i}"
            ops: list[OperatorImpl] = [SlowChain()] if i else []
            node = Node(
                ident,
                Blockstore(root, durable=False),
                None,
                hub.add_host(ident),
                seed=i,
                registry=OperatorRegistry(ops),
                hardware=hw,
                wall_time=trio.current_time,
            )
            node.compute.read_timeout_s = timeout_s
            node.compute.executor.checkpoint_every = every
            await n.start(node.run)
            nodes.append(node)
        for node in nodes[1:]:
            await node.bootstrap(
                [PeerInfo(nodes[0].peer_id, tuple(nodes[0].network.listen_addrs()))]
            )
        for node in nodes:
            await node.compute.announce()
        reader = nodes[0]
        op = next(o.cid for o in nodes[1].compute.registry.operators())
        calc = await reader.calc(op, [], {})
        got = 0
        crash_at = recovered_at = -1.0
        async for piece in reader.read(calc):
            got += len(piece)
            failed = reader.compute.failovers
            if failed and recovered_at < 0:
                recovered_at = trio.current_time()  # first byte after the failover
            if crash_at < 0 and got >= kill_step * SIZE:
                victim = next(x for x in nodes[1:] if calc in x.compute.executor.running)
                hub.crash(victim.peer_id, silent=True)
                crash_at = trio.current_time()
        redone = [
            e.recomputed_steps
            for x in nodes
            for e in x.compute.executor.history
            if e.resumed_from_step is not None
        ]
        n.cancel_scope.cancel()
    detected_at = reader.compute.failovers[-1].at if reader.compute.failovers else crash_at
    return {
        "detection_s": detected_at - crash_at,
        "resume_s": recovered_at - detected_at,
        "recovery_s": recovered_at - crash_at,
        "recomputed_steps": float(max(redone, default=kill_step)),
        "complete": float(got == STEPS * SIZE),
    }


async def main_async(seeds: int, out: Path) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ccn-failover-"))
    report: dict[str, Any] = {"recovery": [], "recompute": []}
    for timeout_s in (1.0, 3.0, 10.0):
        for rtt_s in (0.02, 0.1, 0.2):
            runs = [await one_run(tmp, s, timeout_s, rtt_s, 5) for s in range(seeds)]
            rec = statistics.mean(r["recovery_s"] for r in runs)
            report["recovery"].append(
                {
                    "timeout_s": timeout_s,
                    "rtt_s": rtt_s,
                    "detection_s_mean": round(statistics.mean(r["detection_s"] for r in runs), 3),
                    "resume_s_mean": round(statistics.mean(r["resume_s"] for r in runs), 3),
                    "recovery_s_mean": round(rec, 3),
                    "model_s": round(timeout_s + 3 * rtt_s, 3),
                    "complete": all(r["complete"] for r in runs),
                }
            )
    for every in (2, 5, 10):
        runs = [await one_run(tmp, s, 3.0, 0.1, every) for s in range(seeds)]
        report["recompute"].append(
            {
                "checkpoint_every": every,
                "recomputed_mean": statistics.mean(r["recomputed_steps"] for r in runs),
                "recomputed_max": max(r["recomputed_steps"] for r in runs),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "failover.json").write_text(json.dumps(report, indent=2))
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("sim-out/failover"))
    args = ap.parse_args()
    report = trio.run(
        main_async, args.seeds, args.out, clock=trio.testing.MockClock(autojump_threshold=0)
    )
    print(
        f"{'timeout s':>9} {'RTT s':>6} {'detect s':>9} {'resume s':>9} {'recovery s':>10} "
        f"{'timeout+3RTT':>12} complete"
    )
    for r in report["recovery"]:
        print(
            f"{r['timeout_s']:9.1f} {r['rtt_s']:6.2f} {r['detection_s_mean']:9.3f} "
            f"{r['resume_s_mean']:9.3f} {r['recovery_s_mean']:10.3f} {r['model_s']:12.3f} "
            f"{r['complete']}"
        )
    print(f"{'ckpt every':>10} {'recomputed mean':>16} {'max':>5}")
    for r in report["recompute"]:
        every, mean, worst = r["checkpoint_every"], r["recomputed_mean"], r["recomputed_max"]
        print(f"{every:10d} {mean:16.2f} {worst:5.0f}")


if __name__ == "__main__":
    main()
