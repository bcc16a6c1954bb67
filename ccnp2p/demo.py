"""The demo behind ``scripts/demo``: a local network of daemons doing a real computation.

Four daemons on 127.0.0.1 (separate processes, real libp2p): ``node0`` holds a text corpus,
``node1`` advertises a (simulated) GPU, ``node2`` is the reader, ``node3`` is a bystander. The
reader defines ``forward(model, embed(model, tokenize(corpus)))`` with a tiny transformer whose
weights are themselves a calc (``init_model`` from a seed), then reads it. The network decides
where each step runs (tokenize next to the corpus, the model steps on the GPU node), streams the
result back, and the demo checks the bytes against the same operators run locally, in process.

``--offline`` runs the foundation demo instead (one repo, no network).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from ccnp2p.store.config import Config
from ccnp2p.testnet import Daemon, Testnet

MODEL = {"seed": 7, "vocab": 256, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}
MODEL["max_len"] = 64
WINDOW = 64
ROLES = {0: "data holder", 1: "GPU node", 2: "reader", 3: "bystander"}


def sample_corpus(size: int, seed: int = 42) -> bytes:
    """A deterministic text corpus (words from a small vocabulary)."""
    rng = random.Random(seed)
    words = [
        "the",
        "of",
        "computable",
        "content",
        "network",
        "peer",
        "stream",
        "chunk",
        "calc",
        "result",
        "node",
        "data",
    ]
    out = io.StringIO()
    while out.tell() < size:
        out.write(" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + ".\n")
    return out.getvalue().encode()[:size]


TRAIN = {"steps": 300, "seq_len": 32, "batch": 8, "seed": 1}


def configure(i: int, cfg: Config) -> None:
    cfg.compute.executor_timeout_s = 3.0  # declare a silent executor dead after 3 s
    if i == 1:
        cfg.compute.gpu = "sim-gpu-16G"
        cfg.compute.gpu_memory = 16 << 30


def params(p: dict[str, Any]) -> list[str]:
    return [a for k, v in p.items() for a in ("--param", f"{k}={v}")]


async def local_result(corpus: bytes) -> bytes:
    """The same DAG computed in this process, operator by operator."""
    from ccnp2p.compute.local import run_local
    from ccnp2p.compute.registry import OperatorRegistry

    reg = OperatorRegistry.with_builtins(entry_points_too=False)

    def impl(name: str) -> Any:
        return reg.get(reg.resolve_name(name))[1]

    model = await run_local(impl("init_model"), [], dict(MODEL))
    tokens = await run_local(impl("tokenize"), [corpus])
    emb = await run_local(impl("embed"), [model, tokens])
    return await run_local(impl("forward"), [model, emb], {"window": WINDOW})


def network_demo(corpus_bytes: int) -> None:
    corpus = sample_corpus(corpus_bytes)
    with tempfile.TemporaryDirectory(prefix="ccnp2p-demo-") as tmp:
        print("starting 4 daemons on 127.0.0.1 ...", flush=True)
        with Testnet(Path(tmp), 4, configure=configure) as net:
            d = net.daemons
            ids = {json.loads(x.cli("id", "--json"))["id"]: i for i, x in enumerate(d)}
            for i, x in enumerate(d):
                print(f"  node{i} ({ROLES[i]:<11}) {x.addr}")
            src = Path(tmp) / "corpus.txt"
            src.write_bytes(corpus)
            corpus_cid = d[0].cli("put", str(src)).decode().strip()
            print(f"\nnode0 put the corpus: {len(corpus)} bytes -> {corpus_cid}")
            reader = d[2]
            model = _calc(reader, "init_model", [], MODEL)
            tokens = _calc(reader, "tokenize", [corpus_cid], {})
            emb = _calc(reader, "embed", [model, tokens], {})
            out = _calc(reader, "forward", [model, emb], {"window": WINDOW})
            steps = {model: "init_model", tokens: "tokenize", emb: "embed", out: "forward"}
            print("node2 defined (nothing computed yet):")
            for cid, name in steps.items():
                print(f"  {name:<10} {cid}")
            t0 = time.monotonic()
            got = reader.cli("get", out)
            took = time.monotonic() - t0
            print(f"\nnode2 read forward(...): {len(got)} bytes in {took:.1f} s")
            _where(d, ids, steps)
            _why(reader, ids, emb, tokens, out)
            expected = trio.run(local_result, corpus)
            same = hashlib.sha256(got).hexdigest() == hashlib.sha256(expected).hexdigest()
            print(f"\nbytes identical to a local computation: {same}")
            again = d[3].cli("get", out)
            print(f"node3 read it too: identical {again == got}, recomputed nothing")
            if not same or again != got:
                sys.exit("demo failed: the network's result differs from the local one")
            _failover_part(net, corpus_cid, corpus)


def _failover_part(net: Testnet, corpus_cid: str, corpus: bytes) -> None:
    from ccnp2p.demo_failover import run_failover

    print(f"\nnode2 reads train(model, tokens) for {TRAIN['steps']} steps; its executor is")
    print("killed (SIGKILL) a third of the way through...")
    rep = run_failover(net, 2, corpus_cid, corpus, MODEL, TRAIN, TRAIN["steps"] // 3)
    lines = rep.output.count(b"\n")
    print(f"  killed node{rep.killed} ({ROLES.get(rep.killed, '')}); node2 noticed, and node")
    print(f"  {rep.resumed_on} resumed from the checkpoint after step {rep.resumed_from_step}")
    print(f"  (recovery {rep.recovery_s:.1f} s; steps recomputed: {rep.recomputed_steps})")
    print(f"  read {lines} steps; last: {rep.output.splitlines()[-1].decode()}")
    print(f"  result CID {rep.result}")
    print(f"  same as a run without the kill: {rep.result == rep.expected_result}")
    if rep.result != rep.expected_result:
        sys.exit("demo failed: failover changed the result")


def _calc(d: Daemon, op: str, inputs: list[str], p: dict[str, Any]) -> str:
    return d.cli("calc", op, *inputs, *params(p)).decode().strip()


def _where(d: list[Daemon], ids: dict[str, int], steps: dict[str, str]) -> None:
    print("\nwhere each step ran:")
    for i, x in enumerate(d):
        execs = x.executions()
        for e in execs:
            name = steps.get(e["calc"], e["op"])
            print(f"  {name:<10} on node{i} ({ROLES[i]}), {e['output_bytes']} bytes out")


def _why(reader: Daemon, ids: dict[str, int], *calcs: str) -> None:
    print("\nwhy (placement scores as node2 ranks each step now, with itself as the reader;")
    print("a step's inputs are placed by that step's executor, with itself as the reader: a")
    print("step whose output outweighs its input, like tokenize, goes where it is consumed):")
    for cid in calcs:
        info = json.loads(reader.cli("stat", "--explain", cid))
        print(
            f"  {info['operator']} ({info['affinity']} affinity), inputs {info['input_bytes']},"
            f" output ~{info['output_bytes_expected']}"
        )
        for r in info["ranking"][:3]:
            print(
                f"    node{ids.get(r['peer'], '?')}: cost {r['cost']:.4f} s = "
                f"transfer {r['transfer_s']:.4f} + compute {r['compute_s']:.4f} "
                f"+ load {r['load_s']:.4f} + deliver {r['deliver_s']:.4f}"
                f"  (bytes moved {int(r['bytes_moved'])})"
            )


def offline_demo(size: int) -> None:
    from ccnp2p.cli.local import stat_object
    from ccnp2p.errors import CorruptBlock
    from ccnp2p.store.files import FileReader, import_stream
    from ccnp2p.store.repo import Repo, init_repo

    with tempfile.TemporaryDirectory(prefix="ccnp2p-demo-") as tmp:
        path = Path(tmp) / "repo"
        ident = init_repo(path)
        print(f"repo: {path}\npeer id: {ident.peer_id_str}\n")
        data = sample_corpus(size)
        with Repo(path) as repo:
            res = import_stream(repo.blocks, io.BytesIO(data), chunk_bytes=256 * 1024)
            repo.pins.add(res.root)
            print(f"put {res.size} bytes -> {res.root}")
            print(json.dumps(stat_object(repo, res.root), indent=2))
            reader = FileReader(repo.blocks.get, res.root)
            for ref in reader.chunk_refs():
                print(f"  @{ref.file_offset:>9}  {ref.size:>7} B  {ref.cid}")
            back = reader.read()
            print(f"read back identical: {back == data}")
            victim = next(iter(reader.chunk_refs(len(data) // 2, 1))).cid
            next((path / "blocks").rglob(str(victim))).write_bytes(b"bit rot")
            try:
                reader.read(len(data) // 2, 10)
            except CorruptBlock as exc:
                print(f"corrupted block detected, not served: {exc}")


def main() -> None:
    ap = argparse.ArgumentParser(description="ccnp2p demo")
    ap.add_argument("--offline", action="store_true", help="single-repo foundation demo")
    ap.add_argument("--size", type=int, default=20_000, help="corpus bytes")
    args = ap.parse_args()
    if args.offline:
        offline_demo(args.size)
    else:
        network_demo(args.size)


if __name__ == "__main__":
    main()
