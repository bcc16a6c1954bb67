"""Range mode over the in-memory network: identity of bytes, stalls, seek, credit."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from ccnp2p.objects.cid import Cid
from ccnp2p.transfer import TransferFailed, WindowConfig
from tests.transfer.conftest import make_data, open_cluster, put_file

SMALL_WINDOW = WindowConfig(initial_bytes=256 * 1024, min_bytes=256 * 1024, max_bytes=1 << 20)


async def test_range_read_returns_identical_bytes(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(1_000_000)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        root = put_file(alice.store, data)
        async with bob.service.open_range(alice.peer_id, root) as reader:
            got = await reader.read_all()
            assert reader.size == len(data)
    assert got == data


async def test_reader_stalling_60s_completes_with_identical_bytes(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(3_000_000, seed=2)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        root = put_file(alice.store, data)
        out = bytearray()
        async with bob.service.open_range(alice.peer_id, root, window=SMALL_WINDOW) as reader:
            async for piece in reader:
                out += piece
                if len(out) > 500_000 and len(out) - len(piece) <= 500_000:
                    await trio.sleep(60)  # the application stalls; the stream must survive
            assert reader.peak_buffered_bytes <= SMALL_WINDOW.max_bytes
            assert reader.window.received <= reader.window.granted
        held = alice.service.statistics().server.peak_held_bytes
    assert bytes(out) == data
    assert held <= 64 * 1024  # the sender held at most one chunk for this subscriber


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_seek_returns_exactly_the_requested_bytes(
    clock: trio.testing.MockClock, tmp_path: Path, seed: int
) -> None:
    import random

    rng = random.Random(seed)
    data = make_data(800_000, seed=seed)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        root = put_file(alice.store, data, chunk_bytes=16 * 1024)
        async with bob.service.open_range(alice.peer_id, root, 0, 100_000) as reader:
            # Abandon the first range mid-way: the seek must discard what is in flight.
            async for _ in reader:
                break
            for _ in range(6):
                off = rng.randrange(0, len(data) + 10)
                length = rng.choice([None, 0, 1, rng.randrange(1, 200_000)])
                await reader.seek(off, length)
                got = await reader.read_all()
                end = len(data) if length is None else off + length
                assert got == data[off:end], (off, length)
        streams = c.hub.statistics().streams_opened
    assert streams == 1  # every seek reused the one stream


async def test_unknown_root_is_aborted_not_found(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        missing = Cid.for_raw(b"nobody has this")
        async with bob.service.open_range(alice.peer_id, missing) as reader:
            with pytest.raises(TransferFailed, match="not-found"):
                await reader.read_all()


async def test_raw_chunk_root(clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        chunk = make_data(5000)
        cid = Cid.for_raw(chunk)
        alice.store.put(cid, chunk)
        async with bob.service.open_range(alice.peer_id, cid, 100, 50) as reader:
            assert await reader.read_all() == chunk[100:150]
