"""Commands served by a running daemon (and the online variants of the offline commands)."""

from __future__ import annotations

import http.client
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

from ccnp2p.cli.local import _input
from ccnp2p.cli.progress import Progress
from ccnp2p.cli.remote import DaemonClient
from ccnp2p.errors import CcnError, LocalError, RemoteError
from ccnp2p.objects.cid import Cid
from ccnp2p.store.repo import Repo

COPY_BYTES = 256 * 1024


def need_daemon(repo: Path) -> DaemonClient:
    client = DaemonClient.for_repo(repo)
    if client is None:
        raise LocalError("this command needs a running daemon: start `ccnp2p daemon` first")
    return client


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def cmd_id(repo_path: Path, *, as_json: bool) -> int:
    client = DaemonClient.for_repo(repo_path)
    if client is not None:
        info = client.json("GET", "/api/v0/id")
    else:
        with Repo(repo_path, lock=False) as repo:
            info = {"id": repo.identity.peer_id_str, "addresses": [], "agent": "ccnp2p/0.1.0"}
    if as_json:
        _print_json(info)
    else:
        print(info["id"])
        for addr in info["addresses"]:
            print(f"  {addr}")
    return 0


def cmd_peers(repo_path: Path) -> int:
    for peer in need_daemon(repo_path).json("GET", "/api/v0/peers")["peers"]:
        addr = peer["addrs"][0].split("/p2p/")[0] if peer["addrs"] else ""
        print(f"{addr}/p2p/{peer['id']}" if addr else peer["id"])
    return 0


def cmd_connect(repo_path: Path, addr: str) -> int:
    info = need_daemon(repo_path).json("POST", "/api/v0/connect", params={"addr": addr})
    print(f"connected {info['connected']}")
    return 0


def put(client: DaemonClient, path: str, *, chunk_bytes: int | None, pin: bool) -> int:
    with _input(path) as (src, size):
        bar = Progress(size, "put")
        body = _ProgressReader(src, bar)
        params = {"chunk_bytes": chunk_bytes, "pin": "true" if pin else "false"}
        res = client.json("POST", "/api/v0/add", params=params, body=body)
        bar.finish()
    print(res["cid"])
    return 0


class _ProgressReader:
    def __init__(self, src: BinaryIO, bar: Progress) -> None:
        self._src = src
        self._bar = bar

    def read(self, n: int = COPY_BYTES) -> bytes:
        data = self._src.read(n if n > 0 else COPY_BYTES)
        self._bar.advance(len(data))
        return data


def get(client: DaemonClient, cid_text: str, *, output: str | None, offset: int) -> int:
    cid = Cid.parse(cid_text)
    resume = _resume_offset(output) if offset == 0 else 0
    offset += resume
    resp = client.request(
        "GET", client.cid_path("/api/v0/cat", str(cid)), params={"offset": offset}
    )
    length = resp.headers.get("Content-Length")
    total = int(length) if length is not None else None  # a calc still computing: unknown
    bar = Progress(total, "get")
    providers = resp.headers.get("X-Ccn-Providers")
    bar.status = f"from {providers} peers" if providers and providers != "0" else "local"
    if output is None or output == "-":
        _copy(resp, sys.stdout.buffer, bar, total)
        sys.stdout.buffer.flush()
    else:
        tmp = Path(output + ".part")
        with open(tmp, "ab" if resume else "wb") as out:
            _copy(resp, out, bar, total)
        tmp.replace(output)
    bar.finish()
    return 0


def _resume_offset(output: str | None) -> int:
    """Bytes of an interrupted ``get -o FILE`` already on disk (kept in ``FILE.part``)."""
    if output is None or output == "-":
        return 0
    part = Path(output + ".part")
    if part.exists():
        size = part.stat().st_size
        if size:
            print(f"resuming {output} at byte {size}", file=sys.stderr)
        return size
    return 0


def _copy(resp: http.client.HTTPResponse, out: BinaryIO, bar: Progress, total: int | None) -> None:
    done = 0
    try:
        while True:
            data = resp.read(COPY_BYTES)
            if not data:
                break
            out.write(data)
            done += len(data)
            bar.advance(len(data))
    except http.client.IncompleteRead as exc:
        raise RemoteError(f"transfer broke off after {done + len(exc.partial)} bytes") from exc
    if total is not None and done != total:
        raise RemoteError(f"transfer broke off after {done} of {total} bytes")


def stat(client: DaemonClient, cid_text: str) -> int:
    cid = Cid.parse(cid_text)
    _print_json(client.json("GET", client.cid_path("/api/v0/stat", str(cid))))
    return 0


def pin(client: DaemonClient, action: str, cids: list[str], *, recursive: bool) -> int:
    if action == "ls":
        for p in client.json("GET", "/api/v0/pin/ls")["pins"]:
            print(f"{p['cid']} {p['kind']}")
        return 0
    for text in cids:
        cid = str(Cid.parse(text))
        if action == "add":
            params = {"direct": "false" if recursive else "true"}
            client.json("POST", client.cid_path("/api/v0/pin/add", cid), params=params)
            print(f"pinned {cid} {'recursively' if recursive else 'directly'}")
        else:
            client.json("POST", client.cid_path("/api/v0/pin/rm", cid))
            print(f"unpinned {cid}")
    return 0


def gc(client: DaemonClient, *, quiet: bool) -> int:
    res = client.json("POST", "/api/v0/gc")
    if not quiet:
        for cid in res["removed"]:
            print(f"removed {cid}")
    print(
        f"removed {len(res['removed'])} blocks, freed {res['freed_bytes']} bytes", file=sys.stderr
    )
    return 0


def cmd_dht(repo_path: Path, action: str, arg: str, *, limit: int) -> int:
    client = need_daemon(repo_path)
    if action == "provide":
        cid = str(Cid.parse(arg))
        res = client.json("POST", client.cid_path("/api/v0/dht/provide", cid))
        print(f"announced {cid} to {res['stored_on']} peers")
    elif action == "findprovs":
        cid = str(Cid.parse(arg))
        res = client.json(
            "GET", client.cid_path("/api/v0/dht/findprovs", cid), params={"limit": limit}
        )
        for p in res["providers"]:
            print(p["id"])
        if not res["providers"]:
            raise CcnError(f"no providers found for {cid}")
    elif action == "put":
        res = client.json("POST", "/api/v0/dht/put", body=arg.encode())
        print(res["key"])
    elif action == "get":
        data = client.request("GET", "/api/v0/dht/get", params={"key": arg}).read()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v``: v becomes an int, a float, true/false, or stays a string; ``k:=JSON`` is JSON."""
    if ":=" in text:
        key, raw = text.split(":=", 1)
        try:
            return key, json.loads(raw)
        except ValueError as exc:
            raise LocalError(f"--param {key}: invalid JSON: {exc}") from None
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise LocalError(f"--param must be key=value, not {text!r}")
    for conv in (int, float):
        try:
            return key, conv(value)
        except ValueError:
            pass
    if value in ("true", "false"):
        return key, value == "true"
    return key, value


def cmd_calc(repo_path: Path, op: str, inputs: list[str], params: list[str]) -> int:
    client = need_daemon(repo_path)
    body = {
        "op": op,
        "inputs": [str(Cid.parse(c)) for c in inputs],
        "params": dict(parse_param(p) for p in params),
    }
    res = client.json("POST", "/api/v0/calc", body=json.dumps(body).encode())
    print(res["cid"])
    return 0


def cmd_ops(repo_path: Path, *, as_json: bool) -> int:
    ops = need_daemon(repo_path).json("GET", "/api/v0/ops")["operators"]
    if as_json:
        _print_json(ops)
        return 0
    for op in ops:
        flags = ",".join(f for f in ("stream", "seek", "deterministic") if op[f])
        print(f"{op['name']:<12} {op['affinity']:<7} {flags:<28} {op['cid']}")
    return 0


def explain(client: DaemonClient, cid_text: str) -> int:
    cid = str(Cid.parse(cid_text))
    _print_json(client.json("GET", client.cid_path("/api/v0/explain", cid)))
    return 0
