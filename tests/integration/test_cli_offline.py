"""The offline CLI as a user runs it: a real process, a real repo dir, pipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELLO = "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"


def ccn(repo: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CCNP2P_REPO": str(repo)}
    return subprocess.run(
        [sys.executable, "-m", "ccnp2p.cli.main", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    r = ccn(tmp_path / "repo", "init")
    assert r.returncode == 0, r.stderr
    assert b"12D3KooW" in r.stdout
    return tmp_path / "repo"


def test_put_get_stat_pin_gc(repo_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(700_000)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    put = ccn(repo_dir, "put", str(src))
    assert put.returncode == 0, put.stderr
    cid = put.stdout.decode().strip()
    assert cid.startswith("bafy")
    assert put.stderr == b""  # no progress bar when not on a terminal

    assert ccn(repo_dir, "get", cid).stdout == data
    out = tmp_path / "out.bin"
    assert ccn(repo_dir, "get", cid, "-o", str(out)).returncode == 0
    assert out.read_bytes() == data
    assert ccn(repo_dir, "get", cid, "--offset", "699990").stdout == data[699990:]

    stat = json.loads(ccn(repo_dir, "stat", cid).stdout)
    assert stat == {
        "cid": cid,
        "pinned": "recursive",
        "kind": "file",
        "size": 700_000,
        "chunks": 3,
        "depth": 0,
    }
    assert cid in ccn(repo_dir, "pin", "ls").stdout.decode()
    assert ccn(repo_dir, "pin", "rm", cid).returncode == 0
    gc = ccn(repo_dir, "gc")
    assert gc.returncode == 0 and cid in gc.stdout.decode()
    missing = ccn(repo_dir, "get", cid)
    assert missing.returncode == 1
    assert missing.stderr.decode().startswith("ccnp2p: error:") and b"not found" in missing.stderr


def test_stdin_put_matches_file_put(repo_dir: Path, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    (tmp_path / "f").write_bytes(data)
    a = ccn(repo_dir, "put", str(tmp_path / "f")).stdout
    b = ccn(repo_dir, "put", "-", stdin=data).stdout
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("get", "not-a-cid"), b"not a CID"),
        (("put", "/no/such/file"), b"no such file"),
        (("stat", HELLO), b"not in the"),
        (
            ("pin", "rm", HELLO),
            b"not pinned",
        ),
        (("put", "-", "--chunk-bytes", "10"), b"chunk size"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    repo_dir: Path, args: tuple[str, ...], message: bytes
) -> None:
    r = ccn(repo_dir, *args, stdin=b"")
    assert r.returncode != 0
    assert message in r.stderr
    assert b"Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_uninitialised_repo(tmp_path: Path) -> None:
    r = ccn(tmp_path / "nothing", "get", HELLO)
    assert r.returncode == 1 and b"ccnp2p init" in r.stderr
