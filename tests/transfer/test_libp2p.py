"""One real transfer between two py-libp2p hosts on 127.0.0.1 (real clock, real threads)."""

from __future__ import annotations

from pathlib import Path

import trio

from ccnp2p.net.libp2p import open_libp2p_network
from ccnp2p.objects.keys import Identity
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.transfer import TransferService
from ccnp2p.transfer.service import read_all
from tests.transfer.conftest import make_data, put_file


async def test_fetch_between_two_libp2p_hosts(tmp_path: Path) -> None:
    data = make_data(3 * 1024 * 1024 + 12345, seed=21)
    alice_store = Blockstore(tmp_path / "alice", durable=False)
    bob_store = Blockstore(tmp_path / "bob", durable=False)
    root = put_file(alice_store, data, chunk_bytes=256 * 1024)
    with trio.fail_after(60):
        async with (
            open_libp2p_network(Identity.from_seed_int(31)) as alice,
            open_libp2p_network(Identity.from_seed_int(32)) as bob,
            trio.open_nursery() as nursery,
        ):
            alice_service = TransferService(alice, alice_store)
            bob_service = TransferService(bob, bob_store)
            await nursery.start(alice_service.run)
            await nursery.start(bob_service.run)
            await bob.connect(alice.peer_id, alice.listen_addrs())
            got = await read_all(bob_service.fetch(root, [alice.peer_id]))
            async with bob_service.open_range(alice.peer_id, root, 1_000_000, 500_000) as r:
                part = await r.read_all()
                await r.seek(10, 20)
                tiny = await r.read_all()
            nursery.cancel_scope.cancel()
    assert got == data
    assert part == data[1_000_000:1_500_000]
    assert tiny == data[10:30]
    assert bob_store.has(root)
