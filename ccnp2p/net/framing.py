"""Unsigned-varint length-prefixed message framing.

Every ccnp2p protocol sends messages as ``uvarint(len) || payload`` (the same framing as libp2p's
kad-dht, so our DHT stays wire compatible). Streams deliver bytes in arbitrary pieces, so the
decoding core, :class:`FrameDecoder`, is sans-IO: feed it whatever ``receive_some`` returned and
pull complete frames out. :class:`FramedStream` is the small driver that does the I/O.

The length prefix is checked against ``max_frame_bytes`` as soon as it is decoded, before any
body byte is awaited, so a peer cannot make us buffer more than one maximal frame (plus one read).
Varints follow the multiformats unsigned-varint spec: at most 9 bytes, minimally encoded.
"""

from __future__ import annotations

from typing import Final

from ccnp2p.errors import DecodeError, FrameTooLarge
from ccnp2p.net.base import DEFAULT_RECEIVE_BYTES, Stream
from ccnp2p.net.errors import TruncatedFrame

MAX_UVARINT_BYTES: Final = 9  # multiformats unsigned-varint: 63 bits of payload at most
DEFAULT_MAX_FRAME_BYTES: Final = 4 * 1024 * 1024


def encode_uvarint(value: int) -> bytes:
    """Encode a non-negative integer as a minimal unsigned varint (7 bits per byte, LSB first)."""
    if value < 0 or value >= 1 << (7 * MAX_UVARINT_BYTES):
        raise ValueError(f"uvarint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int] | None:
    """Decode a uvarint at ``offset``.

    Returns:
        ``(value, offset_after)``, or ``None`` if ``data`` ends before the varint does (more bytes
        may complete it).

    Raises:
        DecodeError: the varint is longer than 9 bytes or not minimally encoded; no amount of
            further input can make it valid, so the caller should drop the stream.
    """
    value = 0
    for i in range(MAX_UVARINT_BYTES):
        pos = offset + i
        if pos >= len(data):
            return None
        byte = data[pos]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if byte == 0 and i > 0:
                raise DecodeError("uvarint is not minimally encoded")
            return value, pos + 1
    raise DecodeError(f"uvarint longer than {MAX_UVARINT_BYTES} bytes")


def encode_frame(payload: bytes) -> bytes:
    """Return ``uvarint(len(payload)) || payload``."""
    return encode_uvarint(len(payload)) + payload


class FrameDecoder:
    """Sans-IO frame reassembly: bytes in, complete payloads out.

    Buffered bytes never exceed one frame's prefix and body plus whatever the last
    :meth:`feed` added, because an oversized prefix raises as soon as it is parsed.
    """

    __slots__ = ("_body_len", "_buf", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._body_len: int | None = None  # decoded length of the frame being assembled

    def feed(self, data: bytes) -> None:
        """Append received bytes (any split of the stream is fine)."""
        self._buf += data

    @property
    def buffered_bytes(self) -> int:
        """Bytes received but not yet returned as a frame."""
        return len(self._buf)

    @property
    def at_boundary(self) -> bool:
        """True if no partial frame is buffered (so EOF here is a clean end)."""
        return not self._buf and self._body_len is None

    def next_frame(self) -> bytes | None:
        """Return the next complete payload, or ``None`` if more bytes are needed.

        Raises:
            FrameTooLarge: the announced length exceeds ``max_frame_bytes``.
            DecodeError: the length prefix is malformed.
        """
        if self._body_len is None:
            decoded = decode_uvarint(self._buf)
            if decoded is None:
                return None
            length, header_len = decoded
            if length > self.max_frame_bytes:
                raise FrameTooLarge(f"frame of {length} bytes exceeds {self.max_frame_bytes}")
            del self._buf[:header_len]
            self._body_len = length
        if len(self._buf) < self._body_len:
            return None
        payload = bytes(self._buf[: self._body_len])
        del self._buf[: self._body_len]
        self._body_len = None
        return payload

    def bytes_wanted(self) -> int:
        """How many more bytes would complete the current frame (at least 1)."""
        if self._body_len is None:
            return 1
        return max(1, self._body_len - len(self._buf))


class FramedStream:
    """Message framing over a :class:`~ccnp2p.net.base.Stream`.

    Not safe for concurrent :meth:`receive_msg` calls (one reader per stream), like any stream.
    """

    __slots__ = ("_decoder", "stream")

    def __init__(self, stream: Stream, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self.stream = stream
        self._decoder = FrameDecoder(max_frame_bytes)

    @property
    def max_frame_bytes(self) -> int:
        return self._decoder.max_frame_bytes

    async def send_msg(self, payload: bytes) -> None:
        """Send one framed message.

        Raises:
            FrameTooLarge: ``payload`` exceeds ``max_frame_bytes`` (the peer would reject it).
            StreamClosed: the stream can no longer send.
        """
        if len(payload) > self._decoder.max_frame_bytes:
            raise FrameTooLarge(
                f"refusing to send {len(payload)} bytes (max {self._decoder.max_frame_bytes})"
            )
        await self.stream.send_all(encode_frame(payload))

    async def receive_msg(self) -> bytes | None:
        """Return the next message, or ``None`` on a clean end of stream between frames.

        Raises:
            FrameTooLarge: the peer announced a frame over the limit (body not read).
            TruncatedFrame: the stream ended inside a frame.
            DecodeError: the length prefix is malformed.
            StreamClosed: the stream was reset.
        """
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame
            want = min(DEFAULT_RECEIVE_BYTES, max(self._decoder.bytes_wanted(), 4096))
            data = await self.stream.receive_some(want)
            if not data:
                if self._decoder.at_boundary:
                    return None
                raise TruncatedFrame(
                    f"stream ended inside a frame ({self._decoder.buffered_bytes} bytes buffered)"
                )
            self._decoder.feed(data)

    async def close(self) -> None:
        """Close our sending side (the peer's :meth:`receive_msg` returns ``None``)."""
        await self.stream.close()

    async def reset(self) -> None:
        """Abort the stream in both directions."""
        await self.stream.reset()
