"""``ccnp2p`` entry point: argument parsing and error reporting.

User mistakes and peer failures are one clear line on stderr and a non-zero exit status, never a
traceback. Set ``CCNP2P_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ccnp2p import __version__
from ccnp2p.cli import econ, local, online
from ccnp2p.cli.remote import DaemonClient
from ccnp2p.errors import CcnError
from ccnp2p.store.repo import default_repo_path

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ccnp2p", description="computable content network node")
    p.add_argument("--version", action="version", version=f"ccnp2p {__version__}")
    p.add_argument("--repo", type=Path, help="repo dir (default: $CCNP2P_REPO or ~/.ccnp2p)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("init", help="create the repo dir (identity, config)")

    put = sub.add_parser("put", help="add a file; prints its root CID")
    put.add_argument("path", help="file to add, or - for stdin")
    put.add_argument("--chunk-bytes", type=int, help="chunk size (1 KiB..1 MiB)")
    put.add_argument("--no-pin", action="store_true", help="do not pin the root")

    get = sub.add_parser("get", help="write a CID's bytes to stdout or a file")
    get.add_argument("cid")
    get.add_argument("-o", "--output", help="output file (default: stdout)")
    get.add_argument("--offset", type=int, default=0, help="start at this byte")

    stat = sub.add_parser("stat", help="describe a CID (JSON)")
    stat.add_argument("cid")
    stat.add_argument(
        "--explain", action="store_true", help="for a calc: where it would run and why (daemon)"
    )

    calc = sub.add_parser("calc", help="define a calc; prints its CID and computes nothing")
    calc.add_argument("op", help="operator name (see `ccnp2p ops`) or operator CID")
    calc.add_argument("inputs", nargs="*", metavar="INPUT", help="input CIDs (files or calcs)")
    calc.add_argument(
        "--param", "-p", action="append", default=[], metavar="K=V", help="k=v or k:=JSON"
    )
    ops = sub.add_parser("ops", help="operators installed on this node (daemon)")
    ops.add_argument("--json", action="store_true")

    pin = sub.add_parser("pin", help="manage pins")
    pin_sub = pin.add_subparsers(dest="pin_action", required=True, metavar="ACTION")
    pin_add = pin_sub.add_parser("add", help="pin CIDs (recursive by default)")
    pin_add.add_argument("cids", nargs="+")
    pin_add.add_argument("--direct", action="store_true", help="pin only the block itself")
    pin_rm = pin_sub.add_parser("rm", help="unpin CIDs")
    pin_rm.add_argument("cids", nargs="+")
    pin_sub.add_parser("ls", help="list pins")

    gc = sub.add_parser("gc", help="remove unpinned blocks")
    gc.add_argument("-q", "--quiet", action="store_true", help="do not list removed CIDs")

    daemon = sub.add_parser("daemon", help="run a node: libp2p host, DHT, local API")
    daemon.add_argument("--listen", action="append", default=[], metavar="MULTIADDR")
    daemon.add_argument("--bootstrap", action="append", default=[], metavar="MULTIADDR")
    daemon.add_argument("--api-port", type=int, help="API port on 127.0.0.1 (0: any free port)")

    ident = sub.add_parser("id", help="this node's peer id and addresses")
    ident.add_argument("--json", action="store_true")
    sub.add_parser("peers", help="connected peers (daemon)")
    connect = sub.add_parser("connect", help="connect to a peer (daemon)")
    connect.add_argument("addr", metavar="MULTIADDR", help="/ip4/.../tcp/.../p2p/<peer id>")

    dht = sub.add_parser("dht", help="query the DHT (daemon)")
    dht_sub = dht.add_subparsers(dest="dht_action", required=True, metavar="ACTION")
    d_prov = dht_sub.add_parser("provide", help="announce that this node holds CID")
    d_prov.add_argument("arg", metavar="CID")
    d_find = dht_sub.add_parser("findprovs", help="list providers of CID")
    d_find.add_argument("arg", metavar="CID")
    d_find.add_argument("-n", "--limit", type=int, default=20)
    d_put = dht_sub.add_parser("put", help="publish VALUE as this node's signed user record")
    d_put.add_argument("arg", metavar="VALUE")
    d_get = dht_sub.add_parser("get", help="print the value of a record KEY")
    d_get.add_argument("arg", metavar="KEY")
    _econ_parsers(sub)
    return p


def _econ_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ledger = sub.add_parser("ledger", help="balances and receipts (daemon)")
    ledger.add_argument("--json", action="store_true")
    index = sub.add_parser("index", help="include CID in this node's index (daemon)")
    index.add_argument("cid")
    share = sub.add_parser("share", help="share CID with a peer (daemon)")
    share.add_argument("cid")
    share.add_argument("--to", required=True, metavar="PEER_ID")
    share.add_argument("--prev", help="the share link through which you got CID")
    claim = sub.add_parser("claim", help="claim ownership of CID with revenue terms (daemon)")
    claim.add_argument("cid")
    claim.add_argument("--name", default="")
    claim.add_argument("--terms", action="append", default=[], metavar="ROLE=BP")
    pay = sub.add_parser("pay", help="sign a receipt for a read of CID and settle it (daemon)")
    pay.add_argument("cid")
    pay.add_argument("--value", type=int, required=True)
    pay.add_argument("--bytes", type=int, default=0, dest="bytes_read")
    name = sub.add_parser("name", help="signed, versioned names (daemon)")
    name.add_argument("action", choices=["publish", "resolve"])
    name.add_argument("args", nargs="+", metavar="ARG", help="NAME CID | OWNER/NAME")


def run(args: argparse.Namespace) -> int:
    repo = args.repo.expanduser() if args.repo else default_repo_path()
    cmd = args.command
    if cmd == "init":
        return local.cmd_init(repo)
    if cmd == "daemon":
        import trio

        from ccnp2p.daemon import run_daemon

        trio.run(run_daemon, repo, args.listen, args.bootstrap, args.api_port)
        return 0
    if cmd == "id":
        return online.cmd_id(repo, as_json=args.json)
    if cmd == "peers":
        return online.cmd_peers(repo)
    if cmd == "connect":
        return online.cmd_connect(repo, args.addr)
    if cmd in ("ledger", "index", "share", "claim", "pay", "name"):
        return _run_econ(repo, args)
    if cmd == "calc":
        return online.cmd_calc(repo, args.op, args.inputs, args.param)
    if cmd == "ops":
        return online.cmd_ops(repo, as_json=args.json)
    if cmd == "stat" and args.explain:
        return online.explain(online.need_daemon(repo), args.cid)
    if cmd == "dht":
        return online.cmd_dht(repo, args.dht_action, args.arg, limit=getattr(args, "limit", 20))
    client = DaemonClient.for_repo(repo) if cmd in ("put", "get", "stat", "pin", "gc") else None
    if client is not None:
        return run_online(client, args)
    if cmd == "put":
        return local.cmd_put(repo, args.path, chunk_bytes=args.chunk_bytes, pin=not args.no_pin)
    if cmd == "get":
        return local.cmd_get(repo, args.cid, output=args.output, offset=args.offset)
    if cmd == "stat":
        return local.cmd_stat(repo, args.cid)
    if cmd == "pin":
        cids = getattr(args, "cids", [])
        return local.cmd_pin(
            repo, args.pin_action, cids, recursive=not getattr(args, "direct", False)
        )
    if cmd == "gc":
        return local.cmd_gc(repo, quiet=args.quiet)
    raise AssertionError(f"unhandled command {cmd}")


def _run_econ(repo: Path, args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "ledger":
        return econ.cmd_ledger(repo, as_json=args.json)
    if cmd == "index":
        return econ.cmd_index(repo, args.cid)
    if cmd == "share":
        return econ.cmd_share(repo, args.cid, args.to, args.prev)
    if cmd == "claim":
        return econ.cmd_claim(repo, args.cid, args.name, args.terms)
    if cmd == "pay":
        return econ.cmd_pay(repo, args.cid, args.value, args.bytes_read)
    return econ.cmd_name(repo, args.action, args.args)


def run_online(client: DaemonClient, args: argparse.Namespace) -> int:
    """The same commands, served by the running daemon (which owns the repo)."""
    cmd = args.command
    if cmd == "put":
        return online.put(client, args.path, chunk_bytes=args.chunk_bytes, pin=not args.no_pin)
    if cmd == "get":
        return online.get(client, args.cid, output=args.output, offset=args.offset)
    if cmd == "stat":
        return online.stat(client, args.cid)
    if cmd == "pin":
        cids = getattr(args, "cids", [])
        return online.pin(
            client, args.pin_action, cids, recursive=not getattr(args, "direct", False)
        )
    return online.gc(client, quiet=args.quiet)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("CCNP2P_LOG", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    debug = bool(os.environ.get("CCNP2P_DEBUG"))
    try:
        return run(args)
    except CcnError as exc:
        if debug:
            raise
        print(f"ccnp2p: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("ccnp2p: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if debug:
            raise
        print(f"ccnp2p: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
