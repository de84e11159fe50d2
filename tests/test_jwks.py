"""JWKSCache against a real local JWKS server: caching, single flight, cool-down, outages."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPMessage
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from invalidtoken_mw import JWTVerifier
from invalidtoken_mw.jwks import JWKSCache, _SafeRedirectHandler
from invalidtoken_mw.reasons import AuthFailure, Reason
from support.jwks_server import JWKSServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.tokens import Keys

COOLDOWN = 5.0
MIN_INTERVAL = 1.0  # JWKSCache's default


class FakeClock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "RS256"}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def ed_jwk(key: ed25519.Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    return {**OKPAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "EdDSA"}


@pytest.fixture
def server(keys: Keys) -> Iterator[JWKSServer]:
    srv = JWKSServer()
    srv.jwks = {
        "keys": [rsa_jwk(keys.rsa, "rsa-1"), ec_jwk(keys.ec, "ec-1"), ed_jwk(keys.ed, "ed-1")]
    }
    yield srv
    srv.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_cache(server: JWKSServer, clock: FakeClock, **options: Any) -> JWKSCache:
    options.setdefault("cooldown", COOLDOWN)
    return JWKSCache(server.url, clock=clock, **options)


def get(cache: JWKSCache, kid: str | None, api: str) -> jwt.PyJWK:
    """Call the sync or the async API."""
    if api == "async":
        return asyncio.run(cache.get_key_async(kid))
    return cache.get_key(kid)


def reason_of(cache: JWKSCache, kid: str | None, api: str = "sync") -> Reason:
    with pytest.raises(AuthFailure) as info:
        get(cache, kid, api)
    return info.value.reason


APIS = pytest.mark.parametrize("api", ["sync", "async"])


@APIS
def test_fetches_once_and_serves_every_kid_from_memory(
    server: JWKSServer, clock: FakeClock, api: str
) -> None:
    """One fetch parses all keys; later lookups by kid hit memory and return the same object."""
    cache = make_cache(server, clock)
    first = get(cache, "rsa-1", api)
    found = {kid: get(cache, kid, api) for kid in ("rsa-1", "ec-1", "ed-1")}
    assert (cache.fetch_count, server.requests) == (1, 1)
    assert first is found["rsa-1"]
    assert {kid: key.algorithm_name for kid, key in found.items()} == {
        "rsa-1": "RS256",
        "ec-1": "ES256",
        "ed-1": "EdDSA",
    }
    assert isinstance(found["rsa-1"].key, rsa.RSAPublicKey)
    assert isinstance(found["ec-1"].key, ec.EllipticCurvePublicKey)
    assert isinstance(found["ed-1"].key, ed25519.Ed25519PublicKey)


@pytest.mark.parametrize(("kid", "alg"), [("rsa-1", "RS256"), ("ec-1", "ES256"), ("ed-1", "EdDSA")])
def test_returned_key_verifies_a_real_token(
    server: JWKSServer, clock: FakeClock, keys: Keys, kid: str, alg: str
) -> None:
    """A token signed with the private key verifies with the cached public key."""
    private: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey]
    private = {"rsa-1": keys.rsa, "ec-1": keys.ec, "ed-1": keys.ed}
    token = jwt.encode({"sub": "alice"}, private[kid], algorithm=alg, headers={"kid": kid})
    key = make_cache(server, clock).get_key(jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, key.key, algorithms=[key.algorithm_name])
    assert claims == {"sub": "alice"}


def test_none_kid_selects_the_only_key(server: JWKSServer, clock: FakeClock, keys: Keys) -> None:
    """Without a kid, a set holding exactly one key (here without a kid) yields that key."""
    only = ec_jwk(keys.ec, "x")
    del only["kid"]
    server.jwks = {"keys": [only]}
    assert make_cache(server, clock).get_key(None).algorithm_name == "ES256"


def test_none_kid_with_several_keys_is_unknown(server: JWKSServer, clock: FakeClock) -> None:
    """Without a kid, a set of several keys cannot choose, so the key is unknown."""
    cache = make_cache(server, clock)
    cache.refresh()
    assert reason_of(cache, None) == Reason.UNKNOWN_KEY


@APIS
def test_unknown_kid_refreshes_once_then_is_unknown(
    server: JWKSServer, clock: FakeClock, api: str
) -> None:
    """An unknown kid causes one refresh per cool-down window, then unknown_key."""
    cache = make_cache(server, clock)
    get(cache, "rsa-1", api)
    clock.advance(COOLDOWN)
    assert reason_of(cache, "nope", api) == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 2
    clock.advance(COOLDOWN / 2)
    assert reason_of(cache, "nope", api) == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 2


@APIS
def test_rotated_key_is_accepted_on_first_use_inside_the_cooldown(
    server: JWKSServer, clock: FakeClock, keys: Keys, api: str
) -> None:
    """A key added at the server is fetched for its first token once MIN_INTERVAL has passed."""
    cache = make_cache(server, clock)
    get(cache, "rsa-1", api)
    server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
    clock.advance(MIN_INTERVAL)
    assert get(cache, "rsa-2", api).key_id == "rsa-2"
    assert (cache.fetch_count, server.requests) == (2, 2)


@APIS
def test_key_published_right_after_an_unknown_kid_probe_is_accepted_on_first_use(
    server: JWKSServer, clock: FakeClock, keys: Keys, api: str
) -> None:
    """A probe starts the cool-down; the issuer then rotates; its first token is accepted."""
    cache = make_cache(server, clock)
    get(cache, "rsa-1", api)
    clock.advance(COOLDOWN)
    assert reason_of(cache, "probe", api) == Reason.UNKNOWN_KEY
    # The probe retried in a loop is not a new kid: it spends nothing.
    clock.advance(MIN_INTERVAL)
    assert reason_of(cache, "probe", api) == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 2
    server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
    clock.advance(0.5)
    assert get(cache, "rsa-2", api).key_id == "rsa-2"
    assert (cache.fetch_count, server.requests) == (3, 3)


def test_new_kid_within_min_interval_is_refused_then_accepted_a_second_later(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """Right after a fetch a new kid waits for MIN_INTERVAL: the retry one second later wins."""
    cache = make_cache(server, clock)
    cache.get_key("rsa-1")
    server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
    clock.advance(MIN_INTERVAL / 2)
    assert reason_of(cache, "rsa-2") == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 1
    clock.advance(MIN_INTERVAL / 2)
    assert cache.get_key("rsa-2").key_id == "rsa-2"
    assert cache.fetch_count == 2


def test_early_fetch_goes_to_the_first_new_kid_only(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """After one random kid, a just-published key waits for the cool-down (flood shape)."""
    cache = make_cache(server, clock)
    cache.get_key("rsa-1")
    clock.advance(0.1)
    assert reason_of(cache, "random-1") == Reason.UNKNOWN_KEY
    server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
    clock.advance(MIN_INTERVAL)
    assert reason_of(cache, "rsa-2") == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 1
    clock.advance(COOLDOWN - MIN_INTERVAL - 0.1)
    assert cache.get_key("rsa-2").key_id == "rsa-2"
    assert cache.fetch_count == 2


def test_repeating_one_kid_costs_at_most_two_fetches_per_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    """An attacker resending the first new kid gets one early fetch per window, no more."""
    cache = make_cache(server, clock)
    cache.refresh()
    started = []
    for step in range(400):
        kid = f"attacker-{step // 10}"  # each kid sent ten times, 0.1 s apart
        before = cache.fetch_count
        assert reason_of(cache, kid) == Reason.UNKNOWN_KEY
        if cache.fetch_count > before:
            started.append(clock.now)
        clock.advance(0.1)
    assert all(b - a >= MIN_INTERVAL for a, b in itertools.pairwise(started))
    for start in started:
        assert sum(start <= t < start + COOLDOWN for t in started) <= 2
    # 40 s: at most two fetches per 5 s window (and in fact one per (COOLDOWN + MIN_INTERVAL)).
    assert len(started) <= 2 * 40 / COOLDOWN
    assert server.requests == cache.fetch_count == 1 + len(started)


def test_no_early_fetch_while_the_issuer_is_down(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """After a failed fetch only the cool-down applies: an outage is not hammered."""
    cache = make_cache(server, clock)
    cache.get_key("rsa-1")
    clock.advance(COOLDOWN)
    server.mode = "status_500"
    with structlog.testing.capture_logs():
        assert reason_of(cache, "rsa-2") == Reason.UNKNOWN_KEY
        server.mode = "ok"
        server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
        clock.advance(COOLDOWN - 0.1)
        assert reason_of(cache, "rsa-3") == Reason.UNKNOWN_KEY
        assert reason_of(cache, "rsa-2") == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 2
    clock.advance(0.1)
    assert cache.get_key("rsa-2").key_id == "rsa-2"


def test_min_interval_at_the_cooldown_turns_early_fetches_off(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """With min_interval >= cooldown the cool-down alone rules, as before."""
    cache = make_cache(server, clock, min_interval=COOLDOWN)
    cache.get_key("rsa-1")
    server.add_key(rsa_jwk(keys.rsa, "rsa-2"))
    clock.advance(COOLDOWN - 0.1)
    assert reason_of(cache, "rsa-2") == Reason.UNKNOWN_KEY
    clock.advance(0.1)
    assert cache.get_key("rsa-2").key_id == "rsa-2"
    assert cache.fetch_count == 2


def settle(cache: JWKSCache) -> None:
    """Wait (at most 5 s) until no fetch is in flight, e.g. a background refresh."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        flight = cache._flight  # noqa: SLF001 - a test of the cache's own bookkeeping
        if flight is None or flight.done.done():
            return
        time.sleep(0.01)


def test_key_removed_at_the_server_becomes_unknown(server: JWKSServer, clock: FakeClock) -> None:
    """When the cached set expires, the new set replaces it entirely after one refresh."""
    cache = make_cache(server, clock, default_ttl=300)
    cache.get_key("ec-1")
    server.jwks = {"keys": [k for k in server.jwks["keys"] if k["kid"] != "ec-1"]}
    clock.advance(300)
    # Expired: the old set still answers while the refresh runs in the background.
    assert cache.get_key("rsa-1").key_id == "rsa-1"
    settle(cache)
    assert reason_of(cache, "ec-1") == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 2


def run_threads(cache: JWKSCache, kids: list[str]) -> list[str]:
    """Call get_key for each kid from its own thread, all released at once."""
    barrier = threading.Barrier(len(kids))

    def call(kid: str) -> str:
        barrier.wait()
        try:
            return cache.get_key(kid).key_id or ""
        except AuthFailure as failure:
            return failure.reason.value

    with ThreadPoolExecutor(max_workers=len(kids)) as pool:
        return list(pool.map(call, kids))


def run_tasks(cache: JWKSCache, kids: list[str]) -> list[str]:
    """Call get_key_async for each kid from its own asyncio task."""

    async def call(kid: str) -> str:
        try:
            return (await cache.get_key_async(kid)).key_id or ""
        except AuthFailure as failure:
            return failure.reason.value

    async def main() -> list[str]:
        return list(await asyncio.gather(*(call(kid) for kid in kids)))

    return asyncio.run(main())


RUNNERS = pytest.mark.parametrize("run", [run_threads, run_tasks], ids=["threads", "tasks"])


@RUNNERS
def test_100_concurrent_unknown_kids_cause_one_fetch(
    server: JWKSServer, clock: FakeClock, run: Any
) -> None:
    """100 concurrent callers with unknown kids share a single refresh (single flight)."""
    cache = make_cache(server, clock)
    cache.refresh()
    clock.advance(COOLDOWN)
    server.mode, server.delay = "slow", 0.2
    results = run(cache, [f"unknown-{i}" for i in range(100)])
    assert results == ["unknown_key"] * 100
    assert (cache.fetch_count, server.requests) == (2, 2)


@RUNNERS
def test_100_concurrent_callers_all_get_a_rotated_key_from_one_fetch(
    server: JWKSServer, clock: FakeClock, keys: Keys, run: Any
) -> None:
    """Callers waiting on the shared refresh all see its result, not a second fetch."""
    cache = make_cache(server, clock)
    cache.refresh()
    clock.advance(COOLDOWN)
    server.add_key(ed_jwk(keys.ed, "ed-2"))
    server.mode, server.delay = "slow", 0.2
    assert run(cache, ["ed-2"] * 100) == ["ed-2"] * 100
    assert cache.fetch_count == 2


@RUNNERS
def test_100_concurrent_callers_of_a_new_key_share_one_early_fetch(
    server: JWKSServer, clock: FakeClock, keys: Keys, run: Any
) -> None:
    """Inside the cool-down, callers of a just-published key share one early fetch."""
    cache = make_cache(server, clock)
    cache.refresh()
    clock.advance(MIN_INTERVAL)
    server.add_key(ed_jwk(keys.ed, "ed-2"))
    server.mode, server.delay = "slow", 0.2
    assert run(cache, ["ed-2"] * 100) == ["ed-2"] * 100
    assert (cache.fetch_count, server.requests) == (2, 2)


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs handed to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=8)
        self.jobs = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.jobs += 1
        return super().submit(fn, *args, **kwargs)


def test_concurrent_tasks_share_one_fetch_thread(server: JWKSServer, clock: FakeClock) -> None:
    """100 tasks needing a refresh await one fetch; none takes an executor thread."""
    cache = make_cache(server, clock)
    server.mode, server.delay = "slow", 0.1
    executor = CountingExecutor()

    async def main() -> list[str | None]:
        asyncio.get_running_loop().set_default_executor(executor)
        keys = await asyncio.gather(*(cache.get_key_async("ec-1") for _ in range(100)))
        return [key.key_id for key in keys]

    assert asyncio.run(main()) == ["ec-1"] * 100
    assert (executor.jobs, cache.fetch_count, server.requests) == (0, 1, 1)


def test_random_kid_flood_fetches_at_most_once_per_cooldown(
    server: JWKSServer, clock: FakeClock
) -> None:
    """1000 random kids per cool-down window cost at most one fetch per window."""
    cache = make_cache(server, clock)
    cache.refresh()
    clock.advance(COOLDOWN)
    for _window in range(3):
        before = cache.fetch_count
        for i in range(1000):
            assert reason_of(cache, uuid.uuid4().hex) == Reason.UNKNOWN_KEY
            clock.advance(COOLDOWN / 1000 * 0.99 if i else 0)
        assert cache.fetch_count - before == 1
        clock.advance(COOLDOWN)
    assert server.requests == 4


@APIS
@pytest.mark.parametrize("mode", ["down", "garbage", "not_object", "empty", "status_500"])
def test_no_usable_key_is_key_unavailable(
    server: JWKSServer, clock: FakeClock, mode: str, api: str
) -> None:
    """A failed first fetch is key_unavailable (503) for any kid, never unknown_key."""
    if mode == "down":
        server.stop()
    else:
        server.mode = mode  # type: ignore[assignment]
    cache = make_cache(server, clock)
    with pytest.raises(AuthFailure) as info:
        get(cache, "rsa-1", api)
    assert info.value.reason == Reason.KEY_UNAVAILABLE
    assert info.value.__cause__ is not None
    # A kept traceback would pin the failed fetch's frame and every earlier snapshot.
    assert info.value.__cause__.__traceback__ is None
    assert reason_of(cache, "anything", api) == Reason.KEY_UNAVAILABLE
    assert cache.fetch_count == 1


def test_only_unusable_keys_is_key_unavailable(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """A set whose keys are all unusable (encryption, symmetric) counts as no key set."""
    server.jwks = {
        "keys": [{**rsa_jwk(keys.rsa, "enc"), "use": "enc"}, {"kty": "oct", "k": "c2VjcmV0"}]
    }
    assert reason_of(make_cache(server, clock), "enc") == Reason.KEY_UNAVAILABLE


@APIS
def test_slow_server_fails_within_the_timeout(
    server: JWKSServer, clock: FakeClock, api: str
) -> None:
    """A server slower than the timeout gives key_unavailable after about timeout seconds."""
    server.mode, server.delay = "slow", 5.0
    cache = make_cache(server, clock, timeout=0.5)
    start = time.perf_counter()
    assert reason_of(cache, "rsa-1", api) == Reason.KEY_UNAVAILABLE
    assert 0.4 < time.perf_counter() - start < 1.5


def test_trickling_server_fails_within_the_timeout(server: JWKSServer, clock: FakeClock) -> None:
    """A server sending its body a byte at a time is cut off after about timeout seconds."""
    server.mode = "trickle"
    cache = make_cache(server, clock, timeout=0.5)
    start = time.perf_counter()
    with pytest.raises(AuthFailure) as info:
        cache.get_key("rsa-1")
    assert time.perf_counter() - start < 1.5
    assert info.value.reason == Reason.KEY_UNAVAILABLE
    assert isinstance(info.value.__cause__, TimeoutError)


@APIS
def test_stale_keys_are_served_while_the_server_is_down(
    server: JWKSServer, clock: FakeClock, api: str
) -> None:
    """After the set expires and the server dies, old keys keep serving and a warning is logged."""
    cache = make_cache(server, clock, default_ttl=300)
    get(cache, "rsa-1", api)
    server.stop()
    clock.advance(300)
    with structlog.testing.capture_logs() as logs:
        # Expired: answered from the old set at once, the refresh runs in the background.
        assert get(cache, "rsa-1", api).key_id == "rsa-1"
        settle(cache)
        clock.advance(COOLDOWN - 0.1)
        assert get(cache, "ec-1", api).key_id == "ec-1"
    assert cache.fetch_count == 2
    assert [
        {
            "event": "jwks_refresh_failed",
            "log_level": "warning",
            "url": server.url,
            "error_type": "URLError",
            "cause": "connection_refused",
            "detail": "the connection was refused (nothing listens)",
            "serving_stale": True,
        }
    ] == logs
    clock.advance(0.1)
    assert get(cache, "rsa-1", api).key_id == "rsa-1"
    assert cache.fetch_count == 3
    settle(cache)


def test_recovers_when_the_server_comes_back(server: JWKSServer, clock: FakeClock) -> None:
    """After a failed first fetch, the next fetch (one cool-down later) succeeds."""
    server.mode = "garbage"
    cache = make_cache(server, clock)
    assert reason_of(cache, "rsa-1") == Reason.KEY_UNAVAILABLE
    server.mode = "ok"
    assert reason_of(cache, "rsa-1") == Reason.KEY_UNAVAILABLE
    clock.advance(COOLDOWN)
    assert cache.get_key("rsa-1").key_id == "rsa-1"
    assert cache.fetch_count == 2


def test_log_never_carries_the_query_string(server: JWKSServer, clock: FakeClock) -> None:
    """The logged URL drops the query, which may hold an API key."""
    server.mode = "status_500"
    cache = JWKSCache(server.url + "?api_key=hunter2", clock=clock)
    with structlog.testing.capture_logs() as logs:
        assert reason_of(cache, "rsa-1") == Reason.KEY_UNAVAILABLE
    assert [(server.url, "HTTPError")] == [(e["url"], e["error_type"]) for e in logs]
    assert "hunter2" not in repr(logs)


@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        ({}, 300),
        ({"Cache-Control": "max-age=120"}, 120),
        ({"Cache-Control": "public, max-age=600, must-revalidate"}, 600),
        ({"Cache-Control": "max-age=600", "Age": "200"}, 400),
        ({"Cache-Control": "max-age=5"}, 60),
        ({"Cache-Control": "max-age=99999999"}, 3600),
        ({"Cache-Control": "no-store"}, 300),
        ({"Cache-Control": "max-age=" + "9" * 400}, 3600),
        ({"Cache-Control": "max-age=600", "Age": "9" * 400}, 60),
        ({"Cache-Control": "max-age=600", "Age": "\xb2"}, 600),
    ],
    ids=[
        "absent",
        "max-age",
        "among-directives",
        "minus-age",
        "clamped-up",
        "clamped-down",
        "other",
        "huge-max-age",
        "huge-age",
        "non-ascii-age",
    ],
)
def test_lifetime_follows_max_age_clamped(
    server: JWKSServer, clock: FakeClock, headers: dict[str, str], ttl: int
) -> None:
    """The set is reused for max-age (RFC 9111 §5.2.2.1) clamped to [min_ttl, max_ttl]."""
    server.headers = headers
    cache = make_cache(server, clock, min_ttl=60, max_ttl=3600, default_ttl=300)
    cache.get_key("rsa-1")
    clock.advance(ttl * 0.8 - 0.5)
    cache.get_key("rsa-1")
    assert 1 == cache.fetch_count
    clock.advance(ttl * 0.2)
    cache.get_key("rsa-1")
    assert 2 == cache.fetch_count


def test_refresh_ahead_of_expiry_runs_in_the_background(
    server: JWKSServer, clock: FakeClock
) -> None:
    """Past 80% of the lifetime a slow refresh starts, but the request is answered at once."""
    cache = make_cache(server, clock, default_ttl=300, timeout=2.0)
    cache.get_key("rsa-1")
    server.mode, server.delay = "slow", 0.5
    clock.advance(300 * 0.8)
    started = time.monotonic()
    key = cache.get_key("rsa-1")
    answered_in = time.monotonic() - started
    assert "rsa-1" == key.key_id
    assert answered_in < 0.2
    deadline = time.monotonic() + 5
    while cache.fetch_count < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert 2 == cache.fetch_count


def test_get_key_async_never_blocks_the_event_loop(server: JWKSServer, clock: FakeClock) -> None:
    """A ticker task keeps ticking while get_key_async waits for a slow fetch."""
    server.mode, server.delay = "slow", 0.4
    cache = make_cache(server, clock, timeout=2.0)

    async def main() -> tuple[str | None, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        key = await cache.get_key_async("rsa-1")
        done.set()
        await task
        return key.key_id, ticks

    kid, ticks = asyncio.run(main())
    assert kid == "rsa-1"
    assert ticks >= 15


def test_refresh_fetches_now_despite_the_cooldown(server: JWKSServer, clock: FakeClock) -> None:
    """refresh() always fetches, and refresh_async() too."""
    cache = make_cache(server, clock)
    cache.refresh()
    cache.refresh()
    asyncio.run(cache.refresh_async())
    assert (cache.fetch_count, server.requests) == (3, 3)


def test_failed_refresh_raises_but_keeps_the_keys(server: JWKSServer, clock: FakeClock) -> None:
    """A failed refresh() raises key_unavailable and the cached keys still serve."""
    cache = make_cache(server, clock)
    cache.refresh()
    server.mode = "empty"
    with pytest.raises(AuthFailure) as info:
        cache.refresh()
    assert info.value.reason == Reason.KEY_UNAVAILABLE
    assert cache.get_key("ed-1").key_id == "ed-1"


def test_unusable_keys_are_skipped_not_fatal(
    server: JWKSServer, clock: FakeClock, keys: Keys
) -> None:
    """Encryption, symmetric, alg none, unknown kty and malformed keys are skipped one by one."""
    good = ec_jwk(keys.ec, "good")
    server.jwks = {
        "keys": [
            "junk",
            {**rsa_jwk(keys.rsa, "enc"), "use": "enc"},
            {**rsa_jwk(keys.rsa, "ops"), "key_ops": ["encrypt"]},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0", "alg": "HS256"},
            {**rsa_jwk(keys.rsa, "none"), "alg": "none"},
            {**rsa_jwk(keys.rsa, "hs"), "alg": "HS256"},
            {**rsa_jwk(keys.rsa, "list-alg"), "alg": ["RS256"]},
            {**rsa_jwk(keys.rsa, "bad-n"), "n": "!!"},
            {"kty": "XYZ", "kid": "xyz"},
            {**good, "kid": 7},
            good,
        ]
    }
    cache = make_cache(server, clock)
    assert cache.get_key("good").key_id == "good"
    for kid in ("enc", "ops", "hmac", "none", "hs", "list-alg", "bad-n", "xyz", "7"):
        assert reason_of(cache, kid) == Reason.UNKNOWN_KEY
    assert cache.fetch_count == 1


def test_key_count_is_capped(server: JWKSServer, clock: FakeClock, keys: Keys) -> None:
    """At most 100 keys are kept from a huge set."""
    server.jwks = {"keys": [ec_jwk(keys.ec, f"k{i}") for i in range(150)]}
    cache = make_cache(server, clock)
    assert cache.get_key("k99").key_id == "k99"
    assert reason_of(cache, "k100") == Reason.UNKNOWN_KEY


def test_oversized_response_is_refused(server: JWKSServer, clock: FakeClock) -> None:
    """A response over 1 MiB is not read to the end; it counts as a failed fetch."""
    server.jwks = {**server.jwks, "padding": "x" * (1 << 20)}
    assert reason_of(make_cache(server, clock), "rsa-1") == Reason.KEY_UNAVAILABLE


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/jwks.json"])
def test_redirect_off_http_is_refused(server: JWKSServer, clock: FakeClock, target: str) -> None:
    """A redirect to a non-http(s) URL is not followed and counts as a failed fetch."""
    server.mode, server.redirect_to = "redirect", target
    cache = make_cache(server, clock)
    with pytest.raises(AuthFailure) as info:
        cache.get_key("rsa-1")
    assert info.value.reason == Reason.KEY_UNAVAILABLE
    assert isinstance(info.value.__cause__, urllib.error.HTTPError)
    assert info.value.__cause__.code == 302


def test_redirect_within_http_is_followed(server: JWKSServer, clock: FakeClock) -> None:
    """An ordinary redirect (a moved JWKS document) is followed."""
    server.mode, server.redirect_to = "redirect", server.url.replace("/jwks.json", "/moved")
    assert make_cache(server, clock).get_key("rsa-1").key_id == "rsa-1"
    assert server.requests == 2


def test_redirect_from_https_to_http_is_refused() -> None:
    """A redirect may not downgrade https to http."""
    request = urllib.request.Request("https://idp.example/jwks.json")
    with pytest.raises(urllib.error.HTTPError, match="unsafe JWKS redirect"):
        _SafeRedirectHandler().redirect_request(
            request, None, 302, "Found", HTTPMessage(), "http://idp.example/jwks.json"
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://idp.example/jwks.json"}, "http:// or https://"),
        ({"url": "https:///jwks.json"}, "with a host"),
        ({"url": "/jwks.json"}, "with a host"),
        ({"url": "https://user:pw@idp.example/jwks.json"}, "credentials"),
        ({"timeout": 0}, "timeout must be a positive"),
        ({"timeout": math.nan}, "timeout must be a positive"),
        ({"cooldown": 0}, "cooldown must be a positive"),
        ({"cooldown": 10.5}, "cooldown must be at most 10"),
        ({"min_interval": 0}, "min_interval must be a positive"),
        ({"min_interval": math.nan}, "min_interval must be a positive"),
        ({"min_ttl": 100, "max_ttl": 50}, "min_ttl <= max_ttl"),
        ({"min_ttl": -1}, "min_ttl <= max_ttl"),
        ({"default_ttl": 10}, "default_ttl must lie in"),
    ],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any], message: str) -> None:
    """Each invalid option raises ValueError with a message naming it."""
    options.setdefault("url", "https://idp.example/.well-known/jwks.json")
    with pytest.raises(ValueError, match=message):
        JWKSCache(**options)


@pytest.mark.parametrize("name", ["timeout", "cooldown", "min_interval"])
@pytest.mark.parametrize("value", ["5", True, None])
def test_seconds_that_are_not_numbers_are_a_type_error(name: str, value: object) -> None:
    """A string, a bool or None where seconds belong is named, not a bare math error."""
    with pytest.raises(TypeError, match=f"{name} must be a number of seconds"):
        JWKSCache("https://idp.example/jwks.json", **{name: value})  # type: ignore[arg-type]


def test_verifier_passes_jwks_min_interval_to_its_key_set() -> None:
    """jwks_min_interval reaches the JWKS cache (and its checks) from JWTVerifier."""
    with pytest.raises(ValueError, match="min_interval must be a positive"):
        JWTVerifier(
            jwks_url="https://idp.example/jwks.json", algorithms=["RS256"], jwks_min_interval=0
        )
    with pytest.raises(ValueError, match="min_interval must be a positive"):
        JWTVerifier(issuer_url="https://idp.example", jwks_min_interval=-1.0)


def test_clock_must_be_callable() -> None:
    """A clock that cannot be called is refused at construction."""
    with pytest.raises(TypeError, match="clock must be a callable"):
        JWKSCache("https://idp.example/jwks.json", clock=1.0)  # type: ignore[arg-type]


def test_construction_does_no_network(server: JWKSServer, clock: FakeClock) -> None:
    """Creating a cache fetches nothing."""
    cache = make_cache(server, clock)
    assert (cache.fetch_count, server.requests) == (0, 0)
