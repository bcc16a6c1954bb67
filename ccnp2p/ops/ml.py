"""ML operators on tiny transformers: ``tokenize``, ``init_model``, ``embed``, ``forward``.

A pipeline reads as calcs: ``forward(init_model(seed, ...), embed(init_model(...),
tokenize(text)))``. Formats (see :mod:`ccnp2p.ops.tensors`): token streams are ``I32`` rows of
width 1, embeddings and activations ``F32`` rows of width ``d_model``, models safetensors blobs
as described in :mod:`ccnp2p.ops.transformer`.

Torch is imported only inside the methods that compute, and all torch work runs in a trio worker
thread so a node's event loop keeps serving while a layer computes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np

from ccnp2p.compute.api import (
    InputStream,
    OperatorSpec,
    OutputStream,
    ParamError,
    Resume,
    RunContext,
)
from ccnp2p.errors import DecodeError
from ccnp2p.ops.base import BuiltinOperator
from ccnp2p.ops.params import (
    READ_BYTES,
    WRITE_BYTES,
    check_keys,
    get_choice,
    get_int,
    write_pieces,
)
from ccnp2p.ops.tensors import (
    decode_safetensors,
    encode_safetensors,
    iter_rows,
    read_safetensors,
    rows_to_bytes,
)
from ccnp2p.ops.transformer import ModelConfig, check_weights
from ccnp2p.store.aio import run_blocking

if TYPE_CHECKING:
    import torch

MAX_VOCAB_ENTRIES: Final = 4096
MAX_TOKEN_BYTES: Final = 32
STATE_FORMAT: Final = "ccnp2p.forward-state/1"

# Helper modules whose source is part of these operators' code hash (see ops/base.py).
_CODE_MODULES: Final = ("ccnp2p.ops.params", "ccnp2p.ops.tensors", "ccnp2p.ops.transformer")


def _vocab_table(params: dict[str, Any]) -> dict[bytes, int]:
    """The ``vocab`` param as {token bytes: id}; multi-byte tokens get ids from 256 up."""
    vocab = params.get("vocab", [])
    if not isinstance(vocab, list) or len(vocab) > MAX_VOCAB_ENTRIES:
        raise ParamError(f"param 'vocab' must be a list of at most {MAX_VOCAB_ENTRIES} strings")
    table: dict[bytes, int] = {}
    for index, token in enumerate(vocab):
        raw = token.encode("utf-8") if isinstance(token, str) else b""
        if not 2 <= len(raw) <= MAX_TOKEN_BYTES or raw in table:
            raise ParamError(f"vocab entry {index} must be a new string of 2..32 UTF-8 bytes")
        table[raw] = 256 + index
    return table


def greedy_tokens(data: bytes, table: dict[bytes, int], final: bool) -> tuple[list[int], int]:
    """Longest-match tokens of ``data``; returns ids and how many bytes they cover.

    Unless ``final``, stops where a longer token could still continue into unread bytes, so
    chunked and whole-input tokenization agree.
    """
    lengths = sorted({len(t) for t in table}, reverse=True)
    horizon = len(data) if final else len(data) - (lengths[0] if lengths else 1) + 1
    ids: list[int] = []
    pos = 0
    while pos < horizon:
        for length in lengths:
            found = table.get(data[pos : pos + length])
            if found is not None:
                ids.append(found)
                pos += length
                break
        else:
            ids.append(data[pos])
            pos += 1
    return ids, pos


class Tokenize(BuiltinOperator):
    """Text to ``I32`` token ids: bytes (id = byte value) plus an optional fixed vocabulary.

    Params: ``vocab`` (optional list of 2..32-byte strings, at most 4096; entry ``i`` has id
    ``256 + i`` and the longest entry matching at each position wins, else the single byte).
    A model for it needs ``vocab >= 256 + len(vocab)``.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="tokenize",
        version="1",
        output={"per_mille": 4000},  # an I32 id per byte at most
    )
    impl_id: ClassVar[str] = "builtin:tokenize@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("vocab",))
        _vocab_table(params)

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        table = _vocab_table(params)
        pending = b""
        while True:
            chunk = await inputs[0].read(READ_BYTES)
            pending += chunk
            if table:
                ids, used = greedy_tokens(pending, table, final=not chunk)
                encoded = np.array(ids, dtype="<i4").tobytes()
                pending = pending[used:]
            else:
                encoded = np.frombuffer(pending, dtype=np.uint8).astype("<i4").tobytes()
                pending = b""
            if encoded:
                await out.write(encoded)
            if not chunk:
                return


class InitModel(BuiltinOperator):
    """A freshly initialised model as a safetensors blob (no inputs).

    Params: ``seed`` (int >= 0) and the architecture ``vocab``, ``d_model``, ``n_layers``,
    ``n_heads``, ``d_ff``, ``max_len`` (see :class:`~ccnp2p.ops.transformer.ModelConfig`).
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="init_model", version="1", affinity="result", min_inputs=0, max_inputs=0
    )
    impl_id: ClassVar[str] = "builtin:init_model@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("seed", "vocab", "d_model", "n_layers", "n_heads", "d_ff", "max_len"))
        get_int(params, "seed", lo=0, hi=2**63 - 1)
        ModelConfig.from_params(params)

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        seed = get_int(params, "seed", lo=0, hi=2**63 - 1)
        config = ModelConfig.from_params(params)
        await write_pieces(out, await run_blocking(_init_blob, config, seed))


class Embed(BuiltinOperator):
    """Token ids (input 2) to their embedding rows in the model (input 1): ``F32 [n, d]``.

    Pure table lookup (no positions: ``forward`` adds them per window). An id outside the
    model's vocabulary is a decode error.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="embed",
        version="1",
        affinity="result",
        min_inputs=2,
        max_inputs=2,
        resources={"gpu_memory": 1 << 28},  # placement prefers an accelerator (runs on CPU too)
    )
    impl_id: ClassVar[str] = "builtin:embed@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ())

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        blob = await read_safetensors(inputs[0])
        config = check_weights(blob)
        table = blob.tensors["tok_emb"]
        per_block = max(1, WRITE_BYTES // (4 * config.d_model))
        async for ids in iter_rows(inputs[1], "I32", 1, block_bytes=4 * per_block):
            flat = ids[:, 0]
            if flat.size and (flat.min() < 0 or flat.max() >= config.vocab):
                raise DecodeError(f"token id outside the model's vocabulary of {config.vocab}")
            await out.write(rows_to_bytes(table[flat], "F32"))


class Forward(BuiltinOperator):
    """Runs the model over embeddings (input 2), one window of ``window`` rows at a time.

    Params: ``window`` (1..max_len rows; the last window may be shorter), ``output``
    (``"hidden"``, default: final-LayerNorm states ``F32 [n, d]``; ``"logits"``: ``F32 [n,
    vocab]``). Windows are independent (positions restart at 0), so output streams window by
    window. Seekable: step ``w * n_layers + l`` is "layer ``l`` of window ``w`` done", its state
    the activations after that layer (safetensors ``x``); a window's output is written before
    its last step is reported.
    """

    spec: ClassVar[OperatorSpec] = OperatorSpec(
        name="forward",
        version="1",
        affinity="result",
        seek=True,
        min_inputs=2,
        max_inputs=2,
        checkpoint_every=4,
        resources={"cpu": 1, "memory": 1 << 30, "gpu_memory": 1 << 30},
    )
    impl_id: ClassVar[str] = "builtin:forward@1"
    code_modules: ClassVar[tuple[str, ...]] = _CODE_MODULES

    def check_params(self, params: dict[str, Any], n_inputs: int) -> None:
        super().check_params(params, n_inputs)
        check_keys(params, ("window", "output"))
        get_int(params, "window", lo=1, hi=4096)
        get_choice(params, "output", ("hidden", "logits"), default="hidden")

    async def run(
        self, inputs: list[InputStream], params: dict[str, Any], out: OutputStream, ctx: RunContext
    ) -> None:
        from ccnp2p.ops.transformer import to_torch

        blob = await read_safetensors(inputs[0])
        config = check_weights(blob)
        window = get_int(params, "window", lo=1, hi=config.max_len)
        logits = get_choice(params, "output", ("hidden", "logits"), default="hidden") == "logits"
        config.check_activations(1, window, training=False)
        weights = to_torch(blob, config)
        first_window, first_layer = 0, 0
        if ctx.resume is not None:
            first_window, done = divmod(ctx.resume.step, config.n_layers)
            first_layer = done + 1  # n_layers: the window is complete, only its input is skipped
        row_bytes = 4 * config.d_model
        rows = iter_rows(
            inputs[1],
            "F32",
            config.d_model,
            block_bytes=window * row_bytes,
            skip_rows=first_window * window,
        )
        index = first_window
        async for block in rows:
            if first_layer:
                x = _resumed_state(ctx.resume, block.shape)
            else:
                x = await run_blocking(_embed_window, weights, block)
            await self._window(weights, config, index, first_layer, x, logits, out, ctx)
            index += 1
            first_layer = 0
        if ctx.resume is not None and index == first_window:
            raise DecodeError("checkpoint step is past the end of the input")

    @staticmethod
    async def _window(
        weights: dict[str, torch.Tensor],
        config: ModelConfig,
        index: int,
        first_layer: int,
        x: torch.Tensor,
        logits: bool,
        out: OutputStream,
        ctx: RunContext,
    ) -> None:
        """Layers ``first_layer..`` of window ``index``, one step each; the output at the end."""
        last = config.n_layers - 1
        for layer_index in range(first_layer, config.n_layers):
            x = await run_blocking(_layer, weights, config, layer_index, x)
            if layer_index == last:
                y = await run_blocking(_head, weights, config, x, logits)
                await write_pieces(out, rows_to_bytes(y, "F32"))
            step = index * config.n_layers + layer_index
            await ctx.step_done(step, functools.partial(_encode_state, x, step))


def _init_blob(config: ModelConfig, seed: int) -> bytes:
    from ccnp2p.ops.transformer import init_weights, to_numpy

    return encode_safetensors(to_numpy(init_weights(config, seed)), config.metadata())


def _embed_window(weights: dict[str, torch.Tensor], block: np.ndarray[Any, Any]) -> torch.Tensor:
    import torch

    return torch.tensor(np.array(block)) + weights["pos_emb"][: len(block)]


def _layer(
    w: dict[str, torch.Tensor], config: ModelConfig, i: int, x: torch.Tensor
) -> torch.Tensor:
    import torch

    from ccnp2p.ops.transformer import deterministic_torch, layer

    deterministic_torch()
    with torch.inference_mode():
        return layer(w, config, i, x)


def _head(
    w: dict[str, torch.Tensor], config: ModelConfig, x: torch.Tensor, logits: bool
) -> np.ndarray[Any, Any]:
    import torch

    from ccnp2p.ops.transformer import deterministic_torch, head

    deterministic_torch()
    with torch.inference_mode():
        return head(w, config, x, logits).numpy()


def _encode_state(x: torch.Tensor, step: int) -> bytes:
    return encode_safetensors({"x": x.numpy()}, {"format": STATE_FORMAT, "step": str(step)})


def _resumed_state(resume: Resume | None, shape: tuple[int, ...]) -> torch.Tensor:
    """The activations a checkpoint resumes from, checked against the window being resumed."""
    import torch

    assert resume is not None
    state = decode_safetensors(resume.state)
    x = state.tensors.get("x")
    if state.metadata != {"format": STATE_FORMAT, "step": str(resume.step)} or set(
        state.tensors
    ) != {"x"}:
        raise DecodeError("checkpoint is not a forward state for this step")
    if x is None or x.dtype != np.dtype("<f4") or x.shape != shape:
        raise DecodeError(f"checkpoint activations must be F32 {shape}")
    return torch.tensor(np.array(x))
