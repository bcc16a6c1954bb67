"""The Network seam over py-libp2p 0.8.1: TCP + Noise + yamux, identify and ping.

This is the only module in ccnp2p that imports py-libp2p. Everything it hands out is ours
(:class:`Libp2pStream`, :mod:`ccnp2p.net.errors`); no libp2p type or exception crosses the seam.

Usage::

    async with open_libp2p_network(identity, listen_addrs=["/ip4/127.0.0.1/tcp/0"]) as net:
        net.listen_addrs()  # the real bound port

Pitfalls of py-libp2p 0.8.1 that shaped this module:

* ``new_host`` offers TLS, secio and *plaintext* security and mplex besides yamux unless
  ``sec_opt``/``muxer_opt`` are given explicitly; we pass Noise and yamux only.
* ``ConnectionConfig.max_connections_per_peer`` defaults to 3, and connect then waits ~250 ms
  for more; we use 1.
* The swarm starts an ``AutoConnector`` that, every 30 s, dials peers from the peerstore until
  the connection count reaches the *midpoint of the low and high watermarks* (150 by default; a
  low watermark of 0 does not disable it). A node must choose its own peers, so we stop it.
* ``BasicHost.connect`` stores the given addresses with a 120 s TTL, so we add them to the
  peerstore ourselves as permanent and dial with an empty address list.
* An exception escaping a stream handler propagates into the connection's task group, so every
  handler runs inside a wrapper that logs it and resets only that stream.
* ``new_stream`` reports an unsupported protocol as a ``StreamFailure`` whose cause is a generic
  ``MultiselectClientError`` (the ``ProtocolNotSupportedError`` is swallowed, so only the message
  tells), and logs it at ERROR level with a multi-line dump; we translate it to
  :class:`ProtocolNotSupported`.
* ``NetStream.read`` raises ``StreamEOF`` at end of stream instead of returning ``b""``, and
  ``NetStream.close`` is a half-close (yamux FIN), after which reading still works.
* Leaving ``BasicHost.run()`` cancels the swarm, whose shutdown code then tries to close the
  connections from inside the cancelled scope; every await there raises ``Cancelled`` at once, so
  connections stay open and the peer keeps negotiating streams with a dead host. We call
  ``host.close()`` ourselves first, shielded and with a deadline.
* A yamux writer whose peer grants no window for 5 s fails with ``MuxedStreamError`` (seen here as
  :class:`StreamReset`); this is why our protocols use credit and explicit DONE/ABORT messages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Final

import trio
from libp2p import new_host
from libp2p.abc import INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.peer.peerstore import PERMANENT_ADDR_TTL
from libp2p.protocol_muxer.exceptions import MultiselectClientError, ProtocolNotSupportedError
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from ccnp2p.net.base import DEFAULT_RECEIVE_BYTES, StreamHandler
from ccnp2p.net.errors import DialFailed, NetworkError, ProtocolNotSupported, StreamReset
from ccnp2p.objects.keys import Identity, peer_id_to_str

logger = logging.getLogger(__name__)

DEFAULT_LISTEN_ADDRS: Final = ("/ip4/127.0.0.1/tcp/0",)
HOST_CLOSE_TIMEOUT_S: Final = 5.0


class Libp2pStream:
    """A py-libp2p stream behind our :class:`~ccnp2p.net.base.Stream` interface."""

    __slots__ = ("_eof", "_leftover", "_protocol", "_remote", "_stream")

    def __init__(self, stream: INetStream, remote: bytes, protocol: str) -> None:
        self._stream = stream
        self._remote = remote
        self._protocol = protocol
        self._eof = False
        self._leftover = b""

    @property
    def remote_peer(self) -> bytes:
        return self._remote

    @property
    def protocol(self) -> str:
        return self._protocol

    async def send_all(self, data: bytes) -> None:
        try:
            await self._stream.write(data)
        except Exception as exc:  # the seam boundary: no libp2p exception escapes
            raise StreamReset(f"send on {self._protocol} failed: {exc!r}") from exc

    async def receive_some(self, max_bytes: int = DEFAULT_RECEIVE_BYTES) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._leftover:
            data, self._leftover = self._leftover[:max_bytes], self._leftover[max_bytes:]
            await trio.lowlevel.checkpoint()
            return data
        if self._eof:
            await trio.lowlevel.checkpoint()
            return b""
        try:
            data = await self._stream.read(max_bytes)
        except StreamEOF:
            self._eof = True
            return b""
        except Exception as exc:
            raise StreamReset(f"receive on {self._protocol} failed: {exc!r}") from exc
        if not data:
            self._eof = True
        elif len(data) > max_bytes:  # defensive: never lose bytes a muxer over-delivers
            data, self._leftover = data[:max_bytes], data[max_bytes:]
        return data

    async def close(self) -> None:
        try:
            await self._stream.close()
        except Exception as exc:  # closing a broken stream has nothing left to do
            logger.debug("close on %s failed: %r", self._protocol, exc)

    async def reset(self) -> None:
        try:
            await self._stream.reset()
        except Exception as exc:
            logger.debug("reset on %s failed: %r", self._protocol, exc)


class Libp2pNetwork:
    """Implements :class:`ccnp2p.net.base.Network` over a running py-libp2p host.

    Attributes:
        libp2p_host: the underlying py-libp2p ``BasicHost``. Only for interop tests (e.g. running
            py-libp2p's ``KadDHT`` beside our DHT); protocol code must never touch it.
    """

    def __init__(self, host: BasicHost, identity: Identity) -> None:
        self.libp2p_host = host
        self._peer_id = identity.peer_id
        self._tag = peer_id_to_str(self._peer_id)[-8:]

    def __repr__(self) -> str:
        return f"Libp2pNetwork({self._tag})"

    @property
    def peer_id(self) -> bytes:
        return self._peer_id

    def listen_addrs(self) -> list[str]:
        return [str(a) for a in self.libp2p_host.get_transport_addrs()]

    def connected_peers(self) -> list[bytes]:
        return [pid.to_bytes() for pid in self.libp2p_host.get_connected_peers()]

    def peer_addrs(self, peer_id: bytes) -> list[str]:
        try:
            return [str(a) for a in self.libp2p_host.get_peerstore().addrs(ID(peer_id))]
        except Exception:  # py-libp2p raises PeerStoreError for an unknown peer
            return []

    def add_peer_addrs(self, peer_id: bytes, addrs: Sequence[str]) -> None:
        if not addrs:
            return
        maddrs = [Multiaddr(a) for a in addrs]
        self.libp2p_host.get_peerstore().add_addrs(ID(peer_id), maddrs, PERMANENT_ADDR_TTL)

    async def connect(self, peer_id: bytes, addrs: Sequence[str] = ()) -> None:
        if peer_id == self._peer_id:
            raise DialFailed("cannot dial self")
        try:
            self.add_peer_addrs(peer_id, addrs)
            await self.libp2p_host.connect(PeerInfo(ID(peer_id), []))
        except Exception as exc:
            raise DialFailed(f"dial {peer_id_to_str(peer_id)} failed: {exc!r}") from exc

    async def open_stream(self, peer_id: bytes, protocol: str) -> Libp2pStream:
        if peer_id == self._peer_id:
            raise DialFailed("cannot open a stream to self")
        try:
            stream = await self.libp2p_host.new_stream(ID(peer_id), [TProtocol(protocol)])
        except Exception as exc:
            if _is_protocol_refusal(exc):
                raise ProtocolNotSupported(
                    f"{peer_id_to_str(peer_id)} does not serve {protocol}"
                ) from exc
            raise DialFailed(
                f"open {protocol} to {peer_id_to_str(peer_id)} failed: {exc!r}"
            ) from exc
        return Libp2pStream(stream, peer_id, protocol)

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        async def run_handler(stream: INetStream) -> None:
            try:
                remote = stream.muxed_conn.peer_id.to_bytes()
            except Exception:
                await stream.reset()
                return
            ours = Libp2pStream(stream, remote, protocol)
            try:
                await handler(ours)
            except Exception:
                logger.exception("%r: handler for %s failed", self, protocol)
                await ours.reset()

        self.libp2p_host.set_stream_handler(TProtocol(protocol), run_handler)


def _is_protocol_refusal(exc: BaseException) -> bool:
    """True if the remote answered multistream-select with "na" for our protocol.

    py-libp2p 0.8.1 catches its own ``ProtocolNotSupportedError`` and raises a fresh
    ``MultiselectClientError("protocols not supported: ...")`` outside the handler, so the
    original is not chained and the message is the only signal.
    """
    seen: BaseException | None = exc
    for _ in range(8):  # bounded walk down the __cause__/__context__ chain
        if seen is None:
            return False
        if isinstance(seen, ProtocolNotSupportedError):
            return True
        if isinstance(seen, MultiselectClientError) and "not supported" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _build_host(identity: Identity, listen: list[Multiaddr]) -> BasicHost:
    key_pair = create_new_key_pair(identity.seed)
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    config = ConnectionConfig(max_connections_per_peer=1)
    host = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        listen_addrs=listen,
        connection_config=config,
    )
    if not isinstance(host, BasicHost):
        raise NetworkError(f"unexpected py-libp2p host type {type(host).__name__}")
    if host.get_id().to_bytes() != identity.peer_id:
        raise NetworkError("py-libp2p derived a different peer id from our identity")
    return host


@asynccontextmanager
async def open_libp2p_network(
    identity: Identity, listen_addrs: Sequence[str] = DEFAULT_LISTEN_ADDRS
) -> AsyncIterator[Libp2pNetwork]:
    """Run a py-libp2p host for ``identity`` while the context is open.

    Args:
        identity: the node's ed25519 identity (its seed becomes the libp2p key).
        listen_addrs: TCP multiaddrs; port 0 picks a free port (see ``listen_addrs()``).

    Raises:
        NetworkError: the host could not start (for example the port is taken).
    """
    listen = [Multiaddr(a) for a in listen_addrs]
    host = _build_host(identity, listen)
    started = False
    try:
        async with host.run(listen_addrs=listen):
            started = True
            await host.get_network().auto_connector.stop()  # type: ignore[attr-defined]
            try:
                yield Libp2pNetwork(host, identity)
            finally:
                # Close connections and listeners ourselves, shielded: see the module docstring.
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + HOST_CLOSE_TIMEOUT_S
                    await host.close()
    except OSError as exc:
        if started:
            raise
        raise NetworkError(f"libp2p host failed to start: {exc!r}") from exc
