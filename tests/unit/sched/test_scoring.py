"""The cost model: output-size declarations, delivery to the reader, sub-DAG (upstream) costs."""

from __future__ import annotations

import pytest

from ccnp2p.errors import DecodeError
from ccnp2p.objects.sizing import check_output_model, estimate_output
from ccnp2p.sched.placement import InputInfo, Placement, _upstream
from ccnp2p.sched.scoring import (
    TRANSFER_SETUP_S,
    Candidate,
    Need,
    converge,
    produce_cost,
    rank,
    score,
)

A, B, C = b"a" * 4, b"b" * 4, b"c" * 4
MB = 1_000_000


def test_output_model_estimates() -> None:
    assert estimate_output({}, 1000, {}) == 1000
    assert estimate_output({"per_mille": 4000}, 1000, {}) == 4000
    assert estimate_output({"div_param": "stride"}, 1000, {"stride": 64}) == 16  # rounds up
    assert estimate_output({"max_param": "length"}, 1000, {"length": 10}) == 10
    assert estimate_output({"bytes": 16}, 10**12, {}) == 16
    # A missing or malformed param leaves the estimate undivided, never an error.
    assert estimate_output({"div_param": "stride"}, 1000, {"stride": "x"}) == 1000
    assert estimate_output({"div_param": "stride"}, 1000, {"stride": 0}) == 1000
    assert estimate_output({"max_param": "length"}, 1000, {"length": True}) == 1000


@pytest.mark.parametrize(
    "model",
    [{"speed": 1}, {"per_mille": -1}, {"per_mille": "x"}, {"div_param": 3}, {"bytes": True}],
)
def test_bad_output_models_are_rejected(model: dict[str, object]) -> None:
    with pytest.raises(DecodeError):
        check_output_model(model)


def test_shrinking_step_is_not_charged_for_delivering_its_input() -> None:
    # 100 MB input held by A; the output is 1 MB. On A only the output moves; on the reader
    # (C, is_self) the whole input moves.
    need = Need("source", (100 * MB,), output_bytes=MB, reader_bandwidth=10 * MB)
    on_a = Candidate(A, (True,), bandwidth=10 * MB)
    on_c = Candidate(C, (False,), bandwidth=10 * MB, is_self=True)
    best = rank(need, [on_c, on_a])
    assert [s.peer_id for s in best] == [A, C]
    assert best[0].terms["bytes_moved"] == MB and best[0].terms["delivered_bytes"] == MB
    assert best[1].terms["bytes_moved"] == 100 * MB and best[1].terms["deliver_s"] == 0


def test_growing_step_runs_on_the_reader() -> None:
    # tokenize-like: 1 MB in, 4 MB out. Moving the input to the reader beats moving the output.
    need = Need("source", (MB,), output_bytes=4 * MB, reader_bandwidth=10 * MB)
    on_a = Candidate(A, (True,), bandwidth=10 * MB)
    on_c = Candidate(C, (False,), bandwidth=10 * MB, is_self=True)
    assert rank(need, [on_a, on_c])[0].peer_id == C


def test_delivery_uses_the_slower_side() -> None:
    need = Need("source", (0,), output_bytes=10 * MB, reader_bandwidth=MB)
    s = score(need, Candidate(A, (True,), bandwidth=100 * MB, setup_s=0.0))
    assert s.terms["deliver_s"] == pytest.approx(10.0)


def _plan(out_bytes: int, producers: dict[bytes, float]) -> Placement:
    """A sub-calc's placement where producing it costs ``producers[peer]`` seconds."""
    need = Need("source", (0,), output_bytes=out_bytes)
    cands = [
        Candidate(p, (True,), bandwidth=MB, upstream_s=cost, setup_s=0.0)
        for p, cost in producers.items()
    ]
    return Placement(None, None, need, tuple(cands), tuple(rank(need, cands)))  # type: ignore[arg-type]


def test_upstream_picks_cheapest_producer_including_the_move() -> None:
    # Producing the 5 MB input costs 1 s on A, 3 s on B; moving it costs 5 s at 1 MB/s.
    plan = _plan(5 * MB, {A: 1.0, B: 3.0})
    inputs = [InputInfo(5 * MB, frozenset(), plan)]
    s_a, bytes_a = _upstream(inputs, A, MB)
    s_b, bytes_b = _upstream(inputs, B, MB)
    s_c, bytes_c = _upstream(inputs, C, MB)
    assert (bytes_a, bytes_b, bytes_c) == (0, 0, 5 * MB)  # B produces it itself rather than move
    assert s_a == pytest.approx(1.0) and s_b == pytest.approx(3.0)
    assert s_c == pytest.approx(1.0 + 5.0 + TRANSFER_SETUP_S)  # from A, plus one transfer
    # Each producer's own cost leaves out its delivery to the placing reader.
    first = plan.ranking[0]
    assert produce_cost(first)[0] == pytest.approx(first.total - first.terms["deliver_s"])


def test_stored_inputs_add_no_upstream_cost() -> None:
    assert _upstream([InputInfo(5 * MB, frozenset({A}))], B, MB) == (0.0, 0)


def test_readers_converge_on_the_holder_when_costs_tie() -> None:
    # A copy-like step (output as big as the input): computing it on the holder A and sending
    # the output costs what fetching the input to the reader costs. Every reader must pick A,
    # not itself, so that concurrent readers share one execution.
    for reader in (B, C, b"\x00" * 4):
        need = Need(
            "source", (4 * MB,), output_bytes=4 * MB, reader_bandwidth=MB, source_bandwidth=(MB,)
        )
        cands = [
            Candidate(A, (True,), bandwidth=MB),
            Candidate(reader, (False,), bandwidth=MB, is_self=True),
        ]
        assert rank(need, cands)[0].peer_id == A


def test_converge_prefers_cheapest_production_only_among_near_ties() -> None:
    # (total, production cost, peer): the 2nd is within 2% of the best and cheaper to produce.
    assert converge([(1.0, 1.0, A), (1.01, 0.5, B)]) == 1
    assert converge([(1.0, 1.0, A), (1.5, 0.0, B)]) == 0  # not a tie: the best total wins
    assert converge([(1.0, 0.5, B), (1.0, 0.5, A)]) == 1  # full tie: lowest peer id
