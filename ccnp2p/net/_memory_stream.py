"""Streams of the in-memory network: bounded, latency-aware pipes without background tasks.

A stream is a :class:`Channel` shared by its two ends. Each direction is a :class:`Pipe`: a queue
of ``(arrival_time, segment)`` pairs plus the arrival time of the end-of-stream marker. A sender
stamps each segment with the virtual time it will arrive (after the sender's uplink and the
receiver's downlink have carried it, plus one-way latency); the receiver simply waits until the
head segment's arrival time. So no task or timer exists per stream or per node: time passes only
in the waiting reader, which is what makes 10k nodes in one process affordable.

Backpressure is a TCP-like window: bytes count against the receiver's window from the moment they
are sent until they are read, and a sender blocks while the window is full.

Both ends share one :class:`trio.lowlevel.ParkingLot`; any state change wakes every waiter, which
then re-checks its own condition. Waiters per stream are few (one reader, one writer per end).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final

import trio

from ccnp2p.net.base import DEFAULT_RECEIVE_BYTES
from ccnp2p.net.errors import StreamClosed, StreamReset

if TYPE_CHECKING:
    from ccnp2p.net.memory import MemoryHost

SEGMENT_BYTES: Final = 64 * 1024  # largest piece a rate-limited link carries at once


class Pipe:
    """One direction of a stream."""

    __slots__ = ("fin_at", "in_window", "last_arrival", "segments")

    def __init__(self) -> None:
        self.segments: deque[tuple[float, bytes]] = deque()
        self.in_window = 0  # bytes sent and not yet read (in flight or buffered)
        self.fin_at: float | None = None  # arrival time of end-of-stream, once sent
        self.last_arrival = float("-inf")  # keeps arrivals in order

    def clear(self) -> None:
        self.segments.clear()
        self.in_window = 0


class Channel:
    """State shared by both ends of one stream. ``pipes[i]`` carries bytes from ``hosts[i]``."""

    __slots__ = ("closed", "hosts", "lot", "pipes", "protocol", "released", "reset", "window")

    def __init__(self, dialer: MemoryHost, listener: MemoryHost, protocol: str, window: int):
        self.hosts = (dialer, listener)
        self.pipes = (Pipe(), Pipe())
        self.protocol = protocol
        self.window = window
        self.closed = [False, False]  # end i has sent its FIN (or reset)
        self.reset = False
        self.released = False
        self.lot = trio.lowlevel.ParkingLot()

    def abort(self) -> None:
        """Reset both directions now (peer reset, crash or partition); wakes every waiter."""
        if self.reset:
            return
        self.reset = True
        for pipe in self.pipes:
            pipe.clear()
        self.lot.unpark_all()
        self.release()

    def release(self) -> None:
        """Forget the stream once both ends are done with it (keeps counters and sets small)."""
        if self.released or not (self.reset or all(self.closed)):
            return
        self.released = True
        for host in self.hosts:
            host._forget_channel(self)


class MemoryStream:
    """One end of an in-memory stream; implements :class:`ccnp2p.net.base.Stream`."""

    __slots__ = ("_busy_recv", "_busy_send", "_ch", "_side")

    def __init__(self, channel: Channel, side: int) -> None:
        self._ch = channel
        self._side = side
        self._busy_send = False
        self._busy_recv = False

    @property
    def remote_peer(self) -> bytes:
        return self._ch.hosts[1 - self._side].peer_id

    @property
    def protocol(self) -> str:
        return self._ch.protocol

    def _check_usable(self) -> None:
        if self._ch.reset:
            raise StreamReset(f"stream {self._ch.protocol} was reset")
        if not self._ch.hosts[self._side].alive:
            raise StreamClosed("local host is down")

    async def send_all(self, data: bytes) -> None:
        """Send ``data``, blocking while the receiver's window is full (backpressure)."""
        if self._busy_send:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._busy_send = True
        try:
            await trio.lowlevel.checkpoint()
            view = memoryview(data)
            while view:
                self._check_usable()
                if self._ch.closed[self._side]:
                    raise StreamClosed("send side already closed")
                view = view[await self._send_segment(view) :]
        finally:
            self._busy_send = False

    async def _send_segment(self, view: memoryview) -> int:
        """Send a prefix of ``view`` that fits the window; return its length (0 after a wait)."""
        ch, pipe = self._ch, self._ch.pipes[self._side]
        src, dst = ch.hosts[self._side], ch.hosts[1 - self._side]
        free = ch.window - pipe.in_window
        if free <= 0:
            await ch.lot.park()
            return 0
        size = min(len(view), free)
        if src.upload_bytes_per_s is not None or dst.download_bytes_per_s is not None:
            size = min(size, SEGMENT_BYTES)
        pipe.in_window += size
        try:
            done = src.hub._transmit(src, dst, size)
            if done > trio.current_time():
                await trio.sleep_until(done)
        except BaseException:
            pipe.in_window -= size
            raise
        self._check_usable()
        arrival = max(done + src.hub.latency(src.peer_id, dst.peer_id), pipe.last_arrival)
        pipe.last_arrival = arrival
        pipe.segments.append((arrival, bytes(view[:size])))
        src.hub._count_sent(src, size)
        ch.lot.unpark_all()
        return size

    async def receive_some(self, max_bytes: int = DEFAULT_RECEIVE_BYTES) -> bytes:
        """Return bytes that have arrived by now (waiting in virtual time), or ``b""`` at EOF."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._busy_recv:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._busy_recv = True
        try:
            await trio.lowlevel.checkpoint()
            while True:
                self._check_usable()
                pipe = self._ch.pipes[1 - self._side]
                now = trio.current_time()
                if pipe.segments:
                    deadline = pipe.segments[0][0]
                    if deadline <= now:
                        return self._take(pipe, now, max_bytes)
                elif pipe.fin_at is not None:
                    deadline = pipe.fin_at
                    if deadline <= now:
                        return b""
                else:
                    deadline = float("inf")
                with trio.move_on_at(deadline):
                    await self._ch.lot.park()
        finally:
            self._busy_recv = False

    def _take(self, pipe: Pipe, now: float, max_bytes: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        segments = pipe.segments
        while segments and segments[0][0] <= now and total < max_bytes:
            arrival, seg = segments[0]
            room = max_bytes - total
            if len(seg) <= room:
                segments.popleft()
            else:
                segments[0] = (arrival, seg[room:])
                seg = seg[:room]
            parts.append(seg)
            total += len(seg)
        pipe.in_window -= total
        self._ch.hosts[self._side].bytes_received += total
        self._ch.lot.unpark_all()
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def close(self) -> None:
        """Half-close: the peer reads EOF after the data already sent. Idempotent."""
        ch = self._ch
        if not ch.closed[self._side]:
            ch.closed[self._side] = True
            if not ch.reset:
                src, dst = ch.hosts[self._side], ch.hosts[1 - self._side]
                pipe = ch.pipes[self._side]
                latency = src.hub.latency(src.peer_id, dst.peer_id)
                pipe.fin_at = max(trio.current_time() + latency, pipe.last_arrival)
                ch.lot.unpark_all()
            ch.release()
        await trio.lowlevel.checkpoint()

    async def reset(self) -> None:
        """Abort both directions; the peer's next operation raises :class:`StreamReset`."""
        self._ch.abort()
        await trio.lowlevel.checkpoint()
