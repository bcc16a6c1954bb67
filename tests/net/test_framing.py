"""Framing: varint edge cases, frame limits, and reassembly over arbitrary splits."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.errors import DecodeError, FrameTooLarge
from ccnp2p.net.errors import TruncatedFrame
from ccnp2p.net.framing import (
    FrameDecoder,
    FramedStream,
    decode_uvarint,
    encode_frame,
    encode_uvarint,
)


class ScriptedStream:
    """A Stream whose receive side replays fixed chunks, then EOF; records what is sent."""

    def __init__(self, chunks: Sequence[bytes] = ()) -> None:
        self._chunks = list(chunks)
        self.sent = bytearray()
        self.max_bytes_seen: list[int] = []
        self.closed = False

    @property
    def remote_peer(self) -> bytes:
        return b"peer"

    @property
    def protocol(self) -> str:
        return "/test/1"

    async def send_all(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        await trio.lowlevel.checkpoint()
        self.max_bytes_seen.append(max_bytes)
        if not self._chunks:
            return b""
        chunk = self._chunks.pop(0)
        if len(chunk) > max_bytes:
            self._chunks.insert(0, chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        return chunk

    async def close(self) -> None:
        self.closed = True

    async def reset(self) -> None:
        self.closed = True


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(data)]:
        if p > prev:
            out.append(data[prev:p])
            prev = p
    return out


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02")],
)
def test_uvarint_known_vectors(value: int, encoded: bytes) -> None:
    assert encode_uvarint(value) == encoded
    assert decode_uvarint(encoded) == (value, len(encoded))


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_uvarint_roundtrip(value: int) -> None:
    enc = encode_uvarint(value)
    assert decode_uvarint(b"xx" + enc + b"tail", 2) == (value, 2 + len(enc))
    assert decode_uvarint(enc[:-1]) is None


def test_uvarint_rejects_overlong_and_non_minimal() -> None:
    with pytest.raises(DecodeError):
        decode_uvarint(b"\xff" * 9 + b"\x01")
    with pytest.raises(DecodeError):
        decode_uvarint(b"\x81\x00")
    with pytest.raises(ValueError):
        encode_uvarint(-1)
    with pytest.raises(ValueError):
        encode_uvarint(1 << 63)


def test_decoder_rejects_large_prefix_before_body() -> None:
    dec = FrameDecoder(max_frame_bytes=10)
    dec.feed(encode_uvarint(11))  # no body at all: must still raise
    with pytest.raises(FrameTooLarge):
        dec.next_frame()


@given(
    msgs=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
async def test_framed_stream_any_split(msgs: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(m) for m in msgs)
    fs = FramedStream(ScriptedStream(split(wire, cuts)), max_frame_bytes=300)
    got = []
    while (m := await fs.receive_msg()) is not None:
        got.append(m)
    assert got == msgs


@given(
    msgs=st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=4),
    drop=st.integers(min_value=1, max_value=40),
)
async def test_truncated_frame_raises(msgs: list[bytes], drop: int) -> None:
    wire = b"".join(encode_frame(m) for m in msgs)
    last = len(encode_frame(msgs[-1]))
    wire = wire[: len(wire) - (1 + drop % (last - 1))]  # cut strictly inside the last frame
    fs = FramedStream(ScriptedStream([wire]), max_frame_bytes=100)
    with pytest.raises(TruncatedFrame):
        while await fs.receive_msg() is not None:
            pass


async def test_oversized_frame_raises_without_reading_body() -> None:
    body_chunks = [b"a" * 4096] * 100
    stream = ScriptedStream([encode_uvarint(1 << 20), *body_chunks])
    fs = FramedStream(stream, max_frame_bytes=1000)
    with pytest.raises(FrameTooLarge):
        await fs.receive_msg()
    assert len(stream.max_bytes_seen) == 1  # only the prefix read was needed


async def test_send_msg_frames_and_refuses_oversize() -> None:
    stream = ScriptedStream()
    fs = FramedStream(stream, max_frame_bytes=5)
    await fs.send_msg(b"hello")
    await fs.send_msg(b"")
    assert bytes(stream.sent) == b"\x05hello\x00"
    with pytest.raises(FrameTooLarge):
        await fs.send_msg(b"toolong")
    await fs.close()
    assert stream.closed


async def test_clean_eof_returns_none() -> None:
    fs = FramedStream(ScriptedStream([]))
    assert await fs.receive_msg() is None
