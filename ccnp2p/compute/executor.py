"""Runs calcs on this node: one execution per calc, shared by every reader.

The executor resolves a calc's operator to installed code (by implementation id and code hash),
opens each input through the node's universal reader (so a calc input is itself resolved lazily,
locally or elsewhere), runs the operator into a :class:`LiveResult`, then stores the result tree,
records ``calc -> result`` locally, publishes a signed result record in the DHT and provides the
result CID.

Caching policy: every result of a *deterministic* operator is kept (its blocks are unpinned, so
garbage collection reclaims them under quota pressure) and announced, because recomputing costs
more than storing in every case we ship; non-deterministic results are streamed to their readers
and recorded locally but never announced as *the* result of the calc.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio

from ccnp2p.compute.api import ParamError, Resume
from ccnp2p.compute.checkpoint import (
    KEEP_CHECKPOINTS,
    CheckpointNote,
    load_checkpoint,
    save_checkpoint,
)
from ccnp2p.compute.inputs import StreamInput
from ccnp2p.compute.live import LiveResult, LiveState
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.namespaces import ckpt_key, result_key
from ccnp2p.errors import CcnError, DecodeError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Calc, Operator
from ccnp2p.objects.records import CheckpointRecord, ResultRecord

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)

KEEP_FINISHED_S: Final = 60.0
MAX_STEP_ENDS: Final = 100_000
HISTORY: Final = 1000
MAX_RUNNING: Final = 64


@dataclass(slots=True)
class ExecutionInfo:
    """One execution on this node, as ``ccnp2p executions`` reports it."""

    calc: Cid
    op: str
    started: float
    finished: float | None = None
    output_bytes: int = 0
    result: Cid | None = None
    error: str = ""
    requested_by: str = ""
    resumed_from_step: int | None = None
    steps_run: int = 0
    recomputed_steps: int = 0  # steps redone that a reader already had (after a failover)


@dataclass(frozen=True, slots=True)
class Job:
    calc_cid: Cid
    calc: Calc
    op: Operator


class _Context:
    """The run context of one execution: counts steps and takes checkpoints."""

    def __init__(
        self, executor: Executor, job: Job, live: LiveResult, resume: Resume | None, every: int
    ) -> None:
        self._executor = executor
        self._job = job
        self._live = live
        self._resume = resume
        self._every = every
        self.steps_run = 0
        self.step_ends: list[tuple[int, int]] = []  # (step, output offset after it), bounded

    @property
    def resume(self) -> Resume | None:
        return self._resume

    async def step_done(self, step: int, state: Callable[[], bytes]) -> None:
        self.steps_run += 1
        self._live.step = step
        if len(self.step_ends) < MAX_STEP_ENDS:
            self.step_ends.append((step, self._live.produced))
        if self._every and (step + 1) % self._every == 0:
            snapshot = state()  # now: the operator may change its state once we return
            await self._executor.checkpoint(self._job, self._live, step, snapshot)
        await trio.lowlevel.checkpoint()


class Executor:
    """Executions on this node. ``run`` must be started in the node's nursery."""

    def __init__(self, node: Node, registry: OperatorRegistry) -> None:
        self.node = node
        self.registry = registry
        self.running: dict[Cid, LiveResult] = {}
        self.results: dict[Cid, Cid] = {}  # calc -> result (executed or learned here)
        self.executions = 0
        self.failures = 0
        self._nursery: trio.Nursery | None = None
        self._slots = trio.Semaphore(MAX_RUNNING)
        self.history: deque[ExecutionInfo] = deque(maxlen=HISTORY)
        self.checkpoints_taken = 0
        self.checkpoint_every: int | None = None  # overrides the operators' interval if set

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def load(self) -> int:
        return len([r for r in self.running.values() if r.state is LiveState.RUNNING])

    async def load_job(self, calc_cid: Cid, hint: tuple[bytes, ...] = ()) -> Job:
        """Fetch and check the calc and its operator; raises if this node cannot run it."""
        calc = await self.node.get_object(calc_cid, Calc, hint)
        assert isinstance(calc, Calc)
        op = await self.node.get_object(calc.op, Operator, hint)
        assert isinstance(op, Operator)
        impl = self.registry.check(op)
        impl.check_params(dict(calc.params), len(calc.inputs))
        return Job(calc_cid, calc, op)

    def can_accept(self) -> bool:
        return self._slots.value > 0

    async def ensure(
        self,
        calc_cid: Cid,
        hint: tuple[bytes, ...] = (),
        resume: Cid | None = None,
        reader_offset: int = 0,
    ) -> LiveResult:
        """The live execution of ``calc_cid`` here, starting it if needed (once per calc).

        ``resume`` names a checkpoint to continue from instead of step 0 (fetched from the
        ``hint`` peers or providers); ``reader_offset`` is where the requesting reader is, to
        count the steps redone for it.
        """
        live = self.running.get(calc_cid)
        if live is not None and live.state is not LiveState.FAILED:
            return live
        job = await self.load_job(calc_cid, hint)
        restored = None
        if resume is not None and job.op.seek:
            restored = await load_checkpoint(self.node, resume, hint)
            if restored[0].calc != calc_cid:
                raise DecodeError(f"checkpoint {resume} belongs to another calc")
        live = self.running.get(calc_cid)  # another reader may have started it meanwhile
        if live is not None and live.state is not LiveState.FAILED:
            return live
        live = LiveResult(calc_cid, self.node.ablocks)
        resumed: Resume | None = None
        if restored is not None:
            state, snapshot, chunks = restored
            live.restore(chunks, state.tail)
            live.step = state.step
            resumed = Resume(state.step, snapshot)
            peers = hint
            live.fetch = lambda cid: self.node.exchange.get_block(cid, peers)
        self.running[calc_cid] = live
        assert self._nursery is not None, "Executor.run is not running"
        self._nursery.start_soon(self._execute, job, live, hint, resumed, reader_offset)
        return live

    async def checkpoint(self, job: Job, live: LiveResult, step: int, snapshot: bytes) -> None:
        """Store a checkpoint, tell live readers, and announce it in the DHT (in background)."""
        node = self.node
        prev = live.checkpoints[-1].state if live.checkpoints else None
        _, cid = await save_checkpoint(
            node, job.calc_cid, step, snapshot, live.chunks, live.tail, prev
        )
        note = CheckpointNote(step, live.produced, cid)
        if len(live.checkpoints) >= KEEP_CHECKPOINTS:
            del live.checkpoints[0]
        await live.note_checkpoint(note)
        self.checkpoints_taken += 1
        record = CheckpointRecord(
            calc=job.calc_cid,
            step=step,
            offset=note.offset,
            state=cid,
            executor=node.identity.public.to_protobuf(),
            seq=int(node.wall_time() * 1000),
        ).signed_by(node.identity)
        node.spawn(self._publish_checkpoint, record)

    async def _publish_checkpoint(self, record: CheckpointRecord) -> None:
        try:
            await self.node.dht.put_value(ckpt_key(record.calc), record.encode())
        except CcnError as exc:
            log.info("checkpoint record for %s not published: %s", record.calc, exc)
        await self.node.provide(record.state)

    def every_for(self, job: Job) -> int:
        if not job.op.seek:
            return 0
        if self.checkpoint_every is not None:
            return self.checkpoint_every
        impl = self.registry.check(job.op)
        return impl.spec.checkpoint_every

    async def _execute(
        self,
        job: Job,
        live: LiveResult,
        hint: tuple[bytes, ...],
        resume: Resume | None = None,
        reader_offset: int = 0,
    ) -> None:
        impl = self.registry.check(job.op)
        inputs: list[StreamInput] = []
        self.executions += 1
        info = ExecutionInfo(job.calc_cid, f"{job.op.name}@{job.op.version}", trio.current_time())
        info.requested_by = hint[0].hex() if hint else ""
        info.resumed_from_step = resume.step if resume is not None else None
        self.history.append(info)
        ctx = _Context(self, job, live, resume, self.every_for(job))
        log.info("executing %s (%s) on %d inputs", job.calc_cid, job.op.name, len(job.calc.inputs))
        try:
            async with self._slots:
                for cid in job.calc.inputs:
                    size = await self.node.size_hint(cid, estimate=False)
                    inputs.append(StreamInput(self.node.read(cid, hint=hint), size))
                await impl.run(list(inputs), dict(job.calc.params), live, ctx)
                result = await live.finish()
        except (CcnError, ParamError, DecodeError) as exc:
            self.failures += 1
            log.warning("calc %s failed: %s", job.calc_cid, exc)
            await live.fail(f"{exc.code}: {exc}")
            info.error = str(exc)
            return
        except Exception as exc:  # an operator bug must not take the node down
            self.failures += 1
            log.exception("operator %s crashed on %s", job.op.name, job.calc_cid)
            await live.fail(f"operator-crashed: {type(exc).__name__}: {exc}")
            info.error = f"operator crashed: {exc}"
            return
        finally:
            for inp in inputs:
                with trio.CancelScope(shield=True):
                    await inp.aclose()
        info.steps_run = ctx.steps_run
        if resume is not None:
            info.recomputed_steps = sum(1 for _, end in ctx.step_ends if end <= reader_offset)
        self.results[job.calc_cid] = result
        info.finished = trio.current_time()
        info.output_bytes = live.produced
        info.result = result
        if job.op.deterministic and await self._holds_all(live):
            await self._announce(job.calc_cid, result)
        await trio.sleep(KEEP_FINISHED_S)
        if self.running.get(job.calc_cid) is live:
            del self.running[job.calc_cid]

    async def _holds_all(self, live: LiveResult) -> bool:
        """After a resume the prefix chunks were written elsewhere: copy them before announcing
        the result, so whoever reads it from us gets all of it."""
        for cid, _ in live.chunks:
            if not self.node.blocks.has(cid):
                if live.fetch is None:
                    return False
                try:
                    await self.node.ablocks.put(cid, await live.fetch(cid))
                except CcnError as exc:
                    log.info("result of %s incomplete here (%s); not announced", live.calc, exc)
                    return False
        return True

    async def _announce(self, calc_cid: Cid, result: Cid) -> None:
        node = self.node
        record = ResultRecord(
            calc=calc_cid, result=result, executor=node.identity.public.to_protobuf(), seq=1
        ).signed_by(node.identity)
        try:
            await node.dht.put_value(result_key(calc_cid), record.encode())
        except CcnError as exc:
            log.warning("could not publish result record for %s: %s", calc_cid, exc)
        await node.provide(result)
