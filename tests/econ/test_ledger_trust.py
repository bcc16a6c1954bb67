"""The SQLite ledger (duplicates counted once, persistence) and the trust model."""

from __future__ import annotations

from pathlib import Path

from ccnp2p.econ.ledger import Ledger
from ccnp2p.econ.settle import make_statement
from ccnp2p.econ.trust import SCORE_ONE, Edge, compute_trust
from ccnp2p.objects.keys import Identity
from tests.econ.world import build_world

WORLD = build_world()


def test_same_receipt_recorded_twice_counts_once(tmp_path: Path) -> None:
    receipt = WORLD.receipt(1_000_000)
    statement = make_statement(receipt, WORLD.evidence(), WORLD.who["consumer"])
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert ledger.record_settlement(receipt, statement, issued=True)
    assert not ledger.record_settlement(receipt, statement, issued=True)
    other_settler = make_statement(receipt, WORLD.evidence(), WORLD.who["bob"])
    assert not ledger.record_settlement(receipt, other_settler, issued=False)
    balances = ledger.balances()
    assert sum(balances.values()) == 1_000_000
    assert balances[WORLD.who["bob"].peer_id] == 218_333
    ledger.close()
    reopened = Ledger(tmp_path / "ledger.sqlite")
    assert reopened.balances() == balances
    assert reopened.statement_for(receipt.cid) == statement
    assert reopened.stats().receipts_issued == 1
    reopened.close()


def test_trust_is_exact_and_stays_with_the_connected() -> None:
    p = [Identity.from_seed_int(100 + i).peer_id for i in range(6)]
    edges = [Edge(p[0], p[1], 10), Edge(p[1], p[2], 5), Edge(p[4], p[5], 1000)]
    scores = compute_trust(edges, [p[0]], {p[1]: 10, p[4]: 1000})
    assert sum(scores.scores.values()) == SCORE_ONE
    assert scores.score(p[2]) > 0
    assert scores.score(p[4]) == 0 and scores.score(p[5]) == 0  # farm: no edge from the seeds
    assert scores.weight_ppm(p[4]) == 0
    assert scores.weight_ppm(p[1]) == 1_000_000
    assert compute_trust(reversed(edges), [p[0]]).scores == scores.scores  # order-independent


def test_trust_weight_caps_heavy_spenders() -> None:
    p = [Identity.from_seed_int(200 + i).peer_id for i in range(3)]
    edges = [Edge(p[0], p[1], 100), Edge(p[1], p[2], 100)]
    scores = compute_trust(edges, [p[0]], {p[0]: 100, p[2]: 10**6})
    # p2 spends 10^4 times what the seed spends, on less trust: its receipts barely count.
    assert 0 < scores.weight_ppm(p[2]) < 1_000
    assert scores.weight_ppm(p[0]) == 1_000_000
