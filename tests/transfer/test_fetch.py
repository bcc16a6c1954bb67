"""Multi-source fetch over the in-memory network: speed, poison, crashes, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from ccnp2p.net.base import Stream
from ccnp2p.net.framing import FramedStream
from ccnp2p.objects.cid import Cid
from ccnp2p.transfer import FetchConfig, TransferFailed
from ccnp2p.transfer import messages as m
from ccnp2p.transfer.service import read_all
from tests.transfer.conftest import make_data, open_cluster, put_file

MB = 1_000_000


async def test_fetch_from_three_providers_favours_the_fastest(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(8 * MB)
    async with open_cluster(tmp_path) as c:
        fast, mid, slow = [await c.node(up=r * MB) for r in (40, 10, 2)]
        reader = await c.node()
        for p in (fast, mid, slow):
            root = put_file(p.store, data)
        download = reader.service.fetch(root, [slow.peer_id, mid.peer_id, fast.peer_id])
        got = await read_all(download)
        stats = download.statistics
    assert got == data
    by_peer = stats.bytes_by_peer
    assert by_peer[fast.peer_id] > by_peer[mid.peer_id] > by_peer.get(slow.peer_id, 0)
    assert stats.peak_held_chunks <= FetchConfig().reorder_chunks
    assert reader.store.has(root)  # tree and chunks stored, verified


async def test_fetch_a_range_and_local_chunks_are_not_refetched(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(2 * MB, seed=4)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        root = put_file(alice.store, data)
        got = await read_all(bob.service.fetch(root, [alice.peer_id], 300_000, 500_000))
        assert got == data[300_000:800_000]
        again = bob.service.fetch(root, [alice.peer_id], 310_000, 100_000)
        assert await read_all(again) == data[310_000:410_000]
        assert again.statistics.chunks_fetched == 0 and again.statistics.chunks_local > 0


class PoisonedProvider:
    """A provider that answers WANTs from a dict but corrupts one chunk."""

    def __init__(self, blocks: dict[Cid, bytes], poison: Cid) -> None:
        self.blocks = blocks
        self.poison = poison
        self.poisoned = 0

    async def handle(self, stream: Stream) -> None:
        framed = FramedStream(stream, m.MAX_FRAME_BYTES)
        while (payload := await framed.receive_msg()) is not None:
            msg = m.decode(payload)
            if isinstance(msg, m.Want):
                for cid in msg.cids:
                    data = self.blocks[cid]
                    if cid == self.poison:
                        self.poisoned += 1
                        data = b"\x00" + data[1:]
                    await framed.send_msg(m.encode(m.Chunk(0, cid, None, data)))
            elif isinstance(msg, m.Bye):
                break
        await framed.close()


async def test_poisoned_chunk_is_rejected_and_refetched_elsewhere(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(3 * MB, seed=5)
    async with open_cluster(tmp_path) as c:
        honest, liar, reader = await c.node(up=5 * MB), await c.node(), await c.node()
        root = put_file(honest.store, data)
        blocks = {cid: honest.store.get(cid) for cid in honest.store}
        chunk_cids = [cid for cid in blocks if cid.is_raw]
        poison = PoisonedProvider(blocks, poison=chunk_cids[len(chunk_cids) // 2])
        liar.host.set_handler(m.PROTOCOL_ID, poison.handle)
        download = reader.service.fetch(root, [liar.peer_id, honest.peer_id])
        got = await read_all(download)
    assert got == data
    assert poison.poisoned >= 1
    assert download.statistics.bad_chunks >= 1
    assert download.statistics.peers_dropped >= 1


@pytest.mark.parametrize("silent", [False, True])
async def test_provider_crash_mid_transfer_is_survived(
    clock: trio.testing.MockClock, tmp_path: Path, silent: bool
) -> None:
    data = make_data(6 * MB, seed=6)
    config = FetchConfig(max_in_flight_chunks=8, peer_timeout_s=5.0)
    async with open_cluster(tmp_path) as c:
        doomed, survivor = await c.node(up=8 * MB), await c.node(up=4 * MB)
        reader = await c.node(config=config)
        for p in (doomed, survivor):
            root = put_file(p.store, data)
        download = reader.service.fetch(root, [doomed.peer_id, survivor.peer_id])
        out = bytearray()
        async for piece in download:
            out += piece
            if len(out) >= 2 * MB and doomed.host.alive:
                c.hub.crash(doomed.peer_id, silent=silent)
        stats = download.statistics
    assert bytes(out) == data
    assert stats.retries <= config.max_in_flight_chunks  # at most what it had in flight
    assert stats.bytes_by_peer[survivor.peer_id] > 0


async def test_fetch_fails_cleanly_when_no_provider_has_it(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(), await c.node()
        missing = Cid.for_raw(b"missing")
        with pytest.raises(TransferFailed):
            await read_all(bob.service.fetch(missing, [alice.peer_id]))
        with pytest.raises(TransferFailed):
            await read_all(bob.service.fetch(missing, []))
        assert bob.service.statistics().fetches_failed == 2


async def test_fetch_fails_when_the_only_provider_dies(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(4 * MB, seed=8)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(up=2 * MB), await c.node()
        root = put_file(alice.store, data)
        download = bob.service.fetch(root, [alice.peer_id])
        with pytest.raises(TransferFailed):
            async for _ in download:
                c.hub.crash(alice.peer_id)


async def test_abandoned_download_stops_the_fetch(
    clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    data = make_data(4 * MB, seed=9)
    async with open_cluster(tmp_path) as c:
        alice, bob = await c.node(up=2 * MB), await c.node()
        root = put_file(alice.store, data)
        async with bob.service.fetch(root, [alice.peer_id]) as download:
            async for _ in download:
                break
        await trio.sleep(1)
        assert bob.service.statistics().fetches_active == 0
        # And the node keeps working afterwards.
        assert await read_all(bob.service.fetch(root, [alice.peer_id])) == data
