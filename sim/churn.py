"""Churn and scheduled events as a pure timeline, drawn before the run starts.

:func:`churn_timeline` gives every churning node alternating exponential up and down periods
(memoryless sessions, the usual model of peer-to-peer churn measurements) and returns one sorted
list of :class:`TimelineEntry`. Scheduled ``[[events]]`` that pick nodes at random (crash 10%
of the nodes at t=60) are resolved when they fire, against the nodes alive at that moment, so
they are kept as :class:`~sim.spec.EventSpec` entries in the same timeline.

Times are seconds from the start of the workload phase. Nothing here touches trio.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sim.spec import Action, ChurnSpec, EventSpec


@dataclass(frozen=True, slots=True, order=True)
class TimelineEntry:
    """One action at ``at_s``: on one node (churn) or as a scheduled event."""

    at_s: float
    seq: int  # tie-break: keeps the order stable and deterministic
    action: Action
    node: int = -1  # -1 for scheduled events, resolved at run time
    event: EventSpec | None = None
    silent: bool = True


def churn_timeline(
    spec: ChurnSpec,
    churnable: Sequence[int],
    duration_s: float,
    seed: int,
    events: Sequence[EventSpec] = (),
) -> list[TimelineEntry]:
    """The crash/restart schedule of ``spec.fraction`` of ``churnable`` plus ``events``."""
    rng = random.Random(f"churn:{seed}")
    count = round(spec.fraction * len(churnable))
    chosen = sorted(rng.sample(list(churnable), count)) if count else []
    raw: list[tuple[float, Action, int, EventSpec | None, bool]] = []
    for node in chosen:
        t = spec.start_s + rng.expovariate(1.0 / spec.mean_up_s)
        while t < duration_s:
            raw.append((t, Action.CRASH, node, None, spec.silent))
            t += rng.expovariate(1.0 / spec.mean_down_s)
            if t >= duration_s:
                break
            raw.append((t, Action.RESTART, node, None, spec.silent))
            t += rng.expovariate(1.0 / spec.mean_up_s)
    for event in events:
        if event.at_s < duration_s:
            raw.append((event.at_s, event.action, -1, event, event.silent))
    raw.sort(key=lambda r: (r[0], r[2]))
    return [
        TimelineEntry(at, i, action, node, event, silent)
        for i, (at, action, node, event, silent) in enumerate(raw)
    ]


def churning_nodes(timeline: Sequence[TimelineEntry]) -> list[int]:
    return sorted({e.node for e in timeline if e.node >= 0})
