"""``botfarm``: how much of all payouts a farm of identities captures (sim/econ_botfarm.py, live).

The first ``honest`` simulated nodes are honest peers (the first ``trust_seeds`` of them are the
configured trust seeds); the next ``bots`` nodes are the farm. Setup: each honest peer adds
``items_per_honest`` items, each bot adds one (real imports, announced in the DHT).

Each epoch draws its receipts exactly as :func:`sim.econ_botfarm.epoch_reads` does. Honest reads
are *performed*: the consumer's node reads the item end to end over the network (a read that
fails earns nothing and leaves no receipt). Farm reads are not performed: a farm signs receipts
for reads it never needs to make, and settlement only sees receipts. Then the epoch is settled
with :class:`sim.econ_botfarm.Settlement` (trust recomputed over every receipt so far, each
receipt paid at its consumer's trust weight). Reported: the farm's share of all payouts, per
epoch and overall, against its share of identities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trio

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.errors import CcnError
from sim import econ_botfarm, plots
from sim.econ_botfarm import Read, Settlement, epoch_reads
from sim.stats import rounded
from sim.workloads.base import Workload, parse_params, register
from sim.workloads.compute_util import Published, publish
from sim.world import SimNode, World


@dataclass(frozen=True, slots=True)
class BotfarmParams:
    honest: int = econ_botfarm.HONEST
    bots: int = econ_botfarm.BOTS
    trust_seeds: int = econ_botfarm.SEEDS
    epochs: int = 6
    reads: int = 40  # per honest peer per epoch, performed over the network
    bot_reads: int = 200  # receipts per bot per epoch
    leak: float = 0.02  # fraction of honest reads that land on farm content
    item_bytes: int = 4096
    parallel_reads: int = 64
    read_timeout_s: float = 60.0


@register("botfarm")
class Botfarm(Workload):
    def __init__(self, spec: Any) -> None:
        super().__init__(spec)
        self.params = parse_params(BotfarmParams, spec.workload)
        p = self.params
        if spec.nodes < p.honest + p.bots or not 1 <= p.trust_seeds <= p.honest:
            raise ValueError("nodes must be >= honest + bots, and 1 <= trust_seeds <= honest")
        self.items: dict[bytes, list[Published]] = {}
        self.epoch_shares: list[float] = []
        self.reads_ok = 0
        self.reads_failed = 0
        self.book: Settlement | None = None
        self.empty = OperatorRegistry([])

    def registry(self, sn: SimNode) -> OperatorRegistry:
        return self.empty  # no compute here: keep operator announcements out of the DHT

    def churnable(self, world: World) -> list[int]:
        return []

    def _peers(self, world: World) -> tuple[list[bytes], list[bytes]]:
        p = self.params
        honest = [world.nodes[i].peer_id for i in range(p.honest)]
        bots = [world.nodes[p.honest + i].peer_id for i in range(p.bots)]
        return honest, bots

    async def setup(self, world: World) -> None:
        p = self.params
        honest, bots = self._peers(world)
        for owner, count in [(h, econ_botfarm.ITEMS_PER_HONEST) for h in honest] + [
            (b, 1) for b in bots
        ]:
            sn = world.by_peer[owner]
            for k in range(count):
                data = np.random.default_rng([self.spec.seed, sn.index, k]).bytes(p.item_bytes)
                item = await publish(world, [sn.index], data, p.item_bytes)
                self.items.setdefault(owner, []).append(item)
        self.book = Settlement(honest[: p.trust_seeds], set(bots))

    async def run(self, world: World, duration_s: float) -> None:
        p = self.params
        assert self.book is not None
        honest, bots = self._peers(world)
        rng = np.random.default_rng(self.spec.seed)
        for epoch in range(p.epochs):
            receipts = epoch_reads(rng, honest, bots, p.leak, p.reads, p.bot_reads)
            kept = await self._perform(world, receipts, set(honest), rng)
            before = dict(self.book.paid)
            self.book.settle_epoch(kept)
            farm = self.book.paid["farm"] - before["farm"]
            total = farm + self.book.paid["honest"] - before["honest"]
            self.epoch_shares.append(farm / total if total else 0.0)
            world.record("epoch", value=rounded(self.epoch_shares[-1]), detail=f"epoch {epoch}")

    async def _perform(
        self, world: World, receipts: list[Read], honest: set[bytes], rng: np.random.Generator
    ) -> list[Read]:
        """Do the honest reads (bounded parallelism); keep the receipts of those that worked."""
        ok = [consumer not in honest for consumer, _, _ in receipts]
        limit = trio.Semaphore(self.params.parallel_reads)
        async with trio.open_nursery() as nursery:
            for n, (consumer, owner, _) in enumerate(receipts):
                if consumer in honest:
                    items = self.items[owner]
                    item = items[int(rng.integers(len(items)))]
                    await limit.acquire()
                    nursery.start_soon(self._read, world, consumer, item, ok, n, limit)
        return [r for r, good in zip(receipts, ok, strict=True) if good]

    async def _read(
        self,
        world: World,
        consumer: bytes,
        item: Published,
        ok: list[bool],
        n: int,
        limit: trio.Semaphore,
    ) -> None:
        sn = world.by_peer[consumer]
        try:
            assert sn.node is not None
            got = 0
            with trio.move_on_after(self.params.read_timeout_s):
                async for piece in sn.node.read(item.root):
                    got += len(piece)
            ok[n] = got == item.size
        except CcnError:
            ok[n] = False
        finally:
            limit.release()
        if ok[n]:
            self.reads_ok += 1
        else:
            self.reads_failed += 1
            world.record("read", sn.index, ok=False, detail=str(item.root))

    def summarize(self, world: World) -> dict[str, Any]:
        p = self.params
        assert self.book is not None
        out = self.book.outcome(p.honest + p.bots)
        return {
            "honest": p.honest,
            "bots": p.bots,
            "trust_seeds": p.trust_seeds,
            "epochs": p.epochs,
            "leak": p.leak,
            "honest_reads_ok": self.reads_ok,
            "honest_reads_failed": self.reads_failed,
            "farm_identities_fraction": rounded(out.farm_identities),
            "farm_share": rounded(out.farm_share),
            "farm_share_per_epoch": [rounded(s) for s in self.epoch_shares],
            "honest_paid": out.honest_paid,
            "farm_paid": out.farm_paid,
        }

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        assert self.book is not None
        out = self.book.outcome(self.params.honest + self.params.bots)
        shares = {f"epoch {i}": s * 100 for i, s in enumerate(self.epoch_shares)}
        shares["overall"] = out.farm_share * 100
        return [
            plots.bars(
                out_dir / "botfarm-share.png",
                shares,
                f"farm payout share ({out.farm_identities:.0%} of identities; target <= 5%)",
                "% of all payouts",
            )
        ]
