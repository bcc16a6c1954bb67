"""What happened during a run: a flat list of events, later a CSV, a summary and plots.

Every row has the same columns (:data:`COLUMNS`) so one CSV holds lookups, fetches, crashes and
joins alike; unused columns stay empty. Times are virtual seconds since the start of the run.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sim.progress import Progress

COLUMNS: Final = (
    "t_s",
    "phase",
    "event",
    "node",
    "ok",
    "latency_s",
    "hops",
    "queried",
    "bytes",
    "value",
    "detail",
)


@dataclass(frozen=True, slots=True)
class Event:
    t_s: float
    phase: str
    event: str
    node: int = -1
    ok: bool | None = None
    latency_s: float | None = None
    hops: int | None = None
    queried: int | None = None
    nbytes: int | None = None
    value: float | None = None
    detail: str = ""

    def row(self) -> list[str]:
        def fmt(v: float | int | bool | None) -> str:
            if v is None:
                return ""
            if isinstance(v, bool):
                return "1" if v else "0"
            if isinstance(v, float):
                return f"{v:.6f}"
            return str(v)

        return [
            f"{self.t_s:.6f}",
            self.phase,
            self.event,
            str(self.node),
            fmt(self.ok),
            fmt(self.latency_s),
            fmt(self.hops),
            fmt(self.queried),
            fmt(self.nbytes),
            fmt(self.value),
            self.detail,
        ]


class Recorder:
    """Collects events; the current phase is stamped on each."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.events: list[Event] = []
        self.phase = "setup"
        self.progress = progress

    def add(self, t_s: float, event: str, node: int = -1, **fields: object) -> Event:
        ev = Event(t_s, self.phase, event, node, **fields)  # type: ignore[arg-type]
        self.events.append(ev)
        if self.progress is not None:
            self.progress.tick(t_s, len(self.events))
        return ev

    def of(self, event: str, phase: str | None = None) -> list[Event]:
        return [e for e in self.events if e.event == event and (phase is None or e.phase == phase)]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(f"{e.phase}.{e.event}" for e in self.events).items()))

    def write_csv(self, path: Path) -> None:
        write_events_csv(path, self.events)


def write_events_csv(path: Path, events: Iterable[Event]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        for event in events:
            writer.writerow(event.row())
