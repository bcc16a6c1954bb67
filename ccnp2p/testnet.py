"""A local testnet of real daemons: N processes on 127.0.0.1, each with its own repo dir.

Used by ``scripts/testnet``, the demo and the integration tests. Daemon ``i`` bootstraps to the
daemons started before it (up to three), so the network is connected from the start.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ccnp2p.store.config import Config

LOG_LINES = 2000  # the newest lines of each daemon's output are kept
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


@dataclass
class Daemon:
    index: int
    repo: Path
    proc: subprocess.Popen[bytes]
    addr: str = ""
    api: str = ""
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    drain: threading.Thread | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "CCNP2P_REPO": str(self.repo)}

    def cli(self, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
        """Run ``ccnp2p ARGS`` against this daemon; returns stdout."""
        res = subprocess.run(
            [sys.executable, "-m", "ccnp2p.cli.main", *args],
            env=self.env(),
            input=input,
            capture_output=True,
            timeout=300,
        )
        if check and res.returncode != 0:
            raise RuntimeError(
                f"ccnp2p {' '.join(args)} on daemon {self.index} failed: {res.stderr.decode()}"
            )
        return res.stdout

    def cli_json_get(self, path: str) -> bytes:
        """GET ``path`` on this daemon's API (read-only calls need no token)."""
        import http.client

        host, port = self.api.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", path)
        return conn.getresponse().read()

    def executions(self) -> list[dict[str, Any]]:
        """What this daemon has executed (``/api/v0/executions``)."""
        return list(json.loads(self.cli_json_get("/api/v0/executions"))["executions"])


class Testnet:
    """Start with ``with Testnet(root, n) as net:``; all daemons stop when the block ends."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        root: Path,
        n: int,
        *,
        extra_args: tuple[str, ...] = (),
        configure: Callable[[int, Config], None] | None = None,
    ) -> None:
        self.root = root
        self.n = n
        self.extra_args = extra_args
        self.configure = configure
        self.daemons: list[Daemon] = []

    def __enter__(self) -> Testnet:
        try:
            for i in range(self.n):
                self.daemons.append(self._start(i))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start(self, i: int) -> Daemon:
        repo = self.root / f"node{i}"
        env = {**os.environ, "CCNP2P_REPO": str(repo)}
        cli = [sys.executable, "-m", "ccnp2p.cli.main"]
        subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
        if self.configure is not None:
            cfg = Config.load(repo / "config.toml")
            self.configure(i, cfg)
            cfg.save(repo / "config.toml")
        args = [*cli, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--api-port", "0"]
        for prev in self.daemons[-3:]:
            args += ["--bootstrap", prev.addr]
        proc = subprocess.Popen(
            [*args, *self.extra_args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        daemon = Daemon(i, repo, proc)
        self._wait_ready(daemon)
        return daemon

    def _wait_ready(self, d: Daemon) -> None:
        assert d.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        buf = b""
        fd = d.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                if d.proc.poll() is not None:
                    break
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            *lines, rest = buf.split(b"\n")
            buf = rest
            for raw in lines:
                line = raw.decode(errors="replace")
                d.log.append(line)
                if line.startswith("listening on ") and not d.addr:
                    d.addr = line.split()[-1]
                elif line.startswith("API server listening on "):
                    d.api = line.split()[-1]
                elif line == "daemon is ready":
                    # Keep reading its output: a daemon whose stdout pipe fills up (64 KiB of
                    # log lines nobody reads) blocks on its next log write, API and all.
                    d.drain = threading.Thread(target=_drain, args=(d, fd, buf), daemon=True)
                    d.drain.start()
                    return
        raise RuntimeError(f"daemon {d.index} did not start:\n" + "\n".join(d.log))

    def stop(self) -> list[int]:
        """SIGTERM every daemon, wait for each, and return their exit codes."""
        codes = []
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGTERM)
        for d in self.daemons:
            try:
                codes.append(d.proc.wait(timeout=STOP_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                d.proc.kill()
                codes.append(d.proc.wait())
            if d.drain is not None:
                d.drain.join(timeout=STOP_TIMEOUT_S)  # EOF once the process has exited
            if d.proc.stdout is not None:
                d.proc.stdout.close()
        self.daemons = []
        return codes


def _drain(d: Daemon, fd: int, buf: bytes) -> None:
    """Read a daemon's output until it exits, keeping the newest lines in ``d.log``."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        *lines, buf = (buf + chunk).split(b"\n")
        d.log.extend(raw.decode(errors="replace") for raw in lines)


def main() -> None:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description="run N ccnp2p daemons on 127.0.0.1")
    ap.add_argument("n", type=int, nargs="?", default=3)
    ap.add_argument("--root", type=Path, help="where the repo dirs go (default: a temp dir)")
    args = ap.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="ccnp2p-testnet-"))
    net = Testnet(root, args.n)
    with net:
        for d in net.daemons:
            print(f"node{d.index}: CCNP2P_REPO={d.repo}  {d.addr}  api {d.api}")
        print(f"{args.n} daemons running; Ctrl-C stops them all", flush=True)
        try:
            while all(d.proc.poll() is None for d in net.daemons):
                try:
                    net.daemons[0].proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            pass
        codes = net.stop()
    print(f"stopped: exit codes {codes}")


if __name__ == "__main__":
    main()
