"""Find and rank the peers that could run a calc (DHT lookups + :mod:`ccnp2p.sched.scoring`).

Candidates are the providers of the operator CID (every node provides the operators it runs),
this node when it runs the operator, and the inputs' holders that run it. For each: its
capability record (``/ccn/cap/<peer>``) and, per input, whether it is among that input's
providers. Input sizes come from the inputs' file roots; a calc input not computed yet is placed
first (recursively) and its size is its operator's declared output estimate
(:mod:`ccnp2p.objects.sizing`), so the whole DAG is placed by one dynamic programme (see
:meth:`Placer.place`). Lookups run concurrently and a failed one only costs that candidate its
details, never the placement.

:attr:`Placer.policy` exists for experiments (``sim/``): ``"random"`` and ``"reader"`` are the
baselines that affinity placement is measured against. Nodes always run ``"affinity"``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import trio

from ccnp2p.dht.namespaces import cap_key
from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Calc, Operator, decode_object
from ccnp2p.objects.records import CapabilityRecord
from ccnp2p.sched.scoring import (
    DEFAULT_BANDWIDTH,
    Candidate,
    Need,
    Score,
    converge,
    link_s,
    produce_cost,
    rank,
    shared_cost,
)

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)
MAX_CANDIDATES = 20
MAX_PREDICT_DEPTH = 4

PlacementPolicy = Literal["affinity", "random", "reader"]


@dataclass(frozen=True, slots=True)
class InputInfo:
    """What placement knows of one input: its (expected) size, who holds it now, and, for a
    calc not computed anywhere yet, the placement predicted for it."""

    size: int
    holders: frozenset[bytes]
    plan: Placement | None = None


Memo = dict[Cid, "InputInfo"]


@dataclass(frozen=True, slots=True)
class Placement:
    calc: Cid
    op: Operator
    need: Need
    candidates: tuple[Candidate, ...]
    ranking: tuple[Score, ...]

    def explain(self) -> dict[str, object]:
        from ccnp2p.objects.keys import peer_id_to_str

        return {
            "calc": str(self.calc),
            "operator": f"{self.op.name}@{self.op.version}",
            "affinity": self.op.affinity,
            "input_bytes": list(self.need.input_bytes),
            "output_bytes_expected": self.need.output_bytes,
            "needs": {"memory": self.need.memory, "gpu_memory": self.need.gpu_memory},
            "ranking": [
                {
                    "peer": peer_id_to_str(s.peer_id),
                    "cost": round(s.total, 6),
                    **{k: round(v, 6) for k, v in s.terms.items()},
                }
                for s in self.ranking
            ],
        }


class Placer:
    """Ranks executors for a calc.

    ``policy`` orders the ranking: ``"affinity"`` (default) by the cost model; ``"random"`` puts
    a random feasible candidate first (seeded by calc and peer id); ``"reader"`` puts this node
    first when it can run the calc. The rest of the ranking stays as fallbacks either way.
    """

    def __init__(self, node: Node, policy: PlacementPolicy = "affinity") -> None:
        self.node = node
        self.policy: PlacementPolicy = policy

    async def input_info(self, cid: Cid, depth: int, memo: Memo) -> InputInfo:
        """Size and holders of an input; for a calc not computed yet, its own placement."""
        node = self.node
        holders = await node.holders(cid)
        if holders or cid.is_raw:
            return InputInfo((await node.size_hint(cid)) or 0, frozenset(holders))
        if cid in memo:
            return memo[cid]
        memo[cid] = InputInfo(0, frozenset())  # guards against cycles while predicting
        try:
            obj = await node.get_object(cid)
            live = await node.compute.live_executor(cid) if isinstance(obj, Calc) else None
            if isinstance(obj, Calc) and live is None and depth < MAX_PREDICT_DEPTH:
                op = await node.get_object(obj.op, Operator)
                assert isinstance(op, Operator)
                sub = await self.place(cid, obj, op, depth=depth + 1, memo=memo)
                memo[cid] = InputInfo(sub.need.output_bytes, frozenset(), sub)
            else:  # being computed by ``live``, too deep to predict, or not a calc
                size = (await node.size_hint(cid)) or 0
                memo[cid] = InputInfo(size, frozenset({live}) if live is not None else frozenset())
        except CcnError:
            return InputInfo(0, frozenset())
        return memo[cid]

    async def capability(self, peer: bytes) -> CapabilityRecord | None:
        if peer == self.node.peer_id:
            return self.node.compute.ranked_capability()
        try:
            value = await self.node.dht.get_value(cap_key(peer))
            rec = decode_object(value, CapabilityRecord)
        except CcnError:
            return None
        assert isinstance(rec, CapabilityRecord)
        return rec

    async def place(
        self,
        calc_cid: Cid,
        calc: Calc,
        op: Operator,
        *,
        depth: int = 0,
        memo: Memo | None = None,
        exclude: frozenset[bytes] = frozenset(),
    ) -> Placement:
        """Rank candidates for ``calc``.

        An input that is a calc not computed anywhere yet is placed first (recursively, up to
        :data:`MAX_PREDICT_DEPTH` levels); each candidate for ``calc`` is then charged the
        cheapest way to produce that input and bring its expected output to it. Over a tree of
        calcs this is the exact dynamic programme for the cheapest assignment of every step
        (each step's executor, placing its own inputs the same way, picks the same peers), so a
        DAG is placed as a whole: a step that shrinks its data stays next to it, one that does
        not moves to where its output is needed.
        """
        node = self.node
        memo = {} if memo is None else memo
        peers: list[bytes] = []
        if node.compute.runs(op):
            peers.append(node.peer_id)
        for info in await node.find_providers(calc.op, MAX_CANDIDATES):
            # Providers of an operator CID are the peers that run it, plus peers that merely
            # stored the object (they defined a calc with it): capability records tell them apart.
            if info.peer_id not in peers and info.peer_id != node.peer_id:
                peers.append(info.peer_id)
        inputs: list[InputInfo] = [InputInfo(0, frozenset()) for _ in calc.inputs]
        caps: dict[bytes, CapabilityRecord | None] = {}

        async def one_input(i: int, cid: Cid) -> None:
            inputs[i] = await self.input_info(cid, depth, memo)

        async def cap_info(peer: bytes) -> None:
            caps[peer] = await self.capability(peer)

        async with trio.open_nursery() as nursery:
            for i, cid in enumerate(calc.inputs):
                nursery.start_soon(one_input, i, cid)
            for peer in peers:
                nursery.start_soon(cap_info, peer)
        # The holders of the inputs (and the peers predicted to compute them) are candidates
        # too when they run the operator: the operator's provider records name at most
        # MAX_CANDIDATES peers, so in a big network they would otherwise often be missing.
        near = {p for got in inputs for p in got.holders}
        for got in inputs:
            if got.plan is not None and got.plan.ranking:
                near.add(got.plan.ranking[0].peer_id)
        extra = sorted(near - set(peers) - {node.peer_id} - exclude)[:MAX_CANDIDATES]
        if extra:
            async with trio.open_nursery() as nursery:
                for peer in extra:
                    nursery.start_soon(cap_info, peer)
            for peer in extra:
                cap = caps.get(peer)
                if cap is not None and calc.op in cap.ops:
                    peers.append(peer)
        cands = []
        for peer in peers:
            if peer in exclude:
                continue  # failed executors: ranked as if they were not there
            cap = caps.get(peer)
            if cap is not None and calc.op not in cap.ops and peer != node.peer_id:
                continue  # stale provider record: it no longer runs the operator
            hw = cap.hardware if cap is not None else {}
            bandwidth = float(cap.bandwidth) if cap and cap.bandwidth else DEFAULT_BANDWIDTH
            up_s, up_bytes = _upstream(inputs, peer, bandwidth)
            cands.append(
                Candidate(
                    peer_id=peer,
                    holds=tuple(peer in i.holders or i.plan is not None for i in inputs),
                    cpu=hw.get("cpu", 1),
                    memory=hw.get("memory", 0),
                    gpu_memory=hw.get("gpu_memory", 0),
                    bandwidth=bandwidth,
                    load=cap.load if cap else 0,
                    price=cap.price if cap else 0,
                    is_self=peer == node.peer_id,
                    upstream_s=up_s,
                    upstream_bytes=up_bytes,
                )
            )
        res = op.resources
        sizes = tuple(i.size for i in inputs)
        own = node.compute.ranked_capability()
        need = Need(
            affinity=op.affinity,
            input_bytes=sizes,
            memory=res.get("memory", 0),
            gpu_memory=res.get("gpu_memory", 0),
            cpu=res.get("cpu", 1),
            output_bytes=op.estimate_output(sum(sizes), calc.params),
            reader_bandwidth=float(own.bandwidth) if own.bandwidth else DEFAULT_BANDWIDTH,
            source_bandwidth=tuple(_fastest(i.holders, caps) for i in inputs),
        )
        ranking = rank(need, cands)
        return Placement(calc_cid, op, need, tuple(cands), tuple(self._reorder(calc_cid, ranking)))

    def _reorder(self, calc_cid: Cid, ranking: list[Score]) -> list[Score]:
        first = None
        if self.policy == "random" and ranking:
            rng = random.Random(bytes(calc_cid) + self.node.peer_id)
            first = ranking[rng.randrange(len(ranking))]
        elif self.policy == "reader":
            first = next((s for s in ranking if s.peer_id == self.node.peer_id), None)
        if first is None:
            return ranking
        return [first, *(s for s in ranking if s is not first)]


def _upstream(inputs: list[InputInfo], peer: bytes, bandwidth: float) -> tuple[float, int]:
    """Seconds and bytes of producing the not-yet-computed calc inputs for a step on ``peer``:
    per input, the cheapest of its candidates' production cost plus moving its expected output
    from there to ``peer`` (nothing to move when it is ``peer`` itself)."""
    total_s, total_bytes = 0.0, 0
    for info in inputs:
        plan = info.plan
        if plan is None or not plan.ranking:
            continue
        # What the executor on ``peer`` will choose when it places this input itself, with
        # ``peer`` as the reader: the same ranking rule (scoring.converge), so prediction and
        # execution agree.
        bw = {c.peer_id: c.bandwidth for c in plan.candidates}
        options: list[tuple[float, float, bytes]] = []
        moved: list[float] = []
        for s in plan.ranking:
            made_s, made_bytes = produce_cost(s)
            cost_s = made_s
            if s.peer_id != peer:
                there = bw.get(s.peer_id, DEFAULT_BANDWIDTH)
                cost_s += link_s(info.size, there, bandwidth)
                made_bytes += info.size
            options.append((cost_s, shared_cost(s), s.peer_id))
            moved.append(made_bytes)
        pick = converge(options)
        total_s += options[pick][0]
        total_bytes += int(moved[pick])
    return total_s, total_bytes


def _fastest(holders: frozenset[bytes], caps: dict[bytes, CapabilityRecord | None]) -> float:
    """The bandwidth of an input's fastest holder whose capability record we have (0: none)."""
    known = [float(c.bandwidth) for p in holders if (c := caps.get(p)) is not None and c.bandwidth]
    return max(known, default=0.0)
