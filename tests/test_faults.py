"""Fault injection with real components, end to end through the ASGI middleware.

A real JWKS server (:mod:`support.jwks_server`) goes down, answers slowly, sends garbage or an
empty key set, and rotates keys while requests stream in; a real ``redis-server``
(:mod:`support.redis_server`) is killed or frozen mid-run and brought back. Requests go through
:class:`~invalidtoken_mw.InvalidTokenMiddleware` with httpx's ASGI transport, from
several concurrent tasks. What the library promises, and these tests pin:

- no request is ever answered 500, and none waits longer than the configured timeout
  plus 0.5 s;
- with no usable key, 503 ``key_unavailable``; with the store unreachable, 503
  ``revocation_unavailable`` (fail closed): ``Retry-After``, no challenge, one event;
- with cached keys, the JWKS outage is invisible (stale keys keep serving);
- tokens that need neither (missing, garbage, forged) keep their exact 401s;
- recovery is automatic: the same middleware answers 200 again once the dependency is back.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from structlog.testing import capture_logs

from invalidtoken_mw import InvalidTokenMiddleware, JWTVerifier, RedisRevocationStore
from support.jwks_server import JWKSServer, Mode
from support.redis_server import free_port
from support.rejections import ok_asgi
from support.tokens import (
    AUDIENCE,
    ISSUER,
    KIDS,
    OTHER_SECRET,
    SECRET,
    Keys,
    claims,
    mint,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from support.redis_server import RedisServer

JWKS_TIMEOUT = 0.5
COOLDOWN = 0.2
REDIS_TIMEOUT = 0.25
# What "answered within the timeout" allows on top, on a busy 2-core machine running two
# suites side by side: a step without its deadline would hang for good, not for 1 s.
SLACK = 1.0
RETRY_AFTER = "7"
KID = KIDS["RS256"]
WORKERS = 8


@dataclass(frozen=True)
class Outcome:
    """One request of a stream: what was sent, when, how long it took and what came back."""

    kind: str
    started: float
    elapsed: float
    status: int
    reason: str
    retry_after: str | None
    challenge: str | None


def middleware(verifier: JWTVerifier) -> InvalidTokenMiddleware:
    """The middleware under test: every rejection logged, a distinctive Retry-After."""
    return InvalidTokenMiddleware(
        ok_asgi,
        verifier=verifier,
        realm="orders",
        retry_after=int(RETRY_AFTER),
        log_rate_limit=None,
    )


async def get(client: httpx.AsyncClient, kind: str, token: str | None) -> Outcome:
    """Send one request and time it."""
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    started = time.monotonic()
    response = await client.get("/orders", headers=headers)
    elapsed = time.monotonic() - started
    reason = "ok" if response.status_code == 200 else str(response.json()["reason"])
    return Outcome(
        kind,
        started,
        elapsed,
        response.status_code,
        reason,
        response.headers.get("retry-after"),
        response.headers.get("www-authenticate"),
    )


async def stream(
    client: httpx.AsyncClient, tokens: Sequence[tuple[str, str | None]], stop: asyncio.Event
) -> list[Outcome]:
    """Send ``tokens`` round-robin from WORKERS concurrent tasks until ``stop`` is set."""
    outcomes: list[Outcome] = []

    async def worker(offset: int) -> None:
        index = offset
        while not stop.is_set():
            kind, token = tokens[index % len(tokens)]
            outcomes.append(await get(client, kind, token))
            index += 1
            # The in-process transport need not suspend (a socket would): let timers run.
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    return outcomes


def run(
    app: InvalidTokenMiddleware, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]
) -> Any:
    """Run ``scenario`` with a client of ``app`` in a fresh event loop."""

    async def main() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await scenario(client)

    return asyncio.run(main())


def is_unavailable(outcome: Outcome, reason: str) -> bool:
    """A correct 503: the reason, Retry-After and no challenge (new credentials cannot help)."""
    return (outcome.status, outcome.reason, outcome.retry_after, outcome.challenge) == (
        503,
        reason,
        RETRY_AFTER,
        None,
    )


def slowest(outcomes: Sequence[Outcome]) -> float:
    """The longest time any request took."""
    return max(o.elapsed for o in outcomes)


# -- JWKS -------------------------------------------------------------------------------------


def jwks_verifier(url: str, **options: Any) -> JWTVerifier:
    """A verifier of RS256 tokens with short JWKS timeout and cool-down."""
    return JWTVerifier(
        jwks_url=url,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_timeout=JWKS_TIMEOUT,
        jwks_cooldown=COOLDOWN,
        **options,
    )


def rs256(kid: str, key: Any = None) -> str:
    """A valid RS256 token naming ``kid`` (signed by ``key``, default the session RSA key)."""
    return mint("RS256", headers={"kid": kid}, key=key)


def independent_tokens() -> list[tuple[str, str | None]]:
    """Requests whose answer needs no key and no store: missing, garbage, HS256 (not allowed)."""
    return [("missing", None), ("garbage", "not-a-jwt"), ("hs256", mint(key=OTHER_SECRET))]


INDEPENDENT = {
    "missing": "missing_token",
    "garbage": "malformed_token",
    "hs256": "algorithm_not_allowed",
}


def test_jwks_down_from_the_start_is_503_then_recovers_on_its_own(keys: Keys) -> None:
    """Nothing listening at the JWKS URL: 503 fast, exact 401s for the rest; 200 once it is up."""
    port = free_port()
    app = middleware(jwks_verifier(f"http://127.0.0.1:{port}/jwks.json"))
    requests = [("valid", rs256(KID)), *independent_tokens()]
    servers: list[JWKSServer] = []

    async def scenario(client: httpx.AsyncClient) -> tuple[list[Outcome], list[Outcome]]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.6, stop.set)
        down = await stream(client, requests, stop)
        server = JWKSServer(port)
        servers.append(server)
        server.jwks = {"keys": [keys.jwk("RS256", KID)]}
        await asyncio.sleep(COOLDOWN)
        up = [await get(client, "valid", rs256(KID)) for _ in range(20)]
        return down, up

    try:
        with capture_logs() as logs:
            down, up = run(app, scenario)
    finally:
        for server in servers:
            server.stop()
    valid = [o for o in down if o.kind == "valid"]
    others = {(o.kind, o.status, o.reason) for o in down if o.kind != "valid"}
    rejected = [e for e in logs if e["event"] == "auth_rejected"]
    assert all(is_unavailable(o, "key_unavailable") for o in valid), valid[:3]
    assert {(k, 401, r) for k, r in INDEPENDENT.items()} == others
    assert (["ok"] * 20, 1) == ([o.reason for o in up], servers[0].requests)
    assert len(down) == len(rejected)
    assert slowest(down) <= JWKS_TIMEOUT + SLACK


def test_slow_jwks_is_503_within_the_timeout_with_one_shared_fetch(jwks: JWKSServer) -> None:
    """A JWKS answering after 5 s: 40 concurrent requests all get 503 within the timeout."""
    jwks.mode, jwks.delay = "slow", 5.0
    app = middleware(jwks_verifier(jwks.url))
    token = rs256(KID)

    async def scenario(client: httpx.AsyncClient) -> tuple[list[Outcome], int, list[Outcome]]:
        slow = await asyncio.gather(*(get(client, "valid", token) for _ in range(40)))
        fetched = jwks.requests
        jwks.mode = "ok"
        await asyncio.sleep(COOLDOWN)
        return slow, fetched, [await get(client, "valid", token) for _ in range(5)]

    slow, fetched, after = run(app, scenario)
    assert all(is_unavailable(o, "key_unavailable") for o in slow)
    assert 1 == fetched
    assert slowest(slow) <= JWKS_TIMEOUT + SLACK
    assert ["ok"] * 5 == [o.reason for o in after]


BROKEN: list[Mode] = ["garbage", "not_object", "empty", "status_500", "trickle", "slow"]


@pytest.mark.parametrize("mode", BROKEN)
def test_broken_jwks_without_cached_keys_is_503_then_recovers(jwks: JWKSServer, mode: Mode) -> None:
    """Garbage, a non-object, no keys, a 500, a trickle or a stall: 503 in time, then 200."""
    jwks.mode, jwks.delay = mode, 5.0
    app = middleware(jwks_verifier(jwks.url))
    token = rs256(KID)

    async def scenario(client: httpx.AsyncClient) -> tuple[list[Outcome], list[Outcome]]:
        broken = [await get(client, "valid", token) for _ in range(3)]
        jwks.mode = "ok"
        await asyncio.sleep(COOLDOWN)
        return broken, [await get(client, "valid", token) for _ in range(3)]

    broken, repaired = run(app, scenario)
    assert all(is_unavailable(o, "key_unavailable") for o in broken), broken
    assert slowest(broken) <= JWKS_TIMEOUT + SLACK
    assert ["ok"] * 3 == [o.reason for o in repaired]


@pytest.mark.parametrize("mode", ["down", *BROKEN])
def test_cached_keys_keep_serving_while_jwks_is_broken(jwks: JWKSServer, mode: str) -> None:
    """Stale-while-error: known keys keep verifying, unknown kids are 401 unknown_key, never 503."""
    app = middleware(jwks_verifier(jwks.url))
    requests = [("valid", rs256(KID)), ("unknown", rs256("rsa-unknown"))]

    async def scenario(client: httpx.AsyncClient) -> list[Outcome]:
        assert "ok" == (await get(client, "valid", rs256(KID))).reason
        if mode == "down":
            jwks.stop()
        else:
            jwks.mode, jwks.delay = mode, 5.0  # type: ignore[assignment]
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.8, stop.set)
        return await stream(client, requests, stop)

    with capture_logs() as logs:
        outcomes = run(app, scenario)
    failures = [e for e in logs if e["event"] == "jwks_refresh_failed"]
    expected = {("valid", 200, "ok"), ("unknown", 401, "unknown_key")}
    assert expected == {(o.kind, o.status, o.reason) for o in outcomes}
    assert slowest(outcomes) <= JWKS_TIMEOUT + SLACK
    assert failures
    assert all(e["serving_stale"] for e in failures)


def test_keys_rotating_mid_run_are_picked_up_and_retired(keys: Keys, jwks: JWKSServer) -> None:
    """Key B is published, then key A withdrawn, while tasks stream A, B and unknown-kid tokens."""
    old = keys.jwk("RS256", "key-a")
    new = {**keys.rsa_other_jwk(), "kid": "key-b", "alg": "RS256", "use": "sig"}
    jwks.jwks = {"keys": [old]}
    # A verified token is reused for cache_ttl even after its key is withdrawn: keep it short.
    app = middleware(jwks_verifier(jwks.url, cache_ttl=COOLDOWN))
    requests = [
        ("a", rs256("key-a")),
        ("b", rs256("key-b", keys.rsa_other)),
        ("unknown", rs256("key-c")),
    ]
    # Each change is seen within one cool-down (an unknown kid's refresh) plus one cache_ttl.
    grace = COOLDOWN + COOLDOWN + SLACK
    phase = grace + 0.5
    moments: dict[str, float] = {}

    async def rotate(stop: asyncio.Event) -> None:
        await asyncio.sleep(phase)
        jwks.jwks = {"keys": [old, new]}
        moments["b_published"] = time.monotonic()
        await asyncio.sleep(phase)
        jwks.jwks = {"keys": [new]}
        moments["a_withdrawn"] = time.monotonic()
        await asyncio.sleep(phase)
        stop.set()

    async def scenario(client: httpx.AsyncClient) -> list[Outcome]:
        stop = asyncio.Event()
        moments["start"] = time.monotonic()
        outcomes, _ = await asyncio.gather(stream(client, requests, stop), rotate(stop))
        return outcomes

    outcomes = run(app, scenario)

    def seen(kind: str, start: float, end: float = float("inf")) -> set[str]:
        return {o.reason for o in outcomes if o.kind == kind and start <= o.started < end}

    # A request started just before a change may be answered from a fetch just after it.
    margin = 0.2
    b_published, a_withdrawn = moments["b_published"], moments["a_withdrawn"]
    assert {"ok", "unknown_key"} >= {o.reason for o in outcomes}
    assert ({"ok"}, {"unknown_key"}) == (
        seen("a", 0, a_withdrawn - margin),
        seen("b", 0, b_published - margin),
    )
    assert ({"ok"}, {"unknown_key"}, {"unknown_key"}) == (
        seen("b", b_published + grace),
        seen("a", a_withdrawn + grace),
        seen("unknown", 0),
    )
    refreshes_allowed = 1 + (time.monotonic() - moments["start"]) / COOLDOWN + 1
    assert jwks.requests <= refreshes_allowed
    assert slowest(outcomes) <= JWKS_TIMEOUT + SLACK


# -- Redis ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_redis_outage_mid_run_fails_closed_in_time_and_recovers(
    redis_server: RedisServer, fault: str
) -> None:
    """Redis killed (or frozen) mid-stream: 503s in time, exact 401s, then 200 again unaided."""
    store = RedisRevocationStore(
        redis_server.url, local_cache_ttl=0, timeout=REDIS_TIMEOUT, retry_interval=0.2
    )
    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )
    revoked = claims(jti="revoked-before")
    store.revoke(jti="revoked-before", issuer=ISSUER, expires_at=revoked["exp"])
    revoked_token = mint(payload=revoked)
    requests: list[tuple[str, str | None]] = [
        *(("valid", mint(payload=claims(jti=f"v-{n}"))) for n in range(6)),
        ("revoked", revoked_token),
        ("forged", mint(payload=claims(jti="f"), key=OTHER_SECRET)),
        ("missing", None),
        ("garbage", "not-a-jwt"),
    ]
    app = middleware(verifier)
    moments: dict[str, float] = {}

    async def inject(stop: asyncio.Event) -> None:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis_server.kill if fault == "killed" else redis_server.pause)
        moments["down"] = time.monotonic()
        await asyncio.sleep(1.0)
        moments["restoring"] = time.monotonic()
        await asyncio.to_thread(redis_server.start if fault == "killed" else redis_server.resume)
        moments["up"] = time.monotonic()
        await asyncio.sleep(1.5)
        stop.set()

    async def scenario(client: httpx.AsyncClient) -> list[Outcome]:
        try:
            # Seen once before the outage: the verifier remembers the revoked verdict.
            assert "revoked" == (await get(client, "revoked", revoked_token)).reason
            stop = asyncio.Event()
            outcomes, _ = await asyncio.gather(stream(client, requests, stop), inject(stop))
            return outcomes
        finally:
            await store.aclose()

    with capture_logs() as logs:
        outcomes = run(app, scenario)
    exact = {
        "revoked": "revoked",
        "forged": "bad_signature",
        "missing": "missing_token",
        "garbage": "malformed_token",
    }
    valid = [o for o in outcomes if o.kind == "valid"]
    during = [
        o
        for o in valid
        if moments["down"] <= o.started and o.started + o.elapsed < moments["restoring"]
    ]
    after = [o for o in valid if o.started > moments["up"] + 1.0]
    unavailable = [
        e for e in logs if e["event"] == "auth_rejected" and e["reason"] == "revocation_unavailable"
    ]
    assert {(k, 401, r) for k, r in exact.items()} == {
        (o.kind, o.status, o.reason) for o in outcomes if o.kind in exact
    }
    assert {200, 503} >= {o.status for o in valid}
    assert during
    assert all(is_unavailable(o, "revocation_unavailable") for o in during)
    assert after
    assert {"ok"} == {o.reason for o in after}
    assert sum(o.status == 503 for o in outcomes) == len(unavailable)
    assert slowest(outcomes) <= REDIS_TIMEOUT + SLACK
