from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio

from ccnp2p.errors import NotFound
from ccnp2p.objects.cid import Cid
from tests.node.conftest import memory_nodes


async def collect(it: object) -> bytes:
    out = bytearray()
    async for piece in it:  # type: ignore[attr-defined]
        out += piece
    return bytes(out)


async def test_put_on_one_get_on_another(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    data = random.Random(3).randbytes(3 * 256 * 1024 + 99)
    async with memory_nodes(tmp_path, 5) as nodes:
        alice, carol = nodes[1], nodes[4]
        result = await alice.add_bytes(data)
        providers = await carol.find_providers(result.root)
        assert [p.peer_id for p in providers] == [alice.peer_id]
        assert await collect(carol.open_reader(result.root)) == data
        # Now cached on carol: a ranged read needs nobody else.
        assert await collect(carol.open_reader(result.root, 1000, 5000)) == data[1000:6000]


async def test_missing_content_is_a_clear_error(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with memory_nodes(tmp_path, 3) as nodes:
        with pytest.raises(NotFound, match="no provider"):
            await collect(nodes[2].open_reader(Cid.for_raw(b"nobody has this")))
