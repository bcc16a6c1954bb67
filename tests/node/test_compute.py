"""Calcs on a small in-memory network: laziness, placement, sharing, errors."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import trio

from ccnp2p.compute.registry import OperatorRegistry, operator_object
from ccnp2p.errors import CcnError, UnknownOperator
from ccnp2p.node import Node
from ccnp2p.objects.cid import Cid
from tests.node.conftest import CPU_BOX, GPU_BOX, memory_nodes
from tests.node.ops_for_tests import Digest, Join, Union, Upper


async def collect(it: object) -> bytes:
    out = bytearray()
    async for piece in it:  # type: ignore[attr-defined]
        out += piece
    return bytes(out)


def executions(nodes: list[Node]) -> list[int]:
    return [n.compute.executor.executions for n in nodes]


def corpus(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(rng.choice([b"alpha ", b"beta ", b"gamma\n"]) for _ in range(n))


async def test_calc_is_lazy_and_deterministic(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 3) as nodes:
        a = await nodes[1].add_bytes(b"hello")
        c1 = await nodes[1].calc("upper", [a.root])
        c2 = await nodes[2].calc("upper", [a.root])
        assert c1 == c2
        assert executions(nodes) == [0, 0, 0]
        b = await nodes[1].add_bytes(b"world")
        assert await nodes[1].calc("join", [a.root, b.root]) != await nodes[1].calc(
            "join", [b.root, a.root]
        )
        assert await nodes[1].calc("union", [a.root, b.root]) == await nodes[1].calc(
            "union", [b.root, a.root]
        )
        assert executions(nodes) == [0, 0, 0]


async def test_three_level_dag_matches_local_computation(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    text = corpus(60_000, 1)
    other = corpus(10_000, 2)
    hw = [CPU_BOX, CPU_BOX, GPU_BOX, CPU_BOX, CPU_BOX]
    async with memory_nodes(tmp_path, 5, hardware=hw) as nodes:
        holder, gpu, reader = nodes[1], nodes[2], nodes[4]
        t = await holder.add_bytes(text)
        o = await nodes[3].add_bytes(other)
        up = await reader.calc("upper", [t.root])
        joined = await reader.calc("join", [up, o.root], {"sep": "|"})
        digest = await reader.calc("digest", [joined])
        got = await collect(reader.read(digest))
        expected_join = text.upper() + b"|" + other
        expected = b"".join(
            hashlib.sha256(expected_join[i : i + 4096]).digest()
            for i in range(0, len(expected_join), 4096)
        )
        assert got == expected
        # upper ran next to its data, digest on the GPU node; each exactly once.
        assert holder.compute.executor.results.get(up) is not None
        assert up in holder.compute.executor.results and holder.compute.executor.executions >= 1
        assert digest in gpu.compute.executor.results
        assert sum(executions(nodes)) == 3
        # Read again from another node: served from the result record, nothing recomputed.
        assert await collect(nodes[0].read(digest)) == expected
        assert sum(executions(nodes)) == 3


async def test_ten_concurrent_readers_one_execution(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    data = corpus(200_000, 3)
    async with memory_nodes(tmp_path, 11) as nodes:
        src = await nodes[0].add_bytes(data)
        calc = await nodes[0].calc("upper", [src.root])
        results: dict[int, bytes] = {}

        async def read(i: int) -> None:
            results[i] = await collect(nodes[i].read(calc))

        async with trio.open_nursery() as nursery:
            for i in range(1, 11):
                nursery.start_soon(read, i)
        assert all(r == data.upper() for r in results.values()) and len(results) == 10
        assert sum(executions(nodes)) == 1, str(executions(nodes))


async def test_cached_result_whose_holders_died_is_computed_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    data = corpus(50_000, 4)
    async with memory_nodes(tmp_path, 4) as nodes:
        src = await nodes[0].add_bytes(data)
        await nodes[2].add_bytes(data)  # a second holder of the input
        calc = await nodes[1].calc("upper", [src.root])
        # A read from an offset does not copy the result: only its executor holds it.
        assert await collect(nodes[1].read(calc, 10)) == data.upper()[10:]
        (executor,) = [n for n in nodes if n.compute.executor.executions]
        assert executor in (nodes[0], nodes[2])
        await trio.sleep(10)  # the executor publishes its result record after the last byte
        executor.network.hub.crash(executor.peer_id)  # type: ignore[attr-defined]
        # The result record still names the result, but nobody serves it: compute it again.
        assert await nodes[3].compute.find_result(calc) is not None
        assert await collect(nodes[3].read(calc)) == data.upper()
        assert sum(executions(nodes)) == 2


async def test_unknown_operator_and_hash_mismatch(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    class Upper2(Upper):
        """Same impl id, different code: its hash differs."""

    async with memory_nodes(tmp_path, 3) as nodes:
        src = await nodes[1].add_bytes(b"abc")
        with pytest.raises(UnknownOperator, match="unknown operator"):
            await nodes[1].calc("no-such-op", [src.root])
        # An operator object whose code hash matches nobody's installed code.
        alien = operator_object(Upper2())
        registry = OperatorRegistry([Upper2()])
        assert alien.cid in registry
        await nodes[1].ablocks.put(alien.cid, alien.encode())
        calc = await nodes[1].calc(alien.cid, [src.root])
        with pytest.raises(UnknownOperator):
            await collect(nodes[2].read(calc))


async def test_missing_input_names_the_cid(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 3) as nodes:
        ghost = Cid.for_raw(b"never stored anywhere")
        calc = await nodes[1].calc("upper", [ghost])
        with pytest.raises(CcnError, match=str(ghost)):
            await collect(nodes[2].read(calc))


def test_test_operators_have_distinct_cids() -> None:
    cids = {operator_object(op()).cid for op in (Upper, Join, Digest, Union)}
    assert len(cids) == 4
