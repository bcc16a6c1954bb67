from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

from ccnp2p.compute.api import ParamError, Resume
from ccnp2p.errors import DecodeError
from ccnp2p.ops import Embed, Forward, Train
from ccnp2p.ops.tensors import decode_safetensors, encode_safetensors
from ccnp2p.ops.train import step_seed
from tests.ops.helpers import Run, run_op

PARAMS: dict[str, Any] = {"steps": 6, "seq_len": 32, "batch": 4, "lr": 0.003, "seed": 1}


async def _train(weights: bytes, tokens: bytes, **kw: Any) -> Run:
    params = {**PARAMS, **kw.pop("params", {})}
    return await run_op(Train(), [weights, tokens], params, **kw)


async def test_train_logs_one_json_line_per_step_and_learns(weights: bytes, tokens: bytes) -> None:
    start = time.monotonic()
    result = await _train(weights, tokens, params={"steps": 12})
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert result.output.startswith(b'{"loss":') and len(result.pieces) == 12
    assert result.ctx.steps == list(range(12))
    assert time.monotonic() - start < 30


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
async def test_train_is_deterministic_and_resumes_byte_identically(
    weights: bytes, tokens: bytes, optimizer: str
) -> None:
    params = {"optimizer": optimizer}
    full = await _train(weights, tokens, params=params, snapshot_at=range(6))
    again = await _train(weights, tokens, params=params, chunky=True)
    assert full.output == again.output
    for step in (0, 2, 5):
        resume = Resume(step, full.ctx.snapshots[step])
        resumed = await _train(weights, tokens, params=params, resume=resume)
        assert resumed.output == full.output[full.ctx.offsets[step] :]
    state = decode_safetensors(full.ctx.snapshots[2])
    assert state.metadata["step"] == "2"
    assert any(k.startswith("adam.m.") for k in state.tensors) == (optimizer == "adam")


async def test_trained_weights_resume_identically_and_feed_forward(
    weights: bytes, tokens: bytes
) -> None:
    params = {"output": "weights"}
    full = await _train(weights, tokens, params=params, snapshot_at=[3])
    resumed = await _train(weights, tokens, params=params, resume=Resume(3, full.ctx.snapshots[3]))
    assert resumed.output == full.output
    trained = decode_safetensors(full.output)
    assert trained.metadata == decode_safetensors(weights).metadata
    assert (
        trained.tensors["tok_emb"].tobytes()
        != decode_safetensors(weights).tensors["tok_emb"].tobytes()
    )
    emb = (await run_op(Embed(), [full.output, tokens])).output
    hidden = await run_op(Forward(), [full.output, emb], {"window": 32})
    assert len(hidden.output) == len(emb)


async def test_train_rejects_foreign_state_and_bad_tokens(weights: bytes, tokens: bytes) -> None:
    sgd = await _train(weights, tokens, params={"optimizer": "sgd", "steps": 2}, snapshot_at=[0])
    with pytest.raises(DecodeError):  # an SGD state cannot resume an Adam run
        await _train(weights, tokens, resume=Resume(0, sgd.ctx.snapshots[0]))
    with pytest.raises(DecodeError):
        await _train(weights, tokens, resume=Resume(1, sgd.ctx.snapshots[0]))
    blob = decode_safetensors(sgd.ctx.snapshots[0])
    shrunk = {k: v[:1] if k == "model.tok_emb" else v for k, v in blob.tensors.items()}
    with pytest.raises(DecodeError):
        await _train(
            weights,
            tokens,
            params={"optimizer": "sgd"},
            resume=Resume(0, encode_safetensors(shrunk, blob.metadata)),
        )
    with pytest.raises(DecodeError):
        await _train(weights, np.array([1, 2, 300] * 20, "<i4").tobytes())
    with pytest.raises(DecodeError):
        await _train(weights, tokens[:-1])
    with pytest.raises(ParamError):
        await _train(weights, tokens[: 4 * 32])  # not more than seq_len tokens


@pytest.mark.parametrize(
    "params",
    [
        {},
        {**PARAMS, "steps": 0},
        {**PARAMS, "lr": -1},
        {**PARAMS, "lr": "0.1"},
        {**PARAMS, "optimizer": "lion"},
        {**PARAMS, "output": "both"},
        {**PARAMS, "momentum": 0.9},
        {**PARAMS, "batch": 0},
    ],
)
def test_bad_params(params: dict[str, Any]) -> None:
    with pytest.raises(ParamError):
        Train().check_params(params, 2)


def test_step_seeds_are_independent() -> None:
    seeds = {step_seed(s, k) for s in range(10) for k in range(100)}
    assert len(seeds) == 1000 and all(0 <= x < 2**63 for x in seeds)
