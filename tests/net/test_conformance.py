"""The Network seam's contract, checked against every implementation (see conftest.py)."""

from __future__ import annotations

import hashlib

import pytest
import trio

from ccnp2p.net.base import Network, Stream
from ccnp2p.net.errors import NetworkError, ProtocolNotSupported, StreamClosed
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.objects.keys import Identity
from tests.net.helpers import echo_handler, open_node, read_all

ECHO = "/test/echo/1.0.0"
GUARD_S = 20  # generous guard for the real-network case; never reached when things work


def introduce(a: Network, b: Network) -> None:
    a.add_peer_addrs(b.peer_id, b.listen_addrs())


async def test_identity_and_addrs(clock: object, alice: Network) -> None:
    assert isinstance(alice, Network)
    assert alice.peer_id == Identity.from_seed_int(1).peer_id
    addrs = alice.listen_addrs()
    assert addrs
    assert all(not a.endswith("/tcp/0") and "/p2p/" not in a for a in addrs)


async def test_echo_both_directions(clock: object, alice: Network, bob: Network) -> None:
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S):
        stream = await alice.open_stream(bob.peer_id, ECHO)
        assert isinstance(stream, Stream)
        assert stream.remote_peer == bob.peer_id
        assert stream.protocol == ECHO
        await stream.send_all(b"hello ")
        await stream.send_all(b"bob")
        await stream.close()
        assert await read_all(stream) == b"hello bob"
        assert await stream.receive_some() == b""  # EOF is sticky
    assert bob.peer_id in alice.connected_peers()
    assert alice.peer_id in bob.connected_peers()
    assert alice.peer_addrs(bob.peer_id)


async def test_handler_sees_remote_and_eof(clock: object, alice: Network, bob: Network) -> None:
    seen: list[tuple[bytes, str, bytes]] = []
    done = trio.Event()

    async def handler(stream: Stream) -> None:
        seen.append((stream.remote_peer, stream.protocol, await read_all(stream)))
        await stream.close()
        done.set()

    bob.set_handler("/test/sink/1", handler)
    with trio.fail_after(GUARD_S):
        await alice.connect(bob.peer_id, bob.listen_addrs())
        stream = await alice.open_stream(bob.peer_id, "/test/sink/1")
        await stream.send_all(b"x" * 1000)
        await stream.close()
        await done.wait()
        assert await read_all(stream) == b""
    assert seen == [(alice.peer_id, "/test/sink/1", b"x" * 1000)]


async def test_send_after_close_fails(clock: object, alice: Network, bob: Network) -> None:
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S):
        stream = await alice.open_stream(bob.peer_id, ECHO)
        await stream.close()
        with pytest.raises(StreamClosed):
            await stream.send_all(b"late")
        await stream.close()  # idempotent


async def test_large_transfer_intact(clock: object, alice: Network, bob: Network) -> None:
    payload = hashlib.sha256(b"seed").digest() * (3 * 1024 * 1024 // 32 + 7)
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S * 3):
        stream = await alice.open_stream(bob.peer_id, ECHO)
        received = b""

        async def reader() -> None:
            nonlocal received
            received = await read_all(stream)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await stream.send_all(payload)
            await stream.close()
    assert received == payload


async def test_many_concurrent_streams(
    clock: object, alice: Network, bob: Network, carol: Network
) -> None:
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    introduce(carol, bob)
    results: dict[tuple[int, int], bytes] = {}

    async def one(net: Network, who: int, i: int) -> None:
        stream = await net.open_stream(bob.peer_id, ECHO)
        await stream.send_all(bytes([i]) * (1000 + i))
        await stream.close()
        results[(who, i)] = await read_all(stream)

    with trio.fail_after(GUARD_S * 2):
        async with trio.open_nursery() as nursery:
            for i in range(25):
                nursery.start_soon(one, alice, 0, i)
                nursery.start_soon(one, carol, 1, i)
    assert results == {(w, i): bytes([i]) * (1000 + i) for w in (0, 1) for i in range(25)}


async def test_unknown_protocol_fails_cleanly(clock: object, alice: Network, bob: Network) -> None:
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S):
        with pytest.raises(ProtocolNotSupported):
            await alice.open_stream(bob.peer_id, "/test/nobody-home/1")
        stream = await alice.open_stream(bob.peer_id, ECHO)  # the connection still works
        await stream.send_all(b"ok")
        await stream.close()
        assert await read_all(stream) == b"ok"


async def test_dial_unknown_or_dead_peer_fails(clock: object, alice: Network, bob: Network) -> None:
    stranger = Identity.from_seed_int(99).peer_id
    with trio.fail_after(GUARD_S):
        with pytest.raises(NetworkError):
            await alice.open_stream(stranger, ECHO)  # no address known
        # bob's address, but the wrong peer id: the handshake must refuse it
        with pytest.raises(NetworkError):
            await alice.connect(stranger, bob.listen_addrs())
        with pytest.raises(NetworkError):
            await alice.connect(alice.peer_id, alice.listen_addrs())


async def test_handler_exception_does_not_kill_host(
    clock: object, alice: Network, bob: Network
) -> None:
    async def broken(stream: Stream) -> None:
        await stream.receive_some()
        raise RuntimeError("handler bug")

    bob.set_handler("/test/broken/1", broken)
    bob.set_handler(ECHO, echo_handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S):
        stream = await alice.open_stream(bob.peer_id, "/test/broken/1")
        await stream.send_all(b"boom")
        with pytest.raises(StreamClosed):  # reset reaches us as an error...
            while await stream.receive_some():
                pass
            raise StreamClosed("...or as EOF: both are allowed by the seam")
        for _ in range(3):
            ok = await alice.open_stream(bob.peer_id, ECHO)
            await ok.send_all(b"still alive")
            await ok.close()
            assert await read_all(ok) == b"still alive"


async def test_reset_reaches_peer(clock: object, alice: Network, bob: Network) -> None:
    got: list[BaseException | bytes] = []
    done = trio.Event()

    async def handler(stream: Stream) -> None:
        try:
            got.append(await read_all(stream))
        except StreamClosed as exc:
            got.append(exc)
        done.set()

    bob.set_handler("/test/reset/1", handler)
    introduce(alice, bob)
    with trio.fail_after(GUARD_S):
        stream = await alice.open_stream(bob.peer_id, "/test/reset/1")
        await stream.send_all(b"partial")
        await stream.reset()
        await done.wait()
        with pytest.raises(StreamClosed):
            await stream.send_all(b"after reset")
    # Data sent before a reset may or may not be seen; the reader must not hang or crash.
    assert len(got) == 1


async def test_dial_dead_peer_fails(
    clock: object, net_kind: str, hub: MemoryNetwork, alice: Network
) -> None:
    with trio.fail_after(GUARD_S):
        async with open_node(net_kind, hub, 4) as dave:
            dave.set_handler(ECHO, echo_handler)
            introduce(alice, dave)
            stream = await alice.open_stream(dave.peer_id, ECHO)
            await stream.send_all(b"unanswered")
            dave_id = dave.peer_id
        # dave is gone: the open stream ends (error or EOF), and new streams fail with our error
        try:
            assert await read_all(stream) == b""
        except StreamClosed:
            pass
        with pytest.raises(NetworkError):
            await alice.open_stream(dave_id, ECHO)
        with pytest.raises(NetworkError):
            await alice.connect(dave_id, alice.peer_addrs(dave_id))
