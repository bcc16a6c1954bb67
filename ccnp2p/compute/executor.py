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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import trio

from ccnp2p.compute.api import ParamError, Resume
from ccnp2p.compute.inputs import StreamInput
from ccnp2p.compute.live import LiveResult, LiveState
from ccnp2p.compute.registry import OperatorRegistry
from ccnp2p.dht.namespaces import result_key
from ccnp2p.errors import CcnError, DecodeError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import Calc, Operator
from ccnp2p.objects.records import ResultRecord

if TYPE_CHECKING:
    from ccnp2p.node import Node

log = logging.getLogger(__name__)

KEEP_FINISHED_S: Final = 60.0
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


@dataclass(frozen=True, slots=True)
class Job:
    calc_cid: Cid
    calc: Calc
    op: Operator


class _Context:
    def __init__(self, resume: Resume | None) -> None:
        self._resume = resume
        self.steps = 0

    @property
    def resume(self) -> Resume | None:
        return self._resume

    async def step_done(self, step: int, state: Any) -> None:
        self.steps = step
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

    async def ensure(self, calc_cid: Cid, hint: tuple[bytes, ...] = ()) -> LiveResult:
        """The live execution of ``calc_cid`` here, starting it if needed (once per calc)."""
        live = self.running.get(calc_cid)
        if live is not None and live.state is not LiveState.FAILED:
            return live
        job = await self.load_job(calc_cid, hint)
        live = self.running.get(calc_cid)  # another reader may have started it meanwhile
        if live is not None and live.state is not LiveState.FAILED:
            return live
        live = LiveResult(calc_cid, self.node.ablocks)
        self.running[calc_cid] = live
        assert self._nursery is not None, "Executor.run is not running"
        self._nursery.start_soon(self._execute, job, live, hint)
        return live

    async def _execute(self, job: Job, live: LiveResult, hint: tuple[bytes, ...]) -> None:
        impl = self.registry.check(job.op)
        inputs: list[StreamInput] = []
        self.executions += 1
        info = ExecutionInfo(job.calc_cid, f"{job.op.name}@{job.op.version}", trio.current_time())
        info.requested_by = hint[0].hex() if hint else ""
        self.history.append(info)
        log.info("executing %s (%s) on %d inputs", job.calc_cid, job.op.name, len(job.calc.inputs))
        try:
            async with self._slots:
                for cid in job.calc.inputs:
                    size = await self.node.size_hint(cid)
                    inputs.append(StreamInput(self.node.read(cid, hint=hint), size))
                await impl.run(list(inputs), dict(job.calc.params), live, _Context(None))
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
        self.results[job.calc_cid] = result
        info.finished = trio.current_time()
        info.output_bytes = live.produced
        info.result = result
        if job.op.deterministic:
            await self._announce(job.calc_cid, result)
        await trio.sleep(KEEP_FINISHED_S)
        if self.running.get(job.calc_cid) is live:
            del self.running[job.calc_cid]

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
