"""Per-reason token buckets that keep a storm of bad tokens from flooding the log.

Each reason has its own bucket (a burst, then a steady rate). An event that finds its
bucket empty is suppressed and counted; the next event emitted for that reason carries
the count (``suppressed``), so emitted + suppressed always equals rejected requests.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

__all__ = ["EventRateLimiter"]


class EventRateLimiter:
    """Thread-safe token buckets keyed by reason.

    Args:
        burst: Events allowed at once per key (the bucket size).
        per_second: Steady refill rate per key.
        clock: A monotonic clock in seconds (injectable for tests).

    Raises:
        ValueError: ``burst`` < 1 or ``per_second`` <= 0.
    """

    __slots__ = ("_buckets", "_clock", "_lock", "burst", "per_second")

    def __init__(
        self,
        burst: int = 50,
        per_second: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Check the limits; buckets are created on first use, one per key."""
        if burst < 1 or per_second <= 0:
            raise ValueError("log rate limit needs burst >= 1 and per_second > 0.")
        self.burst = burst
        self.per_second = float(per_second)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [tokens, last refill time, suppressed since the last emitted event]
        self._buckets: dict[Hashable, list[float]] = {}

    def acquire(self, key: Hashable) -> int | None:
        """Take one event from ``key``'s bucket.

        Returns:
            ``None`` when the event must be suppressed; otherwise the number of events
            suppressed for ``key`` since the last one emitted (to report, then reset).
        """
        with self._lock:
            # Read inside the lock: a stale time would move the refill clock backwards.
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = [float(self.burst), now, 0.0]
            tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.per_second)
            bucket[1] = now
            if tokens < 1:
                bucket[0] = tokens
                bucket[2] += 1
                return None
            bucket[0] = tokens - 1
            suppressed = int(bucket[2])
            bucket[2] = 0.0
            return suppressed
