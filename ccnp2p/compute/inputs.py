"""Operator inputs backed by reads through the node (stored files or other calcs' outputs)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ccnp2p.compute.api import InputTooLarge


class StreamInput:
    """An :class:`~ccnp2p.compute.api.InputStream` over an async iterator of byte pieces.

    Holds at most one piece beyond what the operator consumed, so reading an input never
    buffers more than one chunk; the upstream producer advances only as this is consumed.
    """

    def __init__(self, pieces: AsyncIterator[bytes], size: int | None) -> None:
        self._pieces = pieces
        self._size = size
        self._buf = memoryview(b"")
        self._eof = False
        self.consumed = 0

    @property
    def size(self) -> int | None:
        return self._size

    async def _fill(self) -> bool:
        while not self._buf and not self._eof:
            try:
                self._buf = memoryview(await anext(self._pieces))
            except StopAsyncIteration:
                self._eof = True
        return bool(self._buf)

    async def read(self, max_bytes: int = 262144) -> bytes:
        if max_bytes <= 0 or not await self._fill():
            return b""
        out = bytes(self._buf[:max_bytes])
        self._buf = self._buf[len(out) :]
        self.consumed += len(out)
        return out

    async def read_exactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            piece = await self.read(n - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    async def read_all(self, limit: int) -> bytes:
        if self._size is not None and self._size > limit:
            raise InputTooLarge(f"input of {self._size} bytes exceeds the limit of {limit}")
        parts: list[bytes] = []
        got = 0
        while piece := await self.read():
            got += len(piece)
            if got > limit:
                raise InputTooLarge(f"input exceeds the limit of {limit} bytes")
            parts.append(piece)
        return b"".join(parts)

    async def aclose(self) -> None:
        closer = getattr(self._pieces, "aclose", None)
        if closer is not None:
            await closer()
