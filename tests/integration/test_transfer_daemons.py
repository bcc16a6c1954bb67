"""Content exchange between real daemons: multi-source fetch, Range, resume."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from pathlib import Path

from ccnp2p.testnet import Testnet

MIB = 1024 * 1024


def test_64_mib_from_two_sources(tmp_path: Path) -> None:
    data = os.urandom(64 * MIB)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    with Testnet(tmp_path / "net", 3) as net:
        a, b, c = net.daemons
        cid = a.cli("put", str(src)).decode().strip()
        b.cli("pin", "add", cid)  # b fetches it all, pins and announces it
        out = tmp_path / "out.bin"
        c.cli("get", cid, "-o", str(out))
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
        stats = json.loads(c.cli_json_get("/api/v0/transfer/stats"))
        by_peer = stats["fetch"]["bytes_by_peer"]
        ids = [json.loads(d.cli("id", "--json"))["id"] for d in (a, b)]
        assert all(by_peer.get(i, 0) > 0 for i in ids), by_peer
        assert sum(by_peer.values()) >= 64 * MIB

        host, port = c.api.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", f"/ccn/{cid}", headers={"Range": "bytes=33554400-33554499"})
        resp = conn.getresponse()
        assert resp.status == 206 and resp.read() == data[33554400:33554500]


def test_interrupted_get_resumes(tmp_path: Path) -> None:
    data = os.urandom(3 * MIB + 5)
    src = tmp_path / "f.bin"
    src.write_bytes(data)
    with Testnet(tmp_path / "net", 2) as net:
        cid = net.daemons[0].cli("put", str(src)).decode().strip()
        out = tmp_path / "copy.bin"
        Path(str(out) + ".part").write_bytes(data[: MIB + 17])  # what an interrupted get left
        net.daemons[1].cli("get", cid, "-o", str(out))
        assert out.read_bytes() == data
        assert not Path(str(out) + ".part").exists()
