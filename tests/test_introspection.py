"""IntrospectionVerifier against a loopback introspection endpoint that misbehaves on demand.

Every answer goes through a real server (uvicorn with Starlette and the ASGI middleware,
waitress with the WSGI middleware); what the endpoint saw is read from the endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    IntrospectionVerifier,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    MemoryRevocationStore,
    Reason,
    introspection,
)
from invalidtoken_mw._sentences import Sentence
from support.discovery_server import OIDC, DiscoveryServer
from support.introspection_server import CLIENT_ID, CLIENT_SECRET, IntrospectionServer
from support.servers import WSGI_CLAIMS_KEY, client, run_uvicorn, run_waitress

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from starlette.requests import Request

TOKEN = "2YotnFZFEjr1zCsicMWpAA-opaque-access-token"
ISSUER = "https://id.example.com/"
SCOPE = "orders:read"
_LOG_LOCK = threading.Lock()  # capture_logs configures structlog globally: one at a time


def active(**members: Any) -> dict[str, Any]:
    """An active introspection response for an orders token, expiring in an hour."""
    return {
        "active": True,
        "scope": f"{SCOPE} orders:write",
        "client_id": "shop",
        "sub": "user-42",
        "iss": ISSUER,
        "aud": "orders",
        "jti": "t-1",
        "token_type": "Bearer",
        "exp": int(time.time()) + 3600,
        **members,
    }


@pytest.fixture
def endpoint() -> Iterator[IntrospectionServer]:
    server = IntrospectionServer()
    try:
        yield server
    finally:
        server.stop()


def make_verifier(url: str, **options: Any) -> IntrospectionVerifier:
    settings: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "audience": "orders",
        "timeout": 1.0,
        **options,
    }
    return IntrospectionVerifier(url, **settings)


# -- the two applications ---------------------------------------------------------------


async def _orders(request: Request) -> JSONResponse:
    return JSONResponse(request.state.token_claims)


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def asgi_app(verifier: IntrospectionVerifier) -> Starlette:
    app = Starlette(routes=[Route("/orders", _orders), Route("/health", _health)])
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=verifier,
        realm="orders",
        scopes=[SCOPE],
        exclude_paths=["/health"],
    )
    return app


def wsgi_app(verifier: IntrospectionVerifier) -> InvalidTokenWSGIMiddleware:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = json.dumps(environ[WSGI_CLAIMS_KEY]).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return InvalidTokenWSGIMiddleware(app, verifier=verifier, realm="orders", scopes=[SCOPE])


@contextlib.contextmanager
def serve(kind: str, verifier: IntrospectionVerifier) -> Iterator[httpx.Client]:
    runner = run_uvicorn(asgi_app(verifier)) if kind == "asgi" else run_waitress(wsgi_app(verifier))
    with runner as url, client(url) as http:
        yield http


def get(http: httpx.Client, token: str = TOKEN) -> httpx.Response:
    return http.get("/orders", headers={"Authorization": f"Bearer {token}"})


def challenge_error(response: httpx.Response) -> str | None:
    header = response.headers["www-authenticate"]
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.endswith("error"):
            return value.strip('"')
    return None


KINDS = pytest.mark.parametrize("kind", ["asgi", "wsgi"])


# -- accepted, refused ------------------------------------------------------------------


@KINDS
def test_active_token_is_accepted_with_its_claims_and_scopes(
    kind: str, endpoint: IntrospectionServer
) -> None:
    endpoint.tokens[TOKEN] = active()
    with serve(kind, make_verifier(endpoint.url)) as http:
        response = get(http)
    assert response.status_code == 200
    claims = response.json()
    assert claims["sub"] == "user-42"
    assert claims["scope"] == f"{SCOPE} orders:write"
    assert endpoint.seen[0].form["token"] == TOKEN
    assert endpoint.seen[0].form["token_type_hint"] == "access_token"


@KINDS
def test_active_token_without_the_required_scope_is_403(
    kind: str, endpoint: IntrospectionServer
) -> None:
    endpoint.tokens[TOKEN] = active(scope="profile")
    with serve(kind, make_verifier(endpoint.url)) as http:
        response = get(http)
    assert response.status_code == 403
    assert challenge_error(response) == "insufficient_scope"


@KINDS
def test_inactive_token_is_401_inactive_token(kind: str, endpoint: IntrospectionServer) -> None:
    with serve(kind, make_verifier(endpoint.url)) as http:
        response = get(http, "unknown-or-revoked-token-value")
    assert response.status_code == 401
    assert challenge_error(response) == "invalid_token"
    assert response.json()["error_description"] == Sentence.INACTIVE_TOKEN
    assert "expired" not in Sentence.INACTIVE_TOKEN
    assert "revoked" not in Sentence.INACTIVE_TOKEN


@pytest.mark.parametrize(
    ("members", "options", "reason"),
    [
        pytest.param({"aud": "billing"}, {}, Reason.WRONG_AUDIENCE, id="wrong-audience"),
        pytest.param({"aud": ["billing", "x"]}, {}, Reason.WRONG_AUDIENCE, id="wrong-audiences"),
        pytest.param({"aud": None}, {}, Reason.WRONG_AUDIENCE, id="no-audience"),
        pytest.param(
            {"iss": "https://evil.example/"}, {"issuer": ISSUER}, Reason.WRONG_ISSUER, id="iss"
        ),
        pytest.param(
            {"token_type": "refresh_token"},
            {"token_type": "bearer"},
            Reason.WRONG_TOKEN_TYPE,
            id="type",
        ),
        pytest.param({"exp": int(time.time()) - 120}, {"leeway": 5}, Reason.EXPIRED, id="expired"),
        pytest.param({"nbf": int(time.time()) + 600}, {}, Reason.NOT_YET_VALID, id="not-yet"),
    ],
)
def test_active_answer_that_fails_a_configured_check_is_refused(
    endpoint: IntrospectionServer, members: dict[str, Any], options: dict[str, Any], reason: Reason
) -> None:
    endpoint.tokens[TOKEN] = active(**members)
    with serve("asgi", make_verifier(endpoint.url, **options)) as http:
        response = get(http)
    assert response.status_code == 401
    assert response.json()["reason"] == reason.value


def test_matching_audience_in_a_list_issuer_and_type_are_accepted(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active(aud=["billing", "orders"])
    verifier = make_verifier(endpoint.url, issuer=ISSUER, token_type="bearer")
    assert verifier.verify(TOKEN)["sub"] == "user-42"


def test_revocation_store_applies_to_introspected_tokens(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    store = MemoryRevocationStore()
    with serve("asgi", make_verifier(endpoint.url, revocation=store)) as http:
        assert get(http).status_code == 200
        store.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 3600)
        response = get(http)
    assert response.status_code == 401
    assert response.json()["reason"] == "revoked"


# -- a failing endpoint: 503, never 500, never accepted ----------------------------------


FAULTS = [
    pytest.param("down", "connection_refused", id="down"),
    pytest.param("slow", "timeout", id="slow"),
    pytest.param("garbage", "not_json", id="garbage"),
    pytest.param("status_500", "http_status", id="500"),
    pytest.param("no_active", "invalid_introspection_response", id="no-active"),
    pytest.param("not_object", "not_json_object", id="not-object"),
    pytest.param("redirect", "http_status", id="redirect"),
]


@KINDS
@pytest.mark.parametrize(("mode", "cause"), FAULTS)
def test_failing_endpoint_is_503_with_the_cause_logged(
    kind: str, endpoint: IntrospectionServer, mode: str, cause: str
) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, timeout=0.3)
    if mode == "down":
        endpoint.stop()
    else:
        endpoint.mode = mode  # type: ignore[assignment]
        endpoint.delay = 2.0
    with _LOG_LOCK, capture_logs() as events, serve(kind, verifier) as http:
        started = time.monotonic()
        response = get(http)
        elapsed = time.monotonic() - started
        # The worker logs its outcome when the call ends (a slow one: at its deadline).
        _wait_for(lambda: any(e["event"] == "introspection_failed" for e in events))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["reason"] == "introspection_unavailable"
    assert elapsed < 1.5
    failed = [e for e in events if e["event"] == "introspection_failed"]
    assert failed[0]["cause"] == cause
    assert failed[0]["url"] == endpoint.url
    rejected = [e for e in events if e["event"] == "auth_rejected"]
    assert rejected[0]["introspection_cause"] in {cause, "timeout"}
    assert TOKEN not in repr(events)
    assert CLIENT_SECRET not in repr(events)


def test_a_failure_is_not_remembered_the_next_request_asks_again(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    endpoint.mode = "status_500"
    verifier = make_verifier(endpoint.url)
    with serve("asgi", verifier) as http:
        assert get(http).status_code == 503
        assert endpoint.calls == 1  # no retry on the request path
        endpoint.mode = "ok"
        assert get(http).status_code == 200
    assert endpoint.calls == 2


def test_slow_endpoint_never_blocks_the_event_loop(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    endpoint.mode = "slow"
    endpoint.delay = 0.8
    with run_uvicorn(asgi_app(make_verifier(endpoint.url, timeout=2.0))) as url:

        async def main() -> tuple[httpx.Response, float]:
            async with httpx.AsyncClient(base_url=url, trust_env=False) as http:
                slow = asyncio.create_task(
                    http.get("/orders", headers={"Authorization": f"Bearer {TOKEN}"})
                )
                await asyncio.sleep(0.2)
                started = time.monotonic()
                health = await http.get("/health")
                health_time = time.monotonic() - started
                assert health.status_code == 200
                assert not slow.done()
                return await slow, health_time

        response, health_time = asyncio.run(main())
    assert response.status_code == 200
    assert health_time < 0.3


# -- client authentication ---------------------------------------------------------------


def test_client_secret_basic_as_the_server_sees_it(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, auth_method="client_secret_basic")
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    seen = endpoint.seen[0]
    assert seen.basic == (CLIENT_ID, CLIENT_SECRET)
    assert "client_secret" not in seen.form
    assert "client_id" not in seen.form


def test_client_secret_post_as_the_server_sees_it(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, auth_method="client_secret_post")
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    seen = endpoint.seen[0]
    assert seen.authorization is None
    assert (seen.form["client_id"], seen.form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET)


def test_wrong_client_secret_is_503_and_the_secret_is_never_logged(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, client_secret="not-the-secret-value")
    with _LOG_LOCK, capture_logs() as events, serve("asgi", verifier) as http:
        response = get(http)
    assert response.status_code == 503
    failed = [e for e in events if e["event"] == "introspection_failed"]
    assert failed[0]["cause"] == "http_status"
    assert failed[0]["status_code"] == 401
    assert "not-the-secret-value" not in repr(events)
    assert "not-the-secret-value" not in repr(verifier)
    assert "not-the-secret-value" not in response.text


# -- the cache ---------------------------------------------------------------------------


@KINDS
def test_resent_active_token_makes_no_second_call(kind: str, endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    with serve(kind, make_verifier(endpoint.url)) as http:
        assert [get(http).status_code for _ in range(5)] == [200] * 5
    assert endpoint.calls == 1


def test_inactive_token_is_remembered_briefly(endpoint: IntrospectionServer) -> None:
    verifier = make_verifier(endpoint.url, inactive_ttl=0.3)
    with serve("asgi", verifier) as http:
        assert [get(http).status_code for _ in range(3)] == [401] * 3
        assert endpoint.calls == 1
        endpoint.tokens[TOKEN] = active()  # e.g. the token was issued since
        time.sleep(0.35)
        assert get(http).status_code == 200
    assert endpoint.calls == 2


def test_active_token_is_remembered_only_until_its_exp(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active(exp=time.time() + 0.5)
    verifier = make_verifier(endpoint.url, leeway=0)
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    assert endpoint.calls == 1
    del endpoint.tokens[TOKEN]
    time.sleep(0.55)
    with pytest.raises(AuthFailure, match="inactive_token"):
        verifier.verify(TOKEN)
    assert endpoint.calls == 2


def test_cache_ttl_caps_the_reuse_of_an_active_answer(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, cache_ttl=0.2)
    verifier.verify(TOKEN)
    time.sleep(0.25)
    verifier.verify(TOKEN)
    assert endpoint.calls == 2


def test_handed_out_claims_are_copies(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active(roles=["reader"])
    verifier = make_verifier(endpoint.url)
    first = verifier.verify(TOKEN)
    first["roles"].append("admin")
    first["sub"] = "someone-else"
    assert verifier.verify(TOKEN)["roles"] == ["reader"]
    assert verifier.verify(TOKEN)["sub"] == "user-42"


def test_cache_key_is_a_keyed_hash_not_the_token(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url)
    verifier.verify(TOKEN)
    cache = verifier._cache  # noqa: SLF001 - inspecting what is stored is the point
    assert cache is not None
    keys = list(cache.keys())
    assert keys == [verifier.cache_key(TOKEN)]
    assert len(keys[0]) == 16
    assert TOKEN.encode() not in keys[0]
    assert all(TOKEN not in repr(entry) for entry in cache.values())
    # Keyed per verifier: another verifier (another process) files it elsewhere.
    assert make_verifier(endpoint.url).cache_key(TOKEN) != keys[0]


# -- single flight ---------------------------------------------------------------------------


def test_100_concurrent_tasks_for_one_new_token_make_one_call(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    endpoint.mode = "slow"
    endpoint.delay = 0.3
    verifier = make_verifier(endpoint.url)

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(verifier.verify_async(TOKEN) for _ in range(100)))

    results = asyncio.run(main())
    assert {claims["sub"] for claims in results} == {"user-42"}
    assert endpoint.calls == 1
    assert verifier.call_count == 1


def test_100_concurrent_requests_through_uvicorn_make_one_call(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    endpoint.mode = "slow"
    endpoint.delay = 0.3
    with run_uvicorn(asgi_app(make_verifier(endpoint.url))) as url:

        async def main() -> list[int]:
            limits = httpx.Limits(max_connections=100)
            async with httpx.AsyncClient(base_url=url, trust_env=False, limits=limits) as http:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                responses = await asyncio.gather(
                    *(http.get("/orders", headers=headers) for _ in range(100))
                )
                return [r.status_code for r in responses]

        statuses = asyncio.run(main())
    assert statuses == [200] * 100
    assert endpoint.calls == 1


def test_100_concurrent_threads_for_one_new_token_make_one_call(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    endpoint.mode = "slow"
    endpoint.delay = 0.3
    verifier = make_verifier(endpoint.url)
    barrier = threading.Barrier(100)

    def one() -> str:
        barrier.wait()
        return str(verifier.verify(TOKEN)["sub"])

    with ThreadPoolExecutor(100) as pool:
        subjects = list(pool.map(lambda _: one(), range(100)))
    assert subjects == ["user-42"] * 100
    assert endpoint.calls == 1


def test_distinct_tokens_each_get_their_own_call(endpoint: IntrospectionServer) -> None:
    tokens = [f"opaque-token-number-{i:03d}" for i in range(20)]
    for token in tokens:
        endpoint.tokens[token] = active(sub=token[-3:])
    verifier = make_verifier(endpoint.url)

    async def main() -> list[dict[str, Any]]:
        return await asyncio.gather(*(verifier.verify_async(t) for t in tokens * 5))

    results = asyncio.run(main())
    assert [claims["sub"] for claims in results] == [t[-3:] for t in tokens * 5]
    assert endpoint.calls == 20


# -- the endpoint from the issuer's metadata -------------------------------------------------


def test_issuer_url_finds_the_introspection_endpoint(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    discovery = DiscoveryServer()
    try:
        issuer = discovery.origin
        # An authorization server issuing only opaque tokens may publish no keys.
        document = {"issuer": issuer, "introspection_endpoint": endpoint.url}
        discovery.publish(OIDC, document)
        verifier = IntrospectionVerifier(
            issuer_url=issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        assert verifier.verify(TOKEN)["sub"] == "user-42"
        with pytest.raises(AuthFailure) as raised:
            verifier.verify("another-opaque-token-value")
        assert raised.value.reason is Reason.INACTIVE_TOKEN
    finally:
        discovery.stop()
    assert discovery.count(OIDC) == 1
    assert endpoint.calls == 2


def test_issuer_without_an_introspection_endpoint_is_503(endpoint: IntrospectionServer) -> None:
    discovery = DiscoveryServer()
    try:
        discovery.publish(OIDC, discovery.metadata(discovery.origin))
        verifier = IntrospectionVerifier(
            issuer_url=discovery.origin, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        with _LOG_LOCK, capture_logs() as events, pytest.raises(AuthFailure) as raised:
            verifier.verify(TOKEN)
        _wait_for(lambda: any(e["event"] == "introspection_failed" for e in events))
    finally:
        discovery.stop()
    assert raised.value.reason is Reason.INTROSPECTION_UNAVAILABLE
    failed = next(e for e in events if e["event"] == "introspection_failed")
    assert failed["cause"] == "discovery_failed"
    assert failed["discovery_cause"] == "no_introspection_endpoint"
    assert endpoint.calls == 0


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({}, "exactly one of", id="neither"),
        pytest.param(
            {"introspection_url": "https://a/i", "issuer_url": "https://a/"},
            "exactly one of",
            id="both",
        ),
        pytest.param({"introspection_url": "ftp://a/i"}, "https://", id="scheme"),
        pytest.param({"introspection_url": "https://u:p@a/i"}, "credentials", id="userinfo"),
        pytest.param(
            {"introspection_url": "https://a/i", "auth_method": "private_key_jwt"},
            "private_key_jwt",
            id="auth-method",
        ),
        pytest.param(
            {"introspection_url": "https://a/i", "client_secret": ""}, "client_secret", id="secret"
        ),
        pytest.param({"introspection_url": "https://a/i", "timeout": 0}, "timeout", id="timeout"),
        pytest.param({"introspection_url": "https://a/i", "cache_ttl": -1}, "cache_ttl", id="ttl"),
        pytest.param({"introspection_url": "https://a/i", "audience": []}, "audience", id="aud"),
    ],
)
def test_unusable_configuration_is_refused_at_construction(
    options: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **options}
    with pytest.raises(ValueError, match=message):
        IntrospectionVerifier(**settings)


def test_repr_names_the_endpoint_and_client_never_the_secret() -> None:
    verifier = IntrospectionVerifier(
        "https://id.example.com/introspect", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    assert "https://id.example.com/introspect" in repr(verifier)
    assert CLIENT_SECRET not in repr(verifier)
    assert CLIENT_SECRET not in str(verifier)


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def test_forget_makes_the_next_request_ask_again(endpoint: IntrospectionServer) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url)
    verifier.verify(TOKEN)
    del endpoint.tokens[TOKEN]  # revoked at the authorization server
    verifier.forget(TOKEN)
    with pytest.raises(AuthFailure, match="inactive_token"):
        verifier.verify(TOKEN)
    assert endpoint.calls == 2


def test_a_flood_of_new_tokens_uses_a_bounded_pool_and_sheds_load(
    endpoint: IntrospectionServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(introspection, "_MAX_PENDING", 20)
    endpoint.mode = "slow"
    endpoint.delay = 0.15
    verifier = make_verifier(endpoint.url)

    def pool_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("invalidtoken-mw-introspect")}

    # Other tests' verifiers may still hold idle workers: count the threads this one starts.
    before = pool_threads()

    async def main() -> list[dict[str, Any] | BaseException]:
        tokens = [f"flood-token-number-{i:04d}" for i in range(50)]
        calls = (verifier.verify_async(token) for token in tokens)
        return await asyncio.gather(*calls, return_exceptions=True)

    with _LOG_LOCK, capture_logs() as events:
        results = asyncio.run(main())
        workers = len(pool_threads() - before)
    reasons = [r.reason for r in results if isinstance(r, AuthFailure)]
    assert len(reasons) == 50
    # 20 waited for their answer (inactive); 30 were shed at once, never sent.
    assert reasons.count(Reason.INACTIVE_TOKEN) == 20
    assert reasons.count(Reason.INTROSPECTION_UNAVAILABLE) == 30
    assert 0 < workers <= 8
    assert endpoint.calls == 20
    failed = [e for e in events if e["event"] == "introspection_failed"]
    assert [e["cause"] for e in failed] == ["overloaded"]  # once a second at most
    verifier.close()


def test_close_stops_the_workers_and_a_later_request_starts_new_ones(
    endpoint: IntrospectionServer,
) -> None:
    endpoint.tokens[TOKEN] = active()
    verifier = make_verifier(endpoint.url, cache_size=0)
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    verifier.close()
    assert verifier.verify(TOKEN)["sub"] == "user-42"
    assert endpoint.calls == 2
    verifier.close()
