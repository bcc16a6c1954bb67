"""Provider records: who can serve which content, with expiry and bounds.

A provider record says "peer P serves the content whose multihash is K". Providers announce
themselves with ADD_PROVIDER to the ``k`` peers closest to K and repeat it every
``REPUBLISH_INTERVAL_S`` (22 h) so that records, which expire after ``PROVIDER_TTL_S`` (48 h),
survive as long as the provider does and vanish soon after it leaves. The 26 h margin lets one
republish fail without the record disappearing.

Bounds: at most ``max_per_key`` providers per key (a full key evicts its soonest-expiring
provider: fresh announcements are worth more than stale ones) and ``max_total`` records overall
(a full store refuses new keys' records: an attacker flooding random keys cannot push out
everything else). Each provider appears once per key: re-announcing refreshes the record.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from ccnp2p.dht.routing import PeerInfo
from ccnp2p.errors import QuotaExceeded

PROVIDER_TTL_S: Final = 48 * 3600.0
REPUBLISH_INTERVAL_S: Final = 22 * 3600.0
MAX_PROVIDERS_PER_KEY: Final = 64
MAX_PROVIDER_RECORDS: Final = 100_000


@dataclass(frozen=True, slots=True)
class ProviderRecord:
    """One provider of one key, valid until ``expires_at``."""

    provider: PeerInfo
    expires_at: float


class ProviderStore:
    """Provider records by wire key (a multihash), bounded and expiring. Pure: time is passed in."""

    def __init__(
        self,
        *,
        ttl_s: float = PROVIDER_TTL_S,
        max_per_key: int = MAX_PROVIDERS_PER_KEY,
        max_total: int = MAX_PROVIDER_RECORDS,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_per_key = max_per_key
        self.max_total = max_total
        self._by_key: dict[bytes, OrderedDict[bytes, ProviderRecord]] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def add(self, key: bytes, provider: PeerInfo, now: float) -> bool:
        """Store or refresh a record; False if the store is full."""
        records = self._by_key.get(key)
        if records is not None and provider.peer_id in records:
            old = records.pop(provider.peer_id)
            addrs = provider.addrs or old.provider.addrs
            records[provider.peer_id] = ProviderRecord(
                PeerInfo(provider.peer_id, addrs), now + self.ttl_s
            )
            return True
        if records is not None and len(records) >= self.max_per_key:
            records.popitem(last=False)  # ordered by refresh time: the first expires soonest
            self._total -= 1
        if self._total >= self.max_total:
            return False
        if records is None:
            records = self._by_key[key] = OrderedDict()
        records[provider.peer_id] = ProviderRecord(provider, now + self.ttl_s)
        self._total += 1
        return True

    def get(self, key: bytes, now: float, limit: int | None = None) -> list[PeerInfo]:
        """Live providers of ``key``, freshest first, each once."""
        records = self._by_key.get(key)
        if records is None:
            return []
        self._expire_key(key, records, now)
        out = [r.provider for r in reversed(records.values())]
        return out if limit is None else out[:limit]

    def expire(self, now: float) -> int:
        """Drop every expired record; returns how many went."""
        before = self._total
        for key, records in list(self._by_key.items()):
            self._expire_key(key, records, now)
        return before - self._total

    def next_expiry(self) -> float | None:
        """When the oldest record expires (for a driver that sleeps until the next deadline)."""
        firsts = (next(iter(r.values())).expires_at for r in self._by_key.values() if r)
        return min(firsts, default=None)

    def _expire_key(
        self, key: bytes, records: OrderedDict[bytes, ProviderRecord], now: float
    ) -> None:
        while records:
            first = next(iter(records.values()))
            if first.expires_at > now:
                break
            records.popitem(last=False)
            self._total -= 1
        if not records:
            del self._by_key[key]


class ProvideSchedule:
    """Keys this node provides, and when each must be announced again."""

    def __init__(
        self, *, interval_s: float = REPUBLISH_INTERVAL_S, max_keys: int = 1_000_000
    ) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._due: dict[bytes, float] = {}

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def add(self, key: bytes, now: float) -> None:
        """``key`` was just announced: the next announcement is due one interval from now."""
        if key not in self._due and len(self._due) >= self.max_keys:
            raise QuotaExceeded(f"already providing {self.max_keys} keys")
        self._due[key] = now + self.interval_s

    def remove(self, key: bytes) -> None:
        self._due.pop(key, None)

    def due(self, now: float) -> list[bytes]:
        """Keys whose republish time has come."""
        return [key for key, at in self._due.items() if at <= now]

    def next_deadline(self) -> float | None:
        return min(self._due.values(), default=None)
