"""Fixtures for the Network seam: the same alice/bob/carol over every implementation.

``net_kind`` parametrises a test over the in-memory network (under an autojump MockClock) and
py-libp2p on 127.0.0.1 (real clock). pytest-trio only picks up a clock that the *test* requests,
so conformance tests take the ``clock`` fixture explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio.testing

from ccnp2p.net.base import Network
from ccnp2p.net.memory import MemoryNetwork
from tests.net.helpers import open_node


@pytest.fixture(params=["memory", "libp2p"])
def net_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock(net_kind: str) -> trio.testing.MockClock | None:
    return trio.testing.MockClock(autojump_threshold=0) if net_kind == "memory" else None


@pytest.fixture
async def hub() -> AsyncIterator[MemoryNetwork]:
    async with MemoryNetwork(seed=1, latency_s=0.01) as hub:
        yield hub


# Each node is opened in its own fixture so a libp2p host's nursery lives in one task.
@pytest.fixture
async def alice(net_kind: str, hub: MemoryNetwork) -> AsyncIterator[Network]:
    async with open_node(net_kind, hub, 1) as net:
        yield net


@pytest.fixture
async def bob(net_kind: str, hub: MemoryNetwork) -> AsyncIterator[Network]:
    async with open_node(net_kind, hub, 2) as net:
        yield net


@pytest.fixture
async def carol(net_kind: str, hub: MemoryNetwork) -> AsyncIterator[Network]:
    async with open_node(net_kind, hub, 3) as net:
        yield net
