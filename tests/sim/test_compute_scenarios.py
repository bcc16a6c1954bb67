"""The compute scenarios, small: placement vs baselines, many readers, DAG brute force, bot farm."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import trio

from ccnp2p.compute.local import run_local
from sim.bruteforce import Dag, DagCalc, best_assignment, cost, random_dag
from sim.ops import Sift, sift_output_bytes
from sim.runner import run_scenario, summary_json
from sim.spec import BootstrapMode, ScenarioSpec
from tests.sim.conftest import small


def _spec(name: str, nodes: int, **workload: Any) -> ScenarioSpec:
    """A shipped scenario, shrunk, with routing tables from the oracle (no join phase)."""
    spec = small(name, nodes=nodes, duration_s=1.0, **workload)
    boot = replace(spec.bootstrap, mode=BootstrapMode.ORACLE, seeds=2, settle_s=1.0)
    return replace(spec, bootstrap=boot)


def test_sift_keeps_every_stride_th_byte_across_pieces() -> None:
    data = bytes(range(256)) * 700  # several 64 KiB reads
    out = trio.run(run_local, Sift(), [data[:1000], data[1000:]], {"stride": 7})
    assert out == data[::7]
    assert len(out) == sift_output_bytes(len(data), 7)


def test_brute_force_finds_the_cheapest_assignment() -> None:
    # root(copy) <- a(reduce x4) over f0 on node 1, and f1 (big) on node 2; reader is node 0.
    dag = Dag(
        file_sizes=(400, 1000),
        file_holders=(frozenset({1}), frozenset({2})),
        calcs=(DagCalc((1,), (1,), 1), DagCalc((0,), (), 4)),
        reader=0,
    )
    best, row = best_assignment(dag, 3)
    # The root copies (output 1100): on the reader it pulls f1 and a's 100 bytes (1100), next
    # to f1 it pulls a but then ships its output (100 + 1100).
    assert (best, row) == (1100, (0, 1))
    assert cost(dag, (2, 1)) == 1200
    assert cost(dag, (0, 0)) == 1000 + 400


def test_random_dags_have_the_requested_shape() -> None:
    for t in range(30):
        dag = random_dag(random.Random(t), 8, file_sizes=(10, 20), strides=(1, 4))
        assert 3 <= len(dag.calcs) <= 6 and 2 <= dag.depth() <= 3
        assert all(dag.reader not in h for h in dag.file_holders)
        assert all(1 <= len(c.files) + len(c.children) <= 4 for c in dag.calcs)


def test_affinity_placement_moves_far_fewer_bytes_than_random() -> None:
    spec = _spec(
        "placement",
        12,
        inputs=2,
        holders_per_input=3,
        input_bytes=64 << 10,
        chunk_bytes=16 << 10,
        reads=4,
        stride=64,
    )
    work = run_scenario(spec, None).summary["workload"]
    pol = work["policies"]
    assert all(pol[p]["ok"] == 4 for p in ("affinity", "random", "reader"))
    assert pol["affinity"]["executor_held_inputs_fraction"] == 1.0
    assert pol["reader"]["executor_held_inputs_fraction"] == 0.0
    assert pol["affinity"]["data_bytes_moved"] * 2 < pol["random"]["data_bytes_moved"]
    assert pol["affinity"]["data_bytes_moved"] * 10 < pol["reader"]["data_bytes_moved"]


def _readers_spec() -> ScenarioSpec:
    return _spec(
        "many-readers",
        16,
        readers=5,
        rounds=2,
        holders=2,
        input_bytes=128 << 10,
        chunk_bytes=64 << 10,
    )


def test_many_readers_share_one_execution_and_same_seed_same_summary() -> None:
    first = run_scenario(_readers_spec(), None).summary
    work = first["workload"]
    # Round 2's readers see round 1's readers holding the input too (stride 1 copies it): more
    # holders, still one execution.
    assert work["executions_per_round"] == [1, 1]
    assert work["reads_complete"] == 10
    assert work["first_byte_s"]["min"] > 0
    assert all(r["last_byte_s"] >= r["first_byte_s"] > 0 for r in work["per_reader"])
    assert summary_json(run_scenario(_readers_spec(), None).summary) == summary_json(first)


def test_dag_placement_is_compared_with_brute_force() -> None:
    spec = _spec("placement-dag", 6, trials=4, file_sizes=[16384, 65536], strides=[1, 8, 64])
    work = run_scenario(spec, None).summary["workload"]
    assert work["trials_ok"] == 4
    for t in work["per_trial"]:
        assert t["best"] <= t["ours"]  # brute force is a lower bound on what we moved
        assert min(t["assignment"]) >= 0
    assert work["ratio_ours_over_best"]["p50"] <= 1.1


def test_botfarm_share_stays_small() -> None:
    spec = _spec(
        "botfarm",
        30,
        honest=5,
        bots=25,
        epochs=2,
        reads=4,
        bot_reads=20,
        item_bytes=1024,
    )
    work = run_scenario(spec, None).summary["workload"]
    assert work["honest_reads_failed"] == 0
    assert work["honest_reads_ok"] == 2 * 5 * 4
    assert work["farm_identities_fraction"] >= 0.8
    assert work["farm_share"] <= 0.05
