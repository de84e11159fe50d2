"""Flood protection: per-reason token buckets with exact suppressed counts.

The limiter takes an injectable clock, so every test controls time exactly; the thread
tests freeze it, so the number of events allowed is known in advance.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthEventLog,
    AuthFailure,
    EventRateLimiter,
    InvalidTokenMiddleware,
    Reason,
    RequestFacts,
)
from support.rejections import asgi_middleware, call_asgi, ok_asgi, rejections, scripted_verifier

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from structlog.typing import EventDict

FACTS = RequestFacts("GET", "/orders", "203.0.113.7")


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def acquire_many(limiter: EventRateLimiter, key: Hashable, count: int) -> list[int | None]:
    """Call acquire ``count`` times for ``key`` without moving the clock."""
    return [limiter.acquire(key) for _ in range(count)]


def run_threads(count: int, target: Callable[[], Any]) -> None:
    """Run ``target`` in ``count`` threads released together, switching as often as possible."""
    barrier = threading.Barrier(count)

    def start() -> None:
        barrier.wait()
        target()

    threads = [threading.Thread(target=start) for _ in range(count)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads inside acquire(), not between calls
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


# -- EventRateLimiter ------------------------------------------------------------------


def test_burst_then_suppression() -> None:
    """A full bucket lets ``burst`` events through (nothing suppressed yet), then refuses."""
    limiter = EventRateLimiter(3, 1.0, clock=FakeClock())
    assert [0, 0, 0, None, None] == acquire_many(limiter, "expired", 5)


def test_refill_rate_and_suppressed_report() -> None:
    """Tokens refill at per_second; the next allowed event reports the suppressed count."""
    clock = FakeClock()
    limiter = EventRateLimiter(2, 4.0, clock=clock)
    assert [0, 0, None, None, None] == acquire_many(limiter, "expired", 5)
    clock.advance(0.125)  # half a token
    assert limiter.acquire("expired") is None
    clock.advance(0.125)  # the other half (the refused call above spent nothing)
    assert 4 == limiter.acquire("expired")
    assert limiter.acquire("expired") is None


def test_suppressed_count_is_reported_exactly_once() -> None:
    """After an event reported the suppressed count, the next one reports zero."""
    clock = FakeClock()
    limiter = EventRateLimiter(1, 1.0, clock=clock)
    assert [0, None, None] == acquire_many(limiter, "expired", 3)
    clock.advance(1.0)
    assert 2 == limiter.acquire("expired")
    clock.advance(1.0)
    assert 0 == limiter.acquire("expired")


def test_bucket_never_holds_more_than_burst() -> None:
    """A long quiet spell refills the bucket to ``burst``, not beyond."""
    clock = FakeClock()
    limiter = EventRateLimiter(3, 10.0, clock=clock)
    clock.advance(3600)
    assert [0, 0, 0, None] == acquire_many(limiter, "expired", 4)


def test_reasons_have_independent_buckets() -> None:
    """Flooding one reason neither suppresses another nor mixes their counts."""
    clock = FakeClock()
    limiter = EventRateLimiter(2, 1.0, clock=clock)
    assert [0, 0, None, None, None] == acquire_many(limiter, Reason.EXPIRED, 5)
    assert [0, 0, None] == acquire_many(limiter, Reason.REVOKED, 3)
    clock.advance(1.0)
    assert (3, 1) == (limiter.acquire(Reason.EXPIRED), limiter.acquire(Reason.REVOKED))


def test_defaults_are_burst_50_then_10_per_second() -> None:
    """By default 50 events pass at once, then one more per tenth of a second."""
    clock = FakeClock()
    limiter = EventRateLimiter(clock=clock)
    assert (50, 10.0) == (limiter.burst, limiter.per_second)
    assert [0] * 50 + [None] == acquire_many(limiter, "expired", 51)
    clock.advance(0.1)
    assert [1, None] == acquire_many(limiter, "expired", 2)


@pytest.mark.parametrize(("burst", "per_second"), [(0, 10.0), (-1, 10.0), (5, 0), (5, -1.0)])
def test_invalid_limits_are_refused(burst: int, per_second: float) -> None:
    """A burst under 1 or a non-positive rate fails at construction."""
    with pytest.raises(ValueError, match="burst >= 1 and per_second > 0"):
        EventRateLimiter(burst, per_second)


@pytest.mark.parametrize("limit", [(0, 10.0), (10, 0.0)])
def test_middleware_refuses_invalid_log_rate_limit(limit: tuple[int, float]) -> None:
    """log_rate_limit with a burst under 1 or a non-positive rate fails at construction."""
    with pytest.raises(ValueError, match="burst >= 1 and per_second > 0"):
        asgi_middleware([], log_rate_limit=limit)


def test_limiter_is_exact_under_threads() -> None:
    """16 threads x 1000 calls on a frozen clock: exactly ``burst`` pass, the rest are counted."""
    clock = FakeClock()
    limiter = EventRateLimiter(50, 10.0, clock=clock)
    results: list[int | None] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = acquire_many(limiter, "expired", 1000)
        with lock:
            results.extend(mine)

    run_threads(16, hammer)
    allowed = [r for r in results if r is not None]
    assert (16_000, [0] * 50) == (len(results), allowed)
    clock.advance(0.1)
    assert 16_000 - 50 == limiter.acquire("expired")


# -- through AuthEventLog --------------------------------------------------------------


def total(events: list[EventDict], reason: str) -> int:
    """Events emitted for ``reason`` plus the suppressed ones they report."""
    mine = [e for e in events if e["reason"] == reason]
    return len(mine) + sum(int(e.get("suppressed", 0)) for e in mine)


def test_emitted_plus_suppressed_equals_rejections() -> None:
    """In a bursty storm, emitted + suppressed equals rejections once a flush event comes."""
    clock = FakeClock()
    log = AuthEventLog(rate_limit=EventRateLimiter(5, 2.0, clock=clock))
    with capture_logs() as events:
        for index in range(999):
            clock.advance(0.05 if index % 100 else 3.0)
            log.rejected(AuthFailure(Reason.EXPIRED), FACTS, None)
        clock.advance(10.0)
        log.rejected(AuthFailure(Reason.EXPIRED), FACTS, None)  # the flush event
    assert 1000 == total(events, "expired")
    assert 0 < len(events) < 1000
    assert events[-1]["suppressed"] > 0
    assert all(e["suppressed"] > 0 for e in events if "suppressed" in e)


def test_emitted_plus_suppressed_is_exact_per_reason_under_threads() -> None:
    """8 threads rejecting for two reasons: per reason, emitted + suppressed equals rejections."""
    clock = FakeClock()
    log = AuthEventLog(rate_limit=EventRateLimiter(20, 1.0, clock=clock))

    def storm() -> None:
        for index in range(500):
            reason = Reason.EXPIRED if index % 2 else Reason.BAD_SIGNATURE
            log.rejected(AuthFailure(reason), FACTS, None)

    with capture_logs() as events:
        run_threads(8, storm)
        assert 40 == len(events)  # the two bursts; the clock never moved
        clock.advance(1.0)
        log.rejected(AuthFailure(Reason.EXPIRED), FACTS, None)
        log.rejected(AuthFailure(Reason.BAD_SIGNATURE), FACTS, None)
    assert (2001, 2001) == (total(events, "expired"), total(events, "bad_signature"))
    assert (2001, 2001) == (log.stats()["expired"], log.stats()["bad_signature"])


def test_middleware_default_limit_and_suppressed_field() -> None:
    """The middleware limits at (50, 10/s) by default; the flush event carries suppressed."""
    cases = [c for c in rejections() if c.reason is Reason.EXPIRED]
    app = InvalidTokenMiddleware(ok_asgi, verifier=scripted_verifier(cases))
    limiter = app.guard.events.rate_limit
    assert limiter is not None
    assert (50, 10.0) == (limiter.burst, limiter.per_second)
    clock = FakeClock()
    app.guard.events.rate_limit = EventRateLimiter(limiter.burst, limiter.per_second, clock=clock)
    request = ("/orders", cases[0].headers())
    with capture_logs() as events:
        responses = call_asgi(app, [request] * 80)
        clock.advance(0.1)
        responses += call_asgi(app, [request])
    assert [401] * 81 == [r.status_code for r in responses]
    assert 51 == len(events)
    assert 30 == events[-1]["suppressed"]
    assert all("suppressed" not in e for e in events[:-1])
    assert 81 == app.stats()["expired"]


def test_rate_limit_none_logs_every_rejection() -> None:
    """log_rate_limit=None logs each of 300 rejections, none with a suppressed field."""
    cases = [c for c in rejections() if c.reason is Reason.EXPIRED]
    app = asgi_middleware(cases, log_rate_limit=None)
    assert app.guard.events.rate_limit is None
    with capture_logs() as events:
        call_asgi(app, [("/orders", cases[0].headers())] * 300)
    assert 300 == len(events)
    assert all("suppressed" not in e for e in events)


def test_middleware_takes_a_custom_rate_limit() -> None:
    """log_rate_limit=(burst, per_second) configures the middleware's limiter."""
    limiter = asgi_middleware([], log_rate_limit=(5, 2.5)).guard.events.rate_limit
    assert limiter is not None
    assert (5, 2.5) == (limiter.burst, limiter.per_second)
