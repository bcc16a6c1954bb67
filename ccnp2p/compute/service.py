"""The compute side of a node: contracts, executions, and the lazy read path for calcs.

Reading a calc (DESIGN.md §5): its result record (here, then in the DHT) -> a live execution
here -> a live executor named by an executor record in the DHT -> placement: rank the peers
that run the operator and contract the best one that accepts. The executor reads the calc's
inputs through the same path, so a DAG is evaluated lazily, each step where it scores best, and
upstream steps advance only as fast as downstream readers pull.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

import trio

from ccnp2p.compute.checkpoint import (
    KEEP_CHECKPOINTS,
    CheckpointNote,
    CheckpointState,
    load_checkpoint,
)
from ccnp2p.compute.live import ComputeFailed, LiveResult
from ccnp2p.compute.protocol import (
    DEFAULT_LEASE_S,
    PROTOCOL_ID,
    READ_TIMEOUT_S,
    WINDOW_BYTES,
    ComputeServer,
    Refused,
    ResultCopy,
    remote_read,
)
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.namespaces import ckpt_key, exec_key, result_key
from ccnp2p.errors import CcnError, NotFound, RemoteError, UnknownOperator
from ccnp2p.net.errors import NetworkError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import PublicKey
from ccnp2p.objects.model import Calc, Operator, decode_object
from ccnp2p.objects.records import (
    CapabilityRecord,
    CheckpointRecord,
    ExecutorRecord,
    ResultRecord,
)
from ccnp2p.sched.capability import Hardware, capability_record
from ccnp2p.sched.placement import Placement, Placer
from ccnp2p.sched.scoring import rank
from ccnp2p.store.files import tree_over

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)

CAPABILITY_REFRESH_S: Final = 600.0
ANNOUNCE_RETRY_S: Final = 5.0
PEER_WAIT_S: Final = 1.0
MAX_FAILOVERS: Final = 8
MAX_CALCS_TRACKED: Final = 1024


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
        self.read_timeout_s = READ_TIMEOUT_S
        self.checkpoints: dict[Cid, list[CheckpointNote]] = {}
        self.failovers: deque[Failover] = deque(maxlen=1000)
        self._placements: dict[Cid, Placement] = {}
        self.published: CapabilityRecord | None = None
        node.network.set_handler(PROTOCOL_ID, self.server.handle)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.executor.run)
            await self.store_operators()  # local data: calcs can name them before we have peers
            task_status.started()
            if not self.registry.operators():
                return  # a node that runs no operators has nothing to announce
            while not len(self.node.dht.table):
                await trio.sleep(PEER_WAIT_S)  # nobody to announce to yet
            retry = ANNOUNCE_RETRY_S
            while True:
                if await self.announce():
                    retry = ANNOUNCE_RETRY_S
                    await trio.sleep(CAPABILITY_REFRESH_S)
                else:
                    # Announced before the routing table knew the record's closest peers (a
                    # node that just joined): a reader would find no capability record and
                    # rank us on guesses. Try again soon, backing off.
                    await trio.sleep(retry)
                    retry = min(retry * 2, CAPABILITY_REFRESH_S)

    # -- capability ----------------------------------------------------------------------------

    def runs(self, op: Operator) -> bool:
        try:
            self.registry.check(op)
        except UnknownOperator:
            return False
        return True

    def ranked_capability(self) -> CapabilityRecord:
        """What placement ranks this node by: the record it published, as every other peer
        sees it. Its live load would count the very execution that is placing its own inputs
        (it waits for them, it does not compete with them) and would rank us on fresher data
        than the others, pushing steps off the node that holds their parent's data."""
        return self.published if self.published is not None else self.capability()

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

    async def store_operators(self) -> None:
        """Keep the objects of the operators we run in our blockstore (peers fetch them)."""
        for op in self.registry.operators():
            await self.node.ablocks.put(op.cid, op.encode(), verify=False)

    async def announce(self) -> bool:
        """Publish the capability record and provide every operator CID we run.

        Returns whether the record reached enough peers: at least one, and half of the ``k``
        closest (or of the whole routing table while it is smaller than that).
        """
        from ccnp2p.dht.namespaces import cap_key

        self._cap_seq += 1
        node = self.node
        await self.store_operators()
        took = 0
        try:
            record = self.capability()
            self.published = record
            took = await node.dht.put_value(cap_key(node.peer_id), record.encode())
        except CcnError as exc:
            log.info("capability not published: %s", exc)
        for op in self.registry.operators():
            await node.provide(op.cid)
        want = max(1, min(node.dht.config.k, len(node.dht.table)) // 2)
        return took >= want

    # -- executor side -------------------------------------------------------------------------

    async def accept_contract(
        self,
        calc: Cid,
        lease_s: int,
        hint: tuple[bytes, ...],
        resume: Cid | None = None,
        reader_offset: int = 0,
    ) -> LiveResult:
        if calc not in self.executor.running and not self.executor.can_accept():
            raise Refused("busy: no free execution slot")
        live = await self.executor.ensure(calc, hint, resume, reader_offset)
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

    async def plan(self, calc_cid: Cid, exclude: frozenset[bytes] = frozenset()) -> Placement:
        calc = await self.node.get_object(calc_cid, Calc)
        assert isinstance(calc, Calc)
        op = await self.node.get_object(calc.op, Operator)
        assert isinstance(op, Operator)
        return await self.placer.place(calc_cid, calc, op, exclude=exclude)

    async def open(
        self, calc: Cid, offset: int = 0, length: int | None = None
    ) -> AsyncIterator[bytes]:
        """Stream ``calc``'s output from ``offset`` (computing it somewhere if needed)."""
        async for piece in _limit(self._open(calc, offset), length):
            yield piece

    async def _open(self, calc: Cid, offset: int) -> AsyncIterator[bytes]:
        result = await self.find_result(calc)
        if result is not None:
            pos = offset
            try:
                async for piece in self.node.open_reader(result, offset):
                    pos += len(piece)
                    yield piece
                return
            except (NotFound, NetworkError) as exc:
                # Nobody serves the cached result any more (its holders died or collected it):
                # the calc CID still names the computation, so compute it again, from where
                # we are when its output is deterministic.
                if pos > offset and not await self._deterministic(calc):
                    raise
                log.warning("result %s of %s unavailable (%s): recomputing", result, calc, exc)
                self.executor.results.pop(calc, None)
                offset = pos
        live = self.executor.running.get(calc)
        if live is not None:
            async for piece in read_live(live, offset):
                yield piece
            return
        async for piece in self._read_with_failover(calc, offset):
            yield piece

    async def _deterministic(self, calc: Cid) -> bool:
        obj = await self.node.get_object(calc, Calc)
        assert isinstance(obj, Calc)
        op = await self.node.get_object(obj.op, Operator)
        assert isinstance(op, Operator)
        return op.deterministic

    async def _read_with_failover(self, calc: Cid, offset: int) -> AsyncIterator[bytes]:
        """Read from a live executor, or contract one; when an executor dies, resume on the next
        candidate from the newest checkpoint at or before our position (DESIGN.md §5.4)."""
        pos = offset
        excluded: set[bytes] = set()
        copy = ResultCopy(self) if offset == 0 else None
        peer = await self.live_executor(calc)
        contract = False
        resume: Cid | None = None
        while True:
            if peer is None or peer == self.node.peer_id:
                peer, resume = await self._choose(calc, pos, excluded)
                contract = True
                if peer == self.node.peer_id:
                    live = await self.executor.ensure(calc, (), resume, pos)
                    async for piece in read_live(live, pos):
                        pos += len(piece)
                        yield piece
                    return
            done: list[Cid] = []
            try:
                async for piece in self._remote(
                    peer, calc, pos, contract=contract, resume=resume, copy=copy, done=done
                ):
                    pos += len(piece)
                    yield piece
                if done:
                    await self._learned(calc, done[0], copy)
                return
            except Refused as exc:
                log.info("%s refused %s: %s", peer.hex()[:12], calc, exc)
            except (NetworkError, RemoteError, trio.TooSlowError) as exc:
                self.failovers.append(Failover(calc, peer, pos, trio.current_time(), str(exc)))
                log.warning("executor %s of %s lost at %d: %s", peer.hex()[:12], calc, pos, exc)
            excluded.add(peer)
            if len(excluded) > MAX_FAILOVERS:
                raise ComputeFailed(f"gave up on {calc} after {len(excluded)} executors failed")
            peer = None

    async def _choose(self, calc: Cid, pos: int, excluded: set[bytes]) -> tuple[bytes, Cid | None]:
        """The best candidate not excluded, and the checkpoint to resume from (if any).

        A failover re-ranks the candidates this reader already found (without the failed
        ones) instead of repeating the DHT lookups: recovery costs a contract, not a search.
        """
        cached = self._placements.get(calc)
        if cached is not None:
            cands = [c for c in cached.candidates if c.peer_id not in excluded]
            placement = replace(cached, ranking=tuple(rank(cached.need, cands)))
        else:
            placement = await self.plan(calc, frozenset(excluded))
            self._placements[calc] = placement
            while len(self._placements) > MAX_CALCS_TRACKED:
                del self._placements[next(iter(self._placements))]
        ranking = list(placement.ranking)
        if not ranking:
            op = placement.op
            if excluded:
                raise ComputeFailed(
                    f"no capable peer left for {calc} ({op.name}): {len(excluded)} excluded"
                )
            raise UnknownOperator(f"no reachable peer runs operator {op.name} ({op.impl})")
        resume = None
        if placement.op.seek:
            note = await self.best_checkpoint(calc, pos)
            resume = note.state if note is not None else None
        return ranking[0].peer_id, resume

    async def best_checkpoint(self, calc: Cid, pos: int) -> CheckpointNote | None:
        """The newest checkpoint at or before ``pos`` that can actually be had: ours (copied
        from live streams) or the one the DHT names, fetched now from whoever provides it. A
        checkpoint that cannot be fetched (its only holder died) falls back to an older one,
        and with none the calc restarts from step 0."""
        notes = [n for n in self.checkpoints.get(calc, []) if n.offset <= pos]
        held = [n for n in notes if self.node.blocks.has(n.state)]
        if held:  # copied from the live stream: no need to ask the network
            return max(held, key=lambda n: (n.offset, n.step))
        try:
            rec = decode_object(await self.node.dht.get_value(ckpt_key(calc)), CheckpointRecord)
            assert isinstance(rec, CheckpointRecord)
            older = await self._walk_back(calc, rec.state, pos)
            if older is not None and older not in notes:
                notes.append(older)
        except CcnError:
            pass
        for note in sorted(notes, key=lambda n: (n.offset, n.step), reverse=True):
            with trio.move_on_after(self.read_timeout_s * 2):
                try:
                    holders = await self.node.find_providers(note.state)
                    hint = tuple(p.peer_id for p in holders if p.peer_id != self.node.peer_id)
                    await load_checkpoint(self.node, note.state, hint)
                    return note  # we hold it now, so the next executor can fetch it from us
                except CcnError as exc:
                    log.info("checkpoint %s unavailable: %s", note.state, exc)
        return None

    async def _walk_back(self, calc: Cid, state: Cid, pos: int) -> CheckpointNote | None:
        """From the newest checkpoint, follow ``prev`` links to the first at or before pos."""
        cid: Cid | None = state
        for _ in range(KEEP_CHECKPOINTS):
            if cid is None:
                return None
            obj = await self.node.get_object(cid, CheckpointState)
            assert isinstance(obj, CheckpointState)
            if obj.calc != calc:
                return None
            if obj.offset <= pos:
                return CheckpointNote(obj.step, obj.offset, cid)
            cid = obj.prev
        return None

    async def note_checkpoint(self, calc: Cid, note: CheckpointNote, peer: bytes) -> bool:
        """A live executor took a checkpoint: copy it (so it outlives the executor), remember
        it, and announce that we hold it. Returns False if it could not be copied within twice
        the read timeout (the caller then treats the executor as gone)."""
        notes = self.checkpoints.setdefault(calc, [])
        if note in notes:
            return True
        state: CheckpointState | None = None
        with trio.move_on_after(self.read_timeout_s * 2):
            try:
                state, _, _ = await load_checkpoint(self.node, note.state, (peer,))
            except CcnError as exc:
                log.info("could not copy checkpoint %s: %s", note.state, exc)
        if state is None:
            return False
        notes.append(note)
        del notes[:-KEEP_CHECKPOINTS]
        while len(self.checkpoints) > MAX_CALCS_TRACKED:
            del self.checkpoints[next(iter(self.checkpoints))]
        for cid in (note.state, *state.refs()):
            self.node.spawn(self.node.provide, cid)
        return True

    async def store_tree(self, chunks: list[tuple[Cid, int]]) -> Cid:
        """Build and store the file tree over ``chunks``; returns its root."""
        blocks = self.node.blocks
        return await self.node.ablocks.run(lambda: tree_over(chunks, blocks)[0])

    async def _learned(self, calc: Cid, result: Cid, copy: ResultCopy | None) -> None:
        self.executor.results[calc] = result
        if copy is not None and copy.complete == result:
            await self.node.provide(result)  # we hold (and checked) all of it: serve it too

    async def _remote(
        self,
        peer: bytes,
        calc: Cid,
        offset: int,
        *,
        contract: bool,
        resume: Cid | None,
        copy: ResultCopy | None,
        done: list[Cid],
    ) -> AsyncIterator[bytes]:
        self.remote_reads += 1
        async for piece in remote_read(
            self,
            peer,
            calc,
            offset,
            contract=contract,
            lease_s=DEFAULT_LEASE_S,
            resume=resume,
            copy=copy,
            on_done=done,
        ):
            yield piece


@dataclass(frozen=True, slots=True)
class Failover:
    """A reader lost its executor (reported by ``ccnp2p`` and checked by tests)."""

    calc: Cid
    peer: bytes
    offset: int
    at: float
    reason: str


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
