"""Named objects: the typed, content-addressed objects of ccnp2p.

Every object is a DAG-CBOR map with a ``type`` field (``ccn/<kind>``) and a version ``v``. Its CID
is the sha2-256 of its canonical encoding, so two peers that build the same object get the same
CID. Objects that an author vouches for (content, operator) carry an ed25519 signature over a
domain-separated encoding of every other field (see :mod:`ccnp2p.objects.signing`).

Chunks are not objects: they are raw blocks (codec raw) addressed by the hash of their bytes.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, Self

from ccnp2p.errors import DecodeError
from ccnp2p.objects import dagcbor
from ccnp2p.objects.cid import Cid
from ccnp2p.objects.fields import check, cid_list, int_list, nonneg, opt, req, str_map_int
from ccnp2p.objects.keys import Identity, PublicKey
from ccnp2p.objects.signing import signing_bytes
from ccnp2p.objects.sizing import check_output_model, estimate_output

OBJECT_VERSION: Final = 1
FILE_FANOUT: Final = 4096
BASIS_POINTS: Final = 10_000


class NamedObject(ABC):
    """Base of all objects: encode to canonical DAG-CBOR, compute the CID, decode strictly."""

    TYPE: ClassVar[str] = ""
    __slots__ = ()

    @abstractmethod
    def fields(self) -> dict[str, Any]:
        """Every field except ``type``/``v`` (and except ``sig`` for signed objects)."""

    @classmethod
    @abstractmethod
    def from_fields(cls, data: dict[str, Any]) -> Self:
        """Build the object from its decoded fields (``type``/``v`` removed)."""

    def to_data(self) -> dict[str, Any]:
        data = self.fields()
        data["type"] = self.TYPE
        data["v"] = OBJECT_VERSION
        return data

    def encode(self) -> bytes:
        return dagcbor.encode(self.to_data())

    @property
    def cid(self) -> Cid:
        return Cid.for_object(self.encode())

    def refs(self) -> tuple[Cid, ...]:
        """CIDs this object depends on (followed by recursive pins and GC)."""
        return ()


class SignedObject(NamedObject):
    """An object with a ``sig`` field made by the key in its ``signer`` field."""

    __slots__ = ()
    SIGNER_FIELD: ClassVar[str] = ""

    sig: bytes

    def signer(self) -> PublicKey:
        return PublicKey.from_protobuf(self.fields()[self.SIGNER_FIELD])

    def signed_bytes(self) -> bytes:
        return signing_bytes(self.TYPE, self.fields())

    def signed_by(self, identity: Identity) -> Self:
        """Return a copy signed by ``identity`` (which must be the signer field's key)."""
        if identity.public.to_protobuf() != self.fields()[self.SIGNER_FIELD]:
            raise ValueError("identity is not this object's signer")
        return dataclasses.replace(self, sig=identity.sign(self.signed_bytes()))  # type: ignore[type-var]

    def verify(self) -> None:
        """Raise :class:`ccnp2p.errors.SignatureError` unless the signature is valid."""
        self.signer().verify(self.sig, self.signed_bytes())

    def to_data(self) -> dict[str, Any]:
        data = super().to_data()
        data["sig"] = self.sig
        return data


@dataclass(frozen=True, slots=True)
class FileNode(NamedObject):
    """A file (or a subtree of one): ordered links with the byte size under each.

    ``depth == 0``: links are raw chunks. ``depth > 0``: links are ``FileNode`` s of depth - 1.
    At most :data:`FILE_FANOUT` links per node, so a 1 GiB file of 256 KiB chunks is one node and
    larger files become a balanced tree.
    """

    TYPE: ClassVar[str] = "ccn/file"
    size: int
    links: tuple[Cid, ...]
    sizes: tuple[int, ...]
    depth: int = 0

    def __post_init__(self) -> None:
        if len(self.links) != len(self.sizes):
            raise DecodeError("file: links and sizes differ in length")
        if len(self.links) > FILE_FANOUT:
            raise DecodeError("file: too many links in one node")
        if sum(self.sizes) != self.size:
            raise DecodeError("file: sizes do not add up to size")
        if self.depth < 0 or self.depth > 8:
            raise DecodeError("file: bad depth")
        want_raw = self.depth == 0
        for link in self.links:
            if link.is_raw != want_raw:
                raise DecodeError("file: link codec does not match depth")

    def fields(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "depth": self.depth,
            "links": list(self.links),
            "sizes": list(self.sizes),
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> FileNode:
        return cls(
            size=nonneg(req(data, "size", int), "size"),
            links=cid_list(data, "links"),
            sizes=int_list(data, "sizes"),
            depth=req(data, "depth", int),
        )

    def refs(self) -> tuple[Cid, ...]:
        return self.links

    def __hash__(self) -> int:
        return hash(self.encode())


@dataclass(frozen=True, slots=True)
class Content(SignedObject):
    """An owner's claim on a target CID, with the revenue terms that settlement follows.

    ``terms`` maps role names (``owner``, ``indexers``, ``sharers``, ...) to basis points of the
    value of a read; they must not exceed 10,000 in total.
    """

    TYPE: ClassVar[str] = "ccn/content"
    SIGNER_FIELD: ClassVar[str] = "owner"
    owner: bytes
    name: str
    target: Cid
    terms: dict[str, int] = field(default_factory=dict)
    created: int = 0
    sig: bytes = b""

    def __post_init__(self) -> None:
        PublicKey.from_protobuf(self.owner)
        if sum(self.terms.values()) > BASIS_POINTS:
            raise DecodeError("content: terms exceed 10,000 basis points")
        if len(self.name) > 256:
            raise DecodeError("content: name too long")

    def refs(self) -> tuple[Cid, ...]:
        return (self.target,)

    def fields(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "name": self.name,
            "target": self.target,
            "terms": dict(self.terms),
            "created": self.created,
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Content:
        return cls(
            owner=req(data, "owner", bytes),
            name=req(data, "name", str),
            target=req(data, "target", Cid),
            terms=str_map_int(data, "terms"),
            created=nonneg(req(data, "created", int), "created"),
            sig=req(data, "sig", bytes),
        )

    def __hash__(self) -> int:
        return hash(self.encode())


Affinity = Literal["source", "result"]


@dataclass(frozen=True, slots=True)
class Operator(SignedObject):
    """A deterministic (or declared non-deterministic) computation step, signed by its author.

    An operator CID runs only on a node where ``impl`` is installed and the installed code hashes
    to ``code_hash``. ``affinity`` tells the scheduler whether to run it next to its inputs
    (``source``) or on a peer whose resources fit (``result``). ``commutative`` operators have
    their inputs sorted in the calc so that input order does not change the calc CID.
    """

    TYPE: ClassVar[str] = "ccn/operator"
    SIGNER_FIELD: ClassVar[str] = "author"
    name: str
    version: str
    impl: str
    code_hash: bytes
    author: bytes
    stream: bool = True
    seek: bool = False
    affinity: Affinity = "source"
    resources: dict[str, int] = field(default_factory=dict)
    deterministic: bool = True
    commutative: bool = False
    author_share: int = 0
    output: dict[str, int | str] = field(default_factory=dict)
    sig: bytes = b""

    def __post_init__(self) -> None:
        PublicKey.from_protobuf(self.author)
        if self.affinity not in ("source", "result"):
            raise DecodeError("operator: affinity must be 'source' or 'result'")
        if not 0 <= self.author_share <= BASIS_POINTS:
            raise DecodeError("operator: author_share must be 0..10000 basis points")
        check_output_model(self.output)

    def fields(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "impl": self.impl,
            "code_hash": self.code_hash,
            "author": self.author,
            "stream": self.stream,
            "seek": self.seek,
            "affinity": self.affinity,
            "resources": dict(self.resources),
            "deterministic": self.deterministic,
            "commutative": self.commutative,
            "author_share": self.author_share,
            **({"output": dict(self.output)} if self.output else {}),
        }

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Operator:
        affinity = req(data, "affinity", str)
        if affinity not in ("source", "result"):
            raise DecodeError("operator: affinity must be 'source' or 'result'")
        return cls(
            name=req(data, "name", str),
            version=req(data, "version", str),
            impl=req(data, "impl", str),
            code_hash=req(data, "code_hash", bytes),
            author=req(data, "author", bytes),
            stream=req(data, "stream", bool),
            seek=req(data, "seek", bool),
            affinity=affinity,  # type: ignore[arg-type]
            resources=str_map_int(data, "resources"),
            deterministic=req(data, "deterministic", bool),
            commutative=opt(data, "commutative", bool, False),
            author_share=req(data, "author_share", int),
            output=_output_model(data),
            sig=req(data, "sig", bytes),
        )

    def estimate_output(self, input_bytes: int, params: dict[str, Any]) -> int:
        """Expected output bytes for ``input_bytes`` of input, from the declared ``output``."""
        return estimate_output(self.output, input_bytes, params)

    def __hash__(self) -> int:
        return hash(self.encode())


@dataclass(frozen=True, slots=True)
class Calc(NamedObject):
    """A computation: an operator applied to inputs (chunks, files, other calcs) with params.

    Defining a calc computes nothing; its CID names the result that reading it will produce.
    """

    TYPE: ClassVar[str] = "ccn/calc"
    op: Cid
    inputs: tuple[Cid, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.inputs) > 1024:
            raise DecodeError("calc: too many inputs")

    def refs(self) -> tuple[Cid, ...]:
        return (self.op, *self.inputs)

    def fields(self) -> dict[str, Any]:
        return {"op": self.op, "inputs": list(self.inputs), "params": dict(self.params)}

    @classmethod
    def from_fields(cls, data: dict[str, Any]) -> Calc:
        return cls(
            op=req(data, "op", Cid),
            inputs=cid_list(data, "inputs"),
            params=req(data, "params", dict),
        )

    def __hash__(self) -> int:
        return hash(self.encode())


OBJECT_TYPES: dict[str, type[NamedObject]] = {
    cls.TYPE: cls for cls in (FileNode, Content, Operator, Calc)
}


def register_object_type(cls: type[NamedObject]) -> type[NamedObject]:
    """Add a type to the decoder's table (records and econ objects register themselves)."""
    if cls.TYPE in OBJECT_TYPES and OBJECT_TYPES[cls.TYPE] is not cls:
        raise ValueError(f"object type {cls.TYPE} registered twice")
    OBJECT_TYPES[cls.TYPE] = cls
    return cls


def decode_object(data: bytes, expect: type[NamedObject] | None = None) -> NamedObject:
    """Decode any named object; raises :class:`DecodeError` for anything malformed.

    Signed objects are *not* verified here: callers that accept them from peers call
    ``verify()`` (decoding and trusting are separate decisions).
    """
    value = dagcbor.decode(data)
    if not isinstance(value, dict):
        raise DecodeError("object must be a map")
    typ = check(value.get("type"), str, "type")
    if value.get("v") != OBJECT_VERSION:
        raise DecodeError(f"unsupported object version {value.get('v')!r}")
    cls = OBJECT_TYPES.get(typ)
    if cls is None:
        raise DecodeError(f"unknown object type {typ!r}")
    if expect is not None and cls is not expect:
        raise DecodeError(f"expected {expect.TYPE}, got {typ}")
    fields_ = {k: v for k, v in value.items() if k not in ("type", "v")}
    try:
        obj = cls.from_fields(fields_)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"bad {typ}: {exc}") from exc
    known = set(obj.to_data())
    if set(value) - known:
        raise DecodeError(f"{typ}: unknown fields {sorted(set(value) - known)}")
    return obj


def _output_model(data: dict[str, Any]) -> dict[str, int | str]:
    raw = opt(data, "output", dict, {})
    if not all(isinstance(k, str) and isinstance(v, int | str) for k, v in raw.items()):
        raise DecodeError("operator: output must map names to integers or names")
    return dict(raw)
