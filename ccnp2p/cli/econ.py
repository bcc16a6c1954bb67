"""Economy commands (daemon): ledger, index, share, claim, pay, name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ccnp2p.cli.online import need_daemon, parse_param
from ccnp2p.errors import LocalError
from ccnp2p.objects.cid import Cid


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2))


def cmd_ledger(repo: Path, *, as_json: bool) -> int:
    report = need_daemon(repo).json("GET", "/api/v0/ledger")
    if as_json:
        _print(report)
        return 0
    print(f"peer {report['peer']}")
    print(
        f"receipts issued {report['receipts_issued']}, received {report['receipts_received']}, "
        f"statements {report['statements']}, owed to me {report['owed_to_me']}"
    )
    for peer, amount in sorted(report["balances"].items(), key=lambda kv: -int(kv[1])):
        print(f"  {amount:>12}  {peer}")
    return 0


def cmd_index(repo: Path, cid: str) -> int:
    client = need_daemon(repo)
    res = client.json("POST", client.cid_path("/api/v0/index", str(Cid.parse(cid))))
    kind = "two-way (owner countersigned)" if res["two_way"] else "one-way"
    print(f"indexed {res['target']}: {kind}, record {res['index']}")
    return 0


def cmd_share(repo: Path, cid: str, to: str, prev: str | None) -> int:
    client = need_daemon(repo)
    path = client.cid_path("/api/v0/share", str(Cid.parse(cid)))
    res = client.json("POST", path, params={"to": to, "prev": prev})
    state = "delivered" if res["delivered"] else "not acknowledged (kept in the ledger)"
    print(f"shared with {res['to']}: {res['share']} ({state})")
    return 0


def cmd_claim(repo: Path, cid: str, name: str, terms: list[str]) -> int:
    client = need_daemon(repo)
    parsed = dict(parse_param(t) for t in terms)
    path = client.cid_path("/api/v0/claim", str(Cid.parse(cid)))
    res = client.json("POST", path, params={"name": name, "terms": json.dumps(parsed)})
    if not res["owner_is_me"]:
        raise LocalError(f"an earlier claim by another owner wins: {res['claim']}")
    print(f"claimed: {res['claim']} terms {res['terms']}")
    return 0


def cmd_pay(repo: Path, cid: str, value: int, bytes_read: int) -> int:
    client = need_daemon(repo)
    path = client.cid_path("/api/v0/receipt", str(Cid.parse(cid)))
    res = client.json("POST", path, params={"value": value, "bytes": bytes_read})
    print(f"receipt {res['receipt']} settled:")
    for p in res["payouts"]:
        print(f"  {p['amount']:>10}  {p['role']:<10} {p['party']}")
    return 0


def cmd_name(repo: Path, action: str, args: list[str]) -> int:
    client = need_daemon(repo)
    if action == "publish":
        if len(args) != 2:
            raise LocalError("usage: ccnp2p name publish NAME CID")
        res = client.json("POST", "/api/v0/name/publish", params={"name": args[0], "cid": args[1]})
        print(f"{res['name']} -> {res['cid']} (seq {res['seq']})")
    else:
        if len(args) != 1 or "/" not in args[0]:
            raise LocalError("usage: ccnp2p name resolve OWNER/NAME")
        print(client.json("GET", "/api/v0/name/resolve", params={"name": args[0]})["cid"])
    return 0
