"""The demo's kill test: SIGKILL the executor of a train calc; the reader still finishes with
the bytes and result CID of an uninterrupted run."""

from __future__ import annotations

from pathlib import Path

from ccnp2p.demo import MODEL, sample_corpus
from ccnp2p.demo_failover import run_failover
from ccnp2p.store.config import Config
from ccnp2p.testnet import Testnet

TRAIN = {"steps": 120, "seq_len": 64, "batch": 32, "seed": 3}  # ~tens of ms a step


def configure(i: int, cfg: Config) -> None:
    cfg.compute.executor_timeout_s = 3.0
    if i == 1:
        cfg.compute.gpu = "sim-gpu"
        cfg.compute.gpu_memory = 16 << 30


def test_killed_executor_is_replaced_and_the_result_is_unchanged(tmp_path: Path) -> None:
    corpus = sample_corpus(8_000, seed=5)
    (tmp_path / "corpus.txt").write_bytes(corpus)
    with Testnet(tmp_path / "net", 3, configure=configure) as net:
        corpus_cid = net.daemons[0].cli("put", str(tmp_path / "corpus.txt")).decode().strip()
        rep = run_failover(net, 2, corpus_cid, corpus, MODEL, TRAIN, kill_after_lines=20)
    assert rep.killed == 1  # the GPU node was running it
    assert rep.result == rep.expected_result
    assert rep.output.count(b"\n") == TRAIN["steps"]
    assert rep.resumed_from_step is not None
    assert rep.recomputed_steps <= 10  # train checkpoints every 10 steps
