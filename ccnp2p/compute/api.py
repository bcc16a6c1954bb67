"""The operator implementation interface: what installed code must provide to run as an operator.

An *operator object* (:class:`ccnp2p.objects.Operator`) names an implementation (``impl``) and the
hash of its code; an :class:`OperatorImpl` is that implementation, installed on this node
(built-ins in :mod:`ccnp2p.ops`, or other packages through the ``ccnp2p.operators`` entry point
group). A node runs an operator CID only if it has the implementation and the code hash matches.

Execution model: streams of bytes in, a stream of bytes out, pulled by the reader.

* Each input is an :class:`InputStream`: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the
  end; ``read_exactly(n)`` and ``read_all(limit)`` are conveniences. Inputs are themselves
  resolved lazily (an input may be another calc, computed on demand elsewhere).
* Output goes to an :class:`OutputStream`; ``await write(data)`` blocks while the consumers have
  not granted credit, so an operator never runs further ahead than its readers allow.
* ``params`` are the calc's DAG-CBOR params (validated by :meth:`OperatorImpl.check_params`).
* Seekable operators (``spec.seek``) work in *steps*: they call ``await ctx.step_done(step,
  state)`` after each step; ``state`` is a callable returning the snapshot bytes, invoked only
  when the executor decides to checkpoint. To resume, the executor passes ``ctx.resume`` (a step
  and its snapshot bytes) and the operator continues after that step, producing the same bytes
  an uninterrupted run would.

Nothing here is ever received from the network as code: a calc only *names* an operator.
"""

from __future__ import annotations

import hashlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from ccnp2p.errors import LocalError

Affinity = Literal["source", "result"]


class ParamError(LocalError):
    """A calc's params are not valid for its operator."""

    code = "bad-params"


class InputTooLarge(LocalError):
    """An input is larger than an operator's ``read_all`` limit."""

    code = "input-too-large"


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """What an implementation declares about itself (copied into its operator object)."""

    name: str
    version: str
    affinity: Affinity = "source"
    stream: bool = True
    seek: bool = False
    deterministic: bool = True
    commutative: bool = False
    resources: dict[str, int] = field(default_factory=dict)  # cpu, memory, gpu_memory
    author_share: int = 0  # basis points
    min_inputs: int = 1
    max_inputs: int = 1
    checkpoint_every: int = 0  # steps between checkpoints (seekable operators)
    output: dict[str, int | str] = field(default_factory=dict)  # see ccnp2p.objects.sizing


class InputStream(Protocol):
    """One input of a running operator (a stored file or another calc's live output)."""

    @property
    def size(self) -> int | None:
        """Total bytes if known in advance (stored files), None for a live stream."""
        ...

    async def read(self, max_bytes: int = 262144) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at the end."""
        ...

    async def read_exactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or fewer only at the end of the input."""
        ...

    async def read_all(self, limit: int) -> bytes:
        """Everything (raises :class:`LocalError` past ``limit`` bytes)."""
        ...


class OutputStream(Protocol):
    async def write(self, data: bytes) -> None:
        """Append to the output; blocks while consumers have no credit left."""
        ...


@dataclass(frozen=True, slots=True)
class Resume:
    step: int
    state: bytes


class RunContext(Protocol):
    """What a running operator sees besides its inputs and output."""

    @property
    def resume(self) -> Resume | None: ...

    async def step_done(self, step: int, state: Callable[[], bytes]) -> None:
        """Report that ``step`` finished; the executor may checkpoint ``state()``."""
        ...


class OperatorImpl(ABC):
    """Base class for installed operator implementations.

    Subclasses set ``spec`` and ``impl_id`` and implement :meth:`run` (and usually
    :meth:`check_params`). :meth:`code_hash` hashes the subclass's source, so changing the code
    changes the operator object and thus every calc CID built on it.
    """

    spec: ClassVar[OperatorSpec]
    impl_id: ClassVar[str]

    @classmethod
    def code_hash(cls) -> bytes:
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):  # e.g. frozen apps: fall back to the qualified name
            source = f"{cls.__module__}.{cls.__qualname__}"
        return hashlib.sha256(source.encode()).digest()

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        """Raise :class:`ParamError` for params this operator cannot run with."""
        if not self.spec.min_inputs <= n_inputs <= self.spec.max_inputs:
            raise ParamError(
                f"{self.spec.name} takes {self.spec.min_inputs}..{self.spec.max_inputs} inputs, "
                f"not {n_inputs}"
            )

    @abstractmethod
    async def run(
        self,
        inputs: list[InputStream],
        params: dict[str, Any],
        out: OutputStream,
        ctx: RunContext,
    ) -> None:
        """Read the inputs, write the output; report steps to ``ctx`` if seekable."""


RunFn = Callable[[list[InputStream], dict[str, Any], OutputStream, RunContext], Awaitable[None]]
