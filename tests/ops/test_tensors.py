from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ccnp2p.compute.local import BytesInput
from ccnp2p.errors import DecodeError
from ccnp2p.ops.tensors import (
    DTYPES,
    decode_safetensors,
    encode_safetensors,
    iter_rows,
    read_safetensors,
    rows_to_bytes,
)
from tests.ops.helpers import ChunkyInput

arrays = st.sampled_from(sorted(DTYPES)).flatmap(
    lambda name: hnp.arrays(DTYPES[name], hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda s: s != "__metadata__"), arrays, max_size=5
    )
)
def test_roundtrip(tensors: dict[str, np.ndarray]) -> None:
    blob = encode_safetensors(tensors, {"k": "v"})
    decoded = decode_safetensors(blob)
    assert decoded.metadata == {"k": "v"}
    assert set(decoded.tensors) == set(tensors)
    for name, array in tensors.items():
        got = decoded.tensors[name]
        assert got.shape == array.shape and got.dtype == array.dtype.newbyteorder("<")
        assert got.tobytes() == np.ascontiguousarray(array, dtype=got.dtype).tobytes()
        assert not got.flags.writeable


def test_layout_is_the_public_format_and_canonical() -> None:
    a = np.arange(3, dtype="<i4")
    b = np.ones((2, 2), dtype="<f4")
    blob = encode_safetensors({"b": b, "a": a})
    assert blob == encode_safetensors({"a": a, "b": b})  # insertion order does not matter
    (n,) = struct.unpack("<Q", blob[:8])
    assert n % 8 == 0
    header = json.loads(blob[8 : 8 + n])
    assert header == {
        "a": {"dtype": "I32", "shape": [3], "data_offsets": [0, 12]},
        "b": {"dtype": "F32", "shape": [2, 2], "data_offsets": [12, 28]},
    }
    assert blob[8 + n :] == a.tobytes() + b.tobytes()


def test_big_endian_input_is_written_little_endian() -> None:
    big = np.arange(4, dtype=">f8")
    decoded = decode_safetensors(encode_safetensors({"x": big}))
    assert decoded.tensors["x"].dtype == np.dtype("<f8")
    assert list(decoded.tensors["x"]) == [0.0, 1.0, 2.0, 3.0]


def _blob(header: object, data: bytes = b"", raw: bytes | None = None) -> bytes:
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x01\x00",
        struct.pack("<Q", 1 << 40) + b"{}",
        _blob(None, raw=b"[1, 2]"),
        _blob(None, raw=b"{not json"),
        _blob(None, raw=b'{"a": 1, "a": 2}'),
        _blob(None, raw=b"\xff{"),
        _blob({"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0\0"),
        _blob({"x": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
        _blob({"x": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}, b"\0\0"),
        _blob({"x": {"dtype": "U8", "shape": [2], "data_offsets": [2, 0]}}, b"\0\0"),
        _blob({"x": {"dtype": "U8", "shape": [3], "data_offsets": [0, 2]}}, b"\0\0"),
        _blob({"x": {"dtype": "U8", "shape": [-2], "data_offsets": [0, 2]}}, b"\0\0"),
        _blob({"x": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, b"\0"),
        _blob({"x": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"\0\0"),
        _blob({"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0\0"),
        _blob(
            {
                "x": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
                "y": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]},
            },
            b"\0\0\0",
        ),
        _blob({"x": {"dtype": "U8", "shape": [1]}}, b"\0"),
        _blob({"x": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1], "z": 1}}, b"\0"),
        _blob({"__metadata__": {"a": 1}}),
        _blob({"x": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 1]}}, b"\0"),
    ],
)
def test_malformed_blobs_are_decode_errors(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_safetensors(blob)


@given(st.binary(max_size=64))
def test_garbage_never_escapes_as_another_error(data: bytes) -> None:
    try:
        decode_safetensors(data)
    except DecodeError:
        pass


async def test_read_safetensors_is_bounded() -> None:
    blob = encode_safetensors({"x": np.zeros(100, dtype="<f4")})
    assert (await read_safetensors(BytesInput(blob))).tensors["x"].shape == (100,)
    with pytest.raises(DecodeError):
        await read_safetensors(BytesInput(blob), max_bytes=100)


async def _rows(stream: BytesInput, **kw: int) -> list[np.ndarray]:
    return [block async for block in iter_rows(stream, "F32", 3, **kw)]


async def test_rows_are_cut_at_fixed_boundaries_whatever_the_chunking() -> None:
    data = rows_to_bytes(np.arange(30 * 3, dtype="<f4").reshape(30, 3), "F32")
    plain = await _rows(BytesInput(data), block_bytes=7 * 12)
    chunky = await _rows(ChunkyInput(data), block_bytes=7 * 12)
    assert [len(b) for b in plain] == [len(b) for b in chunky] == [7, 7, 7, 7, 2]
    assert np.concatenate(plain).tobytes() == data
    skipped = await _rows(ChunkyInput(data), block_bytes=7 * 12, skip_rows=10)
    assert np.concatenate(skipped).tobytes() == data[10 * 12 :]


async def test_partial_row_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        await _rows(BytesInput(b"\0" * 13))
    with pytest.raises(DecodeError):
        await _rows(BytesInput(b"\0" * 24), skip_rows=3)
