"""Pure object layer: CIDs, canonical DAG-CBOR, identities, named objects and signed records.

Nothing here does I/O. Import :mod:`ccnp2p.objects.records` to register the record types with
:func:`ccnp2p.objects.model.decode_object`.
"""

from __future__ import annotations

from ccnp2p.objects import records as _records  # noqa: F401  (registers record types)
from ccnp2p.objects.cid import DAG_CBOR, RAW, Cid
from ccnp2p.objects.keys import Identity, PublicKey
from ccnp2p.objects.model import (
    Calc,
    Content,
    FileNode,
    NamedObject,
    Operator,
    SignedObject,
    decode_object,
)
from ccnp2p.objects.records import (
    CapabilityRecord,
    CheckpointRecord,
    ExecutorRecord,
    IndexRecord,
    Receipt,
    ResultRecord,
    ShareRecord,
)

__all__ = [
    "DAG_CBOR",
    "RAW",
    "Calc",
    "CapabilityRecord",
    "CheckpointRecord",
    "Cid",
    "Content",
    "ExecutorRecord",
    "FileNode",
    "Identity",
    "IndexRecord",
    "NamedObject",
    "Operator",
    "PublicKey",
    "Receipt",
    "ResultRecord",
    "ShareRecord",
    "SignedObject",
    "decode_object",
]
