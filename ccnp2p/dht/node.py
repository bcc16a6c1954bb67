"""The trio driver: runs the sans-IO core over the Network seam.

Theory of operation
-------------------
:class:`KadDht` owns a :class:`~ccnp2p.dht.routing.RoutingTable`, a provider store and a record
store. Public operations (:meth:`KadDht.find_providers`, :meth:`KadDht.put_value`...) each run
one :class:`~ccnp2p.dht.lookup.ClosestPeersLookup`: the driver asks the state machine what to do
(``next(now)``), starts one task per request, and feeds every answer or failure back. Answers
refresh the routing table; its decisions ("ping this peer before evicting it") go onto a bounded
queue served by a few verifier tasks, as do peers that contacted us and are not in the table yet
(they enter only after they answer a PING: a client-mode peer never does).

:meth:`KadDht.run` serves the protocol (server mode) and runs the background work: verifiers,
bucket refresh, provider republish and store expiry. Each loop sleeps until its next deadline,
so under ``trio.testing.MockClock`` the node is idle (no busy loop) between deadlines.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import trio

from ccnp2p.dht.addrs import peer_from_wire, peer_to_wire
from ccnp2p.dht.config import DhtConfig, Mode
from ccnp2p.dht.errors import InvalidRecord
from ccnp2p.dht.keys import content_key, kad_key, random_raw_key_in_bucket
from ccnp2p.dht.lookup import ClosestPeersLookup, LookupStatistics, StepKind
from ccnp2p.dht.providers import ProviderStore, ProvideSchedule
from ccnp2p.dht.records import RecordStore, ValidatorRegistry
from ccnp2p.dht.routing import PeerInfo, RoutingTable, UpdateResult
from ccnp2p.dht.rpc import RequestError, Rpc, RpcCounters, short
from ccnp2p.dht.server import RequestHandler
from ccnp2p.dht.wire import Message, MessageType, Record
from ccnp2p.errors import NotFound, RemoteError
from ccnp2p.net.base import Network, Stream
from ccnp2p.objects.cid import Cid

if TYPE_CHECKING:
    # trio-stubs (pulled in by libp2p via trio_typing) shadows trio's own annotations for
    # mypy and lacks trio.TaskStatus; trio_typing's is the same protocol.
    from trio_typing import TaskStatus

logger = logging.getLogger(__name__)

OnReply = Callable[[bytes, Message], bool]
"""Called with each lookup answer; returning True ends the lookup early."""


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The ``k`` closest peers that answered, closest first, and how the lookup went."""

    peers: tuple[bytes, ...]
    statistics: LookupStatistics


class KadDht:
    """A Kademlia DHT node speaking the libp2p kad-dht wire protocol.

    Usage::

        dht = KadDht(network, validators=registry)
        async with trio.open_nursery() as nursery:
            await nursery.start(dht.run)
            await dht.bootstrap([PeerInfo(seed_id, (seed_addr,))])
            providers = await dht.find_providers(cid, limit=5)

    Args:
        network: the transport seam.
        config: tunables; defaults follow libp2p kad-dht.
        validators: namespace → validator for PUT_VALUE/GET_VALUE records.
        seed: seeds the random keys of bucket refreshes (determinism in tests).
    """

    def __init__(
        self,
        network: Network,
        config: DhtConfig | None = None,
        *,
        validators: ValidatorRegistry | None = None,
        seed: int = 0,
    ) -> None:
        self.network = network
        self.config = config or DhtConfig()
        self.peer_id = network.peer_id
        self.validators = validators or ValidatorRegistry()
        cfg = self.config
        self.table = RoutingTable(self.peer_id, k=cfg.k, ping_timeout_s=cfg.request_timeout_s)
        self.providers = ProviderStore(
            ttl_s=cfg.provider_ttl_s,
            max_per_key=cfg.max_providers_per_key,
            max_total=cfg.max_provider_records,
        )
        self.records = RecordStore(
            self.validators, ttl_s=cfg.record_ttl_s, max_records=cfg.max_records
        )
        self.provided = ProvideSchedule(interval_s=cfg.republish_interval_s)
        self.rpc = Rpc(network, cfg)
        self._handler = RequestHandler(self.table, self.providers, self.records, network.peer_addrs)
        self._rng = random.Random(seed)
        self._verify_send, self._verify_recv = trio.open_memory_channel[bytes](
            cfg.verify_queue_size
        )
        self._verifying: set[bytes] = set()
        self._last_refresh = -math.inf
        if cfg.mode is Mode.AUTO:
            self.server_mode = bool(network.listen_addrs())
        else:
            self.server_mode = cfg.mode is Mode.SERVER
        if self.server_mode:
            network.set_handler(cfg.protocol_id, self._serve_stream)

    # ------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the background work until cancelled (use with ``nursery.start``).

        The first refresh comes one ``refresh_interval_s`` after start: joining is
        :meth:`bootstrap`'s job, and a refresh of every bucket at once would multiply its cost.
        """
        self._last_refresh = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(self.config.verify_workers):
                nursery.start_soon(self._verify_loop)
            nursery.start_soon(self._refresh_loop)
            nursery.start_soon(self._republish_loop)
            nursery.start_soon(self._sweep_loop)
            task_status.started()

    def statistics(self) -> RpcCounters:
        """A snapshot of the traffic counters."""
        return replace(self.rpc.counters, by_type=dict(self.rpc.counters.by_type))

    def self_info(self) -> PeerInfo:
        return PeerInfo(self.peer_id, tuple(self.network.listen_addrs()))

    # ------------------------------------------------------------------ public API

    async def bootstrap(self, peers: Sequence[PeerInfo]) -> LookupResult:
        """Join the DHT through ``peers``, then look ourselves up to fill the near buckets."""
        now = trio.current_time()
        for peer in peers:
            if peer.peer_id != self.peer_id:
                self.network.add_peer_addrs(peer.peer_id, peer.addrs)
                self._apply(self.table.update(peer.peer_id, peer.addrs, now))
        result = await self.lookup(self.peer_id)
        self._last_refresh = trio.current_time()
        return result

    async def refresh(self) -> None:
        """Look ourselves up, then a random key in every bucket not looked up recently."""
        now = trio.current_time()
        self._last_refresh = now
        await self.lookup(self.peer_id)
        for index in self.table.stale_buckets(now, self.config.refresh_interval_s):
            raw = random_raw_key_in_bucket(self.table.local_key, index, self._rng)
            if raw is not None:
                await self.lookup(raw)

    async def lookup(self, key: bytes) -> LookupResult:
        """FIND_NODE lookup: the ``k`` peers closest to ``key`` (a raw key, hashed here)."""
        found = await self._run_lookup(
            key, Message(MessageType.FIND_NODE, key), lambda _p, _m: False
        )
        return LookupResult(tuple(found.result()), found.statistics())

    async def get_closest_peers(self, key: bytes) -> list[bytes]:
        """The ``k`` peers closest to ``key`` that answered us, closest first."""
        return list((await self.lookup(key)).peers)

    async def find_peer(self, peer_id: bytes) -> PeerInfo | None:
        """Addresses of ``peer_id``: from the table, else from a lookup towards it."""
        known = self.table.get(peer_id)
        if known is not None:
            return known
        found: list[PeerInfo] = []

        def on_reply(sender: bytes, reply: Message) -> bool:
            for wire_peer in reply.closer_peers:
                if wire_peer.id == peer_id:
                    info = peer_from_wire(wire_peer)
                    if info is not None and info.addrs:
                        found.append(info)
            return sender == peer_id or bool(found)

        await self._run_lookup(peer_id, Message(MessageType.FIND_NODE, peer_id), on_reply)
        if found:
            return found[0]
        addrs = self.network.peer_addrs(peer_id)
        return PeerInfo(peer_id, tuple(addrs)) if addrs else None

    async def provide(self, cid: Cid) -> int:
        """Announce that we serve ``cid``; returns how many peers took the record.

        The announcement is repeated every ``republish_interval_s`` while :meth:`run` runs.
        """
        key = content_key(cid)
        now = trio.current_time()
        self.providers.add(key, self.self_info(), now)
        self.provided.add(key, now)
        return await self._announce(key)

    def stop_providing(self, cid: Cid) -> None:
        """Stop republishing ``cid``; records elsewhere expire after ``provider_ttl_s``."""
        self.provided.remove(content_key(cid))

    async def find_providers(self, cid: Cid, limit: int = 20) -> list[PeerInfo]:
        """Up to ``limit`` distinct providers of ``cid`` (ourselves included if we provide it)."""
        key = content_key(cid)
        found: dict[bytes, PeerInfo] = {}
        for info in self.providers.get(key, trio.current_time()):
            found.setdefault(info.peer_id, info)

        def on_reply(_sender: bytes, reply: Message) -> bool:
            for wire_peer in reply.provider_peers:
                info = peer_from_wire(wire_peer)
                if info is not None and info.peer_id not in found and len(found) < limit:
                    found[info.peer_id] = info
                    if info.addrs and info.peer_id != self.peer_id:
                        self.network.add_peer_addrs(info.peer_id, info.addrs)
            return len(found) >= limit

        if len(found) < limit:
            await self._run_lookup(key, Message(MessageType.GET_PROVIDERS, key), on_reply)
        return list(found.values())[:limit]

    async def put_value(self, key: bytes, value: bytes) -> int:
        """Validate, store locally, and PUT to the ``k`` closest peers; returns how many took it.

        Raises:
            InvalidRecord: the record fails its namespace's validator.
        """
        self.records.put(key, value, trio.current_time())
        peers = await self.get_closest_peers(key)
        return await self._put_to(peers, key, value)

    async def get_value(self, key: bytes) -> bytes:
        """The best valid value for ``key`` among our store and the ``k`` closest peers.

        Peers that answered with an older value (or none) get the best one PUT back to them.

        Raises:
            NotFound: no peer holds a valid record.
        """
        now = trio.current_time()
        answers: dict[bytes, bytes | None] = {}
        local = self.records.get(key, now)

        def on_reply(sender: bytes, reply: Message) -> bool:
            answers[sender] = self._checked_value(sender, key, reply.record)
            return False

        found = await self._run_lookup(key, Message(MessageType.GET_VALUE, key), on_reply)
        values = [v for v in answers.values() if v is not None]
        if local is not None:
            values.append(local)
        if not values:
            raise NotFound(f"no record under {key[:64]!r}")
        best = values[self.validators.select(key, values)]
        if local != best:
            self.records.put(key, best, trio.current_time())
        closest = set(found.result())
        stale = [p for p, v in answers.items() if v != best and (v is not None or p in closest)]
        if stale:
            await self._put_to(stale, key, best)
        return best

    # ------------------------------------------------------------------ lookups

    async def _run_lookup(
        self, key: bytes, request: Message, on_reply: OnReply
    ) -> ClosestPeersLookup:
        cfg = self.config
        target = kad_key(key)
        seeds = [p.peer_id for p in self.table.closest(target, cfg.k)]
        lookup = ClosestPeersLookup(
            target,
            seeds,
            k=cfg.k,
            alpha=cfg.alpha,
            peer_timeout_s=cfg.request_timeout_s,
            local_peer_id=self.peer_id,
        )
        send, recv = trio.open_memory_channel[tuple[bytes, Message | None]](cfg.k + cfg.alpha)
        async with trio.open_nursery() as nursery:
            while True:
                step = lookup.next(trio.current_time())
                if step.kind is StepKind.FINISHED:
                    break
                for peer in step.peers:
                    nursery.start_soon(self._query, peer, request, send)
                if step.kind is StepKind.WAITING:
                    with trio.move_on_at(step.wake_at if step.wake_at is not None else math.inf):
                        peer, reply = await recv.receive()
                        self._absorb(lookup, peer, reply, on_reply)
                while not lookup.is_finished:
                    try:
                        peer, reply = recv.receive_nowait()
                    except trio.WouldBlock:
                        break
                    self._absorb(lookup, peer, reply, on_reply)
            nursery.cancel_scope.cancel()
        self.table.mark_refreshed(target, trio.current_time())
        return lookup

    async def _query(
        self,
        peer: bytes,
        request: Message,
        send: trio.MemorySendChannel[tuple[bytes, Message | None]],
    ) -> None:
        try:
            reply = await self.rpc.request(peer, request)
        except RequestError as exc:
            logger.debug("%s: %s failed: %r", short(peer), request.type.name, exc)
            reply = None
        await send.send((peer, reply))

    def _absorb(
        self, lookup: ClosestPeersLookup, peer: bytes, reply: Message | None, on_reply: OnReply
    ) -> None:
        if reply is None:
            lookup.on_failure(peer)
            self.table.remove(peer)
            return
        closer: list[bytes] = []
        for wire_peer in reply.closer_peers:
            info = peer_from_wire(wire_peer)
            if info is None or info.peer_id == self.peer_id:
                continue
            if info.addrs:
                self.network.add_peer_addrs(info.peer_id, info.addrs)
            closer.append(info.peer_id)
        lookup.on_success(peer, closer)
        self._apply(self.table.update(peer, self.network.peer_addrs(peer), trio.current_time()))
        if on_reply(peer, reply):
            lookup.finish()

    # ------------------------------------------------------------------ fan-out

    async def _announce(self, key: bytes) -> int:
        peers = await self.get_closest_peers(key)
        message = Message(
            MessageType.ADD_PROVIDER, key, provider_peers=(peer_to_wire(self.self_info()),)
        )
        return await self._fan_out(peers, message, expect_response=False)

    async def _put_to(self, peers: Sequence[bytes], key: bytes, value: bytes) -> int:
        message = Message(MessageType.PUT_VALUE, key, record=Record(key, value))
        return await self._fan_out(peers, message, expect_response=True)

    async def _fan_out(
        self, peers: Sequence[bytes], message: Message, *, expect_response: bool
    ) -> int:
        ok = 0

        async def one(peer: bytes) -> None:
            nonlocal ok
            try:
                await self.rpc.request(peer, message, expect_response=expect_response)
            except RequestError as exc:
                logger.debug("%s: %s failed: %r", short(peer), message.type.name, exc)
                return
            ok += 1

        async with trio.open_nursery() as nursery:
            for peer in peers:
                nursery.start_soon(one, peer)
        return ok

    def _checked_value(self, sender: bytes, key: bytes, record: Record | None) -> bytes | None:
        if record is None or record.key != key:
            return None
        try:
            self.validators.validate(key, record.value)
        except InvalidRecord as exc:
            logger.info("%s: invalid record for %r: %s", short(sender), key[:64], exc)
            return None
        return record.value

    # ------------------------------------------------------------------ serving

    async def _serve_stream(self, stream: Stream) -> None:
        await self.rpc.serve(stream, self._handle_request)

    def _handle_request(self, sender: bytes, request: Message) -> Message | None:
        now = trio.current_time()
        if sender in self.table:
            self.table.update(sender, self.network.peer_addrs(sender), now)
        elif self.table.wants(sender, now):
            self._enqueue_verify(sender)
        try:
            return self._handler.handle(sender, request, now).response
        except InvalidRecord as exc:
            logger.info("%s: rejected PUT_VALUE: %s", short(sender), exc)
            raise
        except RemoteError:
            self.table.remove(sender)
            raise

    # ------------------------------------------------------------------ background work

    def _apply(self, result: UpdateResult) -> None:
        if result.ping is not None:
            self._enqueue_verify(result.ping)

    def _enqueue_verify(self, peer: bytes) -> None:
        if peer in self._verifying or peer == self.peer_id:
            return
        try:
            self._verify_send.send_nowait(peer)
        except trio.WouldBlock:
            return  # queue full: the peer will be met again
        self._verifying.add(peer)

    async def _verify_loop(self) -> None:
        async for peer in self._verify_recv:
            try:
                alive = await self.rpc.ping(peer)
            finally:
                self._verifying.discard(peer)
            if alive:
                self._apply(
                    self.table.update(peer, self.network.peer_addrs(peer), trio.current_time())
                )
            else:
                self.table.remove(peer)

    async def _refresh_loop(self) -> None:
        while True:
            await trio.sleep_until(
                max(self._last_refresh + self.config.refresh_interval_s, trio.current_time())
            )
            if trio.current_time() >= self._last_refresh + self.config.refresh_interval_s:
                await self.refresh()

    async def _republish_loop(self) -> None:
        while True:
            deadline = self.provided.next_deadline()
            now = trio.current_time()
            await trio.sleep_until(
                deadline if deadline is not None else now + self.config.republish_interval_s
            )
            now = trio.current_time()
            for key in self.provided.due(now):
                self.provided.add(key, now)
                self.providers.add(key, self.self_info(), now)
                await self._announce(key)

    async def _sweep_loop(self) -> None:
        while True:
            now = trio.current_time()
            deadlines = [now + self.config.sweep_interval_s]
            deadlines += [
                d
                for d in (self.providers.next_expiry(), self.records.next_expiry())
                if d is not None
            ]
            await trio.sleep_until(max(min(deadlines), now))
            now = trio.current_time()
            self.providers.expire(now)
            self.records.expire(now)
            self.table.poll(now)
