"""Benchmark: our transfer protocol against the transports under it, in one run.

    python -m benchmarks.bench_transfer [--size-mb 256] [--json OUT] [--profile-out FILE]

(a) raw trio TCP on loopback carrying N MiB (one process, two tasks);
(b) a bare py-libp2p Noise+yamux stream carrying the same bytes between two processes;
(c) ``TransferService.fetch`` of an N-MiB file between two libp2p hosts in separate processes,
    each with its own repo and blockstore (the receiver verifies and stores every chunk), with
    the receiver's peak RSS (``ru_maxrss`` from wait4).

Then (c) runs once more under cProfile and the top 20 functions by own and by cumulative time
are saved to ``--profile-out``. Every figure comes from the same run on the same machine, so the
ratio (c)/(b) is what matters (target >= 70 %, receiver RSS < 200 MB).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

MiB = 1024 * 1024
WRITE_BYTES = 256 * 1024
SINK_PROTOCOL = "/ccn/bench-sink/1.0.0"


# -- (a) raw trio TCP --------------------------------------------------------------------------


async def raw_tcp(size: int) -> float:
    done = trio.Event()
    received = 0

    async def sink(stream: trio.SocketStream) -> None:
        nonlocal received
        while data := await stream.receive_some(WRITE_BYTES):
            received += len(data)
        done.set()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, sink, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        payload = os.urandom(WRITE_BYTES)
        start = time.perf_counter()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        sent = 0
        while sent < size:
            await stream.send_all(payload)
            sent += len(payload)
        await stream.send_eof()
        await done.wait()
        elapsed = time.perf_counter() - start
        await stream.aclose()
        nursery.cancel_scope.cancel()
    assert received == size
    return elapsed


# -- child processes ---------------------------------------------------------------------------


def announce(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def child_sink() -> None:
    """(b) receiver: read a libp2p stream to EOF, answer 'ok'."""
    from ccnp2p.net.base import Stream
    from ccnp2p.net.libp2p import open_libp2p_network
    from ccnp2p.objects.keys import Identity

    async def handler(stream: Stream) -> None:
        total = 0
        while data := await stream.receive_some(WRITE_BYTES):
            total += len(data)
        await stream.send_all(str(total).encode())
        await stream.close()

    async with open_libp2p_network(Identity.from_seed_int(901)) as net:
        net.set_handler(SINK_PROTOCOL, handler)
        announce(peer=net.peer_id.hex(), addrs=net.listen_addrs())
        await trio.to_thread.run_sync(sys.stdin.read)  # until the parent closes stdin


async def child_provider(repo: Path, src: Path) -> None:
    """(c) sender: import the file into its own repo, serve it until stdin closes."""
    from ccnp2p.net.libp2p import open_libp2p_network
    from ccnp2p.store.files import import_stream
    from ccnp2p.store.repo import Repo, init_repo
    from ccnp2p.transfer import TransferService

    init_repo(repo)
    with Repo(repo) as r, open(src, "rb") as f:
        root = import_stream(r.blocks, f).root
        async with open_libp2p_network(r.identity) as net, trio.open_nursery() as nursery:
            service = TransferService(net, r.blocks)
            await nursery.start(service.run)
            announce(peer=net.peer_id.hex(), addrs=net.listen_addrs(), root=str(root))
            await trio.to_thread.run_sync(sys.stdin.read)
            nursery.cancel_scope.cancel()


async def child_fetcher(repo: Path, peer: str, addrs: list[str], root: str, size: int) -> None:
    """(c) receiver: fetch the file into its own repo (verified, stored), discard the bytes."""
    from ccnp2p.net.libp2p import open_libp2p_network
    from ccnp2p.objects.cid import Cid
    from ccnp2p.store.repo import Repo, init_repo
    from ccnp2p.transfer import TransferService

    init_repo(repo)
    with Repo(repo) as r:
        async with open_libp2p_network(r.identity) as net, trio.open_nursery() as nursery:
            service = TransferService(net, r.blocks)
            await nursery.start(service.run)
            await net.connect(bytes.fromhex(peer), addrs)
            start = time.perf_counter()
            total = 0
            async with service.fetch(Cid.parse(root), [bytes.fromhex(peer)]) as download:
                async for data in download:
                    total += len(data)
            elapsed = time.perf_counter() - start
            stats = download.statistics
            nursery.cancel_scope.cancel()
    if total != size:
        raise SystemExit(f"fetched {total} bytes, expected {size}")
    announce(seconds=elapsed, retries=stats.retries, bad_chunks=stats.bad_chunks)


# -- parent ------------------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_transfer", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def first_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit("child process failed to start")
    return dict(json.loads(line))


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=30)


async def bare_libp2p(size: int) -> float:
    from ccnp2p.net.libp2p import open_libp2p_network
    from ccnp2p.objects.keys import Identity

    sink = spawn("--child", "sink")
    try:
        info = first_line(sink)
        async with open_libp2p_network(Identity.from_seed_int(902)) as net:
            peer = bytes.fromhex(info["peer"])
            await net.connect(peer, info["addrs"])
            payload = os.urandom(WRITE_BYTES)
            start = time.perf_counter()
            stream = await net.open_stream(peer, SINK_PROTOCOL)
            sent = 0
            while sent < size:
                await stream.send_all(payload)
                sent += len(payload)
            await stream.close()
            answer = await stream.receive_some()
            elapsed = time.perf_counter() - start
        if int(answer) != size:
            raise SystemExit(f"sink received {answer!r}, expected {size}")
        return elapsed
    finally:
        stop(sink)


def ccn_transfer(work: Path, src: Path, size: int, profile: Path | None) -> dict[str, Any]:
    provider = spawn("--child", "provider", "--repo", str(work / "provider"), "--src", str(src))
    try:
        info = first_line(provider)
        args = ["--child", "fetcher", "--peer", info["peer"], "--root", info["root"]]
        args += ["--addrs", json.dumps(info["addrs"]), "--size", str(size)]
        results = {}
        for run, prof in (("timed", None), ("profiled", profile)):
            repo = work / f"fetcher-{run}"
            extra = ["--profile-to", str(prof)] if prof else []
            fetcher = spawn(*args, "--repo", str(repo), *extra)
            out = first_line(fetcher)
            assert fetcher.stdin is not None
            fetcher.stdin.close()
            _, status, usage = os.wait4(fetcher.pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit("fetcher failed")
            fetcher.returncode = 0
            out["rss_mb"] = usage.ru_maxrss / 1024
            results[run] = out
        return results
    finally:
        stop(provider)


def make_file(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, MiB)
            f.write(os.urandom(n))
            left -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--profile-out", type=Path, default=Path("bench_transfer_profile.txt"))
    ap.add_argument("--child", choices=["sink", "provider", "fetcher"])
    ap.add_argument("--repo", type=Path)
    ap.add_argument("--src", type=Path)
    ap.add_argument("--peer")
    ap.add_argument("--addrs")
    ap.add_argument("--root")
    ap.add_argument("--size", type=int)
    ap.add_argument("--profile-to", type=Path)
    args = ap.parse_args()
    if args.child:
        run_child(args)
        return
    size = args.size_mb * MiB
    work = Path(tempfile.mkdtemp(prefix="ccn-bench-", dir=os.environ.get("BENCH_DIR", "/tmp")))
    src = work / "input.bin"
    make_file(src, size)
    results: dict[str, Any] = {"size_mb": args.size_mb}
    results["raw_tcp_s"] = trio.run(raw_tcp, size)
    results["libp2p_s"] = trio.run(bare_libp2p, size)
    ccn = ccn_transfer(work, src, size, args.profile_out.resolve())
    results["ccn_s"] = ccn["timed"]["seconds"]
    results["ccn_rss_mb"] = ccn["timed"]["rss_mb"]
    results["ccn_profiled_s"] = ccn["profiled"]["seconds"]
    mb = size / 1e6
    rows = [
        ("(a) raw trio TCP", results["raw_tcp_s"]),
        ("(b) py-libp2p noise+yamux", results["libp2p_s"]),
        ("(c) ccn transfer (fetch)", results["ccn_s"]),
    ]
    print(f"{args.size_mb} MiB over 127.0.0.1")
    for name, secs in rows:
        print(f"{name:<28} {mb / secs:9.1f} MB/s  ({secs:.2f} s)")
    ratio = results["libp2p_s"] / results["ccn_s"]
    results["ratio_c_over_b"] = ratio
    print(
        f"(c)/(b) = {ratio:.0%} (target >= 70%); receiver peak RSS {results['ccn_rss_mb']:.0f} MB"
    )
    print(f"profile of (c) (receiver, under cProfile: {results['ccn_profiled_s']:.2f} s) saved to")
    print(f"  {args.profile_out}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def run_child(args: argparse.Namespace) -> None:
    if args.child == "sink":
        trio.run(child_sink)
    elif args.child == "provider":
        trio.run(child_provider, args.repo, args.src)
    else:
        fetch = (child_fetcher, args.repo, args.peer, json.loads(args.addrs), args.root, args.size)
        if args.profile_to is None:
            trio.run(*fetch)
            return
        profiler = cProfile.Profile()
        profiler.enable()
        trio.run(*fetch)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        out.write("== receiver, top 20 by own time ==\n")
        stats.sort_stats("tottime").print_stats(20)
        out.write("== receiver, top 20 by cumulative time ==\n")
        stats.sort_stats("cumulative").print_stats(20)
        args.profile_to.write_text(out.getvalue())


if __name__ == "__main__":
    main()
