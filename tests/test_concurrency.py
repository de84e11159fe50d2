"""Concurrency: the caches, counters and rate limiter hammered from many threads and tasks.

Threads drive :class:`~invalidtoken_mw.InvalidTokenWSGIMiddleware` (called directly and
under a real waitress), tasks drive :class:`~invalidtoken_mw.InvalidTokenMiddleware`,
with a mixed pool of tokens and caches shrunk to a few entries with lifetimes of
milliseconds, so eviction and expiry race with lookups all the time. The assertions
are exact: every answer is the one due to its token (a valid token's own ``sub`` comes
back, never another's), ``stats()`` and the captured ``auth_rejected`` events count
every request once, the log rate limiter's emitted plus suppressed events add up to the
rejections, and a revocation is effective for every request that starts after it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from structlog.testing import capture_logs

from invalidtoken_mw import (
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    MemoryRevocationStore,
)
from support.direct import Request, call_asgi_async, call_wsgi
from support.servers import run_waitress
from support.tokens import AUDIENCE, ISSUER, OTHER_SECRET, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from invalidtoken_mw.asgi import Receive, Scope, Send

SCOPE = "orders:write"
THREADS = 16
TASKS = 200


@dataclass(frozen=True)
class Case:
    """One request of the pool and its due answer: ``"ok"`` with the ``sub``, or a reason."""

    authorization: str | None
    expected: str
    sub: str | None = None

    @property
    def request(self) -> Request:
        """The raw request."""
        value = () if self.authorization is None else (self.authorization.encode(),)
        return Request(value)


class YieldingStore:
    """A memory revocation store whose async check suspends, so tasks interleave mid-request."""

    def __init__(self, inner: MemoryRevocationStore) -> None:
        """Wrap ``inner``."""
        self.inner = inner

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Ask the wrapped store."""
        return self.inner.is_revoked(claims)

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Give other tasks a turn, then ask the wrapped store."""
        await asyncio.sleep(0)
        return self.inner.is_revoked(claims)


def pool(store: MemoryRevocationStore) -> list[Case]:
    """A mixed pool: many valid tokens with distinct subs, and every kind of refusal."""
    now = int(time.time())
    cases = [
        Case(f"Bearer {mint(payload=claims(sub=f'user-{n}', scope=SCOPE))}", "ok", f"user-{n}")
        for n in range(24)
    ]
    cases += [
        Case(f"Bearer {mint(payload=claims(sub=f'old-{n}', exp=now - 7200))}", "expired")
        for n in range(8)
    ]
    cases += [
        Case(f"Bearer {mint(payload=claims(sub=f'f-{n}'), key=OTHER_SECRET)}", "bad_signature")
        for n in range(8)
    ]
    cases += [
        Case(
            f"Bearer {mint(payload=claims(sub=f'r-{n}', scope='orders:read'))}",
            "insufficient_scope",
        )
        for n in range(6)
    ]
    cases += [
        Case(f"Bearer {mint(payload=claims(sub=f'n-{n}', nbf=now + 3600))}", "not_yet_valid")
        for n in range(4)
    ]
    for n in range(6):
        payload = claims(sub=f"gone-{n}", jti=f"gone-{n}", scope=SCOPE)
        store.revoke(jti=f"gone-{n}", issuer=ISSUER, expires_at=payload["exp"])
        cases.append(Case(f"Bearer {mint(payload=payload)}", "revoked"))
    cases += [Case(f"Bearer not-a-jwt-{n}", "malformed_token") for n in range(4)]
    cases += [Case(None, "missing_token"), Case("Basic dXNlcjpwYXNz", "missing_token")]
    return cases


def churning_verifier(store: Any) -> JWTVerifier:
    """A verifier whose caches hold four entries for milliseconds: constant eviction and expiry."""
    return JWTVerifier(
        key=SECRET,
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        revocation=store,
        cache_size=4,
        cache_ttl=0.005,
        negative_cache_ttl=0.002,
    )


def echo_wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answer the ``sub`` of the claims the middleware put in the environ."""
    start_response("200 OK", [("content-type", "text/plain")])
    return [environ["invalidtoken_mw.claims"]["sub"].encode()]


async def echo_asgi(scope: Scope, _receive: Receive, send: Send) -> None:
    """Answer the ``sub`` of the claims in the scope's state, after giving up the loop once."""
    await asyncio.sleep(0)
    sub = scope["state"]["token_claims"]["sub"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": sub.encode()})


def wrong(case: Case, status: int, body: bytes) -> bool:
    """Whether an answer is not the one due to ``case``."""
    if case.expected == "ok":
        return (status, body) != (200, (case.sub or "").encode())
    return status == 200 or json.loads(body)["reason"] != case.expected


def expected_counts(cases: Iterable[Case]) -> dict[str, int]:
    """The ``stats()`` that sending ``cases`` must produce."""
    counts = Counter("accepted" if c.expected == "ok" else c.expected for c in cases)
    return {"accepted": 0, **counts}


def rejections_logged(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Emitted ``auth_rejected`` events plus the suppressed ones they report, by reason."""
    counts: Counter[str] = Counter()
    for event in events:
        if event["event"] == "auth_rejected":
            counts[event["reason"]] += 1 + int(event.get("suppressed", 0))
    return dict(counts)


def schedule(cases: Sequence[Case], worker: int, count: int) -> list[Case]:
    """The requests one worker sends: the pool in order, from an offset of its own."""
    return [cases[(worker * 7 + i) % len(cases)] for i in range(count)]


# -- exact answers and counts -----------------------------------------------------------------


def test_threads_through_wsgi_get_exact_answers_and_counts_under_cache_churn() -> None:
    """16 threads x 300 requests: every answer right, stats() and the log count each once."""
    store = MemoryRevocationStore()
    cases = pool(store)
    app = InvalidTokenWSGIMiddleware(
        echo_wsgi, verifier=churning_verifier(store), scopes=[SCOPE], log_rate_limit=None
    )
    plans = [schedule(cases, worker, 300) for worker in range(THREADS)]

    def hammer(plan: list[Case]) -> list[Case]:
        mistakes = []
        for case in plan:
            answer = call_wsgi(app, case.request)
            if wrong(case, answer.status, answer.body):
                mistakes.append(case)
        return mistakes

    with capture_logs() as events, ThreadPoolExecutor(THREADS) as executor:
        mistakes = [m for batch in executor.map(hammer, plans) for m in batch]
    sent = [case for plan in plans for case in plan]
    expected = expected_counts(sent)
    assert ([], expected) == (mistakes, app.stats())
    assert {k: v for k, v in expected.items() if k != "accepted"} == rejections_logged(events)


def test_tasks_through_asgi_get_exact_answers_and_counts_under_cache_churn() -> None:
    """200 tasks x 25 requests, suspending mid-request: every answer right, counts exact."""
    store = MemoryRevocationStore()
    cases = pool(store)
    app = InvalidTokenMiddleware(
        echo_asgi,
        verifier=churning_verifier(YieldingStore(store)),
        scopes=[SCOPE],
        log_rate_limit=None,
    )
    plans = [schedule(cases, worker, 25) for worker in range(TASKS)]

    async def hammer(plan: list[Case]) -> list[Case]:
        mistakes = []
        for case in plan:
            answer = await call_asgi_async(app, case.request)
            if wrong(case, answer.status, answer.body):
                mistakes.append(case)
        return mistakes

    async def main() -> list[Case]:
        batches = await asyncio.gather(*(hammer(plan) for plan in plans))
        return [m for batch in batches for m in batch]

    with capture_logs() as events:
        mistakes = asyncio.run(main())
    sent = [case for plan in plans for case in plan]
    expected = expected_counts(sent)
    assert ([], expected) == (mistakes, app.stats())
    assert {k: v for k, v in expected.items() if k != "accepted"} == rejections_logged(events)


def test_waitress_threads_get_exact_answers_and_counts() -> None:
    """A real threaded waitress, 8 client threads x 100 requests: answers and counts exact."""
    store = MemoryRevocationStore()
    cases = pool(store)
    app = InvalidTokenWSGIMiddleware(
        echo_wsgi, verifier=churning_verifier(store), scopes=[SCOPE], log_rate_limit=None
    )
    plans = [schedule(cases, worker, 100) for worker in range(8)]

    def hammer(base_url: str, plan: list[Case]) -> list[Case]:
        mistakes = []
        with httpx.Client(base_url=base_url, trust_env=False) as client:
            for case in plan:
                headers = (
                    {} if case.authorization is None else {"authorization": case.authorization}
                )
                response = client.get("/orders", headers=headers)
                if wrong(case, response.status_code, response.content):
                    mistakes.append(case)
        return mistakes

    with run_waitress(app, threads=8) as base_url, ThreadPoolExecutor(8) as executor:
        batches = list(executor.map(lambda plan: hammer(base_url, plan), plans))
    mistakes = [m for batch in batches for m in batch]
    assert ([], expected_counts(c for plan in plans for c in plan)) == (mistakes, app.stats())


# -- the log rate limiter -----------------------------------------------------------------------


def _flood(cases: Sequence[Case]) -> list[Case]:
    return [case for case in cases if case.expected != "ok"]


@pytest.mark.parametrize("adapter", ["wsgi-threads", "asgi-tasks"])
def test_rate_limited_log_accounts_for_every_rejection(adapter: str) -> None:
    """Under a flood, emitted plus suppressed events equal stats() for every reason, exactly."""
    store = MemoryRevocationStore()
    refusals = _flood(pool(store))
    options: dict[str, Any] = {"scopes": [SCOPE], "log_rate_limit": (10, 5.0)}
    plans = [schedule(refusals, worker, 150) for worker in range(THREADS)]
    flush = list({case.expected: case for case in refusals}.values())  # one per reason
    if adapter == "wsgi-threads":
        wsgi = InvalidTokenWSGIMiddleware(echo_wsgi, verifier=churning_verifier(store), **options)
        stats = wsgi.stats

        def send_all(plan: list[Case]) -> None:
            for case in plan:
                call_wsgi(wsgi, case.request)

        with capture_logs() as events:
            with ThreadPoolExecutor(THREADS) as executor:
                list(executor.map(send_all, plans))
            time.sleep(0.5)  # the buckets refill: each flush request is logged
            send_all(flush)
    else:
        asgi = InvalidTokenMiddleware(
            echo_asgi, verifier=churning_verifier(YieldingStore(store)), **options
        )
        stats = asgi.stats

        async def send_some(plan: list[Case]) -> None:
            for case in plan:
                await call_asgi_async(asgi, case.request)

        async def main() -> None:
            await asyncio.gather(*(send_some(plan) for plan in plans))
            await asyncio.sleep(0.5)
            await send_some(flush)

        with capture_logs() as events:
            asyncio.run(main())
    counts = stats()
    del counts["accepted"]
    emitted = sum(1 for e in events if e["event"] == "auth_rejected")
    assert counts == rejections_logged(events)
    assert sum(len(p) for p in plans) + len(flush) == sum(counts.values())
    assert emitted < sum(counts.values()) / 2  # the limiter did suppress most of the flood


# -- revocation under load ------------------------------------------------------------------------


def hammer_wsgi_during(
    app: InvalidTokenWSGIMiddleware, request: Request, action: Callable[[], None]
) -> list[tuple[float, int]]:
    """8 threads send ``request`` for 0.2 s, ``action`` runs, they go on for 0.2 s more."""
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            started = time.monotonic()
            results.append((started, call_wsgi(app, request).status))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    action()
    time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join()
    return results


def hammer_asgi_during(
    app: InvalidTokenMiddleware, request: Request, action: Callable[[], None]
) -> list[tuple[float, int]]:
    """50 tasks send ``request`` for 0.2 s, ``action`` runs, they go on for 0.2 s more."""
    results: list[tuple[float, int]] = []

    async def main() -> None:
        done = asyncio.Event()

        async def hammer() -> None:
            while not done.is_set():
                started = time.monotonic()
                results.append((started, (await call_asgi_async(app, request)).status))
                # A cached refusal need not suspend (a server's socket would): let others run.
                await asyncio.sleep(0)

        async def control() -> None:
            await asyncio.sleep(0.2)
            action()
            await asyncio.sleep(0.2)
            done.set()

        await asyncio.gather(control(), *(hammer() for _ in range(50)))

    asyncio.run(main())
    return results


@pytest.mark.parametrize("adapter", ["wsgi-threads", "asgi-tasks"])
def test_revocation_applies_to_every_request_started_after_it(adapter: str) -> None:
    """A hot, cached token is revoked mid-hammer: each request that starts afterwards is refused."""
    store = MemoryRevocationStore()
    payload = claims(sub="hot", jti="hot", scope=SCOPE)
    request = Request((f"Bearer {mint(payload=payload)}".encode(),))
    options: dict[str, Any] = {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE}
    revoked_at: list[float] = []

    def revoke() -> None:
        store.revoke(jti="hot", issuer=ISSUER, expires_at=payload["exp"])
        revoked_at.append(time.monotonic())

    if adapter == "wsgi-threads":
        verifier = JWTVerifier(key=SECRET, revocation=store, **options)
        wsgi = InvalidTokenWSGIMiddleware(echo_wsgi, verifier=verifier, log_rate_limit=None)
        results = hammer_wsgi_during(wsgi, request, revoke)
    else:
        verifier = JWTVerifier(key=SECRET, revocation=YieldingStore(store), **options)
        asgi = InvalidTokenMiddleware(echo_asgi, verifier=verifier, log_rate_limit=None)
        results = hammer_asgi_during(asgi, request, revoke)
    [moment] = revoked_at
    before = {status for started, status in results if started < moment}
    after = {status for started, status in results if started > moment}
    assert 200 in before
    assert {401} == after
