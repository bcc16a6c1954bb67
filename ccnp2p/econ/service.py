"""SettleService: settles receipts, delivers statements, and serves ``/ccn/settle/1.0.0``.

The settler (normally the consumer's node, right after a read) gathers the evidence, computes
and signs the statement, records it in its ledger and sends ``{receipt, statement, evidence}``
to every party. A receiver trusts nothing it is sent: it decodes the evidence, checks every
signature, recomputes the payouts and compares them with the statement's. It then caps the
stated trust weight with its own view of the consumer (re-settling under its own signature if
the settler claimed more trust than the receiver grants) and records the result; the ledger's
primary key on the receipt CID makes a second delivery a no-op.

Deliveries that fail are queued (bounded) and retried by :meth:`SettleService.run`. A peer
that sends garbage gets a refusal or a reset stream; it never reaches the node's nursery.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import trio

from ccnp2p.econ import wire
from ccnp2p.econ.gather import Gatherer
from ccnp2p.econ.ledger import Ledger
from ccnp2p.econ.rules import MAX_EVIDENCE, MAX_SHARE_HOPS, TRUST_ONE_PPM, SettlementError
from ccnp2p.econ.settle import make_statement, peer_of, verify_statement
from ccnp2p.econ.statement import Evidence, Statement, check_receipt
from ccnp2p.econ.trust import TrustScores, compute_trust, settlement_edges
from ccnp2p.errors import CcnError, ProtocolError
from ccnp2p.net.base import Stream
from ccnp2p.net.errors import NetworkError
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import NamedObject, SignedObject, decode_object
from ccnp2p.objects.records import IndexRecord, Receipt, ShareRecord

if TYPE_CHECKING:
    from trio_typing import TaskStatus

    from ccnp2p.node import Node

log = logging.getLogger(__name__)

_O = TypeVar("_O", bound=NamedObject)

MAX_PENDING: Final = 256
RETRY_INTERVAL_S: Final = 60.0
MAX_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class SettleResult:
    """What :meth:`SettleService.settle_and_deliver` did."""

    statement: Statement
    new: bool
    delivered: tuple[bytes, ...]
    failed: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Delivery:
    peer: bytes
    message: bytes
    attempts: int


class SettleService:
    """Settlement for one node.

    Args:
        node: the node (network, identity, DHT, blocks).
        ledger: where receipts, statements and credits are kept.
        seeds: trusted seed peers (binary peer ids). Without seeds every consumer has full
            trust (trust weighting off).
        countersign: countersign index records of content we own when an indexer asks.
    """

    def __init__(
        self, node: Node, ledger: Ledger, *, seeds: Sequence[bytes] = (), countersign: bool = True
    ) -> None:
        self.node = node
        self.ledger = ledger
        self.gatherer = Gatherer(node, ledger)
        self.seeds = tuple(seeds)
        self.countersign = countersign
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.delivery_failures = 0
        self._inbound = trio.Semaphore(wire.MAX_INBOUND)
        self._retry_send, self._retry_recv = trio.open_memory_channel[_Delivery](MAX_PENDING)
        self._trust: tuple[int, TrustScores] | None = None
        node.network.set_handler(wire.PROTOCOL_ID, self._serve)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Retry failed deliveries until cancelled (start it in the node's nursery)."""
        task_status.started()
        async for item in self._retry_recv:
            await trio.sleep(RETRY_INTERVAL_S)
            if not await self._send(item.peer, item.message):
                self._queue(_Delivery(item.peer, item.message, item.attempts + 1))

    # -- trust ---------------------------------------------------------------------------------

    def trust(self) -> TrustScores:
        """Scores over this ledger's graph (recomputed when the ledger has grown)."""
        size = self.ledger.stats().statements + len(self.ledger.inclusions())
        if self._trust is None or self._trust[0] != size:
            pairs = [
                (r, s) for r in self.ledger.receipts() if (s := self.ledger.statement_for(r.cid))
            ]
            edges, volumes = settlement_edges(pairs, self.ledger.inclusions())
            self._trust = (size, compute_trust(edges, self.seeds, volumes))
        return self._trust[1]

    def trust_ppm(self, consumer: bytes) -> int:
        """This node's settlement weight for ``consumer`` (full when no seeds are configured)."""
        if not self.seeds or consumer in self.seeds or consumer == self.node.peer_id:
            return TRUST_ONE_PPM
        return self.trust().weight_ppm(consumer)

    def balances(self) -> dict[bytes, int]:
        """Credits owed per party (binary peer id), from every statement this node accepted."""
        return self.ledger.balances()

    # -- settling ------------------------------------------------------------------------------

    async def settle_and_deliver(self, receipt: Receipt) -> SettleResult:
        """Settle ``receipt``, record it, and deliver the statement to every party.

        Raises:
            SettlementError: the receipt does not verify or its evidence is incomplete.
        """
        check_receipt(receipt)
        evidence = await self.gatherer.gather(receipt)
        consumer = peer_of(receipt.consumer)
        statement = make_statement(
            receipt,
            evidence,
            self.node.identity,
            trust_ppm=self.trust_ppm(consumer),
            created=int(self.node.wall_time()),
        )
        new = self.ledger.record_settlement(
            receipt, statement, issued=consumer == self.node.peer_id
        )
        message = dagcbor.encode(
            {
                "kind": wire.Kind.SETTLE.value,
                "receipt": receipt.encode(),
                "statement": statement.encode(),
                "evidence": evidence.encoded(),
            }
        )
        parties = sorted({p.party for p in statement.payouts} - {self.node.peer_id})
        ok = [False] * len(parties)

        async def deliver(i: int, peer: bytes) -> None:
            ok[i] = await self._send(peer, message)

        async with trio.open_nursery() as nursery:
            for i, peer in enumerate(parties):
                nursery.start_soon(deliver, i, peer)
        failed = tuple(p for p, good in zip(parties, ok, strict=True) if not good)
        for peer in failed:
            self._queue(_Delivery(peer, message, 1))
        delivered = tuple(p for p, good in zip(parties, ok, strict=True) if good)
        return SettleResult(statement, new, delivered, failed)

    async def _send(self, peer: bytes, message: bytes) -> bool:
        try:
            await wire.request(self.node, peer, dagcbor.decode(message))
            return True
        except (CcnError, NetworkError, trio.TooSlowError) as exc:
            self.delivery_failures += 1
            log.info("statement to %s not delivered: %s", peer.hex()[:12], exc)
            return False

    def _queue(self, item: _Delivery) -> None:
        if item.attempts >= MAX_ATTEMPTS:
            return
        try:
            self._retry_send.send_nowait(item)
        except trio.WouldBlock:
            log.warning("retry queue full; a statement to %s is dropped", item.peer.hex()[:12])

    def accept(self, receipt: Receipt, statement: Statement, evidence: Evidence) -> bool:
        """Verify and record a delivered settlement; returns False for a duplicate.

        Raises:
            SettlementError: bad signatures, a statement that does not recompute, or a
                settlement this node is no party to.
        """
        verify_statement(statement, receipt, evidence)
        me = self.node.peer_id
        if me not in {p.party for p in statement.payouts}:
            raise SettlementError("this node is not a party to the statement")
        own = self.trust_ppm(peer_of(receipt.consumer))
        if statement.trust_ppm > own:
            statement = make_statement(receipt, evidence, self.node.identity, trust_ppm=own)
        new = self.ledger.record_settlement(receipt, statement, issued=False)
        if new:
            self.accepted += 1
        else:
            self.duplicates += 1
        return new

    # -- serving -------------------------------------------------------------------------------

    async def _serve(self, stream: Stream) -> None:
        if self._inbound.value == 0:
            await stream.reset()  # overloaded: refuse rather than queue without bound
            return
        async with self._inbound:
            framed = FramedStream(stream, wire.MAX_FRAME_BYTES)
            try:
                with trio.fail_after(wire.REQUEST_TIMEOUT_S):
                    frame = await framed.receive_msg()
                    if frame is None:
                        return
                    try:
                        answer = self._answer(stream.remote_peer, wire.decode_map(frame))
                    except (CcnError, ValueError, TypeError) as exc:
                        self.rejected += 1
                        err = exc if isinstance(exc, CcnError) else ProtocolError(str(exc))
                        log.info(
                            "settle request from %s refused: %s", stream.remote_peer.hex()[:12], err
                        )
                        answer = wire.refusal(err)
                    await framed.send_msg(dagcbor.encode(answer))
                    await framed.close()
            except (CcnError, trio.TooSlowError) as exc:
                log.info("settle stream from %s dropped: %s", stream.remote_peer.hex()[:12], exc)
                await stream.reset()

    def _answer(self, sender: bytes, msg: dict[str, Any]) -> dict[str, Any]:
        kind = wire.request_kind(msg)
        if kind is wire.Kind.SETTLE:
            blobs = wire.field_of(msg, "evidence", list)
            if len(blobs) > MAX_EVIDENCE:
                raise ProtocolError("too much evidence")
            evidence = Evidence.from_encoded(b for b in blobs if isinstance(b, bytes))
            receipt = _object(msg, "receipt", Receipt)
            statement = _object(msg, "statement", Statement)
            return {"ok": True, "new": self.accept(receipt, statement, evidence)}
        if kind is wire.Kind.SHARE:
            return self._take_share(msg)
        if kind is wire.Kind.COUNTERSIGN:
            return {"ok": True, "index": self._countersign(_object(msg, "index", IndexRecord))}
        target = wire.field_of(msg, "target", Cid)
        records = self.ledger.inclusions(target)[: wire.MAX_RECORDS_PER_ANSWER]
        return {"ok": True, "records": [r.encode() for r in records]}

    def _take_share(self, msg: dict[str, Any]) -> dict[str, Any]:
        share = _object(msg, "share", ShareRecord)
        chain = wire.field_of(msg, "chain", list)[:MAX_SHARE_HOPS]
        links = [share] + [_object({"b": b}, "b", ShareRecord) for b in chain]
        for link in links:
            _verified(link)
        if share.to != self.node.peer_id:
            raise SettlementError("share link is not addressed to this node")
        for link in links:
            self.ledger.add_share(link)
        return {"ok": True}

    def _countersign(self, rec: IndexRecord) -> bytes:
        _verified(rec)
        if not self.countersign or rec.owner != self.node.identity.public.to_protobuf():
            raise SettlementError("not countersigning: this node does not own the target")
        signed = rec.countersigned_by(self.node.identity)
        self.ledger.add_inclusion(signed)
        return signed.encode()


def _object(msg: dict[str, Any], key: str, typ: type[_O]) -> _O:
    """Field ``key`` of ``msg``: bytes that decode as a ``typ`` object."""
    obj = decode_object(wire.field_of(msg, key, bytes), typ)
    assert isinstance(obj, typ)
    return obj


def _verified(obj: SignedObject) -> None:
    try:
        obj.verify()
    except CcnError as exc:
        raise SettlementError(f"{obj.TYPE} does not verify") from exc
