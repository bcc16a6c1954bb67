"""Tensor encodings for operator inputs and outputs: safetensors blobs and raw row streams.

Pickle (and so ``torch.save``/``torch.load``, ``np.load(allow_pickle=True)``) can run code when
loaded; a node decodes tensors that came from strangers, so only two plain formats are used.

**Safetensors blobs** hold named tensors: model weights, checkpoint state, activations. The
layout is the public safetensors format: an 8-byte little-endian header length ``N``, then ``N``
bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{str: str}}``, then the raw little-endian data, ``data_offsets`` counting from its start.
:func:`encode_safetensors` is canonical (names sorted, tensors packed in that order, compact
JSON with sorted keys padded with spaces to a multiple of 8), so equal tensors give equal bytes
and equal CIDs. :func:`decode_safetensors` is strict: the header must be bounded JSON without
duplicate keys, every dtype known, every shape consistent with its byte range, and the ranges
must tile the data exactly (no gaps, no overlaps, nothing after the last tensor). Any violation
is a :class:`DecodeError`.

**Row streams** carry long sequences that must stream: no header, just rows of ``width``
elements of one dtype, little-endian, back to back. Their dtype and width are known from the
operator and its params, never from the data, so any prefix that ends on a row boundary is
itself valid. The conventions used by the built-in operators:

* token ids: ``I32`` rows of width 1 (``tokenize`` output, ``embed`` and ``train`` input);
* activations and embeddings: ``F32`` rows of width ``d_model`` (``embed``/``forward``);
* numeric streams: ``F32``/``F64``/``I32``/``I64`` rows of a ``width`` given in params.

A stream whose length is not a whole number of rows is a :class:`DecodeError`.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from ccnp2p.compute.api import InputStream, InputTooLarge
from ccnp2p.errors import DecodeError

DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
"""Safetensors dtype names understood here (BF16 has no numpy type and is refused)."""

MAX_HEADER_BYTES: Final = 1024 * 1024
MAX_TENSORS: Final = 4096
MAX_NDIM: Final = 8
MAX_BLOB_BYTES: Final = 512 * 1024 * 1024
"""Largest safetensors blob an operator will hold in memory (weights, checkpoints)."""

ROW_BLOCK_BYTES: Final = 256 * 1024
"""Row streams are read in blocks of about this size, always cut on row boundaries."""


@dataclass(frozen=True, slots=True)
class SafeTensors:
    """A decoded blob: read-only little-endian arrays by name, and the string metadata."""

    tensors: dict[str, np.ndarray[Any, Any]]
    metadata: dict[str, str] = field(default_factory=dict)


def dtype_name(dtype: np.dtype[Any]) -> str:
    """The safetensors name of a numpy dtype (raises ValueError for unsupported ones)."""
    for name, known in DTYPES.items():
        if np.dtype(dtype).newbyteorder("<") == known:
            return name
    raise ValueError(f"dtype {dtype} has no safetensors name here")


def encode_safetensors(
    tensors: Mapping[str, np.ndarray[Any, Any]], metadata: Mapping[str, str] | None = None
) -> bytes:
    """Encode named arrays canonically (sorted names, packed data, space-padded header)."""
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    parts: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        if name == "__metadata__" or not name:
            raise ValueError(f"invalid tensor name {name!r}")
        array = np.asarray(tensors[name])
        dtype = DTYPES[dtype_name(array.dtype)]
        raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
        header[name] = {
            "dtype": dtype_name(dtype),
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        parts.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(parts)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DecodeError(f"safetensors header repeats key {key!r}")
        result[key] = value
    return result


def _parse_header(data: bytes) -> tuple[dict[str, Any], int]:
    if len(data) < 8:
        raise DecodeError("safetensors blob shorter than its 8-byte header length")
    (length,) = struct.unpack("<Q", data[:8])
    if length > MAX_HEADER_BYTES or length > len(data) - 8:
        raise DecodeError(f"safetensors header length {length} out of range")
    raw = data[8 : 8 + length]
    if not raw.startswith(b"{"):
        raise DecodeError("safetensors header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DecodeError(f"safetensors header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise DecodeError("safetensors header is not a JSON object")
    return header, 8 + length


def _parse_entry(
    name: str, entry: Any, data_len: int
) -> tuple[np.dtype[Any], tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise DecodeError(f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets")
    dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise DecodeError(f"tensor {name!r}: unknown dtype {entry['dtype']!r}")
    shape, offsets = entry["shape"], entry["data_offsets"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise DecodeError(f"tensor {name!r}: bad shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        raise DecodeError(f"tensor {name!r}: data_offsets {offsets!r} out of range")
    begin, end = offsets
    if math.prod(shape) * dtype.itemsize != end - begin:
        raise DecodeError(f"tensor {name!r}: shape {shape} does not match {end - begin} bytes")
    return dtype, tuple(shape), begin, end


def decode_safetensors(data: bytes, *, max_bytes: int = MAX_BLOB_BYTES) -> SafeTensors:
    """Decode and validate a safetensors blob; arrays are read-only views of ``data``."""
    if len(data) > max_bytes:
        raise DecodeError(f"safetensors blob larger than {max_bytes} bytes")
    header, start = _parse_header(data)
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise DecodeError("safetensors __metadata__ must map strings to strings")
    if len(header) > MAX_TENSORS:
        raise DecodeError(f"safetensors blob has more than {MAX_TENSORS} tensors")
    body = memoryview(data)[start:]
    entries = [(name, *_parse_entry(name, entry, len(body))) for name, entry in header.items()]
    entries.sort(key=lambda e: (e[3], e[4]))
    position = 0
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, dtype, shape, begin, end in entries:
        if begin != position:
            raise DecodeError(f"tensor {name!r}: data has a gap or overlap at byte {begin}")
        position = end
        array = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        array.flags.writeable = False
        tensors[name] = array
    if position != len(body):
        raise DecodeError(f"safetensors blob has {len(body) - position} bytes after its tensors")
    return SafeTensors(tensors, dict(metadata))


async def read_safetensors(stream: InputStream, *, max_bytes: int = MAX_BLOB_BYTES) -> SafeTensors:
    """Read a whole input (bounded by ``max_bytes``) and decode it as safetensors.

    Weights and checkpoints are needed whole before the first output byte anyway; the bound
    keeps a hostile or mistaken input from exhausting memory.
    """
    try:
        data = await stream.read_all(max_bytes)
    except InputTooLarge as exc:
        raise DecodeError(f"safetensors input too large: {exc}") from exc
    return decode_safetensors(data, max_bytes=max_bytes)


def rows_to_bytes(rows: np.ndarray[Any, Any], dtype: str) -> bytes:
    """Raw little-endian bytes of ``rows`` in the stream dtype ``dtype`` (a :data:`DTYPES` key)."""
    return np.ascontiguousarray(rows, dtype=DTYPES[dtype]).tobytes()


async def iter_rows(
    stream: InputStream,
    dtype: str,
    width: int,
    *,
    block_bytes: int = ROW_BLOCK_BYTES,
    skip_rows: int = 0,
) -> AsyncIterator[np.ndarray[Any, Any]]:
    """Yield ``[k, width]`` blocks of a row stream, cut at fixed row counts.

    Block boundaries depend only on ``block_bytes`` and the row size, never on how the input
    happens to arrive, so operators that accumulate per block stay deterministic. ``skip_rows``
    leading rows are read and dropped (resuming operators cannot seek their inputs).
    """
    np_dtype = DTYPES[dtype]
    row_bytes = np_dtype.itemsize * width
    block_rows = max(1, block_bytes // row_bytes)
    while skip_rows > 0:
        n = min(skip_rows, block_rows)
        skipped = await stream.read_exactly(n * row_bytes)
        if len(skipped) != n * row_bytes:
            raise DecodeError("row stream ended before the resume point")
        skip_rows -= n
    while True:
        data = await stream.read_exactly(block_rows * row_bytes)
        if len(data) % row_bytes:
            raise DecodeError(f"row stream ends inside a row of {row_bytes} bytes")
        if data:
            yield np.frombuffer(data, dtype=np_dtype).reshape(-1, width)
        if len(data) < block_rows * row_bytes:
            return
