"""The simulated physical network: where nodes sit, how fast their links are, what they have.

A :class:`Topology` is drawn once per run from the scenario's seed. It answers the memory
network's ``latency_fn(a, b)`` in O(1) without storing a matrix (10,000 nodes would need 10^8
pairs):

* ``constant``: one value for every pair.
* ``lognormal``: each *pair* gets its own draw, made from the two nodes' 64-bit salts with a
  symmetric mix (so a->b equals b->a and repeated calls agree) and the inverse normal CDF.
* ``coordinates``: each node gets a point in a square ``spread_ms`` wide; one-way latency is
  ``base_ms`` plus the euclidean distance, so the triangle inequality holds, as on the Internet.

Each node also gets a bandwidth class (upload/download rates, drawn by weight) and a GPU count
(for placement scenarios: capability records will advertise it).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

from sim.spec import LatencyModel, TopologySpec

MBPS_TO_BYTES_PER_S = 1_000_000 / 8
_MASK64 = (1 << 64) - 1
_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class NodeProfile:
    """What one simulated machine is: position, salt, link rates (bytes/s, None = unlimited)."""

    index: int
    x_ms: float
    y_ms: float
    salt: int
    up_bytes_per_s: float | None
    down_bytes_per_s: float | None
    gpus: int


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class Topology:
    """Profiles of ``n`` nodes and the latency between any two of them (seconds, one way)."""

    def __init__(self, spec: TopologySpec, n: int, seed: int) -> None:
        self.spec = spec
        rng = random.Random(f"topology:{seed}")
        lat = spec.latency
        classes = spec.bandwidth
        weights = [c.weight for c in classes]
        profiles = []
        for i in range(n):
            up = down = None
            if classes:
                chosen = rng.choices(classes, weights)[0]
                up = chosen.up_mbps * MBPS_TO_BYTES_PER_S or None
                down = chosen.down_mbps * MBPS_TO_BYTES_PER_S or None
            gpus = 1 if rng.random() < spec.gpu_fraction else 0
            profiles.append(
                NodeProfile(
                    index=i,
                    x_ms=rng.uniform(0.0, lat.spread_ms),
                    y_ms=rng.uniform(0.0, lat.spread_ms),
                    salt=rng.getrandbits(64),
                    up_bytes_per_s=up,
                    down_bytes_per_s=down,
                    gpus=gpus,
                )
            )
        self.profiles: tuple[NodeProfile, ...] = tuple(profiles)
        self._by_peer: dict[bytes, NodeProfile] = {}
        self._mu = math.log(max(lat.median_ms, 1e-9))

    def bind(self, peer_id: bytes, index: int) -> None:
        """Tell the topology which peer id lives on machine ``index``."""
        self._by_peer[peer_id] = self.profiles[index]

    def latency_ms(self, a: NodeProfile, b: NodeProfile) -> float:
        lat = self.spec.latency
        if lat.model is LatencyModel.CONSTANT:
            return lat.ms
        if lat.model is LatencyModel.COORDINATES:
            return lat.base_ms + math.hypot(a.x_ms - b.x_ms, a.y_ms - b.y_ms)
        # Lognormal per pair: symmetric mix of both salts -> uniform in (0, 1) -> quantile.
        u = (_mix64(a.salt ^ b.salt) + 0.5) / (1 << 64)
        return max(lat.min_ms, math.exp(self._mu + lat.sigma * _NORMAL.inv_cdf(u)))

    def latency_s(self, a: bytes, b: bytes) -> float:
        """The memory network's ``latency_fn``."""
        return self.latency_ms(self._by_peer[a], self._by_peer[b]) / 1000.0
