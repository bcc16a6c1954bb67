"""The node's side of a simulated link: a MemoryHost plus what libp2p's identify would do.

On a real libp2p connection both ends run identify, so a peer that dials us lands in our
peerstore with its listen addresses; the DHT relies on that to ping and admit inbound peers into
its routing table. :class:`~ccnp2p.net.memory.MemoryHost` does not model identify (the listener
never learns the dialer's address), so without this adapter an inbound peer can never be
verified and routing tables stay at the bootstrap seeds. :class:`IdentifyingHost` wraps each
inbound handler to record the remote's listen address first; everything else is delegated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ccnp2p.net.base import Stream, StreamHandler
from ccnp2p.net.memory import MemoryHost


class IdentifyingHost:
    """Implements :class:`ccnp2p.net.base.Network` over a :class:`MemoryHost`."""

    __slots__ = ("_addrs", "_host")

    def __init__(self, host: MemoryHost, listen_addrs: Mapping[bytes, tuple[str, ...]]) -> None:
        self._host = host
        self._addrs = listen_addrs

    @property
    def host(self) -> MemoryHost:
        return self._host

    @property
    def peer_id(self) -> bytes:
        return self._host.peer_id

    def listen_addrs(self) -> list[str]:
        return self._host.listen_addrs()

    async def connect(self, peer_id: bytes, addrs: Sequence[str] = ()) -> None:
        await self._host.connect(peer_id, addrs)

    async def open_stream(self, peer_id: bytes, protocol: str) -> Stream:
        return await self._host.open_stream(peer_id, protocol)

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        host, addrs = self._host, self._addrs

        async def identified(stream: Stream) -> None:
            remote = stream.remote_peer
            known = addrs.get(remote)
            if known:
                host.add_peer_addrs(remote, known)
            await handler(stream)

        host.set_handler(protocol, identified)

    def connected_peers(self) -> list[bytes]:
        return self._host.connected_peers()

    def peer_addrs(self, peer_id: bytes) -> list[str]:
        return self._host.peer_addrs(peer_id)

    def add_peer_addrs(self, peer_id: bytes, addrs: Sequence[str]) -> None:
        self._host.add_peer_addrs(peer_id, addrs)
