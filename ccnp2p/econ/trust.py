"""Trust: personalized PageRank from configured seed peers over receipts and inclusions.

Theory of operation. Every settled receipt is an interaction between the consumer and each party
it paid; every index record is one between the indexer and the owner. Both become undirected
edges (two directed edges of the same weight): receipts weigh their payout amounts, inclusions
weigh :data:`INCLUSION_UNITS` (twice that when two-way). Trust starts on the seeds and, each
round, a fraction ``damping`` of every peer's trust flows along its edges in proportion to
their weights; the rest (and the trust of peers with no edges, and rounding dust) returns to the
seeds. Scores are integers summing to :data:`SCORE_ONE` exactly, computed in a fixed order with
floor division, so every peer with the same graph and seeds gets the same numbers.

A consumer's settlement weight caps what it can spend per unit of trust: with score ``s`` and
volume issued ``vol``, the weight is ``min(1, SLACK * (s / vol) / (S / V))`` where ``S`` and
``V`` are the seeds' total score and volume and ``SLACK`` is 4. Honest peers that spend about as
much per unit of trust as the seeds get full weight; a farm of identities that trade only among
themselves can direct value in proportion to the trust that leaks into it, however many
receipts it issues (its own volume does not move the reference).

Known weaknesses (also in ``protocols/ccn-settle.md``): trust that leaks into a farm (honest
peers reading farm content) is kept and amplified by its internal edges up to about
``damping / (1 - damping)`` times; seeds are a central choice and a compromised seed can vouch
for a farm; the graph is each peer's local view, so peers with different ledgers weigh a
consumer differently (statements state the weight used, receivers cap it with their own).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ccnp2p.econ.rules import BASIS_POINTS, TRUST_ONE_PPM, Role
from ccnp2p.econ.statement import Statement
from ccnp2p.objects.keys import PublicKey
from ccnp2p.objects.records import IndexRecord, Receipt

SCORE_ONE: Final = 1_000_000_000
DEFAULT_DAMPING_BP: Final = 7_000
DEFAULT_ROUNDS: Final = 40
INCLUSION_UNITS: Final = 1_000
SPEND_SLACK: Final = 4


@dataclass(frozen=True, slots=True)
class Edge:
    """An interaction of ``weight`` between two peers (binary peer ids)."""

    a: bytes
    b: bytes
    weight: int


@dataclass(frozen=True, slots=True)
class TrustScores:
    """Scores (summing to :data:`SCORE_ONE`), consumer volumes, and the seeds' reference rate."""

    scores: dict[bytes, int] = field(default_factory=dict)
    volumes: dict[bytes, int] = field(default_factory=dict)
    seeds: tuple[bytes, ...] = ()

    def score(self, peer: bytes) -> int:
        return self.scores.get(peer, 0)

    def weight_ppm(self, peer: bytes) -> int:
        """Settlement weight of ``peer`` as a consumer, 0..1,000,000 parts per million.

        A consumer may spend, per unit of trust, up to :data:`SPEND_SLACK` times what the seeds
        spend per unit of theirs; beyond that its receipts are scaled down. The reference is the
        seeds' (not the whole graph's) so that a farm cannot raise it by spending more.
        """
        score = self.score(peer)
        volume = self.volumes.get(peer, 0)
        if score == 0:
            return 0
        if volume == 0:
            return TRUST_ONE_PPM
        seed_score = sum(self.score(s) for s in self.seeds)
        seed_volume = sum(self.volumes.get(s, 0) for s in self.seeds)
        if seed_volume == 0 or seed_score == 0:
            return TRUST_ONE_PPM
        num = SPEND_SLACK * score * seed_volume * TRUST_ONE_PPM
        return min(TRUST_ONE_PPM, num // (volume * seed_score))


def compute_trust(
    edges: Iterable[Edge],
    seeds: Iterable[bytes],
    volumes: dict[bytes, int] | None = None,
    *,
    damping_bp: int = DEFAULT_DAMPING_BP,
    rounds: int = DEFAULT_ROUNDS,
) -> TrustScores:
    """Personalized PageRank from ``seeds`` in integer arithmetic.

    Args:
        edges: undirected weighted interactions (self-loops are ignored).
        seeds: the configured trusted peers (trust restarts on them, equally).
        volumes: value issued per consumer (for :meth:`TrustScores.weight_ppm`).
        damping_bp: share of trust that flows along edges each round, basis points.
        rounds: fixed number of rounds (no float convergence test, so results are exact).
    """
    seed_list = sorted(set(seeds))
    volumes = dict(volumes or {})
    if not seed_list:
        return TrustScores({}, volumes, ())
    adj: dict[bytes, dict[bytes, int]] = {}
    for e in edges:
        if e.a == e.b or e.weight <= 0:
            continue
        for x, y in ((e.a, e.b), (e.b, e.a)):
            row = adj.setdefault(x, {})
            row[y] = row.get(y, 0) + e.weight
    order = sorted(set(adj) | set(seed_list))
    rows = {n: (sorted(adj[n].items()), sum(adj[n].values())) for n in adj}
    restart = {s: SCORE_ONE // len(seed_list) for s in seed_list}
    restart[seed_list[0]] += SCORE_ONE - sum(restart.values())
    scores = dict.fromkeys(order, 0) | restart
    for _ in range(rounds):
        nxt = dict.fromkeys(order, 0)
        for n in order:
            mass = scores[n]
            if not mass or n not in rows:
                continue
            links, total = rows[n]
            flow = mass * damping_bp // BASIS_POINTS
            for dst, w in links:
                nxt[dst] += flow * w // total
        dust = SCORE_ONE - sum(nxt.values())
        for s in seed_list:
            nxt[s] += dust * restart[s] // SCORE_ONE
        nxt[seed_list[0]] += SCORE_ONE - sum(nxt.values())
        scores = nxt
    return TrustScores({n: v for n, v in scores.items() if v}, volumes, tuple(seed_list))


def settlement_edges(
    settled: Iterable[tuple[Receipt, Statement]], inclusions: Iterable[IndexRecord] = ()
) -> tuple[list[Edge], dict[bytes, int]]:
    """Edges and consumer volumes from settled receipts and index records."""
    edges: list[Edge] = []
    volumes: dict[bytes, int] = {}
    for receipt, statement in settled:
        consumer = PublicKey.from_protobuf(receipt.consumer).peer_id
        volumes[consumer] = volumes.get(consumer, 0) + receipt.value
        for p in statement.payouts:
            if p.role != Role.REFUND.value:
                edges.append(Edge(consumer, p.party, p.amount))
    for rec in inclusions:
        if not rec.owner:
            continue  # an inclusion of unclaimed content vouches for nobody
        weight = INCLUSION_UNITS * (2 if rec.two_way else 1)
        a = PublicKey.from_protobuf(rec.indexer).peer_id
        edges.append(Edge(a, PublicKey.from_protobuf(rec.owner).peer_id, weight))
    return edges, volumes
