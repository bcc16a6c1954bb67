"""Operators installed on this node, and the operator objects that name them.

Built-in operator objects are authored by a fixed, well-known key (derived from a public
constant), so every node derives byte-identical operator objects and thus identical calc CIDs;
their signature vouches for nothing, which is fine because what makes an operator safe to run is
that its implementation is *installed locally* and its source hashes to ``code_hash``. Third-party
operators come from the ``ccnp2p.operators`` entry-point group (each entry point returns a list of
:class:`OperatorImpl`) and are authored by whoever publishes them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from ccnp2p.compute.api import OperatorImpl
from ccnp2p.errors import UnknownOperator
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.objects.model import Operator

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "ccnp2p.operators"
BUILTIN_AUTHOR = Identity(hashlib.sha256(b"ccnp2p builtin operators v1").digest())


def operator_object(impl: OperatorImpl, author: Identity = BUILTIN_AUTHOR) -> Operator:
    """The signed operator object describing ``impl``."""
    spec = impl.spec
    op = Operator(
        name=spec.name,
        version=spec.version,
        impl=impl.impl_id,
        code_hash=impl.code_hash(),
        author=author.public.to_protobuf(),
        stream=spec.stream,
        seek=spec.seek,
        affinity=spec.affinity,
        resources=dict(spec.resources),
        deterministic=spec.deterministic,
        commutative=spec.commutative,
        author_share=spec.author_share,
        output=dict(spec.output),
    )
    return op.signed_by(author)


class OperatorRegistry:
    """Maps operator CIDs and names to installed implementations."""

    def __init__(self, impls: Iterable[OperatorImpl] = (), *, author: Identity = BUILTIN_AUTHOR):
        self._by_cid: dict[Cid, tuple[Operator, OperatorImpl]] = {}
        self._by_name: dict[str, Cid] = {}
        for impl in impls:
            self.install(impl, author)

    @classmethod
    def with_builtins(cls, *, entry_points_too: bool = True) -> OperatorRegistry:
        import importlib

        ops = importlib.import_module("ccnp2p.ops")  # the built-ins; torch stays unimported
        reg = cls(ops.builtin_operators())
        if entry_points_too:
            reg.load_entry_points()
        return reg

    def install(self, impl: OperatorImpl, author: Identity = BUILTIN_AUTHOR) -> Operator:
        op = operator_object(impl, author)
        cid = op.cid
        self._by_cid[cid] = (op, impl)
        self._by_name[f"{op.name}@{op.version}"] = cid
        self._by_name.setdefault(op.name, cid)
        return op

    def load_entry_points(self) -> None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                for impl in ep.load()():
                    self.install(impl)
            except Exception:
                log.exception("could not load operators from entry point %s", ep.name)

    def resolve_name(self, name: str) -> Cid:
        """``concat`` or ``concat@1`` -> operator CID (or a CID string passed through)."""
        if name in self._by_name:
            return self._by_name[name]
        try:
            return Cid.parse(name)
        except Exception:
            known = ", ".join(sorted(n for n in self._by_name if "@" not in n))
            raise UnknownOperator(f"unknown operator {name!r} (installed: {known})") from None

    def get(self, op_cid: Cid) -> tuple[Operator, OperatorImpl]:
        """The implementation for ``op_cid``; raises :class:`UnknownOperator` if not runnable."""
        found = self._by_cid.get(op_cid)
        if found is None:
            raise UnknownOperator(f"operator {op_cid} is not installed on this node")
        return found

    def check(self, op: Operator) -> OperatorImpl:
        """Match an operator object (maybe from a peer) to installed code by impl + code hash."""
        for known, impl in self._by_cid.values():
            if known.impl == op.impl:
                if impl.code_hash() != op.code_hash:
                    raise UnknownOperator(
                        f"operator {op.name}: installed code for {op.impl} has a different hash"
                    )
                return impl
        raise UnknownOperator(f"operator {op.name} ({op.impl}) is not installed on this node")

    def operators(self) -> list[Operator]:
        return [op for op, _ in self._by_cid.values()]

    def __contains__(self, op_cid: Cid) -> bool:
        return op_cid in self._by_cid
