"""Credit windows: how much a reader lets a sender send, as pure state machines.

Theory of operation. The reader of a transfer grants *credit* in bytes; the sender may send a
chunk only while the chunk fits in the credit it still holds (granted minus sent). Nothing here
does I/O or reads a clock: the driver passes ``now`` in and sends whatever the machine decides,
so the same code runs over real libp2p and under ``trio.testing.MockClock`` and is tested without
an event loop (model: h2's ``WindowManager``).

:class:`CreditWindow` is the reader's side. It keeps the invariant

    outstanding + buffered <= window_bytes <= max_bytes

where *outstanding* is credit granted and not yet used by data, and *buffered* is data received
and not yet consumed by the application. So a reader that stops reading stops granting, and the
sender stops within one window: the reader never holds more than ``max_bytes``.

The window adapts to the link. A byte beyond the credit granted so far can only be sent after the
sender has seen the next grant, so the delay from a grant to the first byte it paid for is a round
trip (plus any queueing at the sender): the minimum of those samples estimates the RTT. Delivery
rate is measured over intervals of at least one RTT, and its recent maximum estimates the
bottleneck bandwidth. The window grows (at most doubling per interval, up to ``max_bytes``) to
twice their product, the bandwidth-delay product with headroom for jitter. While the window is
the bottleneck, delivery is ``window / rtt`` and the target is twice the window, so it keeps
growing until the link (or the reader's own speed) is the limit. It never shrinks: a slow reader
is already bounded by granting only what it consumed.

:class:`SendCredit` is the sender's side: it refuses to let a chunk exceed the credit held. A
reader that sees more data than it granted raises :class:`FlowControlError` and drops the peer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from ccnp2p.errors import ProtocolError

MIN_WINDOW_BYTES: Final = 1024 * 1024  # one maximal chunk always fits, so no transfer deadlocks
DEFAULT_WINDOW_BYTES: Final = 4 * 1024 * 1024
MAX_WINDOW_BYTES: Final = 32 * 1024 * 1024
MAX_CREDIT_BYTES: Final = 1 << 48  # total credit a sender accepts over one stream
BDP_HEADROOM: Final = 2.0  # window = headroom x bandwidth x delay
RATE_DECAY: Final = 0.9  # per-interval decay of the max-filtered delivery rate
MIN_INTERVAL_S: Final = 0.001  # rate intervals are at least this long (clock granularity)
MAX_PENDING_GRANTS: Final = 64  # grants remembered for RTT samples (older ones are dropped)


class FlowControlError(ProtocolError):
    """A peer sent more than the credit it was granted, or granted nonsense."""

    code = "flow-control"


@dataclass(frozen=True, slots=True)
class WindowStatistics:
    """A snapshot of a :class:`CreditWindow` (for tests, logs and the node's statistics)."""

    window_bytes: int
    granted_bytes: int
    received_bytes: int
    outstanding_bytes: int
    min_rtt_s: float | None
    rate_bytes_per_s: float
    grows: int


class CreditWindow:
    """The reader's credit window (see the module docstring).

    Args:
        initial_bytes: the window before any measurement.
        min_bytes: the floor; must hold the largest chunk or a transfer could deadlock.
        max_bytes: the cap; what one transfer may make this reader buffer at most.
    """

    __slots__ = (
        "_grants",
        "_interval_bytes",
        "_interval_start",
        "granted",
        "grows",
        "max_bytes",
        "min_bytes",
        "min_rtt_s",
        "rate_bytes_per_s",
        "received",
        "window_bytes",
    )

    def __init__(
        self,
        *,
        initial_bytes: int = DEFAULT_WINDOW_BYTES,
        min_bytes: int = MIN_WINDOW_BYTES,
        max_bytes: int = MAX_WINDOW_BYTES,
    ) -> None:
        if not 0 < min_bytes <= initial_bytes <= max_bytes:
            raise ValueError("need 0 < min_bytes <= initial_bytes <= max_bytes")
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes
        self.window_bytes = initial_bytes
        self.granted = 0
        self.received = 0
        self.grows = 0
        self.min_rtt_s: float | None = None
        self.rate_bytes_per_s = 0.0
        self._grants: deque[tuple[int, float]] = deque()  # (granted total before, time)
        self._interval_start: float | None = None
        self._interval_bytes = 0

    @property
    def outstanding(self) -> int:
        """Credit granted that the sender has not used yet (bytes it may still send)."""
        return self.granted - self.received

    def credit_to_grant(self, buffered: int) -> int:
        """How much credit to grant now, given ``buffered`` bytes received and not consumed.

        Returns 0 unless the grant is worth a message (a quarter of the window, or enough to
        unblock a sender that holds no credit), which keeps CREDIT messages few.
        """
        free = self.window_bytes - self.outstanding - buffered
        if free <= 0:
            return 0
        if free >= self.window_bytes // 4 or self.outstanding == 0:
            return free
        return 0

    def room(self) -> int:
        """Credit that may be granted now when nothing is buffered (want-mode transfers)."""
        return max(0, self.window_bytes - self.outstanding)

    def grant(self, nbytes: int, now: float) -> None:
        """Record that ``nbytes`` of credit were sent to the peer at ``now``."""
        if nbytes <= 0:
            raise ValueError("a grant must be positive")
        if len(self._grants) == MAX_PENDING_GRANTS:
            self._grants.popleft()  # lose one RTT sample rather than grow
        self._grants.append((self.granted, now))
        self.granted += nbytes

    def on_data(self, nbytes: int, now: float) -> None:
        """Account ``nbytes`` of received data at ``now``; update the link estimates.

        Raises:
            FlowControlError: the peer sent more than it was granted (drop it).
        """
        if nbytes < 0:
            raise ValueError("negative data size")
        if self.received + nbytes > self.granted:
            raise FlowControlError(
                f"peer sent {self.received + nbytes - self.granted} bytes beyond its credit"
            )
        self.received += nbytes
        while self._grants and self.received > self._grants[0][0]:
            _, sent_at = self._grants.popleft()
            sample = max(0.0, now - sent_at)
            if self.min_rtt_s is None or sample < self.min_rtt_s:
                self.min_rtt_s = sample
        self._measure_rate(nbytes, now)

    def _measure_rate(self, nbytes: int, now: float) -> None:
        if self._interval_start is None:
            self._interval_start = now  # the first arrival opens the interval, not counted
            return
        self._interval_bytes += nbytes
        elapsed = now - self._interval_start
        if elapsed < max(self.min_rtt_s or 0.0, MIN_INTERVAL_S):
            return
        sample = self._interval_bytes / elapsed
        self.rate_bytes_per_s = max(sample, self.rate_bytes_per_s * RATE_DECAY)
        self._interval_start = now
        self._interval_bytes = 0
        self._maybe_grow()

    def _maybe_grow(self) -> None:
        if self.min_rtt_s is None:
            return
        target = int(BDP_HEADROOM * self.rate_bytes_per_s * self.min_rtt_s)
        new = min(self.max_bytes, target, 2 * self.window_bytes)
        if new > self.window_bytes:
            self.window_bytes = new
            self.grows += 1

    def restart_measurement(self) -> None:
        """Forget the rate interval (after an idle period that would understate the rate)."""
        self._interval_start = None
        self._interval_bytes = 0

    def statistics(self) -> WindowStatistics:
        return WindowStatistics(
            window_bytes=self.window_bytes,
            granted_bytes=self.granted,
            received_bytes=self.received,
            outstanding_bytes=self.outstanding,
            min_rtt_s=self.min_rtt_s,
            rate_bytes_per_s=self.rate_bytes_per_s,
            grows=self.grows,
        )


class SendCredit:
    """The sender's side: credit received minus data sent. Pure; no I/O.

    A chunk is sent whole or not at all, so :meth:`can_send` asks whether the whole chunk fits.
    """

    __slots__ = ("received", "sent")

    def __init__(self) -> None:
        self.received = 0
        self.sent = 0

    @property
    def available(self) -> int:
        return self.received - self.sent

    def add(self, nbytes: int) -> None:
        """Accept a CREDIT grant from the reader.

        Raises:
            FlowControlError: a non-positive grant or a total beyond :data:`MAX_CREDIT_BYTES`.
        """
        if nbytes <= 0 or self.received + nbytes > MAX_CREDIT_BYTES:
            raise FlowControlError(f"invalid credit grant {nbytes}")
        self.received += nbytes

    def can_send(self, nbytes: int) -> bool:
        return nbytes <= self.available

    def consume(self, nbytes: int) -> None:
        """Record ``nbytes`` sent; a sender that would overrun its credit is a bug of ours."""
        if nbytes > self.available:
            raise AssertionError(f"sending {nbytes} bytes with {self.available} credit")
        self.sent += nbytes
