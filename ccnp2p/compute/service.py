"""The compute side of a node: contracts, executions, and the lazy read path for calcs.

Reading a calc (DESIGN.md §5): its result record (here, then in the DHT) -> a live execution
here -> a live executor named by an executor record in the DHT -> placement: rank the peers
that run the operator and contract the best one that accepts. The executor reads the calc's
inputs through the same path, so a DAG is evaluated lazily, each step where it scores best, and
upstream steps advance only as fast as downstream readers pull.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import trio

from ccnp2p.compute.live import ComputeFailed, LiveResult
from ccnp2p.compute.protocol import (
    DEFAULT_LEASE_S,
    PROTOCOL_ID,
    WINDOW_BYTES,
    ComputeServer,
    Refused,
    remote_read,
)
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.namespaces import exec_key, result_key
from ccnp2p.errors import CcnError, UnknownOperator
from ccnp2p.net.errors import NetworkError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import PublicKey
from ccnp2p.objects.model import Calc, Operator, decode_object
from ccnp2p.objects.records import CapabilityRecord, ExecutorRecord, ResultRecord
from ccnp2p.sched.capability import Hardware, capability_record
from ccnp2p.sched.placement import Placement, Placer

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)

CAPABILITY_REFRESH_S: Final = 600.0


class ComputeService:
    def __init__(self, node: Node, registry: OperatorRegistry, hardware: Hardware) -> None:
        from ccnp2p.compute.executor import Executor

        self.node = node
        self.registry = registry
        self.hardware = hardware
        self.executor = Executor(node, registry)
        self.server = ComputeServer(self)
        self.placer = Placer(node)
        self._cap_seq = 0
        self.remote_reads = 0
        node.network.set_handler(PROTOCOL_ID, self.server.handle)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.executor.run)
            task_status.started()
            while True:
                await self.announce()
                await trio.sleep(CAPABILITY_REFRESH_S)

    # -- capability ----------------------------------------------------------------------------

    def runs(self, op: Operator) -> bool:
        try:
            self.registry.check(op)
        except UnknownOperator:
            return False
        return True

    def capability(self) -> CapabilityRecord:
        load = self.executor.load() * 1000 // max(self.hardware.cpu, 1)
        return capability_record(
            self.node.identity,
            [op.cid for op in self.registry.operators()],
            self.hardware,
            load=load,
            addrs=self.node.network.listen_addrs(),
            seq=self._cap_seq,
        )

    async def announce(self) -> None:
        """Publish the capability record and provide every operator CID we run."""
        from ccnp2p.dht.namespaces import cap_key

        self._cap_seq += 1
        node = self.node
        for op in self.registry.operators():
            await node.ablocks.put(op.cid, op.encode(), verify=False)
        try:
            await node.dht.put_value(cap_key(node.peer_id), self.capability().encode())
        except CcnError as exc:
            log.info("capability not published: %s", exc)
        for op in self.registry.operators():
            await node.provide(op.cid)

    # -- executor side -------------------------------------------------------------------------

    async def accept_contract(self, calc: Cid, lease_s: int, hint: tuple[bytes, ...]) -> LiveResult:
        if calc not in self.executor.running and not self.executor.can_accept():
            raise Refused("busy: no free execution slot")
        live = await self.executor.ensure(calc, hint)
        node = self.node
        rec = ExecutorRecord(
            calc=calc,
            executor=node.identity.public.to_protobuf(),
            lease_until=int(node.wall_time()) + lease_s,
            seq=int(node.wall_time() * 1000),
        ).signed_by(node.identity)
        node.spawn(self._put_quietly, exec_key(calc), rec.encode())
        return live

    async def _put_quietly(self, key: bytes, value: bytes) -> None:
        try:
            await self.node.dht.put_value(key, value)
        except CcnError as exc:
            log.info("record %r not published: %s", key[:40], exc)

    # -- reader side ---------------------------------------------------------------------------

    async def find_result(self, calc: Cid) -> Cid | None:
        known = self.executor.results.get(calc)
        if known is not None:
            return known
        try:
            value = await self.node.dht.get_value(result_key(calc))
        except CcnError:
            return None
        rec = decode_object(value, ResultRecord)
        assert isinstance(rec, ResultRecord)
        self.executor.results[calc] = rec.result
        return rec.result

    async def live_executor(self, calc: Cid) -> bytes | None:
        try:
            value = await self.node.dht.get_value(exec_key(calc))
        except CcnError:
            return None
        rec = decode_object(value, ExecutorRecord)
        assert isinstance(rec, ExecutorRecord)
        if rec.lease_until < self.node.wall_time():
            return None
        return PublicKey.from_protobuf(rec.executor).peer_id

    async def plan(self, calc_cid: Cid) -> Placement:
        calc = await self.node.get_object(calc_cid, Calc)
        assert isinstance(calc, Calc)
        op = await self.node.get_object(calc.op, Operator)
        assert isinstance(op, Operator)
        return await self.placer.place(calc_cid, calc, op)

    async def open(
        self, calc: Cid, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream ``calc``'s output from ``offset`` (computing it somewhere if needed)."""
        async for piece in _limit(self._open(calc, offset), length):
            yield piece

    async def _open(self, calc: Cid, offset: int) -> AsyncIterator[bytes]:
        result = await self.find_result(calc)
        if result is not None:
            async for piece in self.node.open_reader(result, offset):
                yield piece
            return
        live = self.executor.running.get(calc)
        if live is not None:
            async for piece in read_live(live, offset):
                yield piece
            return
        peer = await self.live_executor(calc)
        if peer is not None and peer != self.node.peer_id:
            started = False
            try:
                async for piece in self._remote(peer, calc, offset, contract=False):
                    started = True
                    yield piece
                return
            except (NetworkError, Refused, ComputeFailed, trio.TooSlowError) as exc:
                if started:
                    raise
                log.info("live executor %s unusable: %s", peer.hex()[:12], exc)
        async for piece in self._schedule(calc, offset):
            yield piece

    async def _schedule(self, calc: Cid, offset: int) -> AsyncIterator[bytes]:
        placement = await self.plan(calc)
        if not placement.ranking:
            op = placement.op
            raise UnknownOperator(f"no reachable peer runs operator {op.name} ({op.impl})")
        errors = []
        for choice in placement.ranking:
            if choice.peer_id == self.node.peer_id:
                live = await self.executor.ensure(calc)
                async for piece in read_live(live, offset):
                    yield piece
                return
            started = False
            try:
                async for piece in self._remote(choice.peer_id, calc, offset, contract=True):
                    started = True
                    yield piece
                return
            except (NetworkError, Refused, trio.TooSlowError) as exc:
                if started:
                    raise
                errors.append(f"{choice.peer_id.hex()[:12]}: {exc}")
        raise ComputeFailed(f"every candidate refused {calc}: {'; '.join(errors[:3])}")

    async def _remote(
        self, peer: bytes, calc: Cid, offset: int, *, contract: bool
    ) -> AsyncIterator[bytes]:
        self.remote_reads += 1
        done: list[Cid] = []
        async for piece in remote_read(
            self, peer, calc, offset, contract=contract, lease_s=DEFAULT_LEASE_S, on_done=done
        ):
            yield piece
        if done:
            self.executor.results[calc] = done[0]


async def read_live(live: LiveResult, offset: int) -> AsyncIterator[bytes]:
    """Read a local execution's output, granting credit one window ahead."""
    reader = object()
    pos = offset
    try:
        while True:
            await live.want(reader, pos + WINDOW_BYTES)
            data = await live.read_at(pos, WINDOW_BYTES)
            if not data:
                return
            pos += len(data)
            yield data
    finally:
        with trio.CancelScope(shield=True):
            await live.leave(reader)


async def _limit(pieces: AsyncIterator[bytes], length: int | None) -> AsyncIterator[bytes]:
    if length is None:
        async for piece in pieces:
            yield piece
        return
    left = length
    async for piece in pieces:
        if left <= 0:
            break
        yield piece[:left]
        left -= len(piece)
    closer = getattr(pieces, "aclose", None)
    if closer is not None:
        await closer()
