"""HTTP Range parsing for the gateway (single ranges; RFC 9110 allows ignoring multi-range)."""

from __future__ import annotations


def parse_open_range(header: str | None) -> tuple[int, int | None] | None:
    """A ``bytes=start-[end]`` range when the total size is not known yet."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _sep, last = header.removeprefix("bytes=").strip().partition("-")
    try:
        start = int(first)
        stop = int(last) + 1 if last else None
    except ValueError:
        return None
    if start < 0 or (stop is not None and stop <= start):
        return None
    return (start, stop)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Parse a single ``bytes=`` range: None for the whole body, (-1, -1) if unsatisfiable.

    Returns (start, stop) with stop exclusive. Multiple ranges are answered with the whole body
    (allowed by RFC 9110).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header.removeprefix("bytes=").strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return (-1, -1)
            return (max(0, size - suffix), size)
        start = int(first)
        stop = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        return None
    if start >= size or stop <= start:
        return (-1, -1)
    return (start, stop)
