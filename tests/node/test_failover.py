"""Seek, checkpoints and failover of seekable calcs on the in-memory network."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccnp2p.compute.api import OperatorImpl
from ccnp2p.compute.local import run_local
from ccnp2p.errors import CcnError
from ccnp2p.node import Node
from tests.node.conftest import memory_nodes
from tests.node.ops_for_tests import Chain, test_operators

STEPS, SIZE, EVERY = 40, 100_000, 5  # 4 MB out: more than a 1 MiB credit window


def no_chain_on_0(i: int) -> list[OperatorImpl]:
    return [op for op in test_operators() if i or not isinstance(op, Chain)]


async def expected() -> bytes:
    return await run_local(Chain(), [], {"steps": STEPS, "size": SIZE})


def executor_of(nodes: list[Node], calc: object) -> Node:
    running = [n for n in nodes if calc in n.compute.executor.running]
    assert len(running) == 1, [n.compute.executor.executions for n in nodes]
    return running[0]


async def read_killing(
    nodes: list[Node], reader: Node, calc: object, kill_at: list[int], silent: bool = True
) -> bytes:
    """Read ``calc`` on ``reader``; each time the output reaches kill_at[i] bytes, crash the
    node executing it then."""
    hub = reader.network.hub  # type: ignore[attr-defined]
    out = bytearray()
    kills = sorted(kill_at)
    dead: set[bytes] = set()
    async for piece in reader.read(calc):  # type: ignore[arg-type]
        out += piece
        while kills and len(out) >= kills[0]:
            kills.pop(0)
            alive = [n for n in nodes if n is not reader and n.peer_id not in dead]
            victim = executor_of(alive, calc)
            hub.crash(victim.peer_id, silent=silent)
            dead.add(victim.peer_id)
    return bytes(out)


async def setup(nodes: list[Node]) -> tuple[Node, object]:
    for n in nodes:
        n.compute.read_timeout_s = 3.0
    reader = nodes[0]  # it does not run chain (see no_chain_on_0): executors are other nodes
    calc = await reader.calc(
        next(op.cid for op in nodes[1].compute.registry.operators() if op.name == "chain"),
        [],
        {"steps": STEPS, "size": SIZE},
    )
    return reader, calc


async def test_uninterrupted_read_matches_local(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 4, ops=no_chain_on_0) as nodes:
        reader, calc = await setup(nodes)
        got = await read_killing(nodes, reader, calc, [])
        assert got == await expected()
        assert sum(n.compute.executor.checkpoints_taken for n in nodes) == STEPS // EVERY


@settings(max_examples=6, suppress_health_check=list(HealthCheck), deadline=None)
@given(kill_step=st.integers(min_value=1, max_value=STEPS - 2))
def test_killing_the_executor_at_any_step_gives_identical_bytes(
    tmp_path_factory: pytest.TempPathFactory, kill_step: int
) -> None:
    async def main() -> None:
        tmp = tmp_path_factory.mktemp("kill")
        async with memory_nodes(tmp, 4, ops=no_chain_on_0) as nodes:
            reader, calc = await setup(nodes)
            got = await read_killing(nodes, reader, calc, [kill_step * SIZE + 1])
            assert got == await expected()
            failover = reader.compute.failovers[-1]
            assert failover.offset >= kill_step * SIZE
            resumed = [
                e
                for n in nodes
                for e in n.compute.executor.history
                if e.resumed_from_step is not None or e.steps_run < STEPS
            ]
            # Recomputed work is bounded by the checkpoint interval.
            assert all(e.recomputed_steps <= EVERY for e in resumed)
            assert reader.compute.executor.results[calc] is not None  # type: ignore[index]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_two_failures_in_a_row(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 5, ops=no_chain_on_0) as nodes:
        reader, calc = await setup(nodes)
        got = await read_killing(nodes, reader, calc, [8 * SIZE + 5, 21 * SIZE])
        assert got == await expected()
        assert len(reader.compute.failovers) == 2


async def test_no_capable_peer_left_is_a_clear_error(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 2, ops=no_chain_on_0) as nodes:
        reader, calc = await setup(nodes)
        with pytest.raises(CcnError, match="no capable peer left"):
            await read_killing(nodes, reader, calc, [3 * SIZE])


async def test_seek_starts_from_the_nearest_checkpoint(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 4, ops=no_chain_on_0) as nodes:
        reader, calc = await setup(nodes)
        full = await expected()
        # A first reader that stops early leaves checkpoints behind...
        async with trio.open_nursery() as nursery:

            async def partial() -> None:
                got = 0
                async for piece in reader.read(calc):  # type: ignore[arg-type]
                    got += len(piece)
                    if got > 23 * SIZE:
                        break

            nursery.start_soon(partial)
        executor = executor_of(nodes[1:], calc)
        nodes[0].network.hub.crash(executor.peer_id, silent=True)  # type: ignore[attr-defined]
        # ...and a seek to step 22 on another node resumes at step 20's checkpoint.
        other = nodes[3] if executor is not nodes[3] else nodes[2]
        other.compute.read_timeout_s = 3.0
        offset = 22 * SIZE + 7
        out = bytearray()
        async for piece in other.read(calc, offset):  # type: ignore[arg-type]
            out += piece
        assert bytes(out) == full[offset:]
        resumed = [
            e for n in nodes for e in n.compute.executor.history if e.resumed_from_step is not None
        ]
        assert resumed and resumed[-1].resumed_from_step == 19
        assert resumed[-1].steps_run == STEPS - 20
