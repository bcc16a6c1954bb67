"""Small operators used by the compute tests (independent of the built-in operator set)."""

from __future__ import annotations

import hashlib
from typing import Any

import trio

from ccnp2p.compute.api import InputStream, OperatorImpl, OperatorSpec, OutputStream, RunContext


class Upper(OperatorImpl):
    """Source affinity: upper-cases its input, streaming."""

    spec = OperatorSpec(name="upper", version="1", affinity="source")
    impl_id = "test:upper@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        while piece := await inputs[0].read(65536):
            await out.write(piece.upper())


class Join(OperatorImpl):
    """Concatenates its inputs with a separator (param ``sep``)."""

    spec = OperatorSpec(name="join", version="1", affinity="source", min_inputs=1, max_inputs=8)
    impl_id = "test:join@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        sep = str(params.get("sep", "")).encode()
        for i, inp in enumerate(inputs):
            if i:
                await out.write(sep)
            while piece := await inp.read(65536):
                await out.write(piece)


class Digest(OperatorImpl):
    """Result affinity, wants a GPU: sha256 of every 4 KiB block of its input (32 B each)."""

    spec = OperatorSpec(
        name="digest", version="1", affinity="result", resources={"gpu_memory": 1 << 30}
    )
    impl_id = "test:digest@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        while block := await inputs[0].read_exactly(4096):
            await out.write(hashlib.sha256(block).digest())


class Union(OperatorImpl):
    """Commutative: sorted concatenation of its inputs' bytes."""

    spec = OperatorSpec(name="union", version="1", commutative=True, min_inputs=1, max_inputs=8)
    impl_id = "test:union@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        parts = sorted([await i.read_all(1 << 20) for i in inputs])
        await out.write(b"".join(parts))


class Chain(OperatorImpl):
    """Seekable, no inputs: step i writes ``size`` bytes derived from a hash chain; its state is
    the chain's current hash. One virtual second per step, so tests can kill it mid-way."""

    spec = OperatorSpec(
        name="chain",
        version="1",
        affinity="result",
        seek=True,
        min_inputs=0,
        max_inputs=0,
        checkpoint_every=5,
    )
    impl_id = "test:chain@1"

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        steps = int(params.get("steps", 40))
        size = int(params.get("size", 20_000))
        h = hashlib.sha256(b"chain").digest()
        first = 0
        if ctx.resume is not None:
            h, first = ctx.resume.state, ctx.resume.step + 1
        for step in range(first, steps):
            await trio.sleep(1.0)
            h = hashlib.sha256(h).digest()
            block = (h * (size // 32 + 1))[:size]
            await out.write(block)
            await ctx.step_done(step, lambda h=h: h)  # type: ignore[misc]


def test_operators() -> list[OperatorImpl]:
    return [Upper(), Join(), Digest(), Union(), Chain()]


test_operators.__test__ = False  # type: ignore[attr-defined]
