"""The Litestar plugin through uvicorn: the same bytes as the plain middleware, per route.

A Litestar application protected by ``InvalidTokenPlugin`` is compared, answer by
answer (status, challenge, content type, cache control, length, body), with a plain
Starlette application behind ``InvalidTokenMiddleware`` with the same settings: the
middleware's own refusals, failures raised by a handler, a dependency or a guard, a bare
401 (a handler's own and Litestar's ``NotAuthorizedException``), public and optional
routes, any-of and all-of scope guards, the app's error body and the websocket
handshake. Misconfiguration fails at start-up with a message that says what to do.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from litestar import Litestar, Request, Response, get, websocket
from litestar.di import NamedDependency  # noqa: TC002 - Litestar reads annotations at run time
from litestar.exceptions import NotAuthorizedException
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from invalidtoken_mw import AuthFailure, Guard, InvalidTokenMiddleware, Reason
from invalidtoken_mw.litestar import (
    InvalidTokenPlugin,
    TokenClaims,
    require_any_scope,
    require_scopes,
)
from support.servers import client, make_verifier, run_uvicorn
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx
    from litestar.connection import WebSocket
    from starlette.requests import Request as StarletteRequest

REALM = "orders"
COMPARED = ("www-authenticate", "content-type", "cache-control", "content-length")
EXPIRED = mint(payload=claims(iat=1, exp=2))
BARE = f'Bearer realm="{REALM}"'


def token(**overrides: Any) -> str:
    return mint(payload=claims(**overrides))


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def sent(response: httpx.Response) -> tuple[int, tuple[str | None, ...], bytes]:
    """What the library is responsible for in an answer."""
    return (
        response.status_code,
        tuple(response.headers.get(name) for name in COMPARED),
        response.content,
    )


def reasons(logs: list[Any]) -> list[str]:
    return [entry["reason"] for entry in logs if entry["event"] == "auth_rejected"]


# -- the applications ------------------------------------------------------------------


@get("/orders")
async def orders(token_claims: TokenClaims) -> dict[str, Any]:
    return {"sub": token_claims["sub"]}


@get("/state")
async def from_state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"sub": request.state.token_claims["sub"]}


@get("/raise/revoked")
async def raise_revoked() -> None:
    raise AuthFailure(Reason.REVOKED)


@get("/raise/expired")
async def raise_expired() -> None:
    raise jwt.ExpiredSignatureError("expired")


async def failing_dependency() -> str:
    raise AuthFailure(Reason.REVOKED)


@get("/raise/dependency", dependencies={"value": failing_dependency})
async def raise_in_dependency(value: NamedDependency[str]) -> str:
    return value


@get("/raise/other")
async def raise_other() -> None:
    raise RuntimeError("not an authentication failure")


@get("/app-401/bare")
async def app_401_bare() -> Response[None]:
    return Response(None, status_code=401)


@get("/app-401/not-authorized")
async def app_401_not_authorized() -> None:
    raise NotAuthorizedException


@get("/app-401/own")
async def app_401_own() -> Response[None]:
    return Response(None, status_code=401, headers={"www-authenticate": 'Basic realm="x"'})


@get("/public", opt={"exclude_from_auth": True})
async def public() -> dict[str, str]:
    return {"status": "ok"}


@get("/public/claims", opt={"exclude_from_auth": True})
async def public_claims(token_claims: TokenClaims) -> dict[str, Any]:
    return token_claims


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/optional", opt={"auth_optional": True})
async def optional(request: Request[Any, Any, Any]) -> dict[str, Any]:
    found = request.state.token_claims
    return {"sub": None if found is None else found["sub"]}


@get("/optional/claims", opt={"auth_optional": True})
async def optional_claims(token_claims: TokenClaims) -> dict[str, Any]:
    return {"sub": token_claims["sub"]}


@get("/scopes/any", guards=[require_any_scope("orders:read", "orders:admin")])
async def scopes_any() -> dict[str, bool]:
    return {"ok": True}


@get("/scopes/all", guards=[require_scopes("orders:read", "orders:write")])
async def scopes_all() -> dict[str, bool]:
    return {"ok": True}


@get(
    "/scopes/optional",
    opt={"auth_optional": True},
    guards=[require_scopes("orders:read")],
)
async def scopes_optional() -> dict[str, bool]:
    return {"ok": True}


@websocket("/ws")
async def feed(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    await socket.send_json({"sub": socket.state.token_claims["sub"]})
    await socket.close()


HANDLERS = [
    orders,
    from_state,
    raise_revoked,
    raise_expired,
    raise_in_dependency,
    raise_other,
    app_401_bare,
    app_401_not_authorized,
    app_401_own,
    public,
    public_claims,
    health,
    optional,
    optional_claims,
    scopes_any,
    scopes_all,
    scopes_optional,
    feed,
]


def litestar_app(**options: Any) -> Any:
    """The test application (``Any``: Litestar types ASGI more narrowly than the servers)."""
    plugin = InvalidTokenPlugin(
        verifier=make_verifier(), realm=REALM, exclude_paths=["/health"], **options
    )
    return Litestar(HANDLERS, plugins=[plugin])


async def reference_orders(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def reference_app(**options: Any) -> InvalidTokenMiddleware:
    app = Starlette(routes=[Route("/orders", reference_orders)])
    return InvalidTokenMiddleware(app, verifier=make_verifier(), realm=REALM, **options)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The Litestar app and the reference, each under uvicorn."""
    with (
        run_uvicorn(litestar_app()) as base,
        run_uvicorn(reference_app()) as reference_base,
        client(base) as http,
        client(reference_base) as reference,
    ):
        yield http, reference


@pytest.fixture
def http(served: tuple[httpx.Client, httpx.Client]) -> httpx.Client:
    return served[0]


@pytest.fixture
def reference(served: tuple[httpx.Client, httpx.Client]) -> httpx.Client:
    return served[1]


def rendered(failure: AuthFailure, **options: Any) -> tuple[int, tuple[str | None, ...], bytes]:
    """What the one renderer sends for ``failure``."""
    answer = Guard(verifier=make_verifier(), realm=REALM, **options).renderer.render(failure)
    headers = dict(answer.headers)
    return answer.status, tuple(headers.get(name) for name in COMPARED), answer.body


# -- the middleware's own refusals -----------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer(EXPIRED),
        bearer(token(aud="https://other.example")),
        bearer("eyJhbGciOi.not-a-token"),
        {"Authorization": "Bearer"},
        {**bearer(EXPIRED), "Accept": "application/problem+json"},
        {**bearer(EXPIRED), "Origin": "https://app.example"},
    ],
    ids=["missing", "expired", "audience", "garbled", "empty", "problem-json", "cors"],
)
def test_refusal_is_the_plain_middlewares_bytes(
    http: httpx.Client, reference: httpx.Client, headers: dict[str, str]
) -> None:
    with capture_logs() as logs:
        answer = http.get("/orders", headers=headers)
    expected = reference.get("/orders", headers=headers)
    assert sent(expected) == sent(answer)
    assert expected.headers.get("access-control-expose-headers") == answer.headers.get(
        "access-control-expose-headers"
    )
    assert [json.loads(answer.content)["reason"]] == reasons(logs)


def test_cors_preflight_is_the_bare_204(http: httpx.Client, reference: httpx.Client) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    expected = reference.options("/orders", headers=preflight)
    answer = http.options("/orders", headers=preflight)
    assert (204, None, b"") == (expected.status_code, expected.headers.get("content-type"), b"")
    assert sent(expected) == sent(answer)


def test_valid_token_reaches_the_handler_with_its_claims(http: httpx.Client) -> None:
    good = bearer(token(sub="alice"))
    answers = [http.get(path, headers=good) for path in ("/orders", "/state")]
    assert [(200, {"sub": "alice"})] * 2 == [(a.status_code, a.json()) for a in answers]


def test_unknown_route_is_litestars_404_before_authentication(http: httpx.Client) -> None:
    """Litestar runs middleware per route: an unknown path never reaches the plugin."""
    answer = http.get("/nowhere")
    assert (404, None) == (answer.status_code, answer.headers.get("www-authenticate"))


# -- failures raised by the application ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/raise/revoked", AuthFailure(Reason.REVOKED)),
        ("/raise/expired", AuthFailure(Reason.EXPIRED)),
        ("/raise/dependency", AuthFailure(Reason.REVOKED)),
    ],
)
def test_raised_failure_is_answered_like_the_middlewares(
    http: httpx.Client, path: str, failure: AuthFailure
) -> None:
    with capture_logs() as logs:
        answer = http.get(path, headers=bearer(token()))
    assert rendered(failure) == sent(answer)
    assert [failure.reason.value] == reasons(logs)
    fingerprints = [e.get("token_fingerprint") for e in logs if e["event"] == "auth_rejected"]
    assert all(fingerprints)


def test_other_exceptions_stay_litestars(http: httpx.Client) -> None:
    answer = http.get("/raise/other", headers=bearer(token()))
    assert (500, None) == (answer.status_code, answer.headers.get("www-authenticate"))


# -- a 401 from the application --------------------------------------------------------


@pytest.mark.parametrize("path", ["/app-401/bare", "/app-401/not-authorized"])
def test_bare_401_gets_the_challenge(http: httpx.Client, path: str) -> None:
    answer = http.get(path, headers=bearer(token()))
    assert (401, [BARE]) == (answer.status_code, answer.headers.get_list("www-authenticate"))


def test_own_challenge_is_kept(http: httpx.Client) -> None:
    answer = http.get("/app-401/own", headers=bearer(token()))
    assert ['Basic realm="x"'] == answer.headers.get_list("www-authenticate")


# -- public and optional routes --------------------------------------------------------


@pytest.mark.parametrize("path", ["/public", "/health"])
def test_public_routes_never_read_the_token(http: httpx.Client, path: str) -> None:
    with capture_logs() as logs:
        answers = [http.get(path, headers=h) for h in ({}, bearer(EXPIRED), bearer("garbage"))]
    assert [200, 200, 200] == [a.status_code for a in answers]
    assert [] == reasons(logs)


def test_claims_on_a_public_route_are_a_programming_error(http: httpx.Client) -> None:
    """Not a false missing_token: the token was never read there."""
    answer = http.get("/public/claims", headers=bearer(token()))
    assert (500, None) == (answer.status_code, answer.headers.get("www-authenticate"))


def test_optional_route(http: httpx.Client, reference: httpx.Client) -> None:
    anonymous = http.get("/optional")
    named = http.get("/optional", headers=bearer(token(sub="alice")))
    expired = http.get("/optional", headers=bearer(EXPIRED))
    assert (200, {"sub": None}) == (anonymous.status_code, anonymous.json())
    assert (200, {"sub": "alice"}) == (named.status_code, named.json())
    assert sent(reference.get("/orders", headers=bearer(EXPIRED))) == sent(expired)


def test_token_claims_dependency_on_an_anonymous_optional_request(http: httpx.Client) -> None:
    answer = http.get("/optional/claims")
    assert rendered(AuthFailure(Reason.MISSING_TOKEN)) == sent(answer)


# -- scopes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "any_status", "all_status"),
    [
        ("orders:read", 200, 403),
        ("orders:admin", 200, 403),
        ("orders:read orders:write", 200, 200),
        ("profile", 403, 403),
        (None, 403, 403),
    ],
)
def test_scope_guards(
    http: httpx.Client, granted: str | None, any_status: int, all_status: int
) -> None:
    headers = bearer(token(scope=granted))
    any_answer = http.get("/scopes/any", headers=headers)
    all_answer = http.get("/scopes/all", headers=headers)
    assert (any_status, all_status) == (any_answer.status_code, all_answer.status_code)
    if any_status == 403:
        expected = AuthFailure(
            Reason.INSUFFICIENT_SCOPE,
            "The access token grants none of the scopes this request accepts; any one of"
            " them will do.",
            scopes=["orders:read", "orders:admin"],
        )
        assert rendered(expected) == sent(any_answer)
    if all_status == 403:
        expected = AuthFailure(Reason.INSUFFICIENT_SCOPE, scopes=["orders:read", "orders:write"])
        assert rendered(expected) == sent(all_answer)


def test_scope_guard_on_an_anonymous_request_is_the_bare_401(http: httpx.Client) -> None:
    answer = http.get("/scopes/optional")
    assert rendered(AuthFailure(Reason.MISSING_TOKEN)) == sent(answer)


def test_app_wide_scopes_join_the_routes_in_the_challenge() -> None:
    with run_uvicorn(litestar_app(scopes=["orders"])) as base, client(base) as http:
        answer = http.get("/scopes/all", headers=bearer(token(scope="orders orders:read")))
    expected = AuthFailure(
        Reason.INSUFFICIENT_SCOPE, scopes=["orders", "orders:read", "orders:write"]
    )
    assert rendered(expected, scopes=["orders"]) == sent(answer)


def test_query_token_response_is_private() -> None:
    """RFC 6750 §2.3: a response to a query-string token must not be cached publicly."""
    with run_uvicorn(litestar_app(allow_query_token=True)) as base, client(base) as http:
        answer = http.get(f"/orders?access_token={token(sub='alice')}")
    assert (200, "private") == (answer.status_code, answer.headers.get("cache-control"))


# -- the app's own body, websockets ----------------------------------------------------


def envelope(failure: AuthFailure) -> dict[str, object]:
    return {"error": {"code": failure.reason.value}}


def test_error_body_shapes_every_answer() -> None:
    with run_uvicorn(litestar_app(error_body=envelope)) as base, client(base) as http:
        answers = [
            http.get("/orders", headers=bearer(EXPIRED)),
            http.get("/raise/revoked", headers=bearer(token())),
            http.get("/scopes/all", headers=bearer(token())),
        ]
    expected = [
        (401, b'{"error":{"code":"expired"}}'),
        (401, b'{"error":{"code":"revoked"}}'),
        (403, b'{"error":{"code":"insufficient_scope"}}'),
    ]
    assert expected == [(a.status_code, a.content) for a in answers]
    headers = {(a.headers["content-type"], a.headers["cache-control"]) for a in answers}
    assert {("application/json", "no-store")} == headers
    assert [str(len(a.content)) for a in answers] == [a.headers["content-length"] for a in answers]


def test_websocket_handshake(served: tuple[httpx.Client, httpx.Client]) -> None:
    url = str(served[0].base_url).replace("http://", "ws://") + "/ws"
    with connect(url, additional_headers=bearer(token(sub="alice"))) as socket:
        assert {"sub": "alice"} == json.loads(socket.recv())
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=bearer(EXPIRED))
    response = refused.value.response
    assert (401, "expired") == (response.status_code, json.loads(response.body or b"")["reason"])


# -- misconfiguration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: InvalidTokenPlugin(realm=REALM), TypeError, "needs a verifier"),
        (lambda: InvalidTokenPlugin(verifier=make_verifier(), relm="x"), TypeError, "relm"),
        (
            lambda: InvalidTokenPlugin(guard=Guard(verifier=make_verifier()), realm="x"),
            TypeError,
            "guard= alone",
        ),
        (lambda: InvalidTokenPlugin(verifier=make_verifier(), realm='a"b'), ValueError, "realm"),
        (lambda: require_scopes("orders read"), ValueError, "not valid"),
        (require_any_scope, ValueError, "at least one"),
    ],
    ids=["no-verifier", "unknown-option", "guard-and-options", "bad-realm", "scope", "any-none"],
)
def test_misconfiguration_fails_at_start_up(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_scope_guard_without_the_plugin_is_a_clear_error() -> None:
    app: Any = Litestar([scopes_all])
    with capture_logs(), run_uvicorn(app) as base, client(base) as http:
        answer = http.get("/scopes/all", headers=bearer(token()))
    assert 500 == answer.status_code
