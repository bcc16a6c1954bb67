"""Real daemons on loopback, driven through the CLI like a user would."""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccnp2p.testnet import Testnet


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    with Testnet(tmp_path_factory.mktemp("testnet"), 5) as testnet:
        yield testnet


@pytest.fixture(scope="module")
def shared(net: Testnet, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    data = os.urandom(2 * 1024 * 1024 + 4321)
    path = tmp_path_factory.mktemp("data") / "file.bin"
    path.write_bytes(data)
    cid = net.daemons[1].cli("put", str(path)).decode().strip()
    return cid, data


def api(net: Testnet, i: int) -> tuple[str, int]:
    host, port = net.daemons[i].api.removeprefix("http://").split(":")
    return host, int(port)


def request(
    net: Testnet, i: int, method: str, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    host, port = api(net, i)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, headers=headers or {})
    return conn.getresponse()


def test_put_on_one_get_on_another(net: Testnet, shared: tuple[str, bytes]) -> None:
    cid, data = shared
    assert net.daemons[3].cli("get", cid) == data
    provs = net.daemons[4].cli("dht", "findprovs", cid).decode().split()
    putter = json.loads(net.daemons[1].cli("id", "--json"))["id"]
    assert putter in provs


def test_get_to_file_and_offset(net: Testnet, shared: tuple[str, bytes], tmp_path: Path) -> None:
    cid, data = shared
    out = tmp_path / "out.bin"
    net.daemons[2].cli("get", cid, "-o", str(out))
    assert out.read_bytes() == data
    assert net.daemons[4].cli("get", cid, "--offset", "2000000") == data[2000000:]


def test_gateway_range(net: Testnet, shared: tuple[str, bytes]) -> None:
    cid, data = shared
    resp = request(net, 0, "GET", f"/ccn/{cid}", {"Range": "bytes=1000-1999"})
    assert resp.status == 206
    assert resp.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
    assert resp.read() == data[1000:2000]
    resp = request(net, 0, "GET", f"/ccn/{cid}", {"Range": "bytes=-10"})
    assert resp.read() == data[-10:]
    resp = request(net, 0, "GET", f"/ccn/{cid}", {"Range": f"bytes={len(data)}-"})
    assert resp.status == 416
    resp.read()
    full = request(net, 0, "GET", f"/ccn/{cid}")
    assert full.status == 200 and full.read() == data


def test_api_refuses_foreign_origins_and_tokenless_writes(net: Testnet) -> None:
    resp = request(net, 0, "GET", "/api/v0/id", {"Origin": "http://evil.example"})
    assert resp.status == 403
    resp.read()
    _host, port = api(net, 0)
    resp = request(net, 0, "GET", "/api/v0/id", {"Host": f"evil.example:{port}"})
    assert resp.status == 403
    resp.read()
    resp = request(net, 0, "POST", "/api/v0/gc")
    assert resp.status == 401
    resp.read()
    token = (net.daemons[0].repo / "api.token").stat()
    assert token.st_mode & 0o077 == 0


def test_dht_records_and_peers(net: Testnet) -> None:
    key = net.daemons[0].cli("dht", "put", "hello from node0").decode().strip()
    assert key.startswith("/ccn/user/")
    assert net.daemons[4].cli("dht", "get", key) == b"hello from node0"
    net.daemons[0].cli("dht", "put", "second version")
    assert net.daemons[3].cli("dht", "get", key) == b"second version"
    assert net.daemons[2].cli("peers").strip()


def test_errors_through_the_daemon(net: Testnet) -> None:
    d = net.daemons[2]
    missing = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    res = d.cli("get", missing, check=False)
    assert res == b""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "ccnp2p.cli.main", "get", missing],
        env=d.env(),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert b"no provider" in proc.stderr and b"Traceback" not in proc.stderr


def test_clean_shutdown_on_sigterm(tmp_path: Path) -> None:
    net = Testnet(tmp_path, 2)
    with net:
        repo = net.daemons[0].repo
        assert (repo / "api").exists()
        codes = net.stop()
    assert codes == [0, 0]
    assert not (repo / "api").exists()


def test_a_lone_daemon_defines_and_computes_calcs(tmp_path: Path) -> None:
    # No peers, so nothing is announced; its operators must still be nameable in calcs.
    with Testnet(tmp_path / "alone", 1) as lone:
        d = lone.daemons[0]
        (tmp_path / "abc.txt").write_bytes(b"a\nb\nc\n")
        src = d.cli("put", str(tmp_path / "abc.txt")).decode().strip()
        calc = d.cli("calc", "line_count", src).decode().strip()
        assert d.cli("get", calc) == b"3\n"


def test_calc_through_the_cli(net: Testnet, tmp_path: Path) -> None:
    text = b"".join(b"line %d of the corpus\n" % i for i in range(5000))
    src = tmp_path / "corpus.txt"
    src.write_bytes(text)
    cid = net.daemons[1].cli("put", str(src)).decode().strip()
    ops = net.daemons[2].cli("ops").decode()
    assert "line_count" in ops and "forward" in ops
    count = net.daemons[2].cli("calc", "line_count", cid).decode().strip()
    grep = net.daemons[2].cli("calc", "grep", cid, "--param", "pattern=line 99").decode().strip()
    assert net.daemons[3].cli("get", count) == b"5000\n"
    expected = b"".join(line + b"\n" for line in text.splitlines() if b"line 99" in line)
    assert net.daemons[4].cli("get", grep) == expected
    explain = json.loads(net.daemons[2].cli("stat", "--explain", grep))
    assert explain["operator"] == "grep@1" and explain["ranking"]
    stat = json.loads(net.daemons[3].cli("stat", count))
    assert stat["kind"] == "calc" and stat["result"]
    # The gateway computes (or serves) calcs too.
    resp = request(net, 0, "GET", f"/ccn/{grep}")
    assert resp.status == 200 and resp.read() == expected


def test_names_and_name_gateway(net: Testnet, shared: tuple[str, bytes]) -> None:
    cid, data = shared
    owner = json.loads(net.daemons[0].cli("id", "--json"))["id"]
    net.daemons[0].cli("name", "publish", "site", cid)
    assert net.daemons[3].cli("name", "resolve", f"{owner}/site").decode().strip() == cid
    resp = request(net, 4, "GET", f"/ccn-name/{owner}/site", {"Range": "bytes=0-99"})
    assert resp.status == 206 and resp.read() == data[:100]


def test_claim_share_pay_and_ledger(net: Testnet, shared: tuple[str, bytes]) -> None:
    cid, _ = shared
    owner, sharer, consumer = net.daemons[1], net.daemons[2], net.daemons[3]
    owner_id = json.loads(owner.cli("id", "--json"))["id"]
    consumer_id = json.loads(consumer.cli("id", "--json"))["id"]
    owner.cli("claim", cid, "--name", "file", "--terms", "sharers=1000")
    sharer.cli("share", cid, "--to", consumer_id)
    out = consumer.cli("pay", cid, "--value", "10000", "--bytes", "100").decode()
    assert owner_id in out
    report = json.loads(owner.cli("ledger", "--json"))
    assert report["owed_to_me"] > 0
