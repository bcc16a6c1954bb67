"""Garbage collection: mark everything reachable from pins, sweep the rest.

Marking decodes object blocks and follows their links (file tree, calc inputs and operator,
content targets, record states). A pinned root that is missing or corrupt is reported, not fatal:
GC never deletes a block it could not prove unreachable, so when marking fails for a pin, the
sweep is skipped entirely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ccnp2p.errors import CcnError
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.model import decode_object
from ccnp2p.store.blockstore import Blockstore
from ccnp2p.store.pins import PinKind, PinSet

log = logging.getLogger(__name__)


@dataclass(slots=True)
class GcResult:
    removed: list[Cid] = field(default_factory=list)
    freed_bytes: int = 0
    kept: int = 0
    errors: list[str] = field(default_factory=list)


def reachable(blocks: Blockstore, pins: PinSet) -> tuple[set[Cid], list[str]]:
    """Every CID reachable from the pins, and the problems met while walking."""
    marked: set[Cid] = set()
    errors: list[str] = []
    stack: list[Cid] = []
    for pin in pins.list():
        marked.add(pin.cid)
        if pin.kind is PinKind.RECURSIVE:
            stack.append(pin.cid)
    while stack:
        cid = stack.pop()
        if cid.is_raw or not blocks.has(cid):
            continue
        try:
            obj = decode_object(blocks.get(cid))
        except CcnError as exc:
            errors.append(f"{cid}: {exc}")
            continue
        for ref in obj.refs():
            if ref not in marked:
                marked.add(ref)
                stack.append(ref)
    return marked, errors


def collect_garbage(blocks: Blockstore, pins: PinSet) -> GcResult:
    """Remove unpinned blocks (blocks imports in progress with the GC lock)."""
    result = GcResult()
    with blocks.gc_lock.exclusive():
        marked, errors = reachable(blocks, pins)
        result.errors = errors
        if errors:
            log.warning("gc: %d pinned objects unreadable; nothing removed", len(errors))
            return result
        for cid in list(blocks):
            if cid in marked:
                result.kept += 1
                continue
            result.freed_bytes += blocks.delete(cid)
            result.removed.append(cid)
    return result
