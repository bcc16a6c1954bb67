"""The composition root: one :class:`Node` = identity + store + network + DHT + exchange.

A Node runs over any :class:`~ccnp2p.net.base.Network` (real libp2p in the daemon, simulated
links in tests and ``sim/``). It owns no sockets and reads no wall clock: everything it waits for
goes through trio, so the same code runs under virtual time.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import trio

from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.compute.service import ComputeService
from ccnp2p.dht.config import DhtConfig
from ccnp2p.dht.namespaces import register_ccn_namespaces
from ccnp2p.dht.node import KadDht
from ccnp2p.dht.records import ValidatorRegistry
from ccnp2p.dht.routing import PeerInfo
from ccnp2p.dht.validators import SignedSeqValidator, make_signed_record, owner_key
from ccnp2p.errors import CcnError, DecodeError, LocalError, NotFound
from ccnp2p.net.base import Network
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity, peer_id_from_str
from ccnp2p.objects.model import Calc, FileNode, NamedObject, Operator, decode_object
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.aio import AsyncBlocks
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.files import DEFAULT_CHUNK_BYTES, FileReader, ImportResult, import_stream
from ccnp2p.store.pins import PinSet
from ccnp2p.transfer import TransferService
from ccnp2p.transfer.blocks import BlockService

if TYPE_CHECKING:
    from trio_typing import TaskStatus  # trio-stubs (via libp2p) hide trio.TaskStatus

log = logging.getLogger(__name__)

USER_NAMESPACE = "/ccn/user/"
FIND_PROVIDERS_LIMIT = 20


def parse_peer_multiaddr(text: str) -> PeerInfo:
    """``/ip4/1.2.3.4/tcp/4011/p2p/12D3...`` -> PeerInfo(peer id, (``/ip4/1.2.3.4/tcp/4011``,))."""
    addr, sep, peer = text.strip().rpartition("/p2p/")
    if not sep or not peer or "/" in peer:
        raise LocalError(f"bootstrap address must end in /p2p/<peer id>: {text!r}")
    return PeerInfo(peer_id_from_str(peer), (addr,) if addr else ())


def default_validators() -> ValidatorRegistry:
    """The record namespaces every node validates."""
    registry = ValidatorRegistry()
    registry.register(USER_NAMESPACE, SignedSeqValidator(USER_NAMESPACE))
    register_ccn_namespaces(registry)
    from ccnp2p.econ.claims import register_econ_namespaces

    return register_econ_namespaces(registry)


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What a read will do: the root, its size, and where the bytes come from."""

    root: Cid
    size: int
    local: bool
    providers: tuple[bytes, ...]


class Node:
    """A ccnp2p peer.

    Args:
        identity: the node's key (its peer id is the network's).
        blocks: where blocks live (a repo's blockstore).
        pins: the repo's pins (None for nodes that never pin, e.g. in some simulations).
        network: the transport.
        dht_config: DHT tunables (protocol id, k, timeouts).
        seed: seeds the node's randomness (deterministic tests and simulations).
        threaded_io: run disk I/O in worker threads (False under a virtual clock).
        registry: operators installed here (default: the built-ins and entry points).
        hardware: what the capability record advertises (default: detected).
        wall_time: seconds since the epoch, for leases other peers compare (under a virtual
            clock, pass ``trio.current_time``).
    """

    def __init__(
        self,
        identity: Identity,
        blocks: Blockstore,
        pins: PinSet | None,
        network: Network,
        *,
        dht_config: DhtConfig | None = None,
        seed: int = 0,
        threaded_io: bool = True,
        registry: OperatorRegistry | None = None,
        hardware: Hardware | None = None,
        wall_time: Callable[[], float] = time.time,
    ) -> None:
        if identity.peer_id != network.peer_id:
            raise ValueError("identity and network disagree on the peer id")
        self.identity = identity
        self.blocks = blocks
        self.ablocks = AsyncBlocks(blocks, threaded=threaded_io)
        self.pins = pins
        self.network = network
        self.dht = KadDht(network, dht_config, validators=default_validators(), seed=seed)
        self.exchange = BlockService(network, self.ablocks)
        self.transfer = TransferService(network, blocks)
        self.wall_time = wall_time
        self.compute = ComputeService(
            self,
            registry if registry is not None else OperatorRegistry.with_builtins(),
            hardware if hardware is not None else Hardware.detect(),
        )
        self._nursery: trio.Nursery | None = None
        self._provided: set[Cid] = set()

    @property
    def peer_id(self) -> bytes:
        return self.identity.peer_id

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (use with ``nursery.start``)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(self.dht.run)
            await nursery.start(self.transfer.run)
            await nursery.start(self.compute.run)
            task_status.started()

    def spawn(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run a background task for the node's lifetime (e.g. publishing a record)."""
        assert self._nursery is not None, "Node.run is not running"
        self._nursery.start_soon(fn, *args)

    async def bootstrap(self, peers: Sequence[PeerInfo]) -> int:
        """Join the network through ``peers``; returns how many peers the DHT now knows."""
        reachable = []
        for peer in peers:
            try:
                await self.network.connect(peer.peer_id, peer.addrs)
                reachable.append(peer)
            except CcnError as exc:
                log.warning("bootstrap peer %s unreachable: %s", peer.peer_id.hex()[:12], exc)
        if reachable:
            await self.dht.bootstrap(reachable)
        return len(self.dht.table)

    # -- content -------------------------------------------------------------------------------

    async def add(
        self,
        src: BinaryIO,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        pin: bool = True,
        provide: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Import a byte stream (in a worker thread), pin it and announce it."""
        result = await self.ablocks.run(
            lambda: import_stream(self.blocks, src, chunk_bytes=chunk_bytes, progress=progress)
        )
        if pin and self.pins is not None:
            self.pins.add(result.root)
        if provide:
            await self.provide(result.root)
        return result

    async def add_bytes(self, data: bytes, **kwargs: object) -> ImportResult:
        return await self.add(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]

    async def add_path(self, path: Path, **kwargs: object) -> ImportResult:
        with open(path, "rb") as f:
            return await self.add(f, **kwargs)  # type: ignore[arg-type]

    async def provide(self, cid: Cid) -> int:
        """Announce in the DHT that we hold ``cid``; returns how many peers stored it."""
        self._provided.add(cid)
        try:
            return await self.dht.provide(cid)
        except CcnError as exc:
            log.warning("provide %s failed: %s", cid, exc)
            return 0

    async def find_providers(self, cid: Cid, limit: int = FIND_PROVIDERS_LIMIT) -> list[PeerInfo]:
        return await self.dht.find_providers(cid, limit)

    # -- reading -------------------------------------------------------------------------------

    async def _get_block(self, cid: Cid, providers: Sequence[bytes]) -> bytes:
        if self.blocks.has(cid):
            try:
                return await self.ablocks.get(cid)
            except NotFound:
                pass
        return await self.exchange.get_block(cid, providers)

    async def plan_read(
        self, cid: Cid, hint: Sequence[bytes] = (), *, lookup: bool = True
    ) -> ReadPlan:
        """Resolve ``cid`` to a readable file: locally, or by finding providers and its tree.

        ``hint`` names peers that may hold it (asked first); ``lookup=False`` trusts the hint
        alone and skips the DHT (a failover's hot path, where the hint surely holds it).
        """
        providers: tuple[bytes, ...] = ()
        if hint and not (self.blocks.has(cid) and self.holds(cid)):
            found: list[bytes] = []
            if lookup:
                found = [p.peer_id for p in await self.find_providers(cid)]
            providers = tuple(dict.fromkeys(p for p in (*hint, *found) if p != self.peer_id))
        if not providers and not self.blocks.has(cid):
            infos = await self.find_providers(cid)
            providers = tuple(p.peer_id for p in infos if p.peer_id != self.peer_id)
            if not providers:
                raise NotFound(f"{cid} is not stored here and no provider was found", cid)
        root = await self._get_block(cid, providers)
        if cid.is_raw:
            return ReadPlan(cid, len(root), not providers, providers)
        obj = decode_object(root)
        if not isinstance(obj, FileNode):
            raise DecodeError(f"{cid} is a {obj.TYPE}; only files can be read as bytes for now")
        if not providers and obj.depth > 0:
            # Partial local copies: find providers lazily if a subtree is missing.
            providers = await self._providers_if_missing(cid, obj)
        return ReadPlan(cid, obj.size, not providers, providers)

    async def _providers_if_missing(self, cid: Cid, node: FileNode) -> tuple[bytes, ...]:
        if all(self.blocks.has(c) for c in node.links):
            return ()
        infos = await self.find_providers(cid)
        return tuple(p.peer_id for p in infos if p.peer_id != self.peer_id)

    async def open_reader(
        self, cid: Cid, offset: int = 0, length: int | None = None, plan: ReadPlan | None = None
    ) -> AsyncIterator[bytes]:
        """Stream the bytes of a stored file (or chunk) from ``offset``.

        Local blocks are read in place; missing ones come over ``/ccn/transfer`` from all the
        providers at once, verified against the file tree and cached (unpinned).
        """
        plan = plan or await self.plan_read(cid)
        end = None if length is None else offset + length
        pos = offset
        if not plan.providers:
            reader = FileReader(self.blocks.get, plan.root)
            try:
                for ref in reader.chunk_refs(offset, length):
                    data = await self.ablocks.get(ref.cid)
                    piece = (
                        data
                        if ref.start == 0 and ref.end == ref.size
                        else data[ref.start : ref.end]
                    )
                    pos += len(piece)
                    yield piece
                return
            except NotFound:
                pass  # a partial local copy: fetch the rest from providers
            infos = await self.find_providers(plan.root)
            providers = tuple(p.peer_id for p in infos if p.peer_id != self.peer_id)
            if not providers:
                raise NotFound(f"{plan.root} is incomplete here and no provider was found")
            plan = ReadPlan(plan.root, plan.size, False, providers)
        remaining = None if end is None else max(0, end - pos)
        async with self.transfer.fetch(plan.root, plan.providers, pos, remaining) as download:
            async for piece in download:
                yield piece

    # -- objects and calcs ----------------------------------------------------------------------

    async def get_object(
        self, cid: Cid, expect: type[NamedObject] | None = None, hint: Sequence[bytes] = ()
    ) -> NamedObject:
        """A named object by CID: local, else from ``hint`` peers, else from DHT providers."""
        if self.blocks.has(cid):
            return decode_object(await self.ablocks.get(cid), expect)
        peers = [p for p in hint if p != self.peer_id]
        try:
            data = await self.exchange.get_block(cid, peers)
        except NotFound:
            infos = await self.find_providers(cid)
            data = await self.exchange.get_block(
                cid, [p.peer_id for p in infos if p.peer_id != self.peer_id]
            )
        return decode_object(data, expect)

    async def calc(
        self, op: str | Cid, inputs: Sequence[Cid], params: dict[str, object] | None = None
    ) -> Cid:
        """Define a calc and return its CID at once. Nothing is computed.

        The calc and operator objects are stored and announced so any peer can fetch them.
        Commutative operators get their inputs sorted, so input order does not change the CID.
        """
        op_cid = op if isinstance(op, Cid) else self.compute.registry.resolve_name(op)
        op_obj = await self.get_object(op_cid, Operator)
        assert isinstance(op_obj, Operator)
        ins = sorted(inputs, key=bytes) if op_obj.commutative else list(inputs)
        calc = Calc(op=op_cid, inputs=tuple(ins), params=dict(params or {}))
        if op_obj.impl and self.compute.runs(op_obj):
            self.compute.registry.check(op_obj).check_params(dict(calc.params), len(ins))
        data = calc.encode()
        cid = Cid.for_object(data)
        await self.ablocks.put(cid, data, verify=False)
        await self.ablocks.put(op_cid, op_obj.encode(), verify=False)
        await self.provide(cid)
        if not self.compute.runs(op_obj):
            await self.provide(op_cid)  # nobody else may announce an operator we do not run
        return cid

    async def kind_of(self, cid: Cid, hint: Sequence[bytes] = ()) -> NamedObject | None:
        """The object behind ``cid`` (None for a raw chunk)."""
        if cid.is_raw:
            return None
        return await self.get_object(cid, None, hint)

    async def size_hint(self, cid: Cid, depth: int = 0, *, estimate: bool = True) -> int | None:
        """Bytes behind ``cid`` if known or estimable (a calc not computed yet: its operator's
        declared output size for its inputs' sizes, :mod:`ccnp2p.objects.sizing`)."""
        try:
            if cid.is_raw:
                return self.blocks.size_of(cid) if self.blocks.has(cid) else None
            obj = await self.get_object(cid)
        except CcnError:
            return None
        if isinstance(obj, FileNode):
            return obj.size
        if isinstance(obj, Calc) and depth < 8:
            result = self.compute.executor.results.get(cid)
            if result is not None:
                return await self.size_hint(result, depth + 1)
            if not estimate:
                return None
            sizes = [await self.size_hint(c, depth + 1) for c in obj.inputs]
            total = sum(s or 0 for s in sizes)
            try:
                op = await self.get_object(obj.op, Operator)
            except CcnError:
                return total
            assert isinstance(op, Operator)
            return op.estimate_output(total, obj.params)
        return None

    async def holders(self, cid: Cid) -> set[bytes]:
        """Peers that hold ``cid`` (for a computed calc: its result)."""
        result = self.compute.executor.results.get(cid)
        found: set[bytes] | None = None
        if result is None and not cid.is_raw:
            # The providers of a calc's CID hold the calc *object* (whoever defined it), not its
            # result, so look at the object first; when we lack it, the one provider lookup
            # both fetches it and, for a file, answers the question.
            if not self.blocks.has(cid):
                found = {p.peer_id for p in await self.find_providers(cid)}
            try:
                obj: NamedObject | None = await self.get_object(cid, None, tuple(found or ()))
            except CcnError:
                obj = None
            if isinstance(obj, Calc):
                result = await self.compute.find_result(cid)
                if result is None:
                    return set()  # not computed anywhere yet: its bytes are nowhere
                found = None
        target = result if result is not None else cid
        if found is None:
            found = {p.peer_id for p in await self.find_providers(target)}
        found.discard(self.peer_id)
        if self.holds(target):
            found.add(self.peer_id)
        return found

    def holds(self, cid: Cid) -> bool:
        """Whether we hold all of ``cid`` (we announced it, or it is pinned), not just its root."""
        if cid in self._provided:
            return True
        return self.pins is not None and self.pins.get(cid) is not None

    async def read(
        self,
        cid: Cid,
        offset: int = 0,
        length: int | None = None,
        hint: Sequence[bytes] = (),
        *,
        lookup: bool = True,
    ) -> AsyncIterator[bytes]:
        """Read any CID: a file or chunk (from wherever it is stored) or a calc (computed)."""
        obj = None if cid.is_raw else await self.get_object(cid, None, hint)
        if isinstance(obj, Calc):
            async for piece in self.compute.open(cid, offset, length):
                yield piece
            return
        plan = await self.plan_read(cid, hint, lookup=lookup) if hint else None
        async for piece in self.open_reader(cid, offset, length, plan=plan):
            yield piece

    # -- small signed records ------------------------------------------------------------------

    async def publish_user_record(self, data: bytes) -> tuple[bytes, int]:
        """Publish ``data`` under this node's own key ``/ccn/user/<peer id>``; newer seq wins."""
        key = owner_key(USER_NAMESPACE, self.identity)
        seq = 1
        try:
            current = await self.dht.get_value(key)
            seq = int(dagcbor.decode(current)["seq"]) + 1
        except (CcnError, KeyError, TypeError, ValueError):
            pass
        value = make_signed_record(self.identity, key, seq, data)
        await self.dht.put_value(key, value)
        return key, seq

    async def get_user_record(self, key: bytes) -> bytes:
        """The data of the best valid record under ``key`` (validated by the DHT)."""
        value = await self.dht.get_value(key)
        return bytes(dagcbor.decode(value)["data"])
