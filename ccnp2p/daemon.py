"""``ccnp2p daemon``: a Node on real libp2p, with the local API, until SIGINT/SIGTERM.

Startup order matters for users: the repo lock is taken first (one process per repo), then the
libp2p host listens, the DHT starts and bootstraps (an unreachable bootstrap peer is logged, not
fatal), and only then is the API address written, so a CLI that sees ``<repo>/api`` can use it.
Shutdown cancels everything and removes the address file.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from ccnp2p.api.app import ApiContext
from ccnp2p.api.security import load_or_create_token
from ccnp2p.api.server import serve_api
from ccnp2p.dht.config import DhtConfig
from ccnp2p.econ import Ledger, SettleService
from ccnp2p.net.libp2p import open_libp2p_network
from ccnp2p.node import Node, parse_peer_multiaddr
from ccnp2p.objects.keys import peer_id_from_str, peer_id_to_str
from ccnp2p.sched.capability import Hardware
from ccnp2p.store.repo import Repo

log = logging.getLogger(__name__)


async def run_daemon(
    repo_path: Path,
    listen: Sequence[str] = (),
    bootstrap: Sequence[str] = (),
    api_port: int | None = None,
) -> None:
    with Repo(repo_path) as repo:
        cfg = repo.config
        listen_addrs = list(listen) or cfg.network.listen
        peers = [parse_peer_multiaddr(a) for a in (list(bootstrap) or cfg.network.bootstrap)]
        token = load_or_create_token(repo_path)
        dht_config = DhtConfig(protocol_id=cfg.network.kad_protocol)
        async with open_libp2p_network(repo.identity, listen_addrs) as network:
            cc = cfg.compute
            hardware = Hardware.detect(
                gpu=cc.gpu, gpu_memory=cc.gpu_memory, bandwidth=cc.bandwidth, price=cc.price
            )
            node = Node(
                repo.identity,
                repo.blocks,
                repo.pins,
                network,
                dht_config=dht_config,
                hardware=hardware,
            )
            node.compute.read_timeout_s = cc.executor_timeout_s
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_signals, nursery.cancel_scope)
                await nursery.start(node.run)
                pid = peer_id_to_str(node.peer_id)
                for addr in network.listen_addrs():
                    print(f"listening on {addr}/p2p/{pid}", flush=True)
                if peers:
                    known = await node.bootstrap(peers)
                    print(f"bootstrapped: {known} peers in the routing table", flush=True)
                settle = SettleService(
                    node,
                    Ledger(repo_path / "ledger.sqlite"),
                    seeds=[peer_id_from_str(s) for s in cfg.econ.seeds],
                )
                await nursery.start(settle.run)
                ctx = ApiContext(
                    node=node,
                    repo=repo,
                    token=token,
                    settle=settle,
                    value_per_mib=cfg.econ.value_per_mib,
                )
                port = cfg.api.port if api_port is None else api_port
                url = await nursery.start(serve_api, ctx, port)
                print(f"API server listening on {url}", flush=True)
                print("daemon is ready", flush=True)
    print("daemon stopped", file=sys.stderr, flush=True)


async def _watch_signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            print("shutting down...", file=sys.stderr, flush=True)
            scope.cancel()
            return
