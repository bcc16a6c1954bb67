"""Find and rank the peers that could run a calc (DHT lookups + :mod:`ccnp2p.sched.scoring`).

Candidates are the providers of the operator CID (every node provides the operators it runs)
plus this node when it runs the operator. For each: its capability record (``/ccn/cap/<peer>``)
and, per input, whether it is among that input's providers. Input sizes come from the inputs'
file roots; a calc input's size is estimated from its own inputs. Lookups run concurrently and
a failed one only costs that candidate its details, never the placement.

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
from ccnp2p.sched.scoring import DEFAULT_BANDWIDTH, Candidate, Need, Score, rank

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)
MAX_CANDIDATES = 20
MAX_PREDICT_DEPTH = 4

PlacementPolicy = Literal["affinity", "random", "reader"]


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

    async def input_holders(self, cid: Cid, depth: int, memo: dict[Cid, set[bytes]]) -> set[bytes]:
        """Who holds an input now, or, for a calc not computed yet, who will compute it."""
        node = self.node
        holders = await node.holders(cid)
        if holders or cid.is_raw:
            return holders
        if cid in memo:
            return memo[cid]
        memo[cid] = set()  # guards against cycles while predicting
        try:
            obj = await node.get_object(cid)
            if not isinstance(obj, Calc):
                return set()
            live = await node.compute.live_executor(cid)
            if live is not None:
                memo[cid] = {live}
            elif depth < MAX_PREDICT_DEPTH:
                op = await node.get_object(obj.op, Operator)
                assert isinstance(op, Operator)
                sub = await self.place(cid, obj, op, depth=depth + 1, memo=memo)
                memo[cid] = {sub.ranking[0].peer_id} if sub.ranking else set()
        except CcnError:
            return set()
        return memo[cid]

    async def capability(self, peer: bytes) -> CapabilityRecord | None:
        if peer == self.node.peer_id:
            return self.node.compute.capability()
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
        memo: dict[Cid, set[bytes]] | None = None,
        exclude: frozenset[bytes] = frozenset(),
    ) -> Placement:
        """Rank candidates for ``calc``.

        An input that is a calc not computed anywhere yet is assumed to end up where its own
        placement puts it (predicted recursively, up to :data:`MAX_PREDICT_DEPTH` levels), so
        a DAG is placed as a whole: a step lands where its biggest inputs will be produced.
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
        sizes = [0] * len(calc.inputs)
        holders: list[set[bytes]] = [set() for _ in calc.inputs]
        caps: dict[bytes, CapabilityRecord | None] = {}

        async def input_info(i: int, cid: Cid) -> None:
            sizes[i] = (await node.size_hint(cid)) or 0
            holders[i] = await self.input_holders(cid, depth, memo)

        async def cap_info(peer: bytes) -> None:
            caps[peer] = await self.capability(peer)

        async with trio.open_nursery() as nursery:
            for i, cid in enumerate(calc.inputs):
                nursery.start_soon(input_info, i, cid)
            for peer in peers:
                nursery.start_soon(cap_info, peer)
        # The holders of the inputs are candidates too when they run the operator: the
        # operator's provider records name at most MAX_CANDIDATES peers, so in a big network
        # the data holders would otherwise often be missing from the ranking.
        extra = sorted({p for h in holders for p in h} - set(peers) - {node.peer_id} - exclude)
        if extra:
            async with trio.open_nursery() as nursery:
                for peer in extra[:MAX_CANDIDATES]:
                    nursery.start_soon(cap_info, peer)
            for peer in extra[:MAX_CANDIDATES]:
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
            cands.append(
                Candidate(
                    peer_id=peer,
                    holds=tuple(peer in h for h in holders),
                    cpu=hw.get("cpu", 1),
                    memory=hw.get("memory", 0),
                    gpu_memory=hw.get("gpu_memory", 0),
                    bandwidth=float(cap.bandwidth) if cap and cap.bandwidth else DEFAULT_BANDWIDTH,
                    load=cap.load if cap else 0,
                    price=cap.price if cap else 0,
                    is_self=peer == node.peer_id,
                )
            )
        res = op.resources
        need = Need(
            affinity=op.affinity,
            input_bytes=tuple(sizes),
            memory=res.get("memory", 0),
            gpu_memory=res.get("gpu_memory", 0),
            cpu=res.get("cpu", 1),
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
