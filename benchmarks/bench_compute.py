"""Benchmark: dispatch overhead of a trivial operator across two loopback daemons.

    python -m benchmarks.bench_compute [--calcs 100] [--local 2000] [--json OUT]

Two real daemons (:class:`ccnp2p.testnet.Testnet`) on 127.0.0.1. A tiny input (64 bytes) is
added on daemon 0. Then, on daemon 1, ``--calcs`` times: define a fresh ``slice`` calc over it
(distinct params, so nothing is cached) with ``POST /api/v0/calc`` and read it to the end with
``GET /api/v0/cat/<calc>``. ``slice`` has source affinity, so each read is placed on daemon 0
(the holder): placement lookups, a computing contract, the execution and the result stream all
cross the network. Reported: calcs per second and the median and p90 latency of define + read,
next to the same operator run in-process on the same bytes (:func:`run_local`) in the same run;
the ratio of the medians is the dispatch overhead.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from ccnp2p.compute.local import run_local
from ccnp2p.ops.text import Slice
from ccnp2p.testnet import Daemon, Testnet

INPUT = bytes(range(64))


class Api:
    """A keep-alive HTTP client for one daemon's API (with its bearer token)."""

    def __init__(self, daemon: Daemon) -> None:
        host, port = daemon.api.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=120)
        self.token = (daemon.repo / "api.token").read_text().strip()

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        headers = {"Authorization": f"Bearer {self.token}"}
        self.conn.request(method, path, body=body, headers=headers)
        res = self.conn.getresponse()
        data = res.read()
        if res.status != 200:
            raise RuntimeError(f"{method} {path}: {res.status} {data[:200]!r}")
        return data

    def calc(self, op: str, inputs: list[str], params: dict[str, Any]) -> str:
        body = json.dumps({"op": op, "inputs": inputs, "params": params}).encode()
        return str(json.loads(self.request("POST", "/api/v0/calc", body))["cid"])


def network_latencies(calcs: int, root: Path) -> tuple[list[float], float]:
    """Per-calc define + read seconds over two daemons, and the total wall seconds."""
    with Testnet(root, 2) as net:
        a, b = Api(net.daemons[0]), Api(net.daemons[1])
        cid = str(json.loads(a.request("POST", "/api/v0/add", INPUT))["cid"])
        warm = b.calc("slice", [cid], {"offset": 0, "length": 1})  # first lookups, connections
        b.request("GET", f"/api/v0/cat/{warm}")
        out: list[float] = []
        t_start = time.perf_counter()
        for i in range(calcs):
            t0 = time.perf_counter()
            calc = b.calc("slice", [cid], {"offset": 1 + i % 60, "length": 1 + i // 60})
            data = b.request("GET", f"/api/v0/cat/{calc}")
            out.append(time.perf_counter() - t0)
            want = INPUT[1 + i % 60 :][: 1 + i // 60]
            if data != want:
                raise RuntimeError(f"calc {i}: got {data!r}, want {want!r}")
        return out, time.perf_counter() - t_start


def local_latencies(calls: int) -> tuple[list[float], float]:
    impl = Slice()

    async def main() -> tuple[list[float], float]:
        out: list[float] = []
        t_start = time.perf_counter()
        for i in range(calls):
            t0 = time.perf_counter()
            await run_local(impl, [INPUT], {"offset": 1 + i % 60, "length": 1})
            out.append(time.perf_counter() - t0)
        return out, time.perf_counter() - t_start

    return trio.run(main)


def row(name: str, lat: list[float], total_s: float) -> dict[str, Any]:
    q = statistics.quantiles(lat, n=10)
    return {
        "path": name,
        "calls": len(lat),
        "per_s": len(lat) / total_s,
        "median_ms": statistics.median(lat) * 1000,
        "p90_ms": q[8] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calcs", type=int, default=100, help="fresh calcs defined and read")
    ap.add_argument("--local", type=int, default=2000, help="local run_local calls")
    ap.add_argument("--json", type=Path, help="write the results here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ccn-bench-compute-") as tmp:
        net_lat, net_s = network_latencies(args.calcs, Path(tmp))
    loc_lat, loc_s = local_latencies(args.local)
    rows = [
        row("2 daemons: define + read (HTTP API)", net_lat, net_s),
        row("in-process run_local", loc_lat, loc_s),
    ]
    print(f"{'path':<38} {'calls':>6} {'calcs/s':>10} {'median ms':>10} {'p90 ms':>10}")
    for r in rows:
        print(
            f"{r['path']:<38} {r['calls']:>6} {r['per_s']:>10.1f} "
            f"{r['median_ms']:>10.3f} {r['p90_ms']:>10.3f}"
        )
    ratio = rows[0]["median_ms"] / rows[1]["median_ms"]
    print(f"dispatch overhead: network median / local median = {ratio:.0f}x")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "median_ratio": ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
