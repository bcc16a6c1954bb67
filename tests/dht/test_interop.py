"""Interop with py-libp2p's own KadDHT over real loopback libp2p hosts (real clock).

py-libp2p's KadDHT ignores its protocol-prefix argument and always speaks ``/ipfs/kad/1.0.0``,
so our nodes run on that protocol id here. Two of ours and two of theirs share one network;
each side announces a CID and finds the providers the other side announced.
"""

from __future__ import annotations

import pytest
import trio
from libp2p.kad_dht.kad_dht import DHTMode
from libp2p.kad_dht.kad_dht import KadDHT as Libp2pKadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo as Libp2pPeerInfo
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from ccnp2p.dht.config import LIBP2P_PROTOCOL_ID, DhtConfig
from ccnp2p.dht.node import KadDht
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.net.libp2p import Libp2pNetwork, open_libp2p_network
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity

pytestmark = pytest.mark.slow


async def test_providers_cross_implementations() -> None:
    ids = [Identity.from_seed_int(200 + i) for i in range(4)]
    async with (
        open_libp2p_network(ids[0]) as n0,
        open_libp2p_network(ids[1]) as n1,
        open_libp2p_network(ids[2]) as n2,
        open_libp2p_network(ids[3]) as n3,
        trio.open_nursery() as nursery,
    ):
        nets = [n0, n1, n2, n3]
        config = DhtConfig(protocol_id=LIBP2P_PROTOCOL_ID, request_timeout_s=5)
        ours = [KadDht(net, config, seed=i) for i, net in enumerate(nets[:2])]
        theirs = [Libp2pKadDHT(net.libp2p_host, DHTMode.SERVER) for net in nets[2:]]
        for dht in ours:
            await nursery.start(dht.run)
        async with background_trio_service(theirs[0]), background_trio_service(theirs[1]):
            with trio.fail_after(60):
                await _meet(ours, theirs, nets)
                await _exchange_providers(ours, theirs, nets)
        nursery.cancel_scope.cancel()


async def _meet(ours: list[KadDht], theirs: list[Libp2pKadDHT], nets: list[Libp2pNetwork]) -> None:
    """Everybody meets everybody: theirs through py-libp2p's API, ours through bootstrap."""
    for net in nets:
        for other in nets:
            if other is not net:
                net.add_peer_addrs(other.peer_id, other.listen_addrs())
    for their, net in zip(theirs, nets[2:], strict=True):
        for other in nets:
            if other is not net:
                addrs = [Multiaddr(a) for a in other.listen_addrs()]
                await net.libp2p_host.connect(Libp2pPeerInfo(ID(other.peer_id), addrs))
                await their.add_peer(ID(other.peer_id))
    for dht in ours:
        others = [
            PeerInfo(n.peer_id, tuple(n.listen_addrs())) for n in nets if n.peer_id != dht.peer_id
        ]
        await dht.bootstrap(others)


async def _exchange_providers(
    ours: list[KadDht], theirs: list[Libp2pKadDHT], nets: list[Libp2pNetwork]
) -> None:
    ours_cid = Cid.for_raw(b"announced by ccnp2p")
    theirs_cid = Cid.for_raw(b"announced by py-libp2p")
    assert await ours[0].provide(ours_cid) >= 1
    assert await theirs[0].provide(theirs_cid.multihash.hex())
    await trio.sleep(1)
    found_by_us = await ours[1].find_providers(theirs_cid, limit=5)
    found_by_them = await theirs[1].find_providers(ours_cid.multihash.hex(), 5)
    assert nets[2].peer_id in [p.peer_id for p in found_by_us]
    assert ours[0].peer_id in [p.peer_id.to_bytes() for p in found_by_them]
