"""Scenario files: TOML in, a frozen :class:`ScenarioSpec` out.

A scenario file has fixed sections for what every run shares (the network, its topology, how
nodes join, churn and scheduled events, DHT tunables) and one free-form ``[workload]`` table that
the workload named by ``scenario.kind`` validates itself (see :mod:`sim.workloads`). Unknown keys
in the fixed sections are errors, so a typo never silently falls back to a default.

See ``sim/README.md`` for the format with an example of every section.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from pathlib import Path
from typing import Any

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class SpecError(ValueError):
    """A scenario file is malformed."""


class LatencyModel(Enum):
    CONSTANT = "constant"  # every pair: ``ms``
    LOGNORMAL = "lognormal"  # per pair: lognormal(median_ms, sigma), at least min_ms
    COORDINATES = "coordinates"  # nodes on a plane: base_ms + euclidean distance (ms units)


class BootstrapMode(Enum):
    PROTOCOL = "protocol"  # each node joins through seed nodes with a real DHT bootstrap
    ORACLE = "oracle"  # routing tables filled from global knowledge, then one self-lookup


class Action(Enum):
    CRASH = "crash"
    RESTART = "restart"
    PARTITION = "partition"
    HEAL = "heal"


@dataclass(frozen=True, slots=True)
class LatencySpec:
    model: LatencyModel = LatencyModel.CONSTANT
    ms: float = 20.0
    median_ms: float = 40.0
    sigma: float = 0.5
    min_ms: float = 1.0
    base_ms: float = 5.0
    spread_ms: float = 100.0


@dataclass(frozen=True, slots=True)
class BandwidthClass:
    """A share of the nodes with given link rates (Mbit/s; 0 = unlimited)."""

    weight: float = 1.0
    up_mbps: float = 0.0
    down_mbps: float = 0.0


@dataclass(frozen=True, slots=True)
class TopologySpec:
    latency: LatencySpec = field(default_factory=LatencySpec)
    bandwidth: tuple[BandwidthClass, ...] = ()
    gpu_fraction: float = 0.0  # nodes advertising a GPU (for placement scenarios)


@dataclass(frozen=True, slots=True)
class BootstrapSpec:
    mode: BootstrapMode = BootstrapMode.PROTOCOL
    seeds: int = 3  # bootstrap nodes every other node is configured with
    join_window_s: float = 30.0  # protocol mode: joins spread uniformly over this window
    settle_s: float = 10.0  # quiet time after the last join, before the workload


@dataclass(frozen=True, slots=True)
class DhtSpec:
    k: int = 20
    alpha: int = 3
    request_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ChurnSpec:
    """Nodes that alternate exponential up and down periods during the workload phase."""

    fraction: float = 0.0
    mean_up_s: float = 120.0
    mean_down_s: float = 30.0
    silent: bool = True  # crash like a power loss (peers see nothing) vs a process exit
    start_s: float = 0.0


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A scheduled action at ``at_s`` (seconds into the workload phase).

    ``fraction`` or ``count`` picks random churnable nodes (crash: alive ones; restart: crashed
    ones); ``groups`` splits the network for a partition.
    """

    at_s: float
    action: Action
    fraction: float = 0.0
    count: int = 0
    groups: int = 2
    silent: bool = True


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    name: str
    kind: str
    description: str = ""
    nodes: int = 100
    seed: int = 1
    duration_s: float = 60.0
    topology: TopologySpec = field(default_factory=TopologySpec)
    bootstrap: BootstrapSpec = field(default_factory=BootstrapSpec)
    dht: DhtSpec = field(default_factory=DhtSpec)
    churn: ChurnSpec = field(default_factory=ChurnSpec)
    events: tuple[EventSpec, ...] = ()
    workload: dict[str, Any] = field(default_factory=dict)

    def with_overrides(
        self, *, nodes: int | None = None, seed: int | None = None, duration_s: float | None = None
    ) -> ScenarioSpec:
        spec = self
        if nodes is not None:
            spec = replace(spec, nodes=nodes)
        if seed is not None:
            spec = replace(spec, seed=seed)
        if duration_s is not None:
            spec = replace(spec, duration_s=duration_s)
        spec.check()
        return spec

    def check(self) -> None:
        if self.nodes < 2:
            raise SpecError("a scenario needs at least 2 nodes")
        if self.duration_s <= 0:
            raise SpecError("duration_s must be positive")
        if not 1 <= self.bootstrap.seeds <= self.nodes:
            raise SpecError("bootstrap.seeds must be between 1 and nodes")
        for name, value in (
            ("churn.fraction", self.churn.fraction),
            ("topology.gpu_fraction", self.topology.gpu_fraction),
        ):
            if not 0.0 <= value <= 1.0:
                raise SpecError(f"{name} must be in [0, 1]")
        if self.churn.fraction and (self.churn.mean_up_s <= 0 or self.churn.mean_down_s <= 0):
            raise SpecError("churn mean_up_s and mean_down_s must be positive")
        if self.topology.bandwidth and sum(b.weight for b in self.topology.bandwidth) <= 0:
            raise SpecError("bandwidth weights must add up to something positive")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the summary (enums as their values)."""
        return _plain(self)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    return value


# -- loading ------------------------------------------------------------------------------------


def scenario_path(name_or_path: str) -> Path:
    """A path as given, else ``sim/scenarios/<name>.toml``."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        return path
    return SCENARIO_DIR / f"{name_or_path}.toml"


def available_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> ScenarioSpec:
    path = scenario_path(name_or_path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        known = ", ".join(available_scenarios())
        raise SpecError(f"no scenario {name_or_path!r} (known: {known})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: {exc}") from exc
    return parse_scenario(raw, source=str(path))


def parse_scenario(raw: dict[str, Any], *, source: str = "<scenario>") -> ScenarioSpec:
    try:
        return _parse(dict(raw))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{source}: {exc}") from exc


def _parse(raw: dict[str, Any]) -> ScenarioSpec:
    head = _table(raw.pop("scenario", None), "scenario")
    topo = _table(raw.pop("topology", None), "topology")
    latency = _build(LatencySpec, _table(topo.pop("latency", None), "topology.latency"))
    bandwidth = tuple(
        _build(BandwidthClass, _table(b, "topology.bandwidth")) for b in topo.pop("bandwidth", [])
    )
    topology = _build(TopologySpec, topo, latency=latency, bandwidth=bandwidth)
    events = tuple(_build(EventSpec, _table(e, "events")) for e in raw.pop("events", []))
    spec = _build(
        ScenarioSpec,
        head,
        topology=topology,
        bootstrap=_build(BootstrapSpec, _table(raw.pop("bootstrap", None), "bootstrap")),
        dht=_build(DhtSpec, _table(raw.pop("dht", None), "dht")),
        churn=_build(ChurnSpec, _table(raw.pop("churn", None), "churn")),
        events=tuple(sorted(events, key=lambda e: e.at_s)),
        workload=_table(raw.pop("workload", None), "workload"),
    )
    if raw:
        raise SpecError(f"unknown sections: {', '.join(sorted(raw))}")
    assert isinstance(spec, ScenarioSpec)
    spec.check()
    return spec


def _table(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"[{name}] must be a table")
    return dict(value)


_ENUMS: dict[str, type[Enum]] = {
    "model": LatencyModel,
    "mode": BootstrapMode,
    "action": Action,
}


def _build(cls: type[Any], values: dict[str, Any], **fixed: Any) -> Any:
    """Instantiate a spec dataclass from a TOML table, checking names and coercing enums."""
    names = {f.name: f for f in fields(cls)}
    unknown = set(values) - set(names)
    if unknown:
        raise SpecError(f"unknown keys for {cls.__name__}: {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key in _ENUMS:
            try:
                value = _ENUMS[key](value)
            except ValueError:
                choices = ", ".join(m.value for m in _ENUMS[key])
                raise SpecError(f"{key} must be one of {choices}, not {value!r}") from None
        kwargs[key] = value
    kwargs.update(fixed)
    return cls(**kwargs)
