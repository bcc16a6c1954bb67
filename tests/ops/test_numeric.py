from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ccnp2p.compute.api import ParamError
from ccnp2p.errors import DecodeError
from ccnp2p.ops import Map, Reduce
from ccnp2p.ops.tensors import DTYPES
from tests.ops.helpers import run_op

REFERENCE = {
    "add": lambda x, a: x + a,
    "mul": lambda x, a: x * a,
    "scale": lambda x, a, b: x * a + b,
    "clip": lambda x, lo, hi: np.clip(x, lo, hi),
    "relu": lambda x: np.where(x > 0, x, 0).astype(x.dtype),
    "square": lambda x: x * x,
    "abs": np.abs,
    "neg": np.negative,
}
SCALARS = {"add": ["a"], "mul": ["a"], "scale": ["a", "b"], "clip": ["lo", "hi"]}


def _matrix(dtype: str, width: int) -> st.SearchStrategy[np.ndarray]:
    if dtype.startswith("F"):
        elements = st.floats(-1e6, 1e6, width=32)
    else:
        elements = st.integers(-(2**20), 2**20)
    return hnp.arrays(
        DTYPES[dtype], st.tuples(st.integers(0, 40), st.just(width)), elements=elements
    )


@given(
    st.sampled_from(sorted(REFERENCE)),
    st.sampled_from(["F32", "F64", "I32", "I64"]).flatmap(
        lambda d: st.tuples(st.just(d), _matrix(d, 3))
    ),
    st.booleans(),
)
async def test_map_matches_numpy(fn: str, case: tuple[str, np.ndarray], chunky: bool) -> None:
    dtype, x = case
    scalars = [2, 5][: len(SCALARS.get(fn, []))] if dtype.startswith("I") else [1.5, 2.25]
    scalars = scalars[: len(SCALARS.get(fn, []))]
    params: dict[str, Any] = {"fn": fn, "dtype": dtype, "width": 3}
    params |= dict(zip(SCALARS.get(fn, []), scalars, strict=True))
    typed = [DTYPES[dtype].type(s) for s in scalars]
    with np.errstate(all="ignore"):
        expected = REFERENCE[fn](x, *typed).astype(DTYPES[dtype]).tobytes()
    result = await run_op(Map(), [x.tobytes()], params, chunky=chunky)
    assert result.output == expected


@given(
    st.sampled_from(["sum", "mean", "min", "max", "count"]),
    st.sampled_from(["F32", "F64", "I32", "I64"]).flatmap(
        lambda d: st.tuples(st.just(d), _matrix(d, 2))
    ),
)
async def test_reduce_matches_numpy(op: str, case: tuple[str, np.ndarray]) -> None:
    dtype, x = case
    params = {"op": op, "dtype": dtype, "width": 2}
    if op in ("min", "max") and len(x) == 0:
        with pytest.raises(DecodeError):
            await run_op(Reduce(), [x.tobytes()], params)
        return
    out = (await run_op(Reduce(), [x.tobytes()], params, chunky=True)).output
    if op == "count":
        assert np.frombuffer(out, "<i8").tolist() == [len(x)]
    elif op in ("min", "max"):
        assert out == getattr(x, op)(axis=0).tobytes()
    elif op == "sum" and dtype.startswith("I"):
        assert np.frombuffer(out, "<i8").tolist() == x.sum(axis=0, dtype=np.int64).tolist()
    else:
        got = np.frombuffer(out, "<f8")
        wide = x.astype(np.float64)
        expected = (
            wide.sum(axis=0) if op == "sum" else wide.mean(axis=0) if len(x) else [np.nan] * 2
        )
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-6)


async def test_map_streams_in_blocks_and_reduce_is_chunking_independent() -> None:
    x = np.random.default_rng(0).standard_normal((200_000, 4)).astype("<f4")
    mapped = await run_op(Map(), [x.tobytes()], {"fn": "relu", "width": 4})
    assert len(mapped.pieces) > 4
    assert mapped.output == np.maximum(x, 0).tobytes()
    params = {"op": "sum", "width": 4}
    a = await run_op(Reduce(), [x.tobytes()], params)
    b = await run_op(Reduce(), [x.tobytes()], params, chunky=True)
    assert a.output == b.output


async def test_partial_row_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        await run_op(Map(), [b"\0" * 10], {"fn": "abs", "width": 2})


@pytest.mark.parametrize(
    ("impl", "params"),
    [
        (Map(), {}),
        (Map(), {"fn": "exp"}),
        (Map(), {"fn": "__import__('os').system('x')"}),
        (Map(), {"fn": "add"}),
        (Map(), {"fn": "add", "a": "1"}),
        (Map(), {"fn": "add", "a": 1, "b": 2}),
        (Map(), {"fn": "add", "a": 1.5, "dtype": "I32"}),
        (Map(), {"fn": "add", "a": 2**40, "dtype": "I32"}),
        (Map(), {"fn": "clip", "lo": 2, "hi": 1}),
        (Map(), {"fn": "abs", "dtype": "U8"}),
        (Map(), {"fn": "abs", "width": 0}),
        (Map(), {"fn": "add", "a": float("nan")}),
        (Reduce(), {"op": "median"}),
        (Reduce(), {"op": "sum", "axis": 1}),
        (Reduce(), {"op": "sum", "width": -1}),
    ],
)
def test_bad_params(impl: Any, params: dict[str, Any]) -> None:
    with pytest.raises(ParamError):
        impl.check_params(params, 1)
