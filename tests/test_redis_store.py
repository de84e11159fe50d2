"""RedisRevocationStore against a real redis-server on loopback.

The semantics both stores share are the contract in ``test_revocation.py``, which runs
against this store too. Here, what Redis adds: every key expires and the key count
returns to zero; the local cache keeps Redis off the hot path and is emptied at once by
the pub/sub channel (and on a pub/sub reconnect); a Redis crash or freeze fails closed
fast (or open with a warning) and the store recovers by itself; the asyncio forms; and
the verifier and both middlewares answering ``revoked`` and ``revocation_unavailable``."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    Reason,
    RedisRevocationStore,
)
from support.redis_server import RedisServer, redis_server_executable, wait_until
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from starlette.requests import Request

PREFIX = "test:"
CHANNEL = f"{PREFIX}revocations"
REVOKED_CHALLENGE = (
    'Bearer realm="orders", error="invalid_token",'
    ' error_description="The access token has been revoked."'
)


class SilentRedis(redis.Redis):
    """A client that never publishes: its revocations reach Redis but no subscriber."""

    def publish(self, *_args: Any, **_kwargs: Any) -> Any:
        """Drop the message."""
        return 0


class HookedStore(RedisRevocationStore):
    """A store running ``during_read`` once, after an ``MGET`` answered, before its verdict."""

    during_read: Callable[[], None] | None = None

    def _verdict(self, identity: Any, values: object) -> bool:
        """Run the hook, then judge the (now stale) values."""
        hook, self.during_read = self.during_read, None
        if hook is not None:
            hook()
        return super()._verdict(identity, values)


def mget_calls(admin: redis.Redis) -> int:
    """``MGET`` commands the server has run: each is a revocation check reaching Redis."""
    stats = admin.info("commandstats").get("cmdstat_mget", {"calls": 0})
    return int(stats["calls"])


@pytest.fixture
def make_store(redis_server: RedisServer) -> Iterator[Callable[..., RedisRevocationStore]]:
    """Build stores on the test's Redis (``url`` unless ``client`` is given); close them all."""
    made: list[RedisRevocationStore] = []

    def make(**options: Any) -> RedisRevocationStore:
        options.setdefault("prefix", PREFIX)
        url = None if "client" in options else redis_server.url
        store = RedisRevocationStore(url, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client to look at keys, TTLs and subscribers."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


def subscribers(admin: redis.Redis) -> int:
    """How many stores listen on the revocation channel right now."""
    return int(admin.pubsub_numsub(CHANNEL)[0][1])


def wait_for_subscribers(admin: redis.Redis, count: int) -> None:
    """Wait until ``count`` subscriber threads listen, so a test exercises the channel."""
    assert wait_until(lambda: subscribers(admin) >= count, 5) < math.inf
    time.sleep(0.05)  # the subscriber flushes right after subscribing; let that pass


def failure_reason(store: RedisRevocationStore, identity: dict[str, Any]) -> str:
    """``revoked``, ``not revoked`` or the failure reason of one check."""
    try:
        return "revoked" if store.is_revoked(identity) else "not revoked"
    except AuthFailure as failure:
        return failure.reason.value


# -- keys and TTLs -------------------------------------------------------------------


def test_an_earlier_subject_revocation_keeps_the_later_ttl(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis
) -> None:
    """Revoking a subject again, earlier and shorter-lived, keeps the later cut-off and TTL."""
    long_lived = make_store(local_cache_ttl=0, max_token_lifetime=3600, leeway=0)
    short_lived = make_store(local_cache_ttl=0, max_token_lifetime=10, leeway=0)
    now = time.time()
    long_lived.revoke_subject("user-42", issuer=ISSUER, before=now)
    short_lived.revoke_subject("user-42", issuer=ISSUER, before=now - 100)
    (key,) = admin.scan_iter(match=f"{PREFIX}sub:*")
    assert long_lived.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": now - 50})
    assert admin.ttl(key) > 3500


@pytest.mark.parametrize(
    "expires_at",
    [
        pytest.param(lambda: float(math.floor(time.time())), id="expired-this-second"),
        pytest.param(lambda: time.time() - 10, id="expired-long-ago"),
    ],
)
def test_revoking_an_expired_token_writes_no_key(
    make_store: Callable[..., RedisRevocationStore], expires_at: Callable[[], float]
) -> None:
    """A token already past exp + leeway writes no key at all."""
    store = make_store(local_cache_ttl=0, leeway=0)
    store.revoke(jti="old", issuer=ISSUER, expires_at=expires_at())
    assert 0 == len(store)
    assert not store.is_revoked({"iss": ISSUER, "jti": "old"})


def test_every_key_expires(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis
) -> None:
    """Token keys live until exp + leeway, subject keys the maximum token lifetime: none forever."""
    store = make_store(leeway=60, max_token_lifetime=3600)
    store.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 600)
    store.revoke_subject("user-42", issuer=ISSUER)
    ttls = {key.split(":")[1]: admin.ttl(key) for key in admin.scan_iter(match=f"{PREFIX}*")}
    assert {"jti": True, "sub": True} == {
        "jti": 659 <= ttls["jti"] <= 662,
        "sub": 3659 <= ttls["sub"] <= 3662,
    }


def test_key_count_returns_to_zero_after_the_tokens_expire(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis
) -> None:
    """Once the tokens (and the subject lifetime) have expired, Redis holds no key at all."""
    store = make_store(leeway=0, max_token_lifetime=1)
    now = time.time()
    store.revoke(jti="short", issuer=ISSUER, expires_at=now + 1)
    store.revoke_subject("user-42", issuer=ISSUER, before=now)
    assert 2 == len(store)
    assert wait_until(lambda: len(store) == 0, 4, interval=0.1) < math.inf
    assert 0 == admin.dbsize()


# -- local cache and pub/sub --------------------------------------------------------


def test_local_cache_answers_without_redis(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis
) -> None:
    """With the local cache, repeated checks of one token reach Redis once; without it, always."""
    cached = make_store(local_cache_ttl=30)
    uncached = make_store(local_cache_ttl=0)
    cached.is_revoked({"iss": ISSUER, "jti": "warm-up"})  # starts the subscriber
    wait_for_subscribers(admin, 1)
    identity = {"iss": ISSUER, "jti": "t-1"}
    start = mget_calls(admin)
    for _ in range(5):
        cached.is_revoked(identity)
    middle = mget_calls(admin)
    for _ in range(5):
        uncached.is_revoked(identity)
    assert (1, 5) == (middle - start, mget_calls(admin) - middle)


@pytest.mark.parametrize("kind", ["jti", "subject"])
def test_revocation_reaches_another_instance_through_pubsub(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis, kind: str
) -> None:
    """Instance B, caching "not revoked" for 30 s, sees A's revocation in well under 1 s."""
    instance_a = make_store()
    instance_b = make_store(local_cache_ttl=30)
    identity = {"iss": ISSUER, "jti": "t-1", "sub": "user-42", "iat": time.time() - 10}
    assert not instance_b.is_revoked(identity)
    wait_for_subscribers(admin, 1)
    assert not instance_b.is_revoked(identity)
    if kind == "jti":
        instance_a.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 60)
    else:
        instance_a.revoke_subject("user-42", issuer=ISSUER)
    assert wait_until(lambda: instance_b.is_revoked(identity), 1.0) < 1.0


def test_revocation_during_a_slow_read_is_not_cached(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis, redis_server: RedisServer
) -> None:
    """A "not revoked" read overtaken by a revocation is answered once, never cached."""
    instance_a = make_store()
    instance_b = HookedStore(redis_server.url, prefix=PREFIX, local_cache_ttl=30)
    identity = {"iss": ISSUER, "jti": "t-1"}
    instance_b.is_revoked({"iss": ISSUER, "jti": "warm-up"})
    wait_for_subscribers(admin, 1)

    def revoke_meanwhile() -> None:
        instance_a.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 60)
        time.sleep(0.3)  # B's subscriber empties B's cache meanwhile

    instance_b.during_read = revoke_meanwhile
    try:
        assert not instance_b.is_revoked(identity)
        assert instance_b.is_revoked(identity)
    finally:
        instance_b.close()


def test_pubsub_reconnect_flushes_the_local_cache(
    make_store: Callable[..., RedisRevocationStore], admin: redis.Redis, redis_server: RedisServer
) -> None:
    """A revocation whose message was missed is seen once the subscriber reconnects."""
    instance_b = make_store(local_cache_ttl=30)
    silent = make_store(client=SilentRedis.from_url(redis_server.url))
    identity = {"iss": ISSUER, "jti": "t-1"}
    instance_b.is_revoked({"iss": ISSUER, "jti": "warm-up"})  # starts the subscriber
    wait_for_subscribers(admin, 1)
    assert not instance_b.is_revoked(identity)
    silent.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 60)
    assert not instance_b.is_revoked(identity)  # cached, and no message came
    admin.client_kill_filter(_type="pubsub")
    assert wait_until(lambda: instance_b.is_revoked(identity), 2.0) < 2.0


# -- outages --------------------------------------------------------------------------


def test_crash_fails_closed_fast_then_recovers(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """Redis killed: checks fail fast as revocation_unavailable; restarted: they work again."""
    store = make_store(local_cache_ttl=0, retry_interval=0.5)
    identity = {"iss": ISSUER, "jti": "t-1"}
    assert "not revoked" == failure_reason(store, identity)
    redis_server.kill()
    durations, reasons = [], []
    for _ in range(5):
        start = time.monotonic()
        reasons.append(failure_reason(store, identity))
        durations.append(time.monotonic() - start)
    assert ["revocation_unavailable"] * 5 == reasons
    assert max(durations) < 1.0
    redis_server.start()
    recovered = wait_until(lambda: failure_reason(store, identity) == "not revoked", 3, 0.05)
    assert recovered < 0.5 + 1.0


def test_frozen_redis_fails_closed_within_the_timeout(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """Redis that accepts but never answers costs one short timeout, not a hung request."""
    store = make_store(local_cache_ttl=0, timeout=0.25)
    identity = {"iss": ISSUER, "jti": "t-1"}
    assert "not revoked" == failure_reason(store, identity)
    redis_server.pause()
    try:
        start = time.monotonic()
        reason = failure_reason(store, identity)
        elapsed = time.monotonic() - start
    finally:
        redis_server.resume()
    assert "revocation_unavailable" == reason
    assert elapsed < 1.0


def test_crash_fails_open_with_a_warning_when_configured(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """With fail_open, a check during the outage accepts and logs revocation_check_skipped."""
    store = make_store(local_cache_ttl=0, retry_interval=0.2, fail_open=True)
    identity = {"iss": ISSUER, "jti": "t-1"}
    store.is_revoked(identity)
    redis_server.kill()
    with capture_logs() as logs:
        verdict = store.is_revoked(identity)
    assert not verdict
    assert [("revocation_check_skipped", "warning", "ConnectionError")] == [
        (e["event"], e["log_level"], e["error_type"]) for e in logs
    ]
    redis_server.start()
    other = make_store()
    other.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 60)
    assert wait_until(lambda: store.is_revoked(identity), 2, 0.05) < 2


def test_async_forms_work_and_fail_closed(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """revoke_async, revoke_subject_async and is_revoked_async: semantics, outage, recovery."""
    store = make_store(local_cache_ttl=0, retry_interval=0.2)
    now = time.time()

    async def check(identity: dict[str, Any]) -> str:
        try:
            return "revoked" if await store.is_revoked_async(identity) else "not revoked"
        except AuthFailure as failure:
            return failure.reason.value

    async def scenario() -> list[str]:
        try:
            await store.revoke_async(jti="t-1", issuer=ISSUER, expires_at=now + 60)
            await store.revoke_subject_async("user-42", issuer=ISSUER, before=now)
            seen = [
                await check({"iss": ISSUER, "jti": "t-1"}),
                await check({"iss": ISSUER, "jti": "t-2"}),
                await check({"iss": ISSUER, "sub": "user-42", "iat": now - 1}),
                await check({"iss": ISSUER, "sub": "user-42", "iat": now + 61}),
            ]
            redis_server.kill()
            seen.append(await check({"iss": ISSUER, "jti": "t-2"}))
            redis_server.start()
            deadline = time.monotonic() + 2
            while await check({"iss": ISSUER, "jti": "t-2"}) != "not revoked":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            seen.append("recovered")
            return seen
        finally:
            await store.aclose()

    expected = ["revoked", "not revoked", "revoked", "not revoked"]
    assert [*expected, "revocation_unavailable", "recovered"] == asyncio.run(scenario())


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="neither-url-nor-client"),
        pytest.param({"url": "redis://127.0.0.1:1/0", "client": object()}, id="both"),
        pytest.param({"url": "redis://127.0.0.1:1/0", "timeout": 0}, id="timeout"),
        pytest.param({"url": "redis://127.0.0.1:1/0", "max_token_lifetime": 0}, id="lifetime"),
    ],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any]) -> None:
    """Missing or contradictory connection settings and bad numbers are refused loudly."""
    with pytest.raises(ValueError, match=r"must be|exactly one"):
        RedisRevocationStore(**options)


# -- verifier and middlewares -------------------------------------------------------------


def asgi_app(store: RedisRevocationStore) -> InvalidTokenMiddleware:
    """An ASGI app answering the token's ``sub``, guarded by a verifier checking ``store``."""

    async def orders(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.state.token_claims["sub"])

    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )
    app = Starlette(routes=[Route("/orders", orders)])
    return InvalidTokenMiddleware(app, verifier=verifier, realm="orders")


def test_verifier_refuses_a_token_revoked_through_its_own_store(
    make_store: Callable[..., RedisRevocationStore],
) -> None:
    """A cached valid token is revoked at once when revoked through the verifier's own store."""
    store = make_store(local_cache_ttl=30)
    payload = claims(jti="t-verify")
    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )
    token = mint(payload=payload)
    verifier.verify(token)
    store.revoke(jti="t-verify", issuer=ISSUER, expires_at=payload["exp"])
    with pytest.raises(AuthFailure) as caught:
        verifier.verify(token)
    reason = caught.value.reason
    assert (Reason.REVOKED, 401, "invalid_token") == (reason, reason.status, reason.error)


def test_asgi_middleware_refuses_a_cached_token_once_revoked_elsewhere(
    make_store: Callable[..., RedisRevocationStore],
) -> None:
    """A token accepted (and cached) is answered 401 revoked within 1 s of another's revoke."""
    store = make_store()
    payload = claims(jti="t-asgi")
    headers = {"authorization": f"Bearer {mint(payload=payload)}"}

    async def scenario() -> tuple[int, float, httpx.Response]:
        transport = httpx.ASGITransport(app=asgi_app(store))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                first = (await client.get("/orders", headers=headers)).status_code
                make_store().revoke(jti="t-asgi", issuer=ISSUER, expires_at=payload["exp"])
                start = time.monotonic()
                while (answer := await client.get("/orders", headers=headers)).status_code == 200:
                    assert time.monotonic() - start < 1.0
                    await asyncio.sleep(0.01)
                return first, time.monotonic() - start, answer
        finally:
            await store.aclose()

    first, elapsed, answer = asyncio.run(scenario())
    assert 200 == first
    assert elapsed < 1.0
    assert (401, REVOKED_CHALLENGE, "revoked") == (
        answer.status_code,
        answer.headers["www-authenticate"],
        answer.json()["reason"],
    )


def test_asgi_middleware_answers_503_while_redis_is_down_then_recovers(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """Fail closed: 503 with Retry-After, no challenge, one error-level event; then 200 again."""
    store = make_store(retry_interval=0.2)
    headers = {"authorization": f"Bearer {mint(payload=claims(jti='t-down'))}"}
    redis_server.kill()

    async def scenario() -> tuple[httpx.Response, list[dict[str, Any]], int]:
        transport = httpx.ASGITransport(app=asgi_app(store))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                with capture_logs() as logs:
                    down = await client.get("/orders", headers=headers)
                redis_server.start()
                await asyncio.sleep(0.3)
                up = (await client.get("/orders", headers=headers)).status_code
                return down, [dict(e) for e in logs], up
        finally:
            await store.aclose()

    down, logs, up = asyncio.run(scenario())
    rejected = [
        (e["reason"], e["status"], e["log_level"]) for e in logs if e["event"] == "auth_rejected"
    ]
    assert (503, "5", None, "revocation_unavailable") == (
        down.status_code,
        down.headers.get("retry-after"),
        down.headers.get("www-authenticate"),
        down.json()["reason"],
    )
    assert ([("revocation_unavailable", 503, "error")], 200) == (rejected, up)


def test_wsgi_middleware_uses_the_sync_client(
    make_store: Callable[..., RedisRevocationStore], redis_server: RedisServer
) -> None:
    """Under WSGI the sync path answers 200, then 401 revoked, then 503 with Redis down."""
    store = make_store(local_cache_ttl=0)
    payload = claims(jti="t-wsgi")
    headers = {"authorization": f"Bearer {mint(payload=payload)}"}

    def orders(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [json.dumps(environ["invalidtoken_mw.claims"]["jti"]).encode()]

    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )
    app = InvalidTokenWSGIMiddleware(orders, verifier=verifier, realm="orders")
    statuses = []
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://test") as client:
        statuses.append(client.get("/orders", headers=headers).status_code)
        store.revoke(jti="t-wsgi", issuer=ISSUER, expires_at=payload["exp"])
        statuses.append(client.get("/orders", headers=headers).status_code)
        redis_server.kill()
        fresh = {"authorization": f"Bearer {mint(payload=claims(jti='t-other'))}"}
        statuses.append(client.get("/orders", headers=fresh).status_code)
    assert [200, 401, 503] == statuses


# -- the fixture itself -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [
        pytest.param("true", pytest.fail.Exception, id="ci-fails"),
        pytest.param("", pytest.skip.Exception, id="local-skips"),
    ],
)
def test_missing_redis_server_fails_in_ci_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    """Without redis-server on PATH the Redis tests fail under CI=true and skip otherwise."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="redis-server is not on PATH"):
        redis_server_executable()
