"""Settlement and names on a small in-memory network of real Nodes (virtual time)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.econ import wire
from ccnp2p.econ.actions import index_cid, ledger_report, share_cid, sign_receipt
from ccnp2p.econ.claims import publish_claim, register_econ_namespaces
from ccnp2p.econ.ledger import Ledger
from ccnp2p.econ.names import NameRecord, NameValidator, name_key, publish_name, resolve_name
from ccnp2p.econ.service import SettleService
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import decode_object
from tests.node.conftest import memory_nodes


async def read_all(svc: SettleService, cid: Cid) -> int:
    n = 0
    async for piece in svc.node.read(cid):
        n += len(piece)
    return n


@asynccontextmanager
async def econ_nodes(tmp_path: Path, n: int) -> AsyncIterator[list[SettleService]]:
    async with memory_nodes(tmp_path, n) as nodes:
        services = []
        for node in nodes:  # as identify would: every peer can dial every other
            for other in nodes:
                if other is not node:
                    node.network.add_peer_addrs(other.peer_id, other.network.listen_addrs())
        for i, node in enumerate(nodes):
            register_econ_namespaces(node.dht.validators)
            services.append(SettleService(node, Ledger(tmp_path / f"ledger{i}.sqlite")))
        yield services


async def test_settlement_is_delivered_verified_and_counted_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with econ_nodes(tmp_path, 5) as svcs:
        first, alice, bob, sharer, consumer = svcs
        a = (await alice.node.add_bytes(b"alpha " * 500)).root
        b = (await bob.node.add_bytes(b"beta " * 500)).root
        await publish_claim(alice.node, a, "a")
        await publish_claim(bob.node, b, "b")
        up = await consumer.node.calc("upper", [a])
        joined = await consumer.node.calc("join", [up, b], {"sep": "|"})
        await publish_claim(alice.node, joined, "joined", {"sharers": 2000, "indexers": 1000})
        inclusion = await index_cid(bob, joined)
        assert inclusion.two_way  # alice countersigned over /ccn/settle
        assert (await share_cid(first, joined, sharer.node.peer_id)).delivered
        assert (await share_cid(sharer, joined, consumer.node.peer_id)).delivered

        size = await read_all(consumer, joined)
        await trio.sleep(5)  # the executors publish their result records
        receipt = sign_receipt(consumer, joined, size, 1_000_000, nonce=7)
        assert receipt.share is not None
        done = await consumer.settle_and_deliver(receipt)

        roles = {(p.party, p.role) for p in done.statement.payouts}
        assert (alice.node.peer_id, "owner") in roles and (bob.node.peer_id, "owner") in roles
        assert (bob.node.peer_id, "indexer") in roles
        assert {(first.node.peer_id, "sharer"), (sharer.node.peer_id, "sharer")} <= roles
        assert any(role == "executor" for _, role in roles)
        assert sum(p.amount for p in done.statement.payouts) == 1_000_000
        for party in (alice, bob, sharer, first):
            if party.node.peer_id in done.delivered:
                got = party.ledger.statement_for(receipt.cid)
                assert got is not None and got.same_numbers(done.statement)
        assert {alice.node.peer_id, bob.node.peer_id} <= set(done.delivered)
        assert alice.balances() == consumer.balances()

        again = await consumer.settle_and_deliver(receipt)  # delivered twice: counted once
        assert not again.new
        assert alice.duplicates == 1 and alice.accepted == 1
        assert alice.balances() == consumer.balances()
        assert ledger_report(alice)["owed_to_me"] == alice.balances()[alice.node.peer_id]

        # A validly signed statement whose numbers were moved is refused on arrival.
        st = done.statement
        moved = (dataclasses.replace(st.payouts[0], amount=0), *st.payouts[1:])
        forged = dataclasses.replace(st, payouts=moved).signed_by(consumer.node.identity)
        gathered = await consumer.gatherer.gather(receipt)
        msg = {"kind": "settle", "receipt": receipt.encode(), "statement": forged.encode(),
               "evidence": gathered.encoded()}  # fmt: skip
        with pytest.raises(wire.Refused) as refused:
            await wire.request(consumer.node, alice.node.peer_id, msg)
        assert refused.value.code == "settlement"
        garbage = {"kind": "settle", "receipt": b"\xff", "statement": b"", "evidence": []}
        with pytest.raises(wire.Refused):
            await wire.request(consumer.node, alice.node.peer_id, garbage)
        assert alice.rejected == 2


async def test_names_publish_resolve_and_reject_forgeries(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with econ_nodes(tmp_path, 4) as svcs:
        owner, other, reader = svcs[1].node, svcs[2].node, svcs[3].node
        v1 = (await owner.add_bytes(b"v1")).root
        v2 = (await owner.add_bytes(b"v2")).root
        assert (await publish_name(owner, "site", v1)).seq == 1
        assert await resolve_name(reader, owner.identity.peer_id_str, "site") == v1
        assert (await publish_name(owner, "site", v2)).seq == 2
        assert await resolve_name(reader, owner.identity.peer_id_str, "site") == v2

        # Another peer signs a record and puts it under the owner's key: refused everywhere.
        forged = NameRecord(other.identity.public.to_protobuf(), "site", v1, 99)
        forged = forged.signed_by(other.identity)
        with pytest.raises(InvalidRecord):
            await other.dht.put_value(name_key(owner.peer_id, "site"), forged.encode())
        assert await resolve_name(reader, owner.identity.peer_id_str, "site") == v2


def test_name_validator_prefers_the_highest_seq() -> None:
    from ccnp2p.objects.keys import Identity

    ident = Identity.from_seed_int(5)
    recs = [NameRecord(ident.public.to_protobuf(), "n", Cid.for_object(bytes([s])), s)
            .signed_by(ident).encode() for s in (3, 7, 5)]  # fmt: skip
    validator = NameValidator()
    key = name_key(ident.peer_id, "n")
    for r in recs:
        validator.validate(key, r)
    assert validator.select(key, recs) == 1
    tampered = dagcbor.decode(recs[0])
    tampered["seq"] = 100
    with pytest.raises(InvalidRecord):
        validator.validate(key, dagcbor.encode(tampered))
    best = decode_object(recs[validator.select(key, recs)], NameRecord)
    assert isinstance(best, NameRecord) and best.seq == 7
