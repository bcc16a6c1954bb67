"""A swarm of DHT nodes on the in-memory network, for the driver tests.

:class:`IdentifyingHost` stands in for libp2p identify: when a peer opens a stream to us we learn
its listen address, as a libp2p host would from the identify exchange. The in-memory network does
not do that by itself, and without it a server could never add a newcomer that contacted it (the
newcomer's address would be unknown), so nobody would ever route to late joiners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import trio

from ccnp2p.dht.config import DhtConfig, Mode
from ccnp2p.dht.node import KadDht
from ccnp2p.dht.records import ValidatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.dht.validators import TEST_NAMESPACE, SignedSeqValidator
from ccnp2p.net.base import Stream, StreamHandler
from ccnp2p.net.memory import MemoryHost, MemoryNetwork
from ccnp2p.objects.keys import Identity


class IdentifyingHost:
    """A :class:`MemoryHost` that learns the listen address of peers that contact it."""

    def __init__(self, host: MemoryHost, hub: MemoryNetwork) -> None:
        self._host = host
        self._hub = hub

    def __getattr__(self, name: str) -> object:
        return getattr(self._host, name)

    @property
    def peer_id(self) -> bytes:
        return self._host.peer_id

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        async def identified(stream: Stream) -> None:
            remote = stream.remote_peer
            self._host.add_peer_addrs(remote, self._hub.host(remote).listen_addrs())
            await handler(stream)

        self._host.set_handler(protocol, identified)


def registry() -> ValidatorRegistry:
    reg = ValidatorRegistry()
    reg.register(TEST_NAMESPACE, SignedSeqValidator())
    return reg


class Swarm:
    """Nodes, their identities and the cancel scopes of their background tasks."""

    def __init__(self, hub: MemoryNetwork, nursery: trio.Nursery, config: DhtConfig) -> None:
        self.hub = hub
        self.nursery = nursery
        self.config = config
        self.nodes: list[KadDht] = []
        self.identities: list[Identity] = []
        self._scopes: list[trio.CancelScope] = []

    async def add(self, seed: int, *, client: bool = False) -> KadDht:
        identity = Identity.from_seed_int(seed)
        host = IdentifyingHost(self.hub.add_host(identity), self.hub)
        config = self.config
        if client:
            config = replace(config, mode=Mode.CLIENT)
        node = KadDht(host, config, validators=registry(), seed=seed)  # type: ignore[arg-type]
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await node.run(task_status=task_status)

        await self.nursery.start(run)
        self.nodes.append(node)
        self.identities.append(identity)
        self._scopes.append(scope)
        return node

    def info(self, node: KadDht) -> PeerInfo:
        return node.self_info()

    def crash(self, index: int) -> None:
        self._scopes[index].cancel()
        self.hub.crash(self.nodes[index].peer_id)

    async def join_all(self, seeds: Sequence[int], first_seed: int = 0) -> None:
        """Add nodes one by one, each bootstrapping from the first node."""
        for seed in seeds:
            node = await self.add(seed)
            if len(self.nodes) > 1:
                await node.bootstrap([self.info(self.nodes[first_seed])])
