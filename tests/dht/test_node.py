"""The driver on a small in-memory network (alice, bob, carol and a few more)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from ccnp2p.dht.config import DhtConfig, Mode
from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.dht.node import KadDht
from ccnp2p.dht.rpc import RequestError
from ccnp2p.dht.validators import TEST_NAMESPACE, make_signed_record, owner_key
from ccnp2p.dht.wire import Message, MessageType, Record
from ccnp2p.errors import NotFound
from ccnp2p.net.framing import encode_uvarint
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.objects.cid import Cid
from tests.dht.swarm import Swarm


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    # pytest-trio only uses a clock the test function itself requests: every test here takes
    # ``autojump_clock`` even when it does not touch it.
    return trio.testing.MockClock(autojump_threshold=0)


@asynccontextmanager
async def open_swarm(config: DhtConfig, size: int = 12) -> AsyncIterator[Swarm]:
    async with MemoryNetwork(seed=1, latency_s=0.01) as hub, trio.open_nursery() as nursery:
        swarm = Swarm(hub, nursery, config)
        await swarm.join_all(range(1, size + 1))
        await trio.sleep(5)  # let verification pings of newcomers finish
        yield swarm
        nursery.cancel_scope.cancel()


@pytest.fixture
async def swarm(autojump_clock: trio.testing.MockClock) -> AsyncIterator[Swarm]:
    async with open_swarm(DhtConfig()) as swarm:
        yield swarm


@pytest.fixture
def alice(swarm: Swarm) -> KadDht:
    return swarm.nodes[0]


@pytest.fixture
def bob(swarm: Swarm) -> KadDht:
    return swarm.nodes[5]


@pytest.fixture
def carol(swarm: Swarm) -> KadDht:
    return swarm.nodes[11]


async def test_everyone_knows_everyone(
    autojump_clock: trio.testing.MockClock, swarm: Swarm
) -> None:
    for node in swarm.nodes:
        assert len(node.table) == len(swarm.nodes) - 1


async def test_provide_and_find_providers(
    autojump_clock: trio.testing.MockClock, alice: KadDht, bob: KadDht, carol: KadDht
) -> None:
    cid = Cid.for_raw(b"some content")
    assert await bob.provide(cid) > 0
    await carol.provide(cid)
    found = await alice.find_providers(cid, limit=10)
    assert sorted(p.peer_id for p in found) == sorted([bob.peer_id, carol.peer_id])
    assert all(p.addrs for p in found)
    assert len(await alice.find_providers(cid, limit=1)) == 1


async def test_find_peer(
    autojump_clock: trio.testing.MockClock, alice: KadDht, carol: KadDht
) -> None:
    info = await alice.find_peer(carol.peer_id)
    assert info is not None and info.addrs == tuple(carol.network.listen_addrs())


async def test_put_get_and_stale_copies_are_repaired(
    autojump_clock: trio.testing.MockClock, swarm: Swarm, alice: KadDht, bob: KadDht
) -> None:
    ident = swarm.identities[0]
    key = owner_key(TEST_NAMESPACE, ident)
    v1, v2 = (make_signed_record(ident, key, seq, b"x") for seq in (1, 2))
    assert await alice.put_value(key, v1) >= 10
    # Only one peer gets v2 directly: every other copy is now stale.
    holder = next(n for n in swarm.nodes if n not in (alice, bob))
    await alice.rpc.request(holder.peer_id, Message(MessageType.PUT_VALUE, key, Record(key, v2)))
    assert await bob.get_value(key) == v2
    stale = [n for n in swarm.nodes if n.records.get(key, trio.current_time()) != v2]
    assert stale == [], "the best record spreads back to peers that returned older ones"


async def test_invalid_records_are_rejected(
    autojump_clock: trio.testing.MockClock, swarm: Swarm, alice: KadDht, bob: KadDht
) -> None:
    ident = swarm.identities[0]
    key = owner_key(TEST_NAMESPACE, ident)
    forged = make_signed_record(swarm.identities[1], key, 7, b"evil")
    with pytest.raises(InvalidRecord):
        await alice.put_value(key, forged)
    with pytest.raises(RequestError):  # the server resets the stream without answering
        await alice.rpc.request(
            bob.peer_id, Message(MessageType.PUT_VALUE, key, Record(key, forged))
        )
    assert bob.records.get(key, trio.current_time()) is None
    # A peer that somehow holds a bad record cannot make others accept it.
    bob.records._records[key] = bob.records._records.get(key) or _raw_stored(forged)
    with pytest.raises(NotFound):
        await alice.get_value(key)


def _raw_stored(value: bytes) -> object:
    from ccnp2p.dht.records import StoredRecord

    return StoredRecord(value, float("inf"))


async def test_garbage_and_stream_floods_do_not_hurt_others(
    autojump_clock: trio.testing.MockClock, swarm: Swarm, alice: KadDht, bob: KadDht, carol: KadDht
) -> None:
    mallory = swarm.hub.add_host(swarm.identities[0].__class__.from_seed_int(666))
    mallory.add_peer_addrs(alice.peer_id, alice.network.listen_addrs())
    protocol = alice.config.protocol_id
    # garbage, an oversized frame, a truncated frame
    for payload in (b"\x05\xff\xff\xff\xff\xff", encode_uvarint(1 << 30) + b"x", b"\x10abc"):
        stream = await mallory.open_stream(alice.peer_id, protocol)
        await stream.send_all(payload)
        await stream.close()
        assert await _drain(stream) == b""
    assert alice.statistics().bad_messages == 3
    # a thousand streams at once: most are refused, alice keeps serving bob
    held = []
    for _ in range(1000):
        held.append(await mallory.open_stream(alice.peer_id, protocol))
    await trio.sleep(1)
    assert alice.statistics().streams_refused >= 1000 - alice.config.max_inbound_streams_per_peer
    cid = Cid.for_raw(b"still works")
    await carol.provide(cid)
    assert [p.peer_id for p in await bob.find_providers(cid)] == [carol.peer_id]
    # the streams alice accepted are closed once idle
    await trio.sleep(alice.config.stream_idle_timeout_s + 1)
    assert alice.rpc.inbound_streams() == 0


async def _drain(stream: object) -> bytes:
    out = b""
    try:
        while chunk := await stream.receive_some(1024):  # type: ignore[attr-defined]
            out += chunk
    except Exception:
        pass
    return out


async def test_client_mode_is_not_added_to_tables(
    autojump_clock: trio.testing.MockClock, swarm: Swarm, alice: KadDht
) -> None:
    client = await swarm.add(99, client=True)
    assert not client.server_mode
    await client.bootstrap([alice.self_info()])
    await trio.sleep(60)
    assert len(client.table) == len(swarm.nodes) - 1
    assert all(client.peer_id not in n.table for n in swarm.nodes[:-1])
    cid = Cid.for_raw(b"from a client")
    await alice.provide(cid)
    assert [p.peer_id for p in await client.find_providers(cid)] == [alice.peer_id]


async def test_republish_and_expiry_follow_trio_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = DhtConfig(refresh_interval_s=6 * 3600)
    async with open_swarm(config, size=8) as swarm:
        alice, bob = swarm.nodes[0], swarm.nodes[3]
        cid = Cid.for_raw(b"long lived")
        await alice.provide(cid)
        await trio.sleep(1)  # ADD_PROVIDER is fire-and-forget
        start = trio.current_time()
        holders = [n for n in swarm.nodes if n.providers.get(cid.multihash, start)]
        assert len(holders) == 8
        sent = alice.statistics().requests_sent
        await trio.sleep(3 * 24 * 3600)  # three days: three republishes, no busy loop
        now = trio.current_time()
        assert all(n.providers.get(cid.multihash, now) for n in holders)
        assert alice.statistics().requests_sent - sent < 500
        alice.stop_providing(cid)
        await trio.sleep(49 * 3600)
        assert [p.peer_id for p in await bob.find_providers(cid)] == []


async def test_mode_config(autojump_clock: trio.testing.MockClock, swarm: Swarm) -> None:
    assert DhtConfig().mode is Mode.AUTO
    assert all(n.server_mode for n in swarm.nodes)
