"""What users do with roles: receipts, inclusions, shares, and the ledger report.

Plain async functions over a :class:`~ccnp2p.econ.service.SettleService`, for the HTTP API and
the CLI (``ccnp2p index``, ``ccnp2p share``, ``ccnp2p ledger``). Each stores what it signs
locally (ledger and blockstore) before it talks to anyone, so a failed delivery loses nothing.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

import trio

from ccnp2p.econ import wire
from ccnp2p.econ.claims import find_claim
from ccnp2p.econ.gather import index_rendezvous
from ccnp2p.econ.rules import MAX_SHARE_HOPS
from ccnp2p.econ.service import SettleService
from ccnp2p.errors import CcnError
from ccnp2p.net.errors import NetworkError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import PublicKey, peer_id_to_str
from ccnp2p.objects.model import Content, decode_object
from ccnp2p.objects.records import IndexRecord, Receipt, ShareRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shared:
    """A share link and whether its recipient acknowledged it."""

    record: ShareRecord
    delivered: bool


def sign_receipt(
    svc: SettleService,
    target: Cid,
    bytes_read: int,
    value: int,
    *,
    share: Cid | None = None,
    nonce: int | None = None,
) -> Receipt:
    """This node's signed receipt for a read of ``target``.

    ``share`` defaults to the first share link for ``target`` addressed to this node (the
    context that led us to it); ``nonce`` defaults to a random 63-bit number.
    """
    node = svc.node
    if share is None:
        links = svc.ledger.shares_to(target, node.peer_id)
        share = links[0].cid if links else None
    return Receipt(
        consumer=node.identity.public.to_protobuf(),
        target=target,
        bytes_read=bytes_read,
        value=value,
        share=share,
        created=int(node.wall_time()),
        nonce=secrets.randbits(63) if nonce is None else nonce,
    ).signed_by(node.identity)


async def index_cid(svc: SettleService, cid: Cid) -> IndexRecord:
    """Include ``cid`` in this node's index: one-way, two-way if its owner countersigns.

    The owner is taken from the content claim on ``cid`` (none: the record names no owner
    and stays one-way). The record is kept in the ledger and this node provides the CID's
    index rendezvous, so settlers find it.
    """
    node = svc.node
    claim = await _quiet_claim(svc, cid)
    rec = IndexRecord(
        indexer=node.identity.public.to_protobuf(),
        target=cid,
        owner=claim.owner if claim is not None else b"",
        created=int(node.wall_time()),
    ).signed_by(node.identity)
    if claim is not None:
        owner = PublicKey.from_protobuf(claim.owner).peer_id
        if owner == node.peer_id:
            rec = rec.countersigned_by(node.identity)
        else:
            rec = await _ask_countersign(svc, owner, rec)
    svc.ledger.add_inclusion(rec)
    await node.provide(index_rendezvous(cid))
    return rec


async def share_cid(svc: SettleService, cid: Cid, to: bytes, *, prev: Cid | None = None) -> Shared:
    """Share ``cid`` with peer ``to`` (binary peer id), continuing the chain that reached us.

    ``prev`` defaults to the first share link of ``cid`` addressed to this node.
    """
    node = svc.node
    if prev is None:
        links = svc.ledger.shares_to(cid, node.peer_id)
        prev = links[0].cid if links else None
    rec = ShareRecord(
        sharer=node.identity.public.to_protobuf(),
        target=cid,
        to=to,
        prev=prev,
        created=int(node.wall_time()),
    ).signed_by(node.identity)
    svc.ledger.add_share(rec)
    await node.ablocks.put(rec.cid, rec.encode(), verify=False)
    chain: list[bytes] = []
    link = prev
    while link is not None and len(chain) < MAX_SHARE_HOPS:
        earlier = svc.ledger.share(link)
        if earlier is None:
            break
        chain.append(earlier.encode())
        link = earlier.prev
    msg = {"kind": wire.Kind.SHARE.value, "share": rec.encode(), "chain": chain}
    try:
        await wire.request(node, to, msg)
        return Shared(rec, True)
    except (CcnError, NetworkError, trio.TooSlowError):
        return Shared(rec, False)


def ledger_report(svc: SettleService) -> dict[str, Any]:
    """The ``ccnp2p ledger --json`` document: counts, balances, this node's credit."""
    stats = svc.ledger.stats()
    balances = svc.balances()
    return {
        "peer": node_str(svc),
        "receipts_issued": stats.receipts_issued,
        "receipts_received": stats.receipts_received,
        "statements": stats.statements,
        "owed_to_me": balances.get(svc.node.peer_id, 0),
        "balances": {peer_id_to_str(p): n for p, n in sorted(balances.items())},
        "accepted": svc.accepted,
        "duplicates": svc.duplicates,
        "rejected": svc.rejected,
    }


def node_str(svc: SettleService) -> str:
    return peer_id_to_str(svc.node.peer_id)


async def _quiet_claim(svc: SettleService, cid: Cid) -> Content | None:
    try:
        return await find_claim(svc.node, cid)
    except (CcnError, trio.TooSlowError):
        return None


async def _ask_countersign(svc: SettleService, owner: bytes, rec: IndexRecord) -> IndexRecord:
    msg = {"kind": wire.Kind.COUNTERSIGN.value, "index": rec.encode()}
    try:
        answer = await wire.request(svc.node, owner, msg)
        signed = decode_object(wire.field_of(answer, "index", bytes), IndexRecord)
        assert isinstance(signed, IndexRecord)
        signed.verify()
    except (CcnError, NetworkError, trio.TooSlowError) as exc:
        log.info("no countersign from %s: %s", owner.hex()[:12], exc)
        return rec
    same = signed.fields() == rec.fields() and signed.sig == rec.sig
    return signed if same and signed.two_way else rec
