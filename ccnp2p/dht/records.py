"""Value records: a bounded, expiring store and pluggable per-namespace validators.

Any peer may PUT any bytes under any key, so a value is worth nothing until something vouches for
it. Keys are paths (``/ccn/cap/<peer id>``, ``/ccn/result/<calc cid>``...); the first segments
name a *namespace*, and a :class:`ValidatorRegistry` maps each namespace to a :class:`Validator`
that knows the record format of that namespace (signed CBOR records, plugged in by the modules
that define them). A record whose key matches no namespace is rejected: nothing can vouch for it.

A validator does two things:

* ``validate(key, value)`` raises :class:`~ccnp2p.dht.errors.InvalidRecord` (or any
  :class:`~ccnp2p.errors.RemoteError`) unless the record is well-formed, correctly signed and
  belongs under ``key``;
* ``select(key, values)`` returns the index of the best of several valid values (for signed
  records: the highest ``seq``), so that conflicting copies converge.

The store validates before it stores, keeps the better of the stored and the incoming value, and
expires records after ``RECORD_TTL_S`` (36 h, as go-libp2p's ``MaxRecordAge``): the publisher is
expected to put again before then.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from ccnp2p.dht.errors import InvalidRecord, UnknownNamespace
from ccnp2p.dht.wire import MAX_KEY_BYTES, MAX_VALUE_BYTES

RECORD_TTL_S: Final = 36 * 3600.0
MAX_RECORDS: Final = 100_000


@runtime_checkable
class Validator(Protocol):
    """Checks and ranks the records of one namespace."""

    def validate(self, key: bytes, value: bytes) -> None:
        """Raise :class:`InvalidRecord` unless ``value`` is a valid record for ``key``."""
        ...

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """Index of the best of ``values`` (all already validated; never empty)."""
        ...


class ValidatorRegistry:
    """Namespace prefix → validator; the longest registered prefix of a key wins."""

    def __init__(self) -> None:
        self._by_prefix: dict[bytes, Validator] = {}

    def register(self, namespace: str | bytes, validator: Validator) -> None:
        """Route keys starting with ``namespace`` (e.g. ``"/ccn/cap/"``) to ``validator``."""
        prefix = namespace.encode() if isinstance(namespace, str) else namespace
        if not prefix.startswith(b"/") or not prefix.endswith(b"/"):
            raise ValueError("a namespace is a path that starts and ends with '/'")
        self._by_prefix[prefix] = validator

    def namespaces(self) -> list[bytes]:
        return sorted(self._by_prefix)

    def for_key(self, key: bytes) -> Validator:
        """The validator responsible for ``key``; raises :class:`UnknownNamespace`."""
        best: bytes | None = None
        for prefix in self._by_prefix:
            if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None:
            raise UnknownNamespace(f"no validator for key {key[:64]!r}")
        return self._by_prefix[best]

    def validate(self, key: bytes, value: bytes) -> None:
        """Check size bounds, then the namespace's own rules."""
        if len(key) > MAX_KEY_BYTES or len(value) > MAX_VALUE_BYTES:
            raise InvalidRecord("record key or value too large")
        self.for_key(key).validate(key, value)

    def select(self, key: bytes, values: Sequence[bytes]) -> int:
        """Index of the best of ``values`` according to the namespace's validator."""
        if not values:
            raise ValueError("select needs at least one value")
        if len(values) == 1:
            return 0
        index = self.for_key(key).select(key, values)
        if not 0 <= index < len(values):
            raise InvalidRecord(f"validator selected index {index} of {len(values)}")
        return index


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A validated value and when this node stops serving it."""

    value: bytes
    expires_at: float


class RecordStore:
    """Validated records by key; bounded (oldest evicted first) and expiring. Pure."""

    def __init__(
        self,
        validators: ValidatorRegistry,
        *,
        ttl_s: float = RECORD_TTL_S,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.validators = validators
        self.ttl_s = ttl_s
        self.max_records = max_records
        self._records: OrderedDict[bytes, StoredRecord] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def put(self, key: bytes, value: bytes, now: float) -> bool:
        """Validate and store; returns False when the stored value is better than ``value``.

        Raises:
            InvalidRecord: ``value`` fails its namespace's validator.
        """
        self.validators.validate(key, value)
        current = self.get(key, now)
        if (
            current is not None
            and current != value
            and self.validators.select(key, [current, value]) == 0
        ):
            return False
        self._records.pop(key, None)
        self._records[key] = StoredRecord(value, now + self.ttl_s)
        while len(self._records) > self.max_records:
            self._records.popitem(last=False)
        return True

    def get(self, key: bytes, now: float) -> bytes | None:
        """The live value under ``key``, if any."""
        record = self._records.get(key)
        if record is None:
            return None
        if record.expires_at <= now:
            del self._records[key]
            return None
        return record.value

    def expire(self, now: float) -> int:
        """Drop expired records (oldest first); returns how many went."""
        dropped = 0
        while self._records:
            first = next(iter(self._records.values()))
            if first.expires_at > now:
                break
            self._records.popitem(last=False)
            dropped += 1
        return dropped

    def next_expiry(self) -> float | None:
        return next(iter(self._records.values())).expires_at if self._records else None
