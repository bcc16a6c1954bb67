"""Byte and text operators: ``concat``, ``slice``, ``grep``, ``line_count``.

All four run next to their data (source affinity: moving the output is cheaper than moving the
input), stream with memory bounded by a chunk plus one line, and are deterministic. Lines are
separated by ``\\n`` only (``\\r`` is an ordinary byte, so CRLF text keeps its ``\\r``); a final
line without a newline is still a line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar, Final

from ccnp2p.compute.api import (
    InputStream,
    OperatorSpec,
    OutputStream,
    RunContext,
)
from ccnp2p.errors import DecodeError
from ccnp2p.ops.base import BuiltinOperator
from ccnp2p.ops.params import (
    READ_BYTES,
    BufferedOutput,
    check_keys,
    get_bool,
    get_int,
    get_str,
)
from ccnp2p.ops.regex import MAX_PATTERN_CHARS, Regex

MAX_CONCAT_INPUTS: Final = 64
DEFAULT_MAX_LINE_BYTES: Final = 64 * 1024
MAX_LINE_BYTES: Final = 1024 * 1024
MAX_LITERAL_BYTES: Final = 4096

# Helper modules whose source is part of these operators' code hash (see ops/base.py).
_CODE_MODULES: Final = ("ccnp2p.ops.params", "ccnp2p.ops.regex")


async def iter_lines(stream: InputStream, max_line: int) -> AsyncIterator[list[bytes]]:
    """Yield batches of lines, each keeping its ``\\n`` (the last one may lack it).

    Batching per input chunk keeps the per-line cost low; the pending partial line is the only
    state, and a line longer than ``max_line`` bytes (newline excluded) is a
    :class:`DecodeError` rather than an unbounded buffer.
    """
    pending = b""
    while chunk := await stream.read(READ_BYTES):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if len(pending) > max_line or any(len(line) > max_line for line in lines):
            raise DecodeError(f"line longer than {max_line} bytes")
        if lines:
            yield [line + b"\n" for line in lines]
    if pending:
        yield [pending]


class Concat(BuiltinOperator):
    """The inputs' bytes one after the other, in input order (so not commutative)."""

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="concat", version="1", min_inputs=1, max_inputs=MAX_CONCAT_INPUTS
    )
    impl_id: ClassVar[str] = "builtin:concat@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ())

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        for stream in inputs:
            while chunk := await stream.read(READ_BYTES):
                await out.write(chunk)


class Slice(BuiltinOperator):
    """Bytes ``[offset, offset + length)`` of the input (to its end when ``length`` is absent).

    Params: ``offset`` (int >= 0, default 0), ``length`` (int >= 0, optional). The prefix is
    read and dropped, since inputs cannot seek; reading stops as soon as the slice is complete.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="slice", version="1", output={"max_param": "length"}
    )
    impl_id: ClassVar[str] = "builtin:slice@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("offset", "length"))
        get_int(params, "offset", default=0, lo=0)
        if "length" in params:
            get_int(params, "length", lo=0)

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        (stream,) = inputs
        skip = get_int(params, "offset", default=0, lo=0)
        left: int | None = get_int(params, "length", lo=0) if "length" in params else None
        while skip:
            dropped = await stream.read(min(skip, READ_BYTES))
            if not dropped:
                return
            skip -= len(dropped)
        while left is None or left > 0:
            chunk = await stream.read(READ_BYTES if left is None else min(left, READ_BYTES))
            if not chunk:
                return
            await out.write(chunk)
            if left is not None:
                left -= len(chunk)


class Grep(BuiltinOperator):
    """The lines that contain ``pattern`` (or, with ``invert``, those that do not).

    Params: ``pattern`` (non-empty str), ``regex`` (bool, default False: ``pattern`` is a
    literal; True: a :mod:`ccnp2p.ops.regex` pattern, linear-time by construction), ``invert``
    (bool, default False), ``max_line`` (int, default 64 KiB, at most 1 MiB: a longer line is a
    decode error). Matching is on bytes, against the line without its newline; selected lines
    are output exactly as they are in the input.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="grep",
        version="1",
        output={"per_mille": 100},  # a guess: a tenth of the lines
    )
    impl_id: ClassVar[str] = "builtin:grep@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("pattern", "regex", "invert", "max_line"))
        self._matcher(params)
        get_bool(params, "invert", default=False)
        get_int(params, "max_line", default=DEFAULT_MAX_LINE_BYTES, lo=1, hi=MAX_LINE_BYTES)

    @staticmethod
    def _matcher(params: dict[str, Any]) -> Regex | bytes:
        if get_bool(params, "regex", default=False):
            return Regex(get_str(params, "pattern", max_bytes=4 * MAX_PATTERN_CHARS))
        return get_str(params, "pattern", max_bytes=MAX_LITERAL_BYTES).encode("utf-8")

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        matcher = self._matcher(params)
        invert = get_bool(params, "invert", default=False)
        max_line = get_int(params, "max_line", default=DEFAULT_MAX_LINE_BYTES, lo=1)
        buffered = BufferedOutput(out)
        async for lines in iter_lines(inputs[0], max_line):
            for line in lines:
                body = line[:-1] if line.endswith(b"\n") else line
                found = matcher.search(body) if isinstance(matcher, Regex) else matcher in body
                if found != invert:
                    await buffered.write(line)
            await buffered.flush()  # a rare match must not wait for 64 KiB of company


class LineCount(BuiltinOperator):
    """The number of lines, as ASCII decimal and a newline (``b"3\\n"``).

    A final line without a newline counts (so ``b"a\\nb"`` has 2 lines, like
    ``len(data.split(b"\\n"))`` minus a trailing empty piece); empty input has 0 lines.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="line_count", version="1", output={"bytes": 16}
    )
    impl_id: ClassVar[str] = "builtin:line_count@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ())

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        count = 0
        last = b"\n"
        while chunk := await inputs[0].read(READ_BYTES):
            count += chunk.count(b"\n")
            last = chunk[-1:]
        if last != b"\n":
            count += 1
        await out.write(b"%d\n" % count)
