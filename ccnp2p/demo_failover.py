"""Demo part 2: kill the executor of a ``train`` calc halfway (a real process kill).

The reader keeps reading; it notices the silent executor, resumes the calc on another daemon
from the newest checkpoint it copied, and finishes with the same bytes and the same result CID
as a run without the kill (computed here, in process). Used by ``scripts/demo`` and by the
integration test that runs the same scenario.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

import trio

from ccnp2p.compute.live import RESULT_CHUNK_BYTES
from ccnp2p.objects.cid import Cid
from ccnp2p.store.files import tree_over
from ccnp2p.testnet import Daemon, Testnet


@dataclass
class FailoverReport:
    output: bytes
    result: str
    expected_result: str
    killed: int
    resumed_on: int
    resumed_from_step: int | None
    recomputed_steps: int
    recovery_s: float


def result_cid_of(data: bytes) -> Cid:
    """The result CID an executor gives these output bytes (fixed 256 KiB chunks + tree)."""
    chunks = [
        (Cid.for_raw(data[i : i + RESULT_CHUNK_BYTES]), len(data[i : i + RESULT_CHUNK_BYTES]))
        for i in range(0, len(data), RESULT_CHUNK_BYTES)
    ]
    return tree_over(chunks)[0]


def _api(d: Daemon) -> http.client.HTTPConnection:
    host, port = d.api.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=120)


def _running_executor(net: Testnet, calc: str, skip: int) -> int | None:
    for i, d in enumerate(net.daemons):
        if i == skip or d.proc.poll() is not None:
            continue
        if any(e["calc"] == calc and e["running"] for e in d.executions()):
            return i
    return None


async def _expected(model_params: dict[str, Any], corpus: bytes, train: dict[str, Any]) -> bytes:
    from ccnp2p.compute.local import run_local
    from ccnp2p.compute.registry import OperatorRegistry

    reg = OperatorRegistry.with_builtins(entry_points_too=False)

    def impl(name: str) -> Any:
        return reg.get(reg.resolve_name(name))[1]

    model = await run_local(impl("init_model"), [], dict(model_params))
    tokens = await run_local(impl("tokenize"), [corpus])
    return await run_local(impl("train"), [model, tokens], dict(train))


def run_failover(
    net: Testnet,
    reader_index: int,
    corpus_cid: str,
    corpus: bytes,
    model_params: dict[str, Any],
    train: dict[str, Any],
    kill_after_lines: int,
) -> FailoverReport:
    reader = net.daemons[reader_index]

    def calc(op: str, inputs: list[str], params: dict[str, Any]) -> str:
        args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
        return reader.cli("calc", op, *inputs, *args).decode().strip()

    model = calc("init_model", [], model_params)
    tokens = calc("tokenize", [corpus_cid], {})
    train_cid = calc("train", [model, tokens], train)
    conn = _api(reader)
    conn.request("GET", f"/api/v0/cat/{train_cid}")
    resp = conn.getresponse()
    out = bytearray()
    killed = -1
    mark = 0
    t_kill = 0.0
    t_resumed = 0.0
    while True:
        line = resp.readline()
        if not line:
            break
        out += line
        if killed < 0 and out.count(b"\n") >= kill_after_lines:
            victim = _running_executor(net, train_cid, reader_index)
            if victim is not None:
                net.daemons[victim].proc.kill()  # SIGKILL: no goodbye
                net.daemons[victim].proc.wait()
                killed = victim
                t_kill = time.monotonic()
                mark = len(out)
        elif killed >= 0 and not t_resumed and len(out) > mark:
            t_resumed = time.monotonic()
    stat = json.loads(reader.cli("stat", train_cid))
    resumed_on, from_step, recomputed = -1, None, 0
    for i, d in enumerate(net.daemons):
        if d.proc.poll() is not None:
            continue
        for e in d.executions():
            if e["calc"] == train_cid and e["resumed_from_step"] is not None:
                resumed_on, from_step, recomputed = i, e["resumed_from_step"], e["recomputed_steps"]
    expected = trio.run(_expected, model_params, corpus, train)
    return FailoverReport(
        output=bytes(out),
        result=str(stat.get("result")),
        expected_result=str(result_cid_of(expected)) if out == expected else "(bytes differ)",
        killed=killed,
        resumed_on=resumed_on,
        resumed_from_step=from_step,
        recomputed_steps=recomputed,
        recovery_s=max(0.0, t_resumed - t_kill) if t_resumed else 0.0,
    )


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
