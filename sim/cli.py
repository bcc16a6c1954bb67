"""``python -m sim run SCENARIO [--nodes N] [--seed S] [--out DIR]``, ``list`` and ``bench``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sim.spec import BootstrapMode, SpecError, available_scenarios, load_scenario


def _reexec_with_fixed_hash_seed(argv: Sequence[str]) -> None:
    """Pin PYTHONHASHSEED so set iteration order (and so the run) is the same every time."""
    if os.environ.get("PYTHONHASHSEED") == "0":
        return
    env = dict(os.environ, PYTHONHASHSEED="0")
    os.execve(sys.executable, [sys.executable, "-m", "sim", *argv], env)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario")
    run.add_argument("scenario", help="a name in sim/scenarios/ or a path to a .toml file")
    run.add_argument("--nodes", type=int, help="override the scenario's node count")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--duration", type=float, help="override the measured duration (virtual s)")
    run.add_argument("--bootstrap", choices=["protocol", "oracle"], help="override join mode")
    run.add_argument("--out", type=Path, help="output directory (default: sim-out/<scenario>)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--profile", action="store_true", help="write profile.txt (cProfile)")
    sub.add_parser("list", help="list the shipped scenarios")
    bench = sub.add_parser("bench", help="nodes vs wall time and memory, one process per size")
    bench.add_argument("scenario", nargs="?", default="dht-lookups")
    bench.add_argument("--sizes", default="100,1000", help="comma-separated node counts")
    bench.add_argument("--seed", type=int, default=1)
    bench.add_argument("--duration", type=float, help="override the measured duration")
    bench.add_argument("--bootstrap", choices=["protocol", "oracle"], default="oracle")
    bench.add_argument("--out", type=Path, default=Path("sim-out/bench"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _reexec_with_fixed_hash_seed(args_list)
    args = build_parser().parse_args(args_list)
    try:
        if args.command == "list":
            for name in available_scenarios():
                spec = load_scenario(name)
                print(f"{name:<16} {spec.description}")
            return 0
        if args.command == "bench":
            from sim.bench import run_bench

            sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
            run_bench(
                args.scenario,
                sizes,
                seed=args.seed,
                duration_s=args.duration,
                bootstrap=args.bootstrap,
                out=args.out,
            )
            return 0
        return _run(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from sim.progress import Progress
    from sim.runner import run_scenario

    spec = load_scenario(args.scenario).with_overrides(
        nodes=args.nodes, seed=args.seed, duration_s=args.duration
    )
    if args.bootstrap:
        mode = BootstrapMode(args.bootstrap)
        spec = replace(spec, bootstrap=replace(spec.bootstrap, mode=mode))
    out = args.out or Path("sim-out") / spec.name
    result = run_scenario(
        spec, out, plots=not args.no_plots, progress=Progress(), profile=args.profile
    )
    perf = result.perf
    print(f"{spec.name}: {spec.nodes} nodes, seed {spec.seed} -> {out}")
    print(
        f"  wall {perf['wall_s']['total']} s, measured phase "
        f"{perf['measure_sim_s_per_wall_s']} sim s per wall s, peak RSS {perf['peak_rss_mb']} MB"
    )
    for path in result.files:
        print(f"  {path}")
    return 0
