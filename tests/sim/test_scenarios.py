"""Each shipped scenario kind, small, with sanity checks; and determinism per seed."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from sim.runner import run_scenario, summary_json
from sim.spec import BootstrapMode, ChurnSpec, DhtSpec
from tests.sim.conftest import small


def test_dht_lookups_find_the_true_closest_nodes(tmp_path: Path) -> None:
    # k=5 in a 40-node network: lookups must route, not just ask everyone.
    spec = replace(small("dht-lookups", nodes=32, duration_s=15.0), dht=DhtSpec(k=5, alpha=2))
    spec = replace(spec, workload={"lookups_per_node_per_min": 6.0})
    plots = importlib.util.find_spec("matplotlib") is not None  # the optional "sim" extra
    result = run_scenario(spec, tmp_path, plots=plots)
    work = result.summary["workload"]
    assert result.summary["joins"]["ok"] == 32 - 1  # everyone but the first seed joins
    assert work["lookups_completed"] >= 30
    assert work["lookups_failed"] == 0
    # Compared with brute force over all alive nodes (World.true_closest).
    assert work["accuracy"]["closest_found_fraction"] == 1.0
    assert work["accuracy"]["mean_overlap"] >= 0.95
    assert work["hops"]["min"] >= 1
    assert result.summary["routing_table_size"]["min"] >= 5
    names = {p.name for p in result.files}
    assert {"summary.json", "events.csv", "perf.json"} <= names
    if plots:
        assert {"lookup-hops.png", "lookup-latency.png", "churn.png"} <= names
        assert (tmp_path / "lookup-latency.png").stat().st_size > 1000
    header = (tmp_path / "events.csv").read_text().splitlines()[0]
    assert header.startswith("t_s,phase,event,node")


def test_oracle_bootstrap_fills_tables_without_lookups() -> None:
    spec = small("dht-lookups", nodes=40, duration_s=10.0)
    spec = replace(
        spec,
        bootstrap=replace(spec.bootstrap, mode=BootstrapMode.ORACLE, settle_s=1.0),
        dht=DhtSpec(k=6, alpha=3),
        workload={"lookups_per_node_per_min": 4.0},
    )
    result = run_scenario(spec, None)
    s = result.summary
    assert s["joins"]["count"] == 0
    assert s["routing_table_size"]["min"] >= 6
    assert s["workload"]["accuracy"]["closest_found_fraction"] == 1.0


def _fetch_spec() -> object:
    spec = small(
        "fetch-churn",
        nodes=20,
        duration_s=40.0,
        files=3,
        file_bytes=150_000,
        chunk_bytes=32_768,
        fetches_per_s=0.6,
        fetch_timeout_s=30.0,
    )
    return replace(spec, churn=ChurnSpec(fraction=0.4, mean_up_s=12.0, mean_down_s=6.0))


def test_fetch_under_churn_returns_identical_bytes() -> None:
    result = run_scenario(_fetch_spec(), None)  # type: ignore[arg-type]
    s = result.summary
    work = s["workload"]
    assert s["churn"]["crashes"] >= 5 and s["churn"]["restarts"] >= 2
    assert work["corrupt"] == 0  # every completed read hashed equal to the published bytes
    assert work["fetches_ok"] >= 10
    assert work["success_fraction"] >= 0.6
    assert work["bytes_fetched"] >= work["fetches_ok"] * 150_000


def test_same_seed_same_summary() -> None:
    spec = _fetch_spec()
    first = summary_json(run_scenario(spec, None).summary)  # type: ignore[arg-type]
    second = summary_json(run_scenario(spec, None).summary)  # type: ignore[arg-type]
    assert first == second
    assert '"crashes": 0' not in first  # the compared runs did exercise crashes
