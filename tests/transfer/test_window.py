"""The credit window as a pure state machine: invariants under random readers, link adaptation."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.transfer.window import CreditWindow, FlowControlError, SendCredit

CHUNK = 64 * 1024


def simulate(
    *,
    rtt_s: float,
    link_bytes_per_s: float,
    reader_bytes_per_s: list[float],
    total: int,
    window: CreditWindow,
) -> float:
    """Discrete-event run of a credit-obeying sender, a link and a reader; returns end time.

    Checks the window's invariants after every event.
    """
    credit = SendCredit()
    events: list[tuple[float, int, str, int]] = []  # (time, seq, kind, bytes)
    seq = 0
    now = 0.0
    buffered = 0
    sent = consumed = 0
    link_free = 0.0
    reader_busy_until = 0.0
    phase = 0

    def push(t: float, kind: str, n: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, n))

    def grant() -> None:
        n = window.credit_to_grant(buffered)
        if n:
            window.grant(n, now)
            push(now + rtt_s / 2, "credit", n)

    grant()
    while consumed < total:
        # The sender sends whole chunks while its credit allows.
        while sent < total and credit.can_send(min(CHUNK, total - sent)):
            size = min(CHUNK, total - sent)
            credit.consume(size)
            sent += size
            link_free = max(link_free, now) + size / link_bytes_per_s
            push(link_free + rtt_s / 2, "data", size)
        if buffered and reader_busy_until <= now:
            rate = reader_bytes_per_s[phase % len(reader_bytes_per_s)]
            phase += 1
            take = min(buffered, CHUNK)
            reader_busy_until = now + take / rate
            push(reader_busy_until, "consume", take)
            buffered -= take  # reserved by the reader
            consumed += take
        if not events:
            break
        now, _, kind, n = heapq.heappop(events)
        if kind == "credit":
            credit.add(n)
        elif kind == "data":
            window.on_data(n, now)  # raises FlowControlError on any overrun
            buffered += n
        else:
            grant()
        assert window.outstanding + buffered <= window.window_bytes <= window.max_bytes
        assert window.window_bytes >= window.min_bytes
        assert window.received <= window.granted
    return now


@given(
    rtt_ms=st.integers(1, 200),
    link_mb=st.integers(1, 200),
    speeds=st.lists(st.floats(1e4, 5e8), min_size=1, max_size=8),
    cap_mb=st.integers(1, 16),
)
def test_window_never_exceeded_whatever_the_reader_speed(
    rtt_ms: int, link_mb: int, speeds: list[float], cap_mb: int
) -> None:
    window = CreditWindow(initial_bytes=CHUNK * 4, min_bytes=CHUNK * 4, max_bytes=cap_mb << 20)
    window.max_bytes = max(window.max_bytes, window.window_bytes)
    simulate(
        rtt_s=rtt_ms / 1000,
        link_bytes_per_s=link_mb * 1e6,
        reader_bytes_per_s=speeds,
        total=3 << 20,
        window=window,
    )


def test_window_grows_to_the_bandwidth_delay_product_and_not_beyond_the_cap() -> None:
    # 100 MB/s x 50 ms = 5 MB; a fast reader. The window should approach 2 x BDP, capped at 8 MiB.
    window = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=8 << 20)
    simulate(
        rtt_s=0.05,
        link_bytes_per_s=100e6,
        reader_bytes_per_s=[1e10],
        total=200 << 20,
        window=window,
    )
    assert window.window_bytes == 8 << 20
    assert window.min_rtt_s == pytest.approx(0.05, rel=0.1)
    small = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=64 << 20)
    simulate(
        rtt_s=0.01, link_bytes_per_s=20e6, reader_bytes_per_s=[1e10], total=100 << 20, window=small
    )
    # BDP = 200 kB: the 1 MiB window already covers it, so no growth is needed.
    assert small.window_bytes <= 2 << 20


def test_a_window_limited_transfer_gets_faster_as_the_window_grows() -> None:
    fixed = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=1 << 20)
    adaptive = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=32 << 20)
    kwargs = {"rtt_s": 0.1, "link_bytes_per_s": 100e6, "reader_bytes_per_s": [1e10]}
    t_fixed = simulate(total=100 << 20, window=fixed, **kwargs)  # type: ignore[arg-type]
    t_adaptive = simulate(total=100 << 20, window=adaptive, **kwargs)  # type: ignore[arg-type]
    assert t_adaptive < t_fixed / 4


def test_slow_reader_does_not_grow_the_window() -> None:
    window = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=32 << 20)
    simulate(
        rtt_s=0.05, link_bytes_per_s=100e6, reader_bytes_per_s=[1e6], total=8 << 20, window=window
    )
    assert window.window_bytes == 1 << 20


def test_overrun_is_a_flow_control_error() -> None:
    window = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=1 << 20)
    window.grant(1000, 0.0)
    window.on_data(1000, 0.1)
    with pytest.raises(FlowControlError):
        window.on_data(1, 0.2)


def test_send_credit_rejects_bad_grants_and_never_lets_a_chunk_overrun() -> None:
    credit = SendCredit()
    for bad in (0, -5, 1 << 60):
        with pytest.raises(FlowControlError):
            credit.add(bad)
    credit.add(100)
    assert credit.can_send(100) and not credit.can_send(101)
    credit.consume(60)
    with pytest.raises(AssertionError):
        credit.consume(41)


def test_credit_is_granted_in_batches_not_per_byte() -> None:
    window = CreditWindow(initial_bytes=1 << 20, min_bytes=1 << 20, max_bytes=1 << 20)
    first = window.credit_to_grant(0)
    assert first == 1 << 20
    window.grant(first, 0.0)
    window.on_data(1000, 0.01)
    assert window.credit_to_grant(0) == 0  # 1000 bytes free: not worth a message
    window.on_data(300_000, 0.02)
    assert window.credit_to_grant(0) == 301_000


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        CreditWindow(initial_bytes=10, min_bytes=20, max_bytes=30)
