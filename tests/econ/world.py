"""A hand-built settlement world: a 3-level calc DAG with every role (no network)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ccnp2p.econ.statement import Evidence
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.keys import Identity
from ccnp2p.objects.model import Calc, Content, NamedObject, Operator
from ccnp2p.objects.records import IndexRecord, Receipt, ResultRecord, ShareRecord

NAMES = (
    "alice", "bob", "carol", "dave", "erin", "exec1", "exec2", "exec3",
    "idx1", "idx2", "sharer1", "sharer2", "consumer",
)  # fmt: skip


def ids() -> dict[str, Identity]:
    return {name: Identity.from_seed_int(7000 + i) for i, name in enumerate(NAMES)}


def key(ident: Identity) -> bytes:
    return ident.public.to_protobuf()


def operator(author: Identity, name: str, share_bp: int) -> Operator:
    return Operator(
        name=name, version="1", impl=f"test:{name}@1", code_hash=b"\x00" * 32,
        author=key(author), author_share=share_bp,
    ).signed_by(author)  # fmt: skip


def claim(owner: Identity, target: Cid, terms: dict[str, int] | None = None) -> Content:
    return Content(owner=key(owner), name="c", target=target, terms=terms or {}).signed_by(owner)


def result(executor: Identity, calc: Cid) -> ResultRecord:
    return ResultRecord(calc=calc, result=Cid.for_object(bytes(calc)), executor=key(executor),
                        seq=1).signed_by(executor)  # fmt: skip


@dataclass
class World:
    """A = alice's data, B = bob's; d1 = upper(A) (carol, 10 %), d2 = join(d1, B) (carol,
    10 %), d3 = digest(d2) (dave, 5 %), claimed by erin (owner 5 %, sharers 10 %, indexers
    6 %); exec1..3 computed d1..d3; idx1 (two-way) and idx2 (one-way) index d3; the consumer
    got d3 from sharer2, who got it from sharer1."""

    who: dict[str, Identity]
    objects: list[NamedObject] = field(default_factory=list)
    a: Cid = field(default_factory=lambda: Cid.for_object(b"A"))
    b: Cid = field(default_factory=lambda: Cid.for_object(b"B"))
    d3: Cid = field(default_factory=lambda: Cid.for_object(b""))
    share: Cid | None = None

    def evidence(self) -> Evidence:
        return Evidence(self.objects)

    def receipt(self, value: int, *, share: bool = True, nonce: int = 1) -> Receipt:
        c = self.who["consumer"]
        return Receipt(consumer=key(c), target=self.d3, bytes_read=4096, value=value,
                       share=self.share if share else None, nonce=nonce).signed_by(c)  # fmt: skip


def build_world() -> World:
    who = ids()
    w = World(who)
    upper = operator(who["carol"], "upper", 1000)
    join = operator(who["carol"], "join", 1000)
    digest = operator(who["dave"], "digest", 500)
    d1 = Calc(op=upper.cid, inputs=(w.a,))
    d2 = Calc(op=join.cid, inputs=(d1.cid, w.b))
    d3 = Calc(op=digest.cid, inputs=(d2.cid,))
    w.d3 = d3.cid
    terms = {"owner": 500, "sharers": 1000, "indexers": 600}
    w.objects += [upper, join, digest, d1, d2, d3]
    w.objects += [
        claim(who["alice"], w.a),
        claim(who["bob"], w.b),
        claim(who["erin"], d3.cid, terms),
    ]
    w.objects += [result(who["exec1"], d1.cid), result(who["exec2"], d2.cid),
                  result(who["exec3"], d3.cid)]  # fmt: skip
    one = IndexRecord(indexer=key(who["idx1"]), target=d3.cid, owner=key(who["erin"]))
    w.objects.append(one.signed_by(who["idx1"]).countersigned_by(who["erin"]))
    two = IndexRecord(indexer=key(who["idx2"]), target=d3.cid, owner=key(who["erin"]))
    w.objects.append(two.signed_by(who["idx2"]))
    s1 = ShareRecord(sharer=key(who["sharer1"]), target=d3.cid, to=who["sharer2"].peer_id)
    s1 = s1.signed_by(who["sharer1"])
    s2 = ShareRecord(sharer=key(who["sharer2"]), target=d3.cid, to=who["consumer"].peer_id,
                     prev=s1.cid).signed_by(who["sharer2"])  # fmt: skip
    w.objects += [s1, s2]
    w.share = s2.cid
    return w
