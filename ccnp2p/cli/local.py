"""Offline commands: they open the repo dir directly (no daemon needed)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from ccnp2p.cli.progress import Progress
from ccnp2p.errors import CcnError, LocalError, NotFound
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import FileNode, decode_object
from ccnp2p.store.files import FileReader, import_stream
from ccnp2p.store.gc import collect_garbage
from ccnp2p.store.pins import PinKind
from ccnp2p.store.repo import Repo, init_repo, is_initialised


def cmd_init(repo_path: Path) -> int:
    existed = is_initialised(repo_path)
    ident = init_repo(repo_path)
    verb = "exists" if existed else "initialised"
    print(f"repo {verb} at {repo_path}\npeer id: {ident.peer_id_str}")
    return 0


@contextmanager
def _input(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    if path == "-":
        yield sys.stdin.buffer, None
        return
    p = Path(path)
    if p.is_dir():
        raise LocalError(f"{path} is a directory (directories are not supported yet)")
    try:
        f = open(p, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise LocalError(f"no such file: {path}") from None
    except PermissionError:
        raise LocalError(f"permission denied: {path}") from None
    with f:
        yield f, p.stat().st_size


def cmd_put(repo_path: Path, path: str, *, chunk_bytes: int | None, pin: bool) -> int:
    with Repo(repo_path) as repo, _input(path) as (src, size):
        bar = Progress(size, "put")
        result = import_stream(
            repo.blocks,
            src,
            chunk_bytes=chunk_bytes or repo.config.storage.chunk_bytes,
            progress=bar.advance,
        )
        if pin:
            repo.pins.add(result.root)
        bar.finish()
    print(result.root)
    return 0


def _write_all(out: BinaryIO, chunks: Iterator[bytes], bar: Progress) -> None:
    for data in chunks:
        out.write(data)
        bar.advance(len(data))


def cmd_get(repo_path: Path, cid_text: str, *, output: str | None, offset: int) -> int:
    cid = Cid.parse(cid_text)
    with Repo(repo_path) as repo:
        reader = FileReader(repo.blocks.get, cid)
        resume = 0
        if output is not None and output != "-" and offset == 0:
            part = Path(output + ".part")
            resume = part.stat().st_size if part.exists() else 0
        offset += resume
        bar = Progress(max(reader.size - offset, 0), "get")
        chunks = reader.iter_range(offset)
        if output is None or output == "-":
            _write_all(sys.stdout.buffer, chunks, bar)
            sys.stdout.buffer.flush()
        else:
            tmp = Path(output + ".part")
            with open(tmp, "ab" if resume else "wb") as out:
                _write_all(out, chunks, bar)
            tmp.replace(output)
        bar.finish()
    return 0


def stat_object(repo: Repo, cid: Cid) -> dict[str, Any]:
    """What ``ccnp2p stat`` reports for a CID held locally."""
    pin = repo.pins.get(cid)
    info: dict[str, Any] = {"cid": str(cid), "pinned": pin.kind.value if pin else None}
    if cid.is_raw:
        info.update(kind="chunk", size=repo.blocks.size_of(cid), chunks=1)
        return info
    obj = decode_object(repo.blocks.get(cid))
    info["kind"] = obj.TYPE.removeprefix("ccn/")
    if isinstance(obj, FileNode):
        reader = FileReader(repo.blocks.get, cid)
        chunks = sum(1 for _ in reader.chunk_refs())
        info.update(size=obj.size, chunks=chunks, depth=obj.depth)
    else:
        info["size"] = len(obj.encode())
    return info


def cmd_stat(repo_path: Path, cid_text: str) -> int:
    cid = Cid.parse(cid_text)
    with Repo(repo_path) as repo:
        if not repo.blocks.has(cid):
            raise NotFound(f"{cid} is not in the local store", cid)
        print(json.dumps(stat_object(repo, cid), indent=2))
    return 0


def cmd_pin(repo_path: Path, action: str, cids: list[str], *, recursive: bool) -> int:
    with Repo(repo_path) as repo:
        if action == "ls":
            for pin in repo.pins.list():
                print(f"{pin.cid} {pin.kind.value}")
            return 0
        for text in cids:
            cid = Cid.parse(text)
            if action == "add":
                if not repo.blocks.has(cid):
                    raise NotFound(f"cannot pin {cid}: not in the local store", cid)
                repo.pins.add(cid, PinKind.RECURSIVE if recursive else PinKind.DIRECT)
                print(f"pinned {cid} {'recursively' if recursive else 'directly'}")
            elif not repo.pins.remove(cid):
                raise LocalError(f"{cid} is not pinned")
            else:
                print(f"unpinned {cid}")
    return 0


def cmd_gc(repo_path: Path, *, quiet: bool) -> int:
    with Repo(repo_path) as repo:
        result = collect_garbage(repo.blocks, repo.pins)
    if result.errors:
        for err in result.errors:
            print(f"gc: {err}", file=sys.stderr)
        raise CcnError("gc aborted: some pinned objects are unreadable (nothing was removed)")
    if not quiet:
        for cid in result.removed:
            print(f"removed {cid}")
    print(
        f"removed {len(result.removed)} blocks, freed {result.freed_bytes} bytes", file=sys.stderr
    )
    return 0
