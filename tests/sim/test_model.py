"""Pure parts: topology, churn timeline, in-memory blockstore."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccnp2p.errors import CorruptBlock, HashMismatch, NotFound, QuotaExceeded
from ccnp2p.objects.cid import Cid
from ccnp2p.store.memblocks import MemBlocks
from sim.churn import churn_timeline
from sim.spec import (
    Action,
    BandwidthClass,
    ChurnSpec,
    EventSpec,
    LatencyModel,
    LatencySpec,
    TopologySpec,
)
from sim.topology import Topology


def _topology(latency: LatencySpec, n: int = 50, **kw: object) -> Topology:
    topo = Topology(TopologySpec(latency=latency, **kw), n, seed=3)  # type: ignore[arg-type]
    for i in range(n):
        topo.bind(i.to_bytes(2, "big"), i)
    return topo


def test_lognormal_latency_is_symmetric_stable_and_has_the_median() -> None:
    topo = _topology(LatencySpec(model=LatencyModel.LOGNORMAL, median_ms=40, sigma=0.5), 80)
    pairs = [
        (a.to_bytes(2, "big"), b.to_bytes(2, "big")) for a in range(80) for b in range(a + 1, 80)
    ]
    values = [topo.latency_s(a, b) for a, b in pairs]
    assert all(topo.latency_s(b, a) == topo.latency_s(a, b) for a, b in pairs[:200])
    assert statistics.median(values) == pytest.approx(0.040, rel=0.1)
    assert min(values) >= 0.001


def test_coordinates_obey_the_triangle_inequality() -> None:
    topo = _topology(LatencySpec(model=LatencyModel.COORDINATES, base_ms=0, spread_ms=100))
    lat = topo.latency_s
    for a, b, c in [
        (b"\x00\x01", b"\x00\x02", b"\x00\x03"),
        (b"\x00\x04", b"\x00\x09", b"\x00\x07"),
    ]:
        assert lat(a, c) <= lat(a, b) + lat(b, c) + 1e-12


def test_bandwidth_classes_and_gpus_are_drawn_by_weight() -> None:
    classes = (BandwidthClass(weight=3, up_mbps=8), BandwidthClass(weight=1, up_mbps=0))
    topo = _topology(LatencySpec(), 400, bandwidth=classes, gpu_fraction=0.25)
    limited = sum(p.up_bytes_per_s == 1_000_000 for p in topo.profiles)
    assert 250 < limited < 350
    assert all(p.up_bytes_per_s in (1_000_000, None) for p in topo.profiles)
    assert 60 < sum(p.gpus for p in topo.profiles) < 140


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32), st.floats(0.1, 1.0), st.floats(5, 200), st.floats(5, 200))
def test_churn_alternates_crash_restart_within_the_run(
    seed: int, frac: float, up: float, down: float
) -> None:
    spec = ChurnSpec(fraction=frac, mean_up_s=up, mean_down_s=down)
    timeline = churn_timeline(spec, range(40), 300.0, seed)
    assert timeline == churn_timeline(spec, range(40), 300.0, seed)
    assert [e.at_s for e in timeline] == sorted(e.at_s for e in timeline)
    per_node: dict[int, list[Action]] = {}
    for entry in timeline:
        assert 0 <= entry.at_s < 300.0
        per_node.setdefault(entry.node, []).append(entry.action)
    assert len(per_node) <= round(frac * 40)
    for actions in per_node.values():
        expected = [Action.CRASH, Action.RESTART] * len(actions)
        assert actions == expected[: len(actions)]


def test_scheduled_events_join_the_timeline() -> None:
    events = (EventSpec(at_s=10, action=Action.PARTITION), EventSpec(at_s=500, action=Action.HEAL))
    timeline = churn_timeline(ChurnSpec(), range(5), 100.0, 1, events)
    assert [(e.at_s, e.action, e.node) for e in timeline] == [(10, Action.PARTITION, -1)]


def test_memblocks_verifies_like_the_disk_store() -> None:
    blocks = MemBlocks(max_bytes=10)
    data = b"hello"
    cid = Cid.for_raw(data)
    with pytest.raises(HashMismatch):
        blocks.put(cid, b"other")
    assert blocks.put(cid, data) and not blocks.put(cid, data)
    assert blocks.has(cid) and blocks.get(cid) == data and blocks.size_of(cid) == 5
    assert list(blocks) == [cid] and blocks.used_bytes == 5
    with pytest.raises(QuotaExceeded):
        blocks.put(Cid.for_raw(b"123456"), b"123456")
    blocks.corrupt(cid, b"hellO")
    with pytest.raises(CorruptBlock):
        blocks.get(cid)
    assert not blocks.has(cid) and blocks.quarantined == [cid] and blocks.used_bytes == 0
    with pytest.raises(NotFound):
        blocks.get(cid)
    assert blocks.delete(cid) == 0
