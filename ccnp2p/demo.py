"""The demo behind ``scripts/demo``: what a newcomer runs first.

Stage 1 (foundation): a local repo, a sample file put, read back, its CID and chunk layout shown,
a random-access read, a corrupted block caught. Later stages add a network of daemons computing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import tempfile
from pathlib import Path

from ccnp2p.cli.local import stat_object
from ccnp2p.errors import CorruptBlock
from ccnp2p.store.files import FileReader, import_stream
from ccnp2p.store.repo import Repo, init_repo


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


def main() -> None:
    ap = argparse.ArgumentParser(description="ccnp2p demo")
    ap.add_argument("--size", type=int, default=3 * 1024 * 1024 + 12345)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccnp2p-demo-") as tmp:
        path = Path(tmp) / "repo"
        ident = init_repo(path)
        print(f"repo: {path}\npeer id: {ident.peer_id_str}\n")
        data = sample_corpus(args.size)
        with Repo(path) as repo:
            res = import_stream(repo.blocks, io.BytesIO(data), chunk_bytes=256 * 1024)
            repo.pins.add(res.root)
            print(f"put {res.size} bytes -> {res.root}")
            print(json.dumps(stat_object(repo, res.root), indent=2))
            reader = FileReader(repo.blocks.get, res.root)
            print("\nchunks:")
            for ref in reader.chunk_refs():
                print(f"  @{ref.file_offset:>9}  {ref.size:>7} B  {ref.cid}")
            back = reader.read()
            ok = hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
            print(f"\nread back: {len(back)} bytes, identical: {ok}")
            mid = len(data) // 2
            print(f"random access @{mid}: {reader.read(mid, 60)!r}")
            victim = next(iter(reader.chunk_refs(mid, 1))).cid
            next((path / "blocks").rglob(str(victim))).write_bytes(b"bit rot")
            try:
                reader.read(mid, 10)
            except CorruptBlock as exc:
                print(f"corrupted block detected, not served: {exc}")
            if not ok:
                raise SystemExit("demo failed: bytes differ")


if __name__ == "__main__":
    main()
