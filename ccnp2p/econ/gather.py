"""The gatherer: fetch, through a Node, everything the pure settlement needs for a receipt.

The walk mirrors the settlement's: from the receipt's target down every calc to its inputs,
collecting the calc, its operator, its result record (``/ccn/result/<calc>``) and any content
claim (``/ccn/content/<cid>``) on each node; then the share chain named by the receipt, and the
target's index records. What cannot be found is left out (an input nobody claims is refunded; a
calc without a result record pays no executor), except a calc's operator, without which the
statement cannot be computed at all.

Index records are found at a rendezvous: an indexer *provides* :func:`index_rendezvous`
``(target)`` in the DHT and answers ``index-query`` requests on ``/ccn/settle/1.0.0``; the
ledger's own inclusions are used too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, TypeVar

import trio

from ccnp2p.dht.namespaces import result_key
from ccnp2p.econ import wire
from ccnp2p.econ.claims import find_claim
from ccnp2p.econ.rules import MAX_DAG_NODES, MAX_INDEXERS, MAX_SHARE_HOPS, SettlementError
from ccnp2p.econ.statement import Evidence
from ccnp2p.errors import CcnError, ProtocolError
from ccnp2p.net.errors import NetworkError
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Calc, NamedObject, Operator, decode_object
from ccnp2p.objects.records import IndexRecord, Receipt, ResultRecord, ShareRecord

if TYPE_CHECKING:
    from ccnp2p.econ.ledger import Ledger
    from ccnp2p.node import Node

log = logging.getLogger(__name__)

_T = TypeVar("_T")
MAX_INDEX_RECORDS: Final = 2 * MAX_INDEXERS


def index_rendezvous(target: Cid) -> Cid:
    """The CID indexers of ``target`` provide, so settlers can find them in the DHT."""
    return Cid.for_object(dagcbor.encode({"ccn-index-of": target}))


class Gatherer:
    """Collects settlement evidence for receipts through ``node`` (and ``ledger``, if given)."""

    def __init__(self, node: Node, ledger: Ledger | None = None) -> None:
        self.node = node
        self.ledger = ledger

    async def gather(self, receipt: Receipt) -> Evidence:
        """The evidence for ``receipt``.

        Raises:
            SettlementError: an operator or a share link named in the chain is unavailable.
        """
        objs: dict[Cid, NamedObject] = {}
        await self._walk(receipt.target, objs)
        await self._share_chain(receipt, objs)
        for rec in await self.inclusions(receipt.target):
            objs[rec.cid] = rec
        return Evidence(objs.values())

    async def _walk(self, root: Cid, objs: dict[Cid, NamedObject]) -> None:
        pending, seen = [root], {root}
        while pending:
            if len(seen) > MAX_DAG_NODES:
                raise SettlementError("calc DAG too large to settle")
            cid = pending.pop()
            claim = await self._quiet(find_claim(self.node, cid))
            if claim is not None:
                objs[claim.cid] = claim
            calc = None if cid.is_raw else await self._quiet(self.node.get_object(cid))
            if not isinstance(calc, Calc):
                continue
            objs[cid] = calc
            try:
                op = await self.node.get_object(calc.op, Operator)
            except CcnError as exc:
                raise SettlementError(f"operator {calc.op} unavailable: {exc}") from exc
            objs[calc.op] = op
            result = await self._quiet(self._result_record(cid))
            if result is not None:
                objs[result.cid] = result
            for inp in calc.inputs:
                if inp not in seen:
                    seen.add(inp)
                    pending.append(inp)

    async def _result_record(self, calc: Cid) -> ResultRecord:
        obj = decode_object(await self.node.dht.get_value(result_key(calc)), ResultRecord)
        assert isinstance(obj, ResultRecord)
        return obj

    async def _share_chain(self, receipt: Receipt, objs: dict[Cid, NamedObject]) -> None:
        link = receipt.share
        for _ in range(MAX_SHARE_HOPS):
            if link is None:
                return
            rec = self.ledger.share(link) if self.ledger is not None else None
            if rec is None:
                try:
                    got = await self.node.get_object(link, ShareRecord)
                except CcnError as exc:
                    raise SettlementError(f"share link {link} unavailable: {exc}") from exc
                assert isinstance(got, ShareRecord)
                rec = got
            objs[link] = rec
            link = rec.prev

    async def inclusions(self, target: Cid) -> list[IndexRecord]:
        """Index records of ``target``: the ledger's, then those of rendezvous providers."""
        found: dict[bytes, IndexRecord] = {}
        if self.ledger is not None:
            for rec in self.ledger.inclusions(target):
                found[rec.indexer] = rec
        providers = await self._quiet(self.node.find_providers(index_rendezvous(target)))
        for info in providers or []:
            if len(found) >= MAX_INDEX_RECORDS or info.peer_id == self.node.peer_id:
                continue
            for rec in await self._query(info.peer_id, target):
                if rec.indexer not in found or rec.two_way:
                    found[rec.indexer] = rec
        return list(found.values())[:MAX_INDEX_RECORDS]

    async def _query(self, peer: bytes, target: Cid) -> list[IndexRecord]:
        msg = {"kind": wire.Kind.INDEX_QUERY.value, "target": target}
        try:
            answer = await wire.request(self.node, peer, msg)
            blobs = wire.field_of(answer, "records", list)[: wire.MAX_RECORDS_PER_ANSWER]
            out = []
            for blob in blobs:
                if not isinstance(blob, bytes):
                    raise ProtocolError("records must be bytes")
                rec = decode_object(blob, IndexRecord)
                assert isinstance(rec, IndexRecord)
                rec.verify()
                if rec.target == target:
                    out.append(rec)
            return out
        except (CcnError, NetworkError, trio.TooSlowError) as exc:
            log.info("index query to %s failed: %s", peer.hex()[:12], exc)
            return []

    @staticmethod
    async def _quiet(aw: Awaitable[_T]) -> _T | None:
        """Await ``aw``; a lookup that fails for network or peer reasons answers None."""
        try:
            return await aw
        except (CcnError, NetworkError, trio.TooSlowError) as exc:
            log.debug("evidence lookup failed: %s", exc)
            return None
