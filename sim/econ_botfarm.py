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
from dataclasses import dataclass

import numpy as np

from ccnp2p.econ.trust import TRUST_ONE_PPM, Edge, compute_trust

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


def run(seed: int, leak: float, epochs: int, reads: int, bot_reads: int) -> Outcome:
    rng = np.random.default_rng(seed)
    honest = [peer("h", i) for i in range(HONEST)]
    bots = [peer("b", i) for i in range(BOTS)]
    seeds = honest[:SEEDS]
    farm = set(bots)
    edges: list[Edge] = []
    volumes: dict[bytes, int] = {}
    paid = {"honest": 0, "farm": 0}
    for _ in range(epochs):
        epoch: list[tuple[bytes, bytes, int]] = []  # consumer, owner, value
        for h in honest:
            for _ in range(reads):
                if rng.random() < leak:
                    owner = bots[int(rng.integers(BOTS))]
                else:
                    owner = honest[int(rng.integers(HONEST * ITEMS_PER_HONEST)) // ITEMS_PER_HONEST]
                epoch.append((h, owner, int(rng.integers(1, 101))))
        for b in bots:
            for _ in range(bot_reads):
                epoch.append((b, bots[int(rng.integers(BOTS))], int(rng.integers(1, 101))))
        for consumer, owner, value in epoch:
            edges.append(Edge(consumer, owner, value))
            volumes[consumer] = volumes.get(consumer, 0) + value
        trust = compute_trust(edges, seeds, volumes)
        weights = {c: trust.weight_ppm(c) for c in set(volumes)}
        for consumer, owner, value in epoch:
            earned = value * weights[consumer] // TRUST_ONE_PPM
            paid["farm" if owner in farm else "honest"] += earned
    total = paid["farm"] + paid["honest"]
    return Outcome(
        farm_share=paid["farm"] / total if total else 0.0,
        farm_identities=BOTS / (BOTS + HONEST),
        honest_paid=paid["honest"],
        farm_paid=paid["farm"],
    )


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
