"""A terminal progress bar on stderr (shown only when stderr is a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Bytes done of total, rate, and an optional status (e.g. peers); redraws at most 10x/s."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self.status = ""
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = self._stream.isatty()
        self._start = time.monotonic()
        self._last_draw = 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * 30)
            head = f"{self.label} [{bar:<30}] {frac * 100:5.1f}% {_human(self.done)}"
            head += f"/{_human(self.total)}"
        else:
            head = f"{self.label} {_human(self.done)}"
        line = f"\r{head} {_human(rate)}/s {self.status}"
        self._stream.write(line[:200].ljust(80))
        self._stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
