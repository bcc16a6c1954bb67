"""What a scenario does once the network stands: the :class:`Workload` plug-in interface.

A workload is named by ``scenario.kind`` and configured by the scenario's ``[workload]`` table.
The runner calls, in order:

1. :meth:`Workload.setup` after every node has joined (publish content, pick readers...);
2. :meth:`Workload.churnable` to learn which nodes churn and scheduled crashes may hit;
3. :meth:`Workload.run` for the measured phase, while the churn timeline plays beside it;
   operations go through :meth:`Workload.launch`, which runs them on their origin node (they
   die with it) and bounds how many are in flight;
4. :meth:`Workload.drain` to let in-flight operations finish;
5. :meth:`Workload.summarize` and :meth:`Workload.plots`.

Future scenarios (placement vs random, failover under crashes, many readers of one calc, bot
farm vs settlement) are new subclasses registered with :func:`register`; the world, churn,
outputs and determinism come for free.
"""

from __future__ import annotations

import dataclasses
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import trio

from ccnp2p.compute.registry import OperatorRegistry
from sim.spec import ScenarioSpec, SpecError
from sim.world import SimNode, World

DEFAULT_MAX_IN_FLIGHT = 4096

_REGISTRY: dict[str, type[Workload]] = {}
W = TypeVar("W", bound="type[Workload]")
P = TypeVar("P")


def register(kind: str) -> Callable[[W], W]:
    def deco(cls: W) -> W:
        _REGISTRY[kind] = cls
        cls.kind = kind
        return cls

    return deco


def workload_kinds() -> list[str]:
    return sorted(_REGISTRY)


def make_workload(spec: ScenarioSpec) -> Workload:
    try:
        cls = _REGISTRY[spec.kind]
    except KeyError:
        raise SpecError(
            f"unknown scenario kind {spec.kind!r} (known: {', '.join(workload_kinds())})"
        ) from None
    return cls(spec)


def parse_params(cls: type[P], values: dict[str, Any]) -> P:
    """Build a params dataclass from the ``[workload]`` table; unknown keys are errors."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - names
    if unknown:
        raise SpecError(f"unknown [workload] keys for {cls.__name__}: {', '.join(sorted(unknown))}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"[workload]: {exc}") from exc


class Workload(ABC):
    """Base class; see the module docstring for the life cycle."""

    kind: ClassVar[str] = ""

    def __init__(self, spec: ScenarioSpec) -> None:
        self.spec = spec
        self.rng = random.Random(f"workload:{spec.kind}:{spec.seed}")
        self.max_in_flight = DEFAULT_MAX_IN_FLIGHT
        self.in_flight = 0
        self.launched = 0
        self.skipped = 0
        self._idle = trio.Event()
        self._idle.set()

    # -- hooks --------------------------------------------------------------------------------

    def registry(self, sn: SimNode) -> OperatorRegistry | None:
        """The operators ``sn`` runs (None: the built-ins). Called before each incarnation."""
        return None

    async def setup(self, world: World) -> None:  # noqa: B027 - an optional hook
        """Prepare (publish content...) after the network has joined; nothing by default."""

    def churnable(self, world: World) -> list[int]:
        """Nodes churn and random crashes may hit: by default all but the bootstrap seeds."""
        seeds = set(world.seeds)
        return [sn.index for sn in world.nodes if sn.index not in seeds]

    @abstractmethod
    async def run(self, world: World, duration_s: float) -> None:
        """Drive the measured phase for ``duration_s`` virtual seconds."""

    @abstractmethod
    def summarize(self, world: World) -> dict[str, Any]:
        """The workload's part of ``summary.json``."""

    def plots(self, world: World, out_dir: Path) -> list[Path]:
        return []

    @property
    def drain_s(self) -> float:
        """Longest an operation may still run after the measured phase."""
        return 60.0

    # -- helpers ------------------------------------------------------------------------------

    async def poisson(
        self, world: World, rate_per_s: float, duration_s: float, fire: Callable[[], None]
    ) -> None:
        """Call ``fire()`` at Poisson arrival times for ``duration_s`` virtual seconds."""
        if rate_per_s <= 0:
            await trio.sleep(duration_s)
            return
        start = world.now()
        end = start + duration_s
        t = start
        while True:
            t += self.rng.expovariate(rate_per_s)
            if t >= end:
                break
            await trio.sleep_until(t)
            fire()
        await trio.sleep_until(end)

    def launch(self, world: World, sn: SimNode, op: Callable[[], Awaitable[None]]) -> bool:
        """Run ``op`` on ``sn`` (cancelled if it crashes); False if skipped."""
        if self.in_flight >= self.max_in_flight:
            self.skipped += 1
            return False

        async def wrapped() -> None:
            try:
                await op()
            finally:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self._idle.set()

        if not world.spawn(sn, wrapped):
            self.skipped += 1
            return False
        if self.in_flight == 0:
            self._idle = trio.Event()
        self.in_flight += 1
        self.launched += 1
        return True

    async def drain(self) -> None:
        with trio.move_on_after(self.drain_s):
            await self._idle.wait()
