from __future__ import annotations

import pytest

from sim.spec import (
    Action,
    BootstrapMode,
    LatencyModel,
    SpecError,
    available_scenarios,
    load_scenario,
    parse_scenario,
)
from sim.workloads import make_workload, workload_kinds


def test_shipped_scenarios_load_and_have_a_workload() -> None:
    assert {"dht-lookups", "fetch-churn"} <= set(available_scenarios())
    for name in available_scenarios():
        spec = load_scenario(name)
        assert spec.kind in workload_kinds()
        make_workload(spec)  # validates the [workload] table


def test_fetch_churn_file_parses_every_section() -> None:
    spec = load_scenario("fetch-churn")
    assert spec.topology.latency.model is LatencyModel.LOGNORMAL
    assert len(spec.topology.bandwidth) == 2
    assert spec.bootstrap.mode is BootstrapMode.PROTOCOL
    assert [e.action for e in spec.events] == [Action.CRASH, Action.RESTART]
    assert spec.churn.fraction == pytest.approx(0.3)


def test_overrides() -> None:
    spec = load_scenario("dht-lookups").with_overrides(nodes=10, seed=7, duration_s=5)
    assert (spec.nodes, spec.seed, spec.duration_s) == (10, 7, 5)


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"scenario": {"name": "x", "kind": "dht-lookups", "nodez": 3}}, "unknown keys"),
        ({"scenario": {"name": "x", "kind": "dht-lookups"}, "extra": {}}, "unknown sections"),
        (
            {"scenario": {"name": "x", "kind": "k"}, "topology": {"latency": {"model": "warp"}}},
            "model must be one of",
        ),
        ({"scenario": {"name": "x", "kind": "k", "nodes": 1}}, "at least 2"),
        ({"scenario": {"name": "x", "kind": "k"}, "churn": {"fraction": 2.0}}, r"\[0, 1\]"),
    ],
)
def test_bad_files_are_rejected(raw: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        parse_scenario(raw)


def test_unknown_kind_and_workload_keys() -> None:
    with pytest.raises(SpecError, match="unknown scenario kind"):
        make_workload(parse_scenario({"scenario": {"name": "x", "kind": "teleport"}}))
    spec = parse_scenario(
        {"scenario": {"name": "x", "kind": "dht-lookups"}, "workload": {"rate": 1}}
    )
    with pytest.raises(SpecError, match="unknown \\[workload\\] keys"):
        make_workload(spec)
