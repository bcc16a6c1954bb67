"""``python -m sim bench``: nodes vs speed and memory, each size in its own process.

A fresh process per size keeps peak RSS meaningful. Prints a Markdown table and writes
``bench.json``: per size, virtual seconds simulated per wall second and per CPU second in the
measured phase (CPU time is what an idle machine gives; shared machines make wall time noisy),
setup time, peak RSS, and the median and p99 lookup hops.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_bench(
    scenario: str,
    sizes: list[int],
    *,
    seed: int,
    duration_s: float | None,
    bootstrap: str,
    out: Path,
) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        run_out = out / f"{scenario}-{n}"
        cmd = [
            sys.executable,
            "-m",
            "sim",
            "run",
            scenario,
            "--nodes",
            str(n),
            "--seed",
            str(seed),
            "--out",
            str(run_out),
            "--no-plots",
            "--bootstrap",
            bootstrap,
        ]
        if duration_s is not None:
            cmd += ["--duration", str(duration_s)]
        subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONHASHSEED="0"))
        perf = json.loads((run_out / "perf.json").read_text())
        summary = json.loads((run_out / "summary.json").read_text())
        hops = summary["workload"].get("hops", {})
        rows.append(
            {
                "nodes": n,
                "bootstrap": bootstrap,
                "setup_wall_s": perf["wall_s"]["setup"],
                "measure_sim_s": perf["virtual_s"]["measure"],
                "sim_s_per_wall_s": perf["measure_sim_s_per_wall_s"],
                "sim_s_per_cpu_s": perf["measure_sim_s_per_cpu_s"],
                "peak_rss_mb": perf["peak_rss_mb"],
                "hops_p50": hops.get("p50"),
                "hops_p99": hops.get("p99"),
            }
        )
        print(_table(rows), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
