"""Run an operator implementation in-process on bytes: for tests, and for checking a network
result against a local computation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import trio

from ccnp2p.compute.api import InputTooLarge, OperatorImpl, Resume


class BytesInput:
    """An :class:`~ccnp2p.compute.api.InputStream` over bytes in memory."""

    def __init__(self, data: bytes, *, known_size: bool = True) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._known = known_size

    @property
    def size(self) -> int | None:
        return len(self._data) if self._known else None

    async def read(self, max_bytes: int = 262144) -> bytes:
        await trio.lowlevel.checkpoint()
        out = bytes(self._data[self._pos : self._pos + max_bytes])
        self._pos += len(out)
        return out

    async def read_exactly(self, n: int) -> bytes:
        return await self.read(n)

    async def read_all(self, limit: int) -> bytes:
        if len(self._data) - self._pos > limit:
            raise InputTooLarge(f"input larger than {limit} bytes")
        return await self.read(len(self._data))


class CollectOutput:
    """An output stream that keeps everything written (tests only: unbounded by design)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        if data:
            self.parts.append(bytes(data))

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class RecordingContext:
    """A run context that records every step and can snapshot at chosen steps."""

    def __init__(self, resume: Resume | None = None, snapshot_at: Sequence[int] = ()) -> None:
        self._resume = resume
        self.steps: list[int] = []
        self.snapshots: dict[int, bytes] = {}
        self._snapshot_at = set(snapshot_at)

    @property
    def resume(self) -> Resume | None:
        return self._resume

    async def step_done(self, step: int, state: Callable[[], bytes]) -> None:
        await trio.lowlevel.checkpoint()
        self.steps.append(step)
        if step in self._snapshot_at:
            self.snapshots[step] = state()


async def run_local(
    impl: OperatorImpl,
    inputs: Sequence[bytes],
    params: dict[str, Any] | None = None,
    ctx: RecordingContext | None = None,
) -> bytes:
    """Run ``impl`` on in-memory inputs; returns its whole output."""
    params = params or {}
    impl.check_params(params, len(inputs))
    out = CollectOutput()
    await impl.run([BytesInput(d) for d in inputs], params, out, ctx or RecordingContext())
    return out.getvalue()
