"""Live streams: subscribers of a running producer, bounded memory, failures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
import trio.testing

from ccnp2p.objects.cid import Cid
from ccnp2p.transfer import LiveRegistry, LiveStream, TransferAborted, WindowConfig
from tests.transfer.conftest import make_data, open_cluster

CHUNK = 32 * 1024
WINDOW = WindowConfig(initial_bytes=128 * 1024, min_bytes=128 * 1024, max_bytes=512 * 1024)


async def produce(stream: LiveStream, data: bytes, every_s: float) -> None:
    for i in range(0, len(data), CHUNK):
        await stream.append(data[i : i + CHUNK])
        await trio.sleep(every_s)
    stream.finish()


async def test_subscriber_gets_what_exists_then_waits_for_more(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(40 * CHUNK, seed=11)
    calc = Cid.for_object(b"\xa0")
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        registry = LiveRegistry()
        alice.service.set_live_source(registry)
        live = LiveStream(calc, alice.store, tail_bytes=4 * CHUNK)
        registry.add(live)
        for i in range(0, 10 * CHUNK, CHUNK):  # a quarter exists before anyone subscribes
            await live.append(data[i : i + CHUNK])
        c.nursery.start_soon(produce, live, data[10 * CHUNK :], 1.0)
        async with bob.service.open_range(alice.peer_id, calc) as reader:
            got = await reader.read_all()
            assert reader.size == len(data)  # known once finished
            # The stream can be re-read from any offset, now from the blockstore.
            await reader.seek(5 * CHUNK + 7, 1000)
            assert await reader.read_all() == data[5 * CHUNK + 7 : 5 * CHUNK + 1007]
    assert got == data
    assert trio.current_time() >= 29  # it really waited for the producer


async def test_twenty_subscribers_of_different_speeds_keep_sender_memory_bounded(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(64 * CHUNK, seed=12)
    calc = Cid.for_object(b"\xa1\x61x\x01")
    rng = random.Random(12)
    finished: dict[int, float] = {}
    async with open_cluster(tmp_path) as c:
        alice = await c.node()
        readers = [await c.node() for _ in range(20)]
        registry = LiveRegistry()
        alice.service.set_live_source(registry)
        live = LiveStream(calc, alice.store, tail_bytes=8 * CHUNK)
        registry.add(live)
        produced_at: list[float] = []

        async def producer() -> None:
            await produce(live, data, 0.05)
            produced_at.append(trio.current_time())

        async def subscriber(i: int, delay_s: float) -> None:
            out = bytearray()
            async with readers[i].service.open_range(alice.peer_id, calc, window=WINDOW) as r:
                async for piece in r:
                    out += piece
                    await trio.sleep(delay_s * len(piece) / CHUNK)
                assert r.peak_buffered_bytes <= WINDOW.max_bytes
            assert bytes(out) == data
            finished[i] = trio.current_time()

        async with trio.open_nursery() as n:
            n.start_soon(producer)
            for i in range(20):
                n.start_soon(subscriber, i, rng.choice([0.0, 0.01, 0.1, 1.0, 3.0]))
        server = alice.service.statistics().server
        stats = live.statistics()
    assert len(finished) == 20
    # The sender holds at most one chunk per subscriber, whatever their speeds.
    assert server.peak_held_bytes <= 20 * CHUNK
    assert stats.peak_tail_bytes <= 8 * CHUNK
    assert stats.store_reads > 0 and stats.memory_reads > 0  # slow ones read from disk
    # The producer was never held back by the slow subscribers.
    assert produced_at[0] <= 64 * 0.05 + 1
    assert max(finished.values()) > 60


async def test_producer_failure_reaches_the_subscriber_as_an_abort(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    calc = Cid.for_object(b"\xa1\x61y\x02")
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        registry = LiveRegistry()
        alice.service.set_live_source(registry)
        live = LiveStream(calc, alice.store)
        registry.add(live)
        await live.append(b"partial output")

        async def fail_later() -> None:
            await trio.sleep(5)
            live.fail("operator crashed")

        c.nursery.start_soon(fail_later)
        async with bob.service.open_range(alice.peer_id, calc) as reader:
            assert await reader.__anext__() == b"partial output"
            with pytest.raises(TransferAborted) as info:
                await reader.read_all()
    assert info.value.abort_code == "producer-failed"


async def test_producer_backpressure_follows_the_fastest_subscriber(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    calc = Cid.for_object(b"\xa1\x61z\x03")
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        store = alice.store
        live = LiveStream(calc, store, ahead_bytes=4 * CHUNK)
        data = make_data(32 * CHUNK, seed=13)
        c.nursery.start_soon(produce, live, data, 0.0)
        await trio.sleep(10)
        assert live.produced_bytes <= 6 * CHUNK  # nobody reads: the producer waits
        registry = LiveRegistry()
        registry.add(live)
        alice.service.set_live_source(registry)
        async with bob.service.open_range(alice.peer_id, calc) as reader:
            assert await reader.read_all() == data
        assert live.statistics().producer_waits > 0
