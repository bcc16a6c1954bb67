"""Domain-separated signing payloads.

A signature covers ``b"ccn-sig/v1\\0" + type + b"\\0" + canonical DAG-CBOR of the fields`` (all
fields but ``sig``), so a signature over one object type can never be replayed as another type.
"""

from __future__ import annotations

from typing import Any, Final

from ccnp2p.objects import dagcbor

SIG_DOMAIN: Final = b"ccn-sig/v1\x00"


def signing_bytes(type_name: str, fields: dict[str, Any]) -> bytes:
    return SIG_DOMAIN + type_name.encode("ascii") + b"\x00" + dagcbor.encode(fields)
