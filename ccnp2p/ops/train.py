"""The ``train`` operator: a few deterministic steps of next-token training, seekable by step.

Inputs: a model (safetensors weights, :mod:`ccnp2p.ops.transformer`) and a token stream
(``I32`` rows). Every step draws ``batch`` windows of ``seq_len + 1`` tokens at positions chosen
by a generator seeded from ``(seed, step)`` alone, so no random state has to be carried between
steps or stored in checkpoints, and a resumed run draws exactly what the uninterrupted run drew.

Output (param ``output``):

* ``"log"`` (default): one JSON line per step, ``{"loss":<float>,"step":<n>}`` with keys
  sorted, the loss being the float32 batch loss *before* that step's update written with
  Python's shortest round-trip ``repr``; so the bytes are a pure function of the float32 value.
* ``"weights"``: nothing per step, then the trained model as a safetensors blob.

Checkpoints (step ``k`` = "``k + 1`` steps done"): a safetensors blob holding ``model.<name>``
weights and, for Adam, ``adam.m.<name>``/``adam.v.<name>`` moments, with the step in its
metadata. Weights and moments are float32 and round-trip exactly, so resuming reproduces the
uninterrupted run bit for bit. The optimisers are written out here (not ``torch.optim``) so
their whole state is explicit and serialisable without pickle.

The token stream is read whole (random windows need random access), bounded by
:data:`MAX_TRAIN_TOKENS`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np

from ccnp2p.compute.api import (
    InputStream,
    OperatorSpec,
    OutputStream,
    ParamError,
    RunContext,
)
from ccnp2p.errors import DecodeError, LocalError
from ccnp2p.ops.base import BuiltinOperator
from ccnp2p.ops.params import check_keys, get_choice, get_float, get_int, write_pieces
from ccnp2p.ops.tensors import decode_safetensors, encode_safetensors, read_safetensors
from ccnp2p.ops.transformer import ModelConfig, check_weights
from ccnp2p.store.aio import run_blocking

if TYPE_CHECKING:
    import torch

MAX_TRAIN_TOKENS: Final = 4 * 1024 * 1024
MAX_STEPS: Final = 100_000
ADAM_BETAS: Final = (0.9, 0.999)
ADAM_EPS: Final = 1e-8
STATE_FORMAT: Final = "ccnp2p.train-state/1"
_PARAMS: Final = ("steps", "seq_len", "batch", "lr", "optimizer", "seed", "output")

# Helper modules whose source is part of these operators' code hash (see ops/base.py).
_CODE_MODULES: Final = ("ccnp2p.ops.params", "ccnp2p.ops.tensors", "ccnp2p.ops.transformer")


def step_seed(seed: int, step: int) -> int:
    """A 63-bit generator seed for one step, independent of every other step's."""
    digest = hashlib.sha256(f"ccnp2p.train/{seed}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class _Trainer:
    """Model and optimizer state, advanced one step at a time (runs in a worker thread)."""

    def __init__(
        self, config: ModelConfig, weights: dict[str, torch.Tensor], params: dict[str, Any]
    ) -> None:
        import torch

        self.config = config
        self.weights = {n: t.requires_grad_(True) for n, t in weights.items()}
        self.adam = get_choice(params, "optimizer", ("adam", "sgd"), default="adam") == "adam"
        self.moments = {
            f"adam.{which}.{n}": torch.zeros_like(t)
            for which in ("m", "v")
            for n, t in weights.items()
            if self.adam
        }
        self.lr = get_float(params, "lr", default=1e-3, lo=0.0, hi=10.0)
        self.seed = get_int(params, "seed", default=0, lo=0, hi=2**63 - 1)
        self.seq_len = get_int(params, "seq_len", lo=1, hi=config.max_len)
        self.batch = get_int(params, "batch", default=4, lo=1, hi=256)
        self.done = 0  # steps applied to the weights

    def step(self, step: int, tokens: torch.Tensor) -> float:
        """One update from the batch drawn for ``step``; returns the loss before it."""
        import torch

        from ccnp2p.ops.transformer import deterministic_torch, lm_loss

        deterministic_torch()
        generator = torch.Generator(device="cpu").manual_seed(step_seed(self.seed, step))
        span = len(tokens) - self.seq_len
        starts = torch.randint(0, span, (self.batch,), generator=generator)
        batch = tokens[starts[:, None] + torch.arange(self.seq_len + 1)]
        for tensor in self.weights.values():
            tensor.grad = None
        loss = lm_loss(self.weights, self.config, batch)
        torch.autograd.backward(loss)
        with torch.no_grad():
            for name, tensor in self.weights.items():
                assert tensor.grad is not None
                self._update(name, tensor, tensor.grad, step + 1)
        self.done = step + 1
        return float(loss.detach())

    def _update(self, name: str, p: torch.Tensor, grad: torch.Tensor, t: int) -> None:
        if not self.adam:
            p.sub_(grad, alpha=self.lr)
            return
        (b1, b2) = ADAM_BETAS
        m, v = self.moments[f"adam.m.{name}"], self.moments[f"adam.v.{name}"]
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(ADAM_EPS)
        p.addcdiv_(m, denom, value=-self.lr / (1 - b1**t))

    def state(self, step: int) -> bytes:
        """Snapshot after ``step``; only valid until the next step mutates the weights."""
        from ccnp2p.ops.transformer import to_numpy

        if self.done != step + 1:
            raise LocalError(f"state of step {step} requested after the run moved on")

        arrays = to_numpy(self.weights, "model.") | to_numpy(self.moments)
        return encode_safetensors(arrays, {"format": STATE_FORMAT, "step": str(step)})

    def restore(self, step: int, state: bytes) -> None:
        """Load a checkpoint of ``step``, checking it belongs to this model and optimizer."""
        import torch

        blob = decode_safetensors(state)
        if blob.metadata != {"format": STATE_FORMAT, "step": str(step)}:
            raise DecodeError("checkpoint is not a train state for this step")
        check_weights(blob, "model.", self.config)
        expected = set(self.moments) | {"model." + n for n in self.weights}
        if set(blob.tensors) != expected:
            raise DecodeError("checkpoint optimizer state does not match the optimizer")
        for name in self.moments:
            if blob.tensors[name].shape != tuple(self.moments[name].shape):
                raise DecodeError(f"checkpoint tensor {name!r} has the wrong shape")
            self.moments[name] = torch.tensor(np.array(blob.tensors[name], dtype="<f4"))
        for name in self.weights:
            array = np.array(blob.tensors["model." + name])
            self.weights[name] = torch.tensor(array).requires_grad_(True)
        self.done = step + 1

    def model_blob(self) -> bytes:
        from ccnp2p.ops.transformer import to_numpy

        return encode_safetensors(to_numpy(self.weights), self.config.metadata())


class Train(BuiltinOperator):
    """Next-token training of a model (input 1) on a token stream (input 2).

    Params: ``steps`` (1..100000), ``seq_len`` (1..max_len), ``batch`` (1..256, default 4),
    ``lr`` (0..10, default 0.001), ``optimizer`` (``"adam"`` default, or ``"sgd"``), ``seed``
    (default 0), ``output`` (``"log"`` default, or ``"weights"``). The token stream must hold
    more than ``seq_len`` tokens, each below the model's vocabulary size.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="train",
        version="1",
        affinity="result",
        seek=True,
        min_inputs=2,
        max_inputs=2,
        checkpoint_every=10,
        resources={"cpu": 1, "memory": 2 << 30, "gpu_memory": 2 << 30},
    )
    impl_id: ClassVar[str] = "builtin:train@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, _PARAMS)
        get_int(params, "steps", lo=1, hi=MAX_STEPS)
        get_int(params, "seq_len", lo=1, hi=4096)
        get_int(params, "batch", default=4, lo=1, hi=256)
        get_float(params, "lr", default=1e-3, lo=0.0, hi=10.0)
        get_choice(params, "optimizer", ("adam", "sgd"), default="adam")
        get_int(params, "seed", default=0, lo=0, hi=2**63 - 1)
        get_choice(params, "output", ("log", "weights"), default="log")

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        from ccnp2p.ops.transformer import to_torch

        blob = await read_safetensors(inputs[0])
        config = check_weights(blob)
        tokens = await _read_tokens(inputs[1], config)
        trainer = _Trainer(config, to_torch(blob, config), params)
        config.check_activations(trainer.batch, trainer.seq_len, training=True)
        if len(tokens) <= trainer.seq_len:
            raise ParamError(f"train needs more than seq_len={trainer.seq_len} tokens")
        log = get_choice(params, "output", ("log", "weights"), default="log") == "log"
        first = 0
        if ctx.resume is not None:
            trainer.restore(ctx.resume.step, ctx.resume.state)
            first = ctx.resume.step + 1
        for step in range(first, get_int(params, "steps", lo=1, hi=MAX_STEPS)):
            loss = await run_blocking(trainer.step, step, tokens)
            if log:
                record = {"loss": float(np.float32(loss)), "step": step + 1}
                line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
                await out.write(line.encode())
            await ctx.step_done(step, functools.partial(trainer.state, step))
        if not log:
            await write_pieces(out, await run_blocking(trainer.model_blob))


async def _read_tokens(stream: InputStream, config: ModelConfig) -> torch.Tensor:
    """The whole token stream (bounded) as int64 ids, checked against the vocabulary."""
    import torch

    try:
        data = await stream.read_all(4 * MAX_TRAIN_TOKENS)
    except LocalError as exc:
        raise DecodeError(f"token stream longer than {MAX_TRAIN_TOKENS} tokens") from exc
    if len(data) % 4:
        raise DecodeError("token stream ends inside a token")
    ids = np.frombuffer(data, dtype="<i4").astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= config.vocab):
        raise DecodeError(f"token id outside the model's vocabulary of {config.vocab}")
    return torch.from_numpy(ids)
