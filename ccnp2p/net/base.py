"""The Network seam's interface.

Addresses are text multiaddrs (``/ip4/127.0.0.1/tcp/4001``); peer ids are binary libp2p peer ids
(see :mod:`ccnp2p.objects.keys`). Streams are byte streams with explicit half-close; every
protocol of ours frames its messages (:mod:`ccnp2p.net.framing`) and ends explicitly, because
yamux reset vs EOF cannot be trusted (DESIGN.md §4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

DEFAULT_RECEIVE_BYTES = 65536


@runtime_checkable
class Stream(Protocol):
    """One bidirectional byte stream to a remote peer, on one negotiated protocol."""

    @property
    def remote_peer(self) -> bytes:
        """Binary peer id of the other end."""
        ...

    @property
    def protocol(self) -> str:
        """The protocol id this stream was opened (or accepted) for."""
        ...

    async def send_all(self, data: bytes) -> None:
        """Send all of ``data``; raises :class:`ccnp2p.net.errors.StreamClosed` if it cannot."""
        ...

    async def receive_some(self, max_bytes: int = DEFAULT_RECEIVE_BYTES) -> bytes:
        """Return 1..max_bytes bytes, or ``b""`` at end of stream."""
        ...

    async def close(self) -> None:
        """Close our sending side (the peer reads EOF) and release the stream."""
        ...

    async def reset(self) -> None:
        """Abort the stream in both directions."""
        ...


StreamHandler = Callable[[Stream], Awaitable[None]]


@runtime_checkable
class Network(Protocol):
    """What a node needs from its transport."""

    @property
    def peer_id(self) -> bytes:
        """This node's binary peer id."""
        ...

    def listen_addrs(self) -> list[str]:
        """Multiaddrs others can dial us on (without the /p2p suffix)."""
        ...

    async def connect(self, peer_id: bytes, addrs: Sequence[str]) -> None:
        """Ensure a connection to ``peer_id``; remembers ``addrs`` for it. Raises on failure."""
        ...

    async def open_stream(self, peer_id: bytes, protocol: str) -> Stream:
        """Open a stream on ``protocol`` (dialling known addrs if needed)."""
        ...

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        """Serve inbound streams on ``protocol``; the handler owns (and must close) the stream."""
        ...

    def connected_peers(self) -> list[bytes]:
        """Peers with a live connection now."""
        ...

    def peer_addrs(self, peer_id: bytes) -> list[str]:
        """Addresses known for ``peer_id`` (may be empty)."""
        ...

    def add_peer_addrs(self, peer_id: bytes, addrs: Sequence[str]) -> None:
        """Remember addresses learned elsewhere (e.g. from the DHT)."""
        ...
