"""Affinity scoring: a pure cost model that ranks candidate executors for one calc.

The score is an estimate of *seconds until the result streams to the reader*, plus a price
term, so its parts can be added and explained:

``transfer_s``
    input bytes the candidate does not hold, divided by the slower of the candidate's bandwidth
    and the input's fastest holder's, plus :data:`TRANSFER_SETUP_S` per remote input. This is
    what source affinity minimises: data-heavy operators land next to their data because
    moving bytes is their dominant cost.
``upstream_s``
    for inputs that are calcs not computed yet: the best way to produce each of them *and* bring
    its output to this candidate (computed by :mod:`ccnp2p.sched.placement` over the sub-DAG).
    This is what places a DAG as a whole rather than one step at a time.
``deliver_s``
    the calc's expected output (its operator's declared size model) sent to the reader, unless
    the candidate is the reader.
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

Converging readers. Only ``deliver_s`` (and ``is_self``) depend on who reads: every reader of a
calc sees the same production costs. When the best candidates are within
:data:`TIE_TOLERANCE` of each other (say a copy-like step: computing it on the data holder and
sending the output costs what fetching the input and computing it here costs), the one with the
lowest *shared* cost wins (production plus sending the output at the candidate's own bandwidth:
what any reader would pay), then the lowest peer id. So readers that would each have run the
step on themselves, or would each have picked a different equally good holder for their own
link, all pick the same holder: one execution they can share, and a result cached next to its
data. That is what makes concurrent readers converge on one execution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

TIE_TOLERANCE: Final = 0.02  # relative: costs this close count as equal
TIE_SLACK_S: Final = 1e-6  # absolute, for float noise near zero
CPU_BYTES_PER_CORE_S: Final = 50e6
GPU_SPEEDUP: Final = 20.0
CPU_FALLBACK_PENALTY: Final = 20.0
DEFAULT_BANDWIDTH: Final = 10e6  # bytes/s when a peer publishes none
# Fixed cost of each transfer: a tie-breaker (0.1 ms: ~1 KB at 100 Mbit/s), not a latency
# estimate. A streamed input waits for its first round trip once, and the edges of a DAG stream
# side by side, so charging a full round trip per edge would make the model count transfers
# instead of bytes (we measured that: 5 ms per transfer put the DAG placements of
# sim/scenarios/placement-dag.toml 5-50% above the fewest bytes, 50 ms about 2x).
TRANSFER_SETUP_S: Final = 1e-4


@dataclass(frozen=True, slots=True)
class Need:
    """What a calc needs: its operator's affinity and resources, and its inputs."""

    affinity: Literal["source", "result"]
    input_bytes: tuple[int, ...]
    memory: int = 0
    gpu_memory: int = 0
    cpu: int = 1
    output_bytes: int = 0  # expected, from the operator's size model
    reader_bandwidth: float = 0.0  # bytes/s; 0: unknown (the candidate's own is used)
    source_bandwidth: tuple[float, ...] = ()  # per input: its fastest holder's; 0: unknown


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
    setup_s: float = TRANSFER_SETUP_S
    is_self: bool = False
    upstream_s: float = 0.0  # producing not-yet-computed calc inputs and moving them here
    upstream_bytes: int = 0


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
    bandwidth = max(cand.bandwidth, 1.0)
    moved, transfer_s = 0, 0.0
    for i, (nbytes, held) in enumerate(zip(need.input_bytes, cand.holds, strict=True)):
        if held:
            continue
        source = need.source_bandwidth[i] if i < len(need.source_bandwidth) else 0.0
        moved += nbytes
        transfer_s += nbytes / (min(bandwidth, source) if source > 0 else bandwidth) + cand.setup_s
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
    delivered = 0 if cand.is_self else need.output_bytes
    deliver_s = 0.0
    if not cand.is_self:
        link = min(bandwidth, need.reader_bandwidth) if need.reader_bandwidth > 0 else bandwidth
        deliver_s = delivered / max(link, 1.0) + cand.setup_s
    terms = {
        "bytes_moved": float(moved + cand.upstream_bytes + delivered),
        "delivered_bytes": float(delivered),
        "transfer_s": transfer_s,
        "upstream_s": cand.upstream_s,
        "compute_s": compute_s,
        "load_s": load_s,
        "price": price,
        "deliver_s": deliver_s,
        "serve_s": need.output_bytes / bandwidth,  # sending the output at its own bandwidth
    }
    total = transfer_s + cand.upstream_s + compute_s + load_s + price + deliver_s
    return Score(cand.peer_id, total, terms)


def shared_cost(s: Score) -> float:
    """What the result costs *any* reader: production plus sending the output at the
    candidate's own bandwidth (independent of who reads; see :func:`converge`)."""
    return produce_cost(s)[0] + s.terms.get("serve_s", 0.0)


def produce_cost(s: Score) -> tuple[float, float]:
    """Seconds and bytes of producing the result on ``s``'s peer, leaving out its delivery."""
    return (
        s.total - s.terms.get("deliver_s", 0.0),
        s.terms.get("bytes_moved", 0.0) - s.terms.get("delivered_bytes", 0.0),
    )


def link_s(nbytes: int, a_bandwidth: float, b_bandwidth: float) -> float:
    """Seconds to move ``nbytes`` between two peers (the slower side's bandwidth, one setup)."""
    return nbytes / max(min(a_bandwidth, b_bandwidth), 1.0) + TRANSFER_SETUP_S


def rank(need: Need, candidates: list[Candidate]) -> list[Score]:
    """Feasible candidates best first; ties broken by peer id (deterministic everywhere).

    An operator that declares GPU memory runs only on peers whose GPU fits it, when any such
    peer is a candidate; peers without one are the fallback when none is.
    """
    if need.gpu_memory and any(c.gpu_memory >= need.gpu_memory for c in candidates):
        candidates = [c for c in candidates if c.gpu_memory >= need.gpu_memory]
    scores = [score(need, c) for c in candidates]
    feasible = sorted((s for s in scores if s.feasible), key=lambda s: (s.total, s.peer_id))
    if not feasible:
        return []
    first = converge([(s.total, shared_cost(s), s.peer_id) for s in feasible])
    return [feasible[first], *feasible[:first], *feasible[first + 1 :]]


def converge(options: list[tuple[float, float, bytes]]) -> int:
    """Index of the option to take among ``(total, shared cost, peer id)`` triples: of those
    whose total is within the tie tolerance of the best, the one with the lowest
    reader-independent cost (:func:`shared_cost`), then the lowest peer id (see the module doc:
    this is what makes readers agree)."""
    best = min(total for total, _, _ in options)
    limit = best * (1 + TIE_TOLERANCE) + TIE_SLACK_S
    near = [i for i, (total, _, _) in enumerate(options) if total <= limit]
    return min(near, key=lambda i: (options[i][1], options[i][2]))
