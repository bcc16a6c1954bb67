"""Benchmark: `ccnp2p put` / `ccnp2p get` of a large file vs sha256sum and a plain copy.

Every figure comes from the same run on the same (page-cached) file, so the ratios are what
matters on a noisy machine. Peak RSS is each child process's own ``ru_maxrss`` (from wait4).

    python -m benchmarks.bench_store [--size-mb 1024] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    """Run ``cmd``; return (wall seconds, peak RSS bytes, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with {proc.returncode}")
    return wall, usage.ru_maxrss * 1024, out


def make_file(path: Path, size: int) -> None:
    # Small writes keep this process's RSS low: Linux reports a child's peak RSS as at least
    # the parent's at fork time, so a fat parent would inflate every child's figure.
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    size = args.size_mb * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="ccn-bench-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    try:
        src = work / "input.bin"
        make_file(src, size)
        env = {**os.environ, "CCNP2P_REPO": str(work / "repo")}
        ccn = [sys.executable, "-m", "ccnp2p.cli.main"]
        run([*ccn, "init"], env)
        results: dict[str, dict[str, float]] = {}
        t, rss, _ = run(["sha256sum", str(src)])
        results["sha256sum"] = {"s": t, "rss_mb": rss / 2**20}
        t, rss, _ = run(["cp", str(src), str(work / "copy.bin")])
        results["cp"] = {"s": t, "rss_mb": rss / 2**20}
        (work / "copy.bin").unlink()
        t, rss, out = run([*ccn, "put", str(src)], env)
        results["ccnp2p put"] = {"s": t, "rss_mb": rss / 2**20}
        cid = out.decode().strip()
        t, rss, _ = run([*ccn, "get", cid, "-o", str(work / "out.bin")], env)
        results["ccnp2p get"] = {"s": t, "rss_mb": rss / 2**20}
        if (work / "out.bin").stat().st_size != size:
            raise SystemExit("get returned the wrong size")
        for r in results.values():
            r["mb_s"] = args.size_mb / r["s"]
        base = results["sha256sum"]["mb_s"]
        print(f"file: {args.size_mb} MiB (page-cached), durable puts (fsync per block)")
        print(f"{'what':<12} {'MB/s':>8} {'peak RSS MB':>12} {'vs sha256sum':>13}")
        for name, r in results.items():
            print(f"{name:<12} {r['mb_s']:8.0f} {r['rss_mb']:12.1f} {r['mb_s'] / base:12.0%}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
