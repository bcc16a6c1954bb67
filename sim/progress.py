"""A one-line progress bar on stderr, shown only when stderr is a terminal.

It is drawn from :meth:`sim.recorder.Recorder.add` (throttled by wall time), never from a trio
task of its own: an extra task would add scheduling batches and so change the run, and a run
must give the same results whether or not anyone watches it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_S = 0.2


class Progress:
    """Draws ``[####---] phase  t/total sim s  wall s  sim s per wall s  events``."""

    def __init__(self, stream: TextIO | None = None, *, force: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.phase = "setup"
        self.start_s = 0.0
        self.total_s = 0.0
        self._wall0 = time.perf_counter()
        self._last_draw = -REDRAW_S

    def set_phase(self, phase: str, start_s: float, total_s: float) -> None:
        self.phase, self.start_s, self.total_s = phase, start_s, total_s
        self._wall0 = time.perf_counter()

    def tick(self, now_s: float, events: int) -> None:
        if not self.enabled:
            return
        wall = time.perf_counter()  # display only; never reaches the results
        if wall - self._last_draw < REDRAW_S:
            return
        self._last_draw = wall
        done = now_s - self.start_s
        frac = min(max(done / self.total_s, 0.0), 1.0) if self.total_s > 0 else 0.0
        filled = int(frac * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        elapsed = wall - self._wall0
        speed = done / elapsed if elapsed > 0 else 0.0
        self.stream.write(
            f"\r[{bar}] {self.phase:<9} {done:7.1f}/{self.total_s:.0f} sim s"
            f"  wall {elapsed:6.1f} s  {speed:6.2f} sim s/wall s  events {events}   "
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
