"""Bot-farm simulation: how much of all payouts can a farm of identities capture?

20 honest peers (3 of them configured as trust seeds) each own a few content items and read each
other's; with probability ``--leak`` an honest read lands on farm content (the farm lures a few
real readers). A farm of 200 bot identities, each owning one item, reads only its own and each
other's content, as much as it likes (``--bot-reads``, by default 5x an honest peer's volume).

Each epoch, trust is recomputed with :func:`ccnp2p.econ.trust.compute_trust` (personalized
PageRank from the seeds, integers) over every receipt so far, and each receipt of the epoch is
settled at its consumer's weight (:meth:`~ccnp2p.econ.trust.TrustScores.weight_ppm`); the
untrusted part is refunded and is nobody's payout. The report is the farm's share of all payouts.

    PYTHONPATH=. python sim/econ_botfarm.py [--seed 1] [--leak 0.02] [--epochs 6]
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field

import numpy as np

from ccnp2p.econ.rules import TRUST_ONE_PPM
from ccnp2p.econ.trust import Edge, compute_trust

HONEST = 20
BOTS = 200
SEEDS = 3
ITEMS_PER_HONEST = 3


def peer(kind: str, i: int) -> bytes:
    return hashlib.sha256(f"{kind}{i}".encode()).digest()


@dataclass(frozen=True, slots=True)
class Outcome:
    farm_share: float
    farm_identities: float
    honest_paid: int
    farm_paid: int


Read = tuple[bytes, bytes, int]  # consumer, owner, value


def epoch_reads(
    rng: np.random.Generator,
    honest: list[bytes],
    bots: list[bytes],
    leak: float,
    reads: int,
    bot_reads: int,
) -> list[Read]:
    """One epoch's receipts: honest reads (a ``leak`` of them on farm content), then the farm's."""
    epoch: list[Read] = []
    items = len(honest) * ITEMS_PER_HONEST
    for h in honest:
        for _ in range(reads):
            if rng.random() < leak:
                owner = bots[int(rng.integers(len(bots)))]
            else:
                owner = honest[int(rng.integers(items)) // ITEMS_PER_HONEST]
            epoch.append((h, owner, int(rng.integers(1, 101))))
    for b in bots:
        for _ in range(bot_reads):
            epoch.append((b, bots[int(rng.integers(len(bots)))], int(rng.integers(1, 101))))
    return epoch


@dataclass
class Settlement:
    """Receipts so far and payouts per side; :meth:`settle_epoch` adds one epoch."""

    seeds: list[bytes]
    farm: set[bytes]
    edges: list[Edge] = field(default_factory=list)
    volumes: dict[bytes, int] = field(default_factory=dict)
    paid: dict[str, int] = field(default_factory=lambda: {"honest": 0, "farm": 0})

    def settle_epoch(self, epoch: list[Read]) -> None:
        """Recompute trust over every receipt so far; pay this epoch's at consumers' weights."""
        for consumer, owner, value in epoch:
            self.edges.append(Edge(consumer, owner, value))
            self.volumes[consumer] = self.volumes.get(consumer, 0) + value
        trust = compute_trust(self.edges, self.seeds, self.volumes)
        weights = {c: trust.weight_ppm(c) for c in set(self.volumes)}
        for consumer, owner, value in epoch:
            earned = value * weights[consumer] // TRUST_ONE_PPM
            self.paid["farm" if owner in self.farm else "honest"] += earned

    def outcome(self, identities: int) -> Outcome:
        total = self.paid["farm"] + self.paid["honest"]
        return Outcome(
            farm_share=self.paid["farm"] / total if total else 0.0,
            farm_identities=len(self.farm) / identities,
            honest_paid=self.paid["honest"],
            farm_paid=self.paid["farm"],
        )


def run(seed: int, leak: float, epochs: int, reads: int, bot_reads: int) -> Outcome:
    rng = np.random.default_rng(seed)
    honest = [peer("h", i) for i in range(HONEST)]
    bots = [peer("b", i) for i in range(BOTS)]
    book = Settlement(honest[:SEEDS], set(bots))
    for _ in range(epochs):
        book.settle_epoch(epoch_reads(rng, honest, bots, leak, reads, bot_reads))
    return book.outcome(HONEST + BOTS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--leak", type=float, default=0.02)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--reads", type=int, default=40, help="reads per honest peer per epoch")
    ap.add_argument("--bot-reads", type=int, default=200, help="reads per bot per epoch")
    args = ap.parse_args()
    out = run(args.seed, args.leak, args.epochs, args.reads, args.bot_reads)
    print(f"farm identities: {out.farm_identities:.1%} ({BOTS} of {BOTS + HONEST})")
    print(f"honest leak to farm content: {args.leak:.1%} of honest reads")
    print(f"payouts: honest {out.honest_paid}, farm {out.farm_paid}")
    print(f"farm share of all payouts: {out.farm_share:.2%} (target <= 5%)")


if __name__ == "__main__":
    main()
