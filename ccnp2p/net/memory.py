"""An in-memory Network for tests and the simulator, in virtual time.

A :class:`MemoryNetwork` hub owns every :class:`MemoryHost` and the links between them. All time
comes from trio, so under ``trio.testing.MockClock(autojump_threshold=0)`` a scenario of minutes
runs in milliseconds and is exactly reproducible.

Model (kept simple on purpose, and the same for every pair of hosts):

* **Addresses** are ``/memory/<n>`` multiaddrs (the multiaddr ``memory`` protocol, code 0x309,
  also used by rust-libp2p's MemoryTransport): they round-trip through py-multiaddr's binary form,
  have a 64-bit space, and can never be mistaken for a real network address.
* **Latency** is one-way, per ordered pair: an explicit :meth:`MemoryNetwork.set_latency`
  override, else ``latency_fn(a, b)``, else ``latency_s``. Connecting costs one round trip;
  opening a stream costs one round trip (protocol negotiation), and so does a refused one.
* **Bandwidth** is per host (upload and download, bytes/s, ``None`` = unlimited). A segment
  occupies the sender's uplink and the receiver's downlink together at the slower of the two
  rates; segments queue behind each other, so concurrent streams share a host's bandwidth.
* **Backpressure**: each stream direction has a window (``receive_window_bytes``); a sender
  blocks while that many bytes are in flight or unread.
* **Crash** (:meth:`MemoryNetwork.crash`): the host is dead for good; its handler tasks are
  cancelled and its streams are reset (the remote sees :class:`StreamReset`), or with
  ``silent=True`` the remote sees nothing at all, like a machine that lost power. Dials to it
  fail. :meth:`MemoryNetwork.restart` makes a fresh host (same identity and address, no handlers,
  no connections, empty address book), as a restarted process would have.
* **Partitions** (:meth:`MemoryNetwork.partition`): hosts in different groups cannot dial each
  other, and their connections and streams are reset when the partition starts.

There are no per-node or per-stream background tasks; only inbound stream handlers run as tasks,
in the hub's nursery (enter the hub with ``async with``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Final

import trio

from ccnp2p.net._memory_stream import Channel, MemoryStream
from ccnp2p.net.base import StreamHandler
from ccnp2p.net.errors import DialFailed, NetworkError, ProtocolNotSupported
from ccnp2p.objects.keys import Identity, peer_id_to_str

logger = logging.getLogger(__name__)

DEFAULT_RECEIVE_WINDOW_BYTES: Final = 256 * 1024

LatencyFn = Callable[[bytes, bytes], float]


@dataclass(frozen=True, slots=True)
class MemoryHostStatistics:
    bytes_sent: int
    bytes_received: int
    streams_open: int
    connections: int


@dataclass(frozen=True, slots=True)
class MemoryNetworkStatistics:
    hosts_alive: int
    streams_open: int
    streams_opened: int
    bytes_sent: int
    dials: int
    dial_failures: int


class MemoryHost:
    """One node's view of the in-memory network; implements :class:`ccnp2p.net.base.Network`."""

    __slots__ = (
        "_channels",
        "_connections",
        "_down_free_at",
        "_extra_addrs",
        "_handlers",
        "_known",
        "_scopes",
        "_up_free_at",
        "addr",
        "alive",
        "bytes_received",
        "bytes_sent",
        "download_bytes_per_s",
        "hub",
        "peer_id",
        "upload_bytes_per_s",
    )

    def __init__(self, hub: MemoryNetwork, peer_id: bytes, addr: str) -> None:
        self.hub = hub
        self.peer_id = peer_id
        self.addr = addr
        self.alive = True
        self.upload_bytes_per_s: float | None = None
        self.download_bytes_per_s: float | None = None
        self.bytes_sent = 0
        self.bytes_received = 0
        self._up_free_at = float("-inf")
        self._down_free_at = float("-inf")
        self._handlers: dict[str, StreamHandler] = {}
        self._connections: set[bytes] = set()
        # Address book: peers whose hub address we were told (a set is far smaller than a dict of
        # lists at 10k nodes), plus any other addresses, kept verbatim.
        self._known: set[bytes] = set()
        self._extra_addrs: dict[bytes, tuple[str, ...]] = {}
        self._channels: set[Channel] = set()
        self._scopes: set[trio.CancelScope] = set()

    def __repr__(self) -> str:
        state = "up" if self.alive else "down"
        return f"MemoryHost({peer_id_to_str(self.peer_id)[-8:]}, {self.addr}, {state})"

    # -- Network ------------------------------------------------------------------------------

    def listen_addrs(self) -> list[str]:
        return [self.addr]

    def connected_peers(self) -> list[bytes]:
        return list(self._connections)

    def peer_addrs(self, peer_id: bytes) -> list[str]:
        out = [self.hub._addr_by_peer[peer_id]] if peer_id in self._known else []
        out.extend(self._extra_addrs.get(peer_id, ()))
        return out

    def add_peer_addrs(self, peer_id: bytes, addrs: Sequence[str]) -> None:
        canonical = self.hub._addr_by_peer.get(peer_id)
        extra = [a for a in addrs if a != canonical]
        if len(extra) < len(addrs):
            self._known.add(peer_id)
        if extra:
            old = self._extra_addrs.get(peer_id, ())
            self._extra_addrs[peer_id] = old + tuple(a for a in extra if a not in old)

    def set_handler(self, protocol: str, handler: StreamHandler) -> None:
        self._handlers[protocol] = handler

    async def connect(self, peer_id: bytes, addrs: Sequence[str] = ()) -> None:
        """Connect (one round trip) unless already connected; see :class:`MemoryNetwork`."""
        self._check_alive()
        self.add_peer_addrs(peer_id, addrs)
        hub = self.hub
        target = hub._hosts.get(peer_id)
        if peer_id in self._connections and hub._usable(self, peer_id):
            assert target is not None
            if self.peer_id in target._connections:
                await trio.lowlevel.checkpoint()
                return
        hub._dials += 1
        candidates = self.peer_addrs(peer_id)
        reason = None
        if peer_id == self.peer_id:
            reason = "cannot dial self"
        elif not candidates:
            reason = "no known address"
        elif target is None or target.addr not in candidates:
            reason = "no host with that peer id at the known addresses"
        if reason is None:
            # The handshake (or the refusal) takes a round trip.
            await trio.sleep(2 * hub.latency(self.peer_id, peer_id))
            self._check_alive()
            if not hub._usable(self, peer_id):
                reason = "peer unreachable (down or partitioned)"
        else:
            await trio.lowlevel.checkpoint()
        if reason is not None:
            hub._dial_failures += 1
            raise DialFailed(f"dial {peer_id_to_str(peer_id)}: {reason}")
        assert target is not None
        self._connections.add(peer_id)
        target._connections.add(self.peer_id)
        # What libp2p's identify does on every new connection: the listener learns the
        # dialer's listen address, so it can dial back (and admit it to its routing table).
        target.add_peer_addrs(self.peer_id, [self.addr])

    async def open_stream(self, peer_id: bytes, protocol: str) -> MemoryStream:
        """Open a stream; costs one round trip after the connection, as negotiation would."""
        hub = self.hub
        if hub._nursery is None:
            raise RuntimeError("enter the MemoryNetwork (async with) before opening streams")
        await self.connect(peer_id)
        target = hub._hosts[peer_id]
        latency = hub.latency(self.peer_id, peer_id)
        await trio.sleep(latency)
        if not hub._usable(self, peer_id):
            await trio.sleep(latency)
            raise DialFailed(f"connection to {peer_id_to_str(peer_id)} lost")
        handler = target._handlers.get(protocol)
        if handler is None:
            await trio.sleep(latency)
            raise ProtocolNotSupported(f"{peer_id_to_str(peer_id)} does not serve {protocol}")
        channel = Channel(self, target, protocol, hub.receive_window_bytes)
        self._channels.add(channel)
        target._channels.add(channel)
        hub._streams_open += 1
        hub._streams_opened += 1
        hub._nursery.start_soon(target._run_handler, handler, MemoryStream(channel, 1))
        try:
            await trio.sleep(latency)
        except BaseException:
            channel.abort()
            raise
        return MemoryStream(channel, 0)

    # -- statistics and internals -------------------------------------------------------------

    def statistics(self) -> MemoryHostStatistics:
        return MemoryHostStatistics(
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            streams_open=len(self._channels),
            connections=len(self._connections),
        )

    def _check_alive(self) -> None:
        if not self.alive:
            raise NetworkError(f"{self!r} is down")

    def _forget_channel(self, channel: Channel) -> None:
        if channel in self._channels:
            self._channels.discard(channel)
            if channel.hosts[0] is self:
                self.hub._streams_open -= 1

    async def _run_handler(self, handler: StreamHandler, stream: MemoryStream) -> None:
        """Run one inbound handler; its failure resets the stream and nothing else."""
        scope = trio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                try:
                    await handler(stream)
                except Exception:
                    logger.exception("%r: handler for %s failed", self, stream.protocol)
                    try:
                        await stream.reset()
                    except NetworkError:
                        pass  # the host itself is down: the stream is gone anyway
        except Exception:
            # The host crashed under the handler (its scope was cancelled) and the handler's
            # nursery also carried the resulting stream errors: the crash is the whole story.
            logger.debug("%r: handler for %s ended with its host", self, stream.protocol)
        finally:
            self._scopes.discard(scope)

    def _die(self, *, silent: bool) -> None:
        self.alive = False
        for scope in self._scopes:
            scope.cancel()
        for channel in list(self._channels):
            if silent:
                channel.lot.unpark_all()  # our own waiters notice we are dead
            else:
                channel.abort()
        if not silent:
            for peer in self._connections:
                other = self.hub._hosts.get(peer)
                if other is not None:
                    other._connections.discard(self.peer_id)
        self._connections.clear()


class MemoryNetwork:
    """The hub: creates hosts and simulates the links between them.

    Args:
        seed: seeds :attr:`random`, which scenario code (latency functions, churn) should use so a
            whole run is reproducible from one number.
        latency_s: default one-way latency.
        latency_fn: one-way latency for an ordered pair of peer ids, used when no explicit
            :meth:`set_latency` override exists.
        receive_window_bytes: per-direction stream buffer; senders block beyond it.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        latency_s: float = 0.0,
        latency_fn: LatencyFn | None = None,
        receive_window_bytes: int = DEFAULT_RECEIVE_WINDOW_BYTES,
    ) -> None:
        if receive_window_bytes < 1:
            raise ValueError("receive_window_bytes must be positive")
        self.random = random.Random(seed)
        self.latency_s = latency_s
        self.latency_fn = latency_fn
        self.receive_window_bytes = receive_window_bytes
        self._pair_latency: dict[tuple[bytes, bytes], float] = {}
        self._hosts: dict[bytes, MemoryHost] = {}
        self._addr_by_peer: dict[bytes, str] = {}
        self._group: dict[bytes, int] = {}
        self._nursery: trio.Nursery | None = None
        self._stack: AsyncExitStack | None = None
        self._hosts_alive = 0
        self._streams_open = 0
        self._streams_opened = 0
        self._bytes_sent = 0
        self._dials = 0
        self._dial_failures = 0

    async def __aenter__(self) -> MemoryNetwork:
        stack = AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._nursery is not None and self._stack is not None
        self._nursery.cancel_scope.cancel()
        self._nursery = None
        return await self._stack.__aexit__(exc_type, exc, tb)

    # -- hosts --------------------------------------------------------------------------------

    def add_host(
        self,
        identity: Identity | bytes,
        *,
        upload_bytes_per_s: float | None = None,
        download_bytes_per_s: float | None = None,
    ) -> MemoryHost:
        """Create a host for an identity (or a bare peer id) at a fresh ``/memory/<n>`` address."""
        peer_id = identity.peer_id if isinstance(identity, Identity) else identity
        if peer_id in self._hosts:
            raise ValueError(f"host {peer_id_to_str(peer_id)} already exists")
        addr = f"/memory/{len(self._addr_by_peer) + 1}"
        self._addr_by_peer[peer_id] = addr
        host = self._new_host(peer_id)
        self.set_bandwidth(peer_id, upload_bytes_per_s, download_bytes_per_s)
        return host

    def _new_host(self, peer_id: bytes) -> MemoryHost:
        host = MemoryHost(self, peer_id, self._addr_by_peer[peer_id])
        self._hosts[peer_id] = host
        self._hosts_alive += 1
        return host

    def host(self, peer_id: bytes) -> MemoryHost:
        """The current incarnation of a host (after :meth:`restart`, the new one)."""
        return self._hosts[peer_id]

    def set_bandwidth(
        self, peer_id: bytes, upload_bytes_per_s: float | None, download_bytes_per_s: float | None
    ) -> None:
        host = self._hosts[peer_id]
        for rate in (upload_bytes_per_s, download_bytes_per_s):
            if rate is not None and rate <= 0:
                raise ValueError("bandwidth must be positive (or None for unlimited)")
        host.upload_bytes_per_s = upload_bytes_per_s
        host.download_bytes_per_s = download_bytes_per_s

    def crash(self, peer_id: bytes, *, silent: bool = False) -> None:
        """Kill a host: see the module docstring. Crashing a dead host does nothing."""
        host = self._hosts[peer_id]
        if host.alive:
            host._die(silent=silent)
            self._hosts_alive -= 1

    def restart(self, peer_id: bytes) -> MemoryHost:
        """Replace a crashed host by a fresh one with the same identity, address and bandwidth."""
        old = self._hosts[peer_id]
        if old.alive:
            raise ValueError(f"{old!r} is still running; crash it first")
        host = self._new_host(peer_id)
        host.upload_bytes_per_s = old.upload_bytes_per_s
        host.download_bytes_per_s = old.download_bytes_per_s
        return host

    # -- links --------------------------------------------------------------------------------

    def set_latency(self, a: bytes, b: bytes, latency_s: float, *, symmetric: bool = True) -> None:
        self._pair_latency[(a, b)] = latency_s
        if symmetric:
            self._pair_latency[(b, a)] = latency_s

    def latency(self, a: bytes, b: bytes) -> float:
        """One-way latency from ``a`` to ``b``."""
        override = self._pair_latency.get((a, b))
        if override is not None:
            return override
        if self.latency_fn is not None:
            return self.latency_fn(a, b)
        return self.latency_s

    def partition(self, groups: Iterable[Iterable[bytes]]) -> None:
        """Split the network; hosts not named form one more group. Resets crossing traffic."""
        self._group = {peer: i for i, group in enumerate(groups) for peer in group}
        for host in self._hosts.values():
            for peer in [p for p in host._connections if not self.reachable(host.peer_id, p)]:
                host._connections.discard(peer)
            for channel in list(host._channels):
                a, b = channel.hosts
                if not self.reachable(a.peer_id, b.peer_id):
                    channel.abort()

    def heal(self) -> None:
        """End any partition (existing connections stay gone; hosts must redial)."""
        self._group = {}

    def reachable(self, a: bytes, b: bytes) -> bool:
        return self._group.get(a, -1) == self._group.get(b, -1)

    def statistics(self) -> MemoryNetworkStatistics:
        return MemoryNetworkStatistics(
            hosts_alive=self._hosts_alive,
            streams_open=self._streams_open,
            streams_opened=self._streams_opened,
            bytes_sent=self._bytes_sent,
            dials=self._dials,
            dial_failures=self._dial_failures,
        )

    def _usable(self, src: MemoryHost, peer_id: bytes) -> bool:
        target = self._hosts.get(peer_id)
        return (
            src.alive
            and target is not None
            and target.alive
            and self.reachable(src.peer_id, peer_id)
        )

    def _transmit(self, src: MemoryHost, dst: MemoryHost, size: int) -> float:
        """Book ``size`` bytes on src's uplink and dst's downlink; return when they are sent."""
        now = trio.current_time()
        up, down = src.upload_bytes_per_s, dst.download_bytes_per_s
        if up is None and down is None:
            return now
        start = now
        if up is not None:
            start = max(start, src._up_free_at)
        if down is not None:
            start = max(start, dst._down_free_at)
        rate = min(r for r in (up, down) if r is not None)
        done = start + size / rate
        if up is not None:
            src._up_free_at = done
        if down is not None:
            dst._down_free_at = done
        return done

    def _count_sent(self, src: MemoryHost, size: int) -> None:
        src.bytes_sent += size
        self._bytes_sent += size
