"""Small scenarios for the simulator's tests: the shipped files, shrunk."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sim.spec import BootstrapSpec, ScenarioSpec, load_scenario


def small(name: str, *, nodes: int = 24, duration_s: float = 30.0, **workload: Any) -> ScenarioSpec:
    """A shipped scenario with few nodes, a short join window and a short measured phase."""
    spec = load_scenario(name)
    boot = replace(spec.bootstrap, join_window_s=5.0, settle_s=5.0)
    spec = replace(
        spec,
        nodes=nodes,
        duration_s=duration_s,
        bootstrap=boot,
        workload={**spec.workload, **workload},
        events=tuple(replace(e, at_s=e.at_s * duration_s / spec.duration_s) for e in spec.events),
    )
    spec.check()
    return spec


@pytest.fixture
def oracle_boot() -> BootstrapSpec:
    return BootstrapSpec(mode=BootstrapSpec().mode.__class__("oracle"), seeds=2, settle_s=1.0)
