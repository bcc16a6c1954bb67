"""The tiny transformer behind the ML operators: configuration, weights, and the maths.

"The model" is a safetensors blob (usually the result of an ``init_model`` or ``train`` calc)
whose ``__metadata__`` holds its :class:`ModelConfig`. The architecture is a GPT-style causal
decoder with pre-LayerNorm blocks, learned absolute positions, exact (erf) GELU and an output
head tied to the token embedding. Weight names::

    tok_emb [vocab, d]            pos_emb [max_len, d]          ln_f.{weight,bias} [d]
    layers.{i}.ln1.{weight,bias} [d]     layers.{i}.attn.qkv.weight [3d, d]  .bias [3d]
    layers.{i}.attn.out.weight [d, d]  .bias [d]    layers.{i}.ln2.{weight,bias} [d]
    layers.{i}.mlp.fc1.weight [d_ff, d]  .bias [d_ff]
    layers.{i}.mlp.fc2.weight [d, d_ff]  .bias [d]

Determinism: every function here runs on CPU in float32, through :func:`deterministic_torch`
(one intra-op thread, ``torch.use_deterministic_algorithms(True)``), with plain ops only (no
fused attention kernels whose choice could depend on the machine). Initial weights are drawn
*uniformly* from a seeded :class:`torch.Generator`: uniform draws are exact bit manipulations of
the Mersenne Twister output, while normal draws go through vectorised transcendental functions
whose rounding may differ between CPUs.

Torch is imported inside functions, so importing this module (and :mod:`ccnp2p.ops`) is cheap
on nodes that never run an ML operator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from ccnp2p.compute.api import ParamError
from ccnp2p.errors import DecodeError
from ccnp2p.ops.params import get_int
from ccnp2p.ops.tensors import SafeTensors

if TYPE_CHECKING:
    import torch

FORMAT: Final = "ccnp2p.tiny-transformer/1"
MAX_PARAMETERS: Final = 64 * 1024 * 1024
MAX_ACTIVATION_BYTES: Final = 1 << 30
"""Bound on the working memory of one forward window or one training batch."""
INIT_STD: Final = 0.02
LN_EPS: Final = 1e-5

_LIMITS: Final = {
    "vocab": (2, 65536),
    "d_model": (1, 1024),
    "n_layers": (1, 16),
    "n_heads": (1, 64),
    "d_ff": (1, 8192),
    "max_len": (1, 4096),
}


@dataclass(frozen=True, slots=True)
class ModelConfig:
    vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    max_len: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ModelConfig:
        """Validate architecture params (a :class:`ParamError` for anything out of bounds)."""
        values = {key: get_int(params, key, lo=lo, hi=hi) for key, (lo, hi) in _LIMITS.items()}
        config = cls(**values)
        if config.d_model % config.n_heads:
            raise ParamError("d_model must be a multiple of n_heads")
        if sum(math.prod(s) for s in config.shapes().values()) > MAX_PARAMETERS:
            raise ParamError(f"model has more than {MAX_PARAMETERS} parameters")
        return config

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> ModelConfig:
        """The config stored in a weights blob; a :class:`DecodeError` if it is not one."""
        if metadata.get("format") != FORMAT:
            raise DecodeError(f"weights are not in format {FORMAT!r}")
        try:
            values = {key: int(metadata[key]) for key in _LIMITS}
            return cls.from_params(values)
        except (KeyError, ValueError, ParamError) as exc:
            raise DecodeError(f"bad model config in weights metadata: {exc}") from exc

    def check_activations(self, batch: int, length: int, *, training: bool) -> None:
        """Refuse windows or batches whose activations would exceed :data:`MAX_ACTIVATION_BYTES`.

        Attention scores grow with the square of the length; training keeps every layer's
        activations for the backward pass, inference only one layer's.
        """
        per_layer = batch * length * (self.n_heads * length + 8 * self.d_model + 2 * self.d_ff)
        logits = batch * length * self.vocab
        layers = self.n_layers if training else 1
        if 4 * (per_layer * layers + logits) > MAX_ACTIVATION_BYTES:
            raise ParamError(f"windows of {length} x {batch} need too much memory for this model")

    def metadata(self) -> dict[str, str]:
        return {"format": FORMAT, **{k: str(v) for k, v in asdict(self).items()}}

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Every weight's shape, in the (fixed) order initialisation draws them."""
        d, f = self.d_model, self.d_ff
        shapes: dict[str, tuple[int, ...]] = {
            "tok_emb": (self.vocab, d),
            "pos_emb": (self.max_len, d),
        }
        for i in range(self.n_layers):
            p = f"layers.{i}."
            shapes |= {
                p + "ln1.weight": (d,),
                p + "ln1.bias": (d,),
                p + "attn.qkv.weight": (3 * d, d),
                p + "attn.qkv.bias": (3 * d,),
                p + "attn.out.weight": (d, d),
                p + "attn.out.bias": (d,),
                p + "ln2.weight": (d,),
                p + "ln2.bias": (d,),
                p + "mlp.fc1.weight": (f, d),
                p + "mlp.fc1.bias": (f,),
                p + "mlp.fc2.weight": (d, f),
                p + "mlp.fc2.bias": (d,),
            }
        return shapes | {"ln_f.weight": (d,), "ln_f.bias": (d,)}


def deterministic_torch() -> None:
    """Pin torch to its reproducible CPU path; call in the thread that computes.

    The thread count is set on every call because OpenMP keeps it per thread, and operators
    compute in trio worker threads.
    """
    import torch

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def check_weights(
    blob: SafeTensors, prefix: str = "", config: ModelConfig | None = None
) -> ModelConfig:
    """Check that ``blob`` holds exactly this model's F32 weights (names under ``prefix``)."""
    if config is None:
        config = ModelConfig.from_metadata(blob.metadata)
    expected = {prefix + name: shape for name, shape in config.shapes().items()}
    present = {k for k in blob.tensors if k.startswith(prefix)}
    if present != set(expected):
        missing = sorted(set(expected) - present)[:3]
        extra = sorted(present - set(expected))[:3]
        raise DecodeError(f"weights do not match the config (missing {missing}, extra {extra})")
    for name, shape in expected.items():
        array = blob.tensors[name]
        if array.dtype != np.dtype("<f4") or array.shape != shape:
            raise DecodeError(
                f"weight {name!r} must be F32 {shape}, not {array.dtype} {array.shape}"
            )
    return config


def to_torch(blob: SafeTensors, config: ModelConfig, prefix: str = "") -> dict[str, torch.Tensor]:
    """Copies of the weights under ``prefix`` as torch tensors (names without the prefix)."""
    import torch

    return {n: torch.tensor(np.array(blob.tensors[prefix + n])) for n in config.shapes()}


def to_numpy(
    tensors: Mapping[str, torch.Tensor], prefix: str = ""
) -> dict[str, np.ndarray[Any, Any]]:
    return {prefix + name: t.detach().numpy() for name, t in tensors.items()}


def init_weights(config: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """Weights drawn from ``seed``: uniform with std :data:`INIT_STD`, LayerNorms at identity."""
    import torch

    deterministic_torch()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    bound = INIT_STD * math.sqrt(3.0)
    weights: dict[str, torch.Tensor] = {}
    for name, shape in config.shapes().items():
        if name.endswith(".bias"):
            weights[name] = torch.zeros(shape)
        elif ".ln" in name or name.startswith("ln_f"):
            weights[name] = torch.ones(shape)
        else:
            weights[name] = torch.rand(shape, generator=generator) * (2 * bound) - bound
    return weights


def layer(
    w: Mapping[str, torch.Tensor], config: ModelConfig, i: int, x: torch.Tensor
) -> torch.Tensor:
    """One pre-LN decoder block over ``x`` of shape ``[..., T, d]`` (causal attention)."""
    import torch
    import torch.nn.functional as F

    p, d, heads = f"layers.{i}.", config.d_model, config.n_heads
    t = x.shape[-2]
    h = F.layer_norm(x, (d,), w[p + "ln1.weight"], w[p + "ln1.bias"], LN_EPS)
    q, k, v = F.linear(h, w[p + "attn.qkv.weight"], w[p + "attn.qkv.bias"]).chunk(3, dim=-1)
    q, k, v = (z.reshape(*z.shape[:-1], heads, d // heads).transpose(-3, -2) for z in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(d // heads))
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    attended = scores.masked_fill(future, float("-inf")).softmax(dim=-1) @ v
    y = attended.transpose(-3, -2).flatten(-2)
    x = x + F.linear(y, w[p + "attn.out.weight"], w[p + "attn.out.bias"])
    h = F.layer_norm(x, (d,), w[p + "ln2.weight"], w[p + "ln2.bias"], LN_EPS)
    h = F.gelu(F.linear(h, w[p + "mlp.fc1.weight"], w[p + "mlp.fc1.bias"]))
    return x + F.linear(h, w[p + "mlp.fc2.weight"], w[p + "mlp.fc2.bias"])


def head(
    w: Mapping[str, torch.Tensor], config: ModelConfig, x: torch.Tensor, logits: bool
) -> torch.Tensor:
    """Final LayerNorm, then (if ``logits``) the tied output projection to the vocabulary."""
    import torch.nn.functional as F

    h = F.layer_norm(x, (config.d_model,), w["ln_f.weight"], w["ln_f.bias"], LN_EPS)
    return F.linear(h, w["tok_emb"]) if logits else h


def lm_loss(
    w: Mapping[str, torch.Tensor], config: ModelConfig, batch: torch.Tensor
) -> torch.Tensor:
    """Mean next-token cross-entropy of ``batch`` ``[B, T + 1]`` (int64 token ids)."""
    import torch.nn.functional as F

    inputs, targets = batch[:, :-1], batch[:, 1:]
    x = w["tok_emb"][inputs] + w["pos_emb"][: inputs.shape[1]]
    for i in range(config.n_layers):
        x = layer(w, config, i, x)
    logits = head(w, config, x, logits=True)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
