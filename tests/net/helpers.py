"""Shared helpers for the Network seam tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ccnp2p.net.base import Network, Stream
from ccnp2p.net.libp2p import open_libp2p_network
from ccnp2p.net.memory import MemoryNetwork
from ccnp2p.objects.keys import Identity


@asynccontextmanager
async def open_node(kind: str, hub: MemoryNetwork, seed: int) -> AsyncIterator[Network]:
    """A node of either kind; leaving the context stops it (a memory host crashes)."""
    identity = Identity.from_seed_int(seed)
    if kind == "memory":
        host = hub.add_host(identity)
        try:
            yield host
        finally:
            hub.crash(host.peer_id)
    else:
        async with open_libp2p_network(identity) as net:
            yield net


async def read_all(stream: Stream, limit: int = 64 * 1024 * 1024) -> bytes:
    """Read to EOF (bounded, so a runaway peer fails the test instead of eating memory)."""
    out = bytearray()
    while len(out) <= limit:
        data = await stream.receive_some()
        if not data:
            return bytes(out)
        out += data
    raise AssertionError("stream sent more than the test expected")


async def echo_handler(stream: Stream) -> None:
    """Echo everything back once the peer half-closes."""
    await stream.send_all(await read_all(stream))
    await stream.close()
