from __future__ import annotations

import hashlib
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from ccnp2p.compute.api import ParamError, Resume
from ccnp2p.errors import DecodeError
from ccnp2p.ops import Embed, Forward, InitModel, Tokenize
from ccnp2p.ops.tensors import decode_safetensors, encode_safetensors
from ccnp2p.ops.transformer import ModelConfig
from tests.ops.helpers import MODEL, run_op


def test_importing_ops_does_not_import_torch() -> None:
    code = (
        "import sys, ccnp2p.ops as o; [i.code_hash() for i in o.builtin_operators()]; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _reference_tokens(data: bytes, vocab: list[str]) -> list[int]:
    table = {t.encode(): 256 + i for i, t in enumerate(vocab)}
    ids, pos = [], 0
    while pos < len(data):
        for length in range(32, 1, -1):
            if data[pos : pos + length] in table:
                ids.append(table[data[pos : pos + length]])
                pos += length
                break
        else:
            ids.append(data[pos])
            pos += 1
    return ids


@given(
    st.lists(st.sampled_from([b"a", b"b", b"ab", b"abc", b"c", b"\xff"]), max_size=60).map(
        b"".join
    ),
    st.sampled_from([[], ["ab"], ["ab", "abc", "bca"], ["aa", "aaa", "bb"]]),
)
async def test_tokenize_matches_greedy_reference(data: bytes, vocab: list[str]) -> None:
    result = await run_op(Tokenize(), [data], {"vocab": vocab}, chunky=True)
    assert np.frombuffer(result.output, "<i4").tolist() == _reference_tokens(data, vocab)


async def test_tokenize_bytes_streams(tokens: bytes) -> None:
    data = bytes(range(256)) * 1000
    result = await run_op(Tokenize(), [data])
    assert result.output == np.frombuffer(data, np.uint8).astype("<i4").tobytes()
    assert len(result.pieces) > 1
    assert max(np.frombuffer(tokens, "<i4")) >= 256  # the vocabulary was used


async def test_init_model_is_deterministic_and_seeded() -> None:
    first = await run_op(InitModel(), [], MODEL)
    again = await run_op(InitModel(), [], MODEL)
    other = await run_op(InitModel(), [], {**MODEL, "seed": 8})
    assert first.output == again.output != other.output
    blob = decode_safetensors(first.output)
    assert blob.metadata["d_model"] == "32"
    assert blob.tensors["tok_emb"].shape == (300, 32)
    assert abs(float(blob.tensors["tok_emb"].std()) - 0.02) < 0.002
    assert len(first.pieces) > 1


@pytest.mark.parametrize(
    ("impl", "params", "n_inputs"),
    [
        (InitModel(), {**MODEL, "d_model": 30}, 0),  # not a multiple of n_heads
        (InitModel(), {**MODEL, "n_layers": 0}, 0),
        (InitModel(), {**MODEL, "vocab": 1 << 20}, 0),
        (InitModel(), {**MODEL, "seed": -1}, 0),
        (InitModel(), {**MODEL, "extra": 1}, 0),
        (InitModel(), MODEL, 1),
        (Tokenize(), {"vocab": ["a"]}, 1),
        (Tokenize(), {"vocab": ["ab", "ab"]}, 1),
        (Tokenize(), {"vocab": "ab"}, 1),
        (Tokenize(), {"mode": "bpe"}, 1),
        (Embed(), {}, 1),
        (Forward(), {}, 2),
        (Forward(), {"window": 0}, 2),
        (Forward(), {"window": 8, "output": "probs"}, 2),
    ],
)
def test_bad_params(impl: Any, params: dict[str, Any], n_inputs: int) -> None:
    with pytest.raises(ParamError):
        impl.check_params(params, n_inputs)


async def test_embed_is_table_lookup(weights: bytes, tokens: bytes) -> None:
    table = decode_safetensors(weights).tensors["tok_emb"]
    result = await run_op(Embed(), [weights, tokens], chunky=True)
    assert result.output == table[np.frombuffer(tokens, "<i4")].tobytes()
    assert len(result.pieces) > 1


async def test_embed_rejects_bad_ids_and_weights(weights: bytes) -> None:
    with pytest.raises(DecodeError):
        await run_op(Embed(), [weights, np.array([5, 300], "<i4").tobytes()])
    blob = decode_safetensors(weights)
    broken = dict(blob.tensors)
    del broken["ln_f.bias"]
    with pytest.raises(DecodeError):
        await run_op(Embed(), [encode_safetensors(broken, blob.metadata), b""])
    with pytest.raises(DecodeError):
        await run_op(Embed(), [encode_safetensors(blob.tensors), b""])  # no config metadata
    with pytest.raises(DecodeError):
        await run_op(Embed(), [weights[:-4], b""])


def _reference_forward(weights: bytes, emb: np.ndarray, window: int) -> np.ndarray:
    """The same model written independently: fused attention, all windows of a size at once."""
    w = {k: torch.tensor(np.array(v)) for k, v in decode_safetensors(weights).tensors.items()}
    d, heads = MODEL["d_model"], MODEL["n_heads"]

    def run(x: torch.Tensor) -> torch.Tensor:  # x [B, T, d]
        x = x + w["pos_emb"][: x.shape[1]]
        for i in range(MODEL["n_layers"]):
            p = f"layers.{i}."
            h = F.layer_norm(x, (d,), w[p + "ln1.weight"], w[p + "ln1.bias"])
            q, k, v = (h @ w[p + "attn.qkv.weight"].T + w[p + "attn.qkv.bias"]).split(d, -1)
            q, k, v = (z.view(*z.shape[:2], heads, -1).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            a = a.transpose(1, 2).reshape(x.shape)
            x = x + a @ w[p + "attn.out.weight"].T + w[p + "attn.out.bias"]
            h = F.layer_norm(x, (d,), w[p + "ln2.weight"], w[p + "ln2.bias"])
            h = F.gelu(h @ w[p + "mlp.fc1.weight"].T + w[p + "mlp.fc1.bias"])
            x = x + h @ w[p + "mlp.fc2.weight"].T + w[p + "mlp.fc2.bias"]
        return F.layer_norm(x, (d,), w["ln_f.weight"], w["ln_f.bias"])

    full = len(emb) // window * window
    parts = [run(torch.tensor(emb[:full]).view(-1, window, d)).reshape(-1, d)]
    if full < len(emb):
        parts.append(run(torch.tensor(emb[full:])[None])[0])
    with torch.no_grad():
        return torch.cat(parts).detach().numpy()


async def _embeddings(weights: bytes, tokens: bytes) -> bytes:
    return (await run_op(Embed(), [weights, tokens])).output


async def test_forward_matches_reference(weights: bytes, tokens: bytes) -> None:
    emb = await _embeddings(weights, tokens)
    rows = np.frombuffer(emb, "<f4").reshape(-1, 32)
    assert len(rows) % 64  # a short last window is exercised
    result = await run_op(Forward(), [weights, emb], {"window": 64})
    got = np.frombuffer(result.output, "<f4").reshape(-1, 32)
    np.testing.assert_allclose(got, _reference_forward(weights, rows, 64), atol=2e-5)
    n_windows = -(-len(rows) // 64)
    assert result.ctx.steps == list(range(2 * n_windows))
    assert len(result.pieces) == n_windows  # streamed window by window
    logits = await run_op(Forward(), [weights, emb], {"window": 64, "output": "logits"})
    table = decode_safetensors(weights).tensors["tok_emb"]
    np.testing.assert_allclose(
        np.frombuffer(logits.output, "<f4").reshape(-1, 300), got @ table.T, atol=2e-5
    )


async def test_forward_resumes_byte_identically_from_any_step(
    weights: bytes, tokens: bytes
) -> None:
    emb = await _embeddings(weights, tokens)
    params = {"window": 64}
    full = await run_op(Forward(), [weights, emb], params, snapshot_at=range(1000), chunky=True)
    again = await run_op(Forward(), [weights, emb], params)
    assert full.output == again.output  # deterministic
    last = full.ctx.steps[-1]
    for step in sorted({0, 1, 2, 3, last - 1, last}):
        resume = Resume(step, full.ctx.snapshots[step])
        resumed = await run_op(Forward(), [weights, emb], params, resume=resume, chunky=True)
        assert resumed.output == full.output[full.ctx.offsets[step] :]
        assert resumed.ctx.steps == full.ctx.steps[step + 1 :]


async def test_forward_rejects_foreign_checkpoints(weights: bytes, tokens: bytes) -> None:
    emb = await _embeddings(weights, tokens)
    full = await run_op(Forward(), [weights, emb], {"window": 64}, snapshot_at=[0, 2])
    for resume in [
        Resume(2, full.ctx.snapshots[0]),  # wrong step
        Resume(0, b"garbage"),
        Resume(999, encode_safetensors({"x": np.zeros((3, 32), "<f4")}, {"step": "999"})),
        Resume(0, encode_safetensors({"x": np.zeros((3, 32), "<f4")}, {"step": "0"})),
    ]:
        with pytest.raises(DecodeError):
            await run_op(Forward(), [weights, emb], {"window": 64}, resume=resume)


async def test_init_model_bytes_are_pinned() -> None:
    """The model is a calc result addressed by its hash: init must not drift across machines.

    Uniform draws from torch's CPU Mersenne Twister are exact, so this holds on any CPU; a
    change here means every stored model CID built on ``init_model@1`` would change.
    """
    blob = (await run_op(InitModel(), [], MODEL)).output
    assert hashlib.sha256(blob).hexdigest() == (
        "439947571e552aa22233d063ea77a01766f1535662f235d49e25271218e864d2"
    )


def test_activation_memory_is_bounded() -> None:
    big = ModelConfig(vocab=32000, d_model=512, n_layers=8, n_heads=8, d_ff=2048, max_len=4096)
    big.check_activations(1, 512, training=False)
    with pytest.raises(ParamError):
        big.check_activations(1, 4096, training=False)
    with pytest.raises(ParamError):
        big.check_activations(64, 512, training=True)
