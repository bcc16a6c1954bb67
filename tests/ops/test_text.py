from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.compute.api import ParamError
from ccnp2p.errors import DecodeError
from ccnp2p.ops import Concat, Grep, LineCount, Slice
from tests.ops.helpers import run_op

texts = st.lists(
    st.sampled_from([b"", b"a", b"ab", b"\n", b"b\n", b"abc\r\n", b"x" * 5, "é".encode()]),
    max_size=30,
).map(b"".join)


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) if b"\r" not in data else _split_nl(data)


def _split_nl(data: bytes) -> list[bytes]:
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    return [*lines, parts[-1]] if parts[-1] else lines


@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5), st.booleans())
async def test_concat_is_join_in_order(parts: list[bytes], chunky: bool) -> None:
    assert (await run_op(Concat(), parts, chunky=chunky)).output == b"".join(parts)


@given(st.binary(max_size=500), st.integers(0, 600), st.none() | st.integers(0, 600))
async def test_slice_matches_python(data: bytes, offset: int, length: int | None) -> None:
    params: dict[str, Any] = {"offset": offset}
    if length is not None:
        params["length"] = length
    end = None if length is None else offset + length
    assert (await run_op(Slice(), [data], params, chunky=True)).output == data[offset:end]


@given(texts, st.sampled_from(["a", "b", "ab", "é", "x\r"]), st.booleans(), st.booleans())
async def test_grep_literal_matches_python(
    data: bytes, pattern: str, invert: bool, chunky: bool
) -> None:
    needle = pattern.encode()
    expected = b"".join(
        line for line in _split_nl(data) if (needle in line.rstrip(b"\n")) != invert
    )
    params = {"pattern": pattern, "invert": invert}
    assert (await run_op(Grep(), [data], params, chunky=chunky)).output == expected


async def test_grep_regex_and_streaming_output() -> None:
    lines = [b"id=%d %s\n" % (i, b"even" if i % 2 == 0 else b"odd") for i in range(40_000)]
    data = b"".join(lines)
    result = await run_op(Grep(), [data], {"pattern": r"=\d*7 (odd|ev)", "regex": True})
    assert result.output == b"".join(line for line in lines if b"7 odd" in line)
    assert len(result.pieces) > 1


async def test_grep_pathological_regex_is_linear() -> None:
    line = b"a" * 20_000 + b"\n"
    result = await run_op(Grep(), [line * 3], {"pattern": "(a|aa)*c", "regex": True})
    assert result.output == b""


async def test_grep_long_line_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        await run_op(Grep(), [b"x" * 101], {"pattern": "x", "max_line": 100})
    ok = await run_op(Grep(), [b"x" * 100 + b"\n"], {"pattern": "x", "max_line": 100})
    assert ok.output == b"x" * 100 + b"\n"


@given(texts, st.booleans())
async def test_line_count_matches_reference(data: bytes, chunky: bool) -> None:
    expected = len(_split_nl(data))
    assert (await run_op(LineCount(), [data], chunky=chunky)).output == b"%d\n" % expected


@pytest.mark.parametrize(
    ("impl", "params", "n_inputs"),
    [
        (Concat(), {}, 0),
        (Concat(), {"x": 1}, 1),
        (Slice(), {"offset": -1}, 1),
        (Slice(), {"offset": 1.5}, 1),
        (Slice(), {"length": True}, 1),
        (Slice(), {}, 2),
        (Grep(), {}, 1),
        (Grep(), {"pattern": ""}, 1),
        (Grep(), {"pattern": 3}, 1),
        (Grep(), {"pattern": "a", "invert": 1}, 1),
        (Grep(), {"pattern": "a(", "regex": True}, 1),
        (Grep(), {"pattern": "(?=a)", "regex": True}, 1),
        (Grep(), {"pattern": r"(a)\1", "regex": True}, 1),
        (Grep(), {"pattern": "a", "max_line": 0}, 1),
        (Grep(), {"pattern": "a", "max_line": 1 << 30}, 1),
        (Grep(), {"pattern": "a", "flags": "i"}, 1),
        (LineCount(), {"x": 1}, 1),
    ],
)
def test_bad_params(impl: Any, params: dict[str, Any], n_inputs: int) -> None:
    with pytest.raises(ParamError):
        impl.check_params(params, n_inputs)


async def test_text_outputs_are_deterministic() -> None:
    data = b"".join(b"line %d\n" % i for i in range(5000))
    for impl, params in [
        (Concat(), {}),
        (Slice(), {"offset": 7, "length": 10_000}),
        (Grep(), {"pattern": "9", "invert": True}),
        (LineCount(), {}),
    ]:
        first = await run_op(impl, [data], params)
        second = await run_op(impl, [data], params, chunky=True)
        assert first.output == second.output
