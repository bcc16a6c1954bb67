"""Affinity scoring: a pure cost model that ranks candidate executors for one calc.

The score is an estimate of *seconds until the result streams to the reader*, plus a price
term, so its parts can be added and explained:

``transfer_s``
    input bytes the candidate does not hold, divided by the candidate's bandwidth, plus one
    round trip per remote input. This is what source affinity minimises: data-heavy operators
    land next to their data because moving bytes is their dominant cost.
``compute_s``
    work (input bytes) divided by the candidate's speed: CPU cores, or a GPU when the operator
    asks for GPU memory and the candidate has enough. This is what result affinity minimises.
    An operator that declares GPU memory runs :data:`CPU_FALLBACK_PENALTY` times slower on a
    peer without a (big enough) GPU.
``load_s``
    compute time stretched by the candidate's load (per mille of capacity in use).
``price``
    the candidate's price per CPU-second times compute seconds, weighted by ``price_weight``.
``infeasible``
    memory need above the candidate's memory: never chosen. When an operator declares GPU
    memory and some candidate's GPU fits it, candidates without a fitting GPU are left out.

Ties break on the peer id, so every reader that sees the same records picks the same executor;
that is what makes concurrent readers converge on one execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

CPU_BYTES_PER_CORE_S: Final = 50e6
GPU_SPEEDUP: Final = 20.0
CPU_FALLBACK_PENALTY: Final = 20.0
DEFAULT_BANDWIDTH: Final = 10e6  # bytes/s when a peer publishes none
DEFAULT_RTT_S: Final = 0.05


@dataclass(frozen=True, slots=True)
class Need:
    """What a calc needs: its operator's affinity and resources, and its inputs."""

    affinity: Literal["source", "result"]
    input_bytes: tuple[int, ...]
    memory: int = 0
    gpu_memory: int = 0
    cpu: int = 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """A peer that runs the operator, as its capability record and the DHT describe it."""

    peer_id: bytes
    holds: tuple[bool, ...]  # per input: does this peer hold it already?
    cpu: int = 1
    memory: int = 0
    gpu_memory: int = 0
    bandwidth: float = DEFAULT_BANDWIDTH
    load: int = 0  # per mille
    price: int = 0
    rtt_s: float = DEFAULT_RTT_S
    is_self: bool = False


@dataclass(frozen=True, slots=True)
class Score:
    peer_id: bytes
    total: float
    terms: dict[str, float] = field(default_factory=dict)
    feasible: bool = True
    reason: str = ""


def score(need: Need, cand: Candidate, *, price_weight: float = 0.01) -> Score:
    """Estimated cost of running the calc on ``cand`` (lower is better)."""
    if need.memory and cand.memory and need.memory > cand.memory:
        return Score(cand.peer_id, float("inf"), {}, False, "not enough memory")
    if len(cand.holds) != len(need.input_bytes):
        raise ValueError("holds must have one entry per input")
    moved = sum(b for b, held in zip(need.input_bytes, cand.holds, strict=True) if not held)
    remote_inputs = sum(1 for held in cand.holds if not held)
    bandwidth = max(cand.bandwidth, 1.0)
    transfer_s = moved / bandwidth + remote_inputs * cand.rtt_s
    work = max(sum(need.input_bytes), 1)
    speed = max(cand.cpu, 1) * CPU_BYTES_PER_CORE_S
    if need.gpu_memory:
        if cand.gpu_memory >= need.gpu_memory:
            speed *= GPU_SPEEDUP
        else:
            speed /= CPU_FALLBACK_PENALTY
    compute_s = work / speed
    load_s = compute_s * (cand.load / 1000.0)
    price = cand.price * compute_s * price_weight
    terms = {
        "bytes_moved": float(moved),
        "transfer_s": transfer_s,
        "compute_s": compute_s,
        "load_s": load_s,
        "price": price,
    }
    return Score(cand.peer_id, transfer_s + compute_s + load_s + price, terms)


def rank(need: Need, candidates: list[Candidate]) -> list[Score]:
    """Feasible candidates best first; ties broken by peer id (deterministic everywhere).

    An operator that declares GPU memory runs only on peers whose GPU fits it, when any such
    peer is a candidate; peers without one are the fallback when none is.
    """
    if need.gpu_memory and any(c.gpu_memory >= need.gpu_memory for c in candidates):
        candidates = [c for c in candidates if c.gpu_memory >= need.gpu_memory]
    scores = [score(need, c) for c in candidates]
    feasible = [s for s in scores if s.feasible]
    return sorted(feasible, key=lambda s: (s.total, s.peer_id))
