"""The Quart extension through uvicorn: the same bytes as the plain middleware, per view.

A Quart application protected by ``InvalidToken`` is compared, answer by answer
(status, challenge, content type, cache control, length, body), with a plain Starlette
application behind ``InvalidTokenMiddleware`` with the same settings: the hook's own
refusals, failures raised by a view, a bare 401 (returned or ``abort(401)``), exempt
and optional views and blueprints, any-of and all-of scope decorators on async and plain
views, form-body tokens, the app's error body and the websocket handshake.
Misconfiguration fails at start-up with a message that says what to do.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from quart import Blueprint, Quart, abort, request, websocket
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from invalidtoken_mw import AuthFailure, Guard, InvalidTokenMiddleware, Reason
from invalidtoken_mw.quart import (
    InvalidToken,
    current_claims,
    optional_claims,
    require_any_scope,
    require_scopes,
)
from support.servers import client, make_verifier, run_uvicorn
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx
    from starlette.requests import Request as StarletteRequest

REALM = "orders"
COMPARED = ("www-authenticate", "content-type", "cache-control", "content-length")
EXPIRED = mint(payload=claims(iat=1, exp=2))
BARE = f'Bearer realm="{REALM}"'
FORM = "application/x-www-form-urlencoded"


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


def quart_app(**options: Any) -> Any:  # noqa: C901 - one nested view per route
    """The test application (``Any``: Quart types ASGI more narrowly than the servers)."""
    app = Quart(__name__)
    auth = InvalidToken(app, verifier=make_verifier(), **options)
    public = Blueprint("public", __name__, url_prefix="/pub")
    maybe = Blueprint("maybe", __name__, url_prefix="/maybe")

    @app.route("/orders", methods=["GET", "HEAD", "POST"])
    async def orders() -> dict[str, Any]:
        form = await request.form
        return {"sub": current_claims()["sub"], "note": form.get("note")}

    @app.get("/raise/revoked")
    async def raise_revoked() -> str:
        raise AuthFailure(Reason.REVOKED)

    @app.get("/raise/expired")
    async def raise_expired() -> str:
        raise jwt.ExpiredSignatureError("expired")

    @app.get("/raise/other")
    async def raise_other() -> str:
        raise RuntimeError("not an authentication failure")

    @app.get("/app-401/bare")
    async def app_401_bare() -> tuple[str, int]:
        return "", 401

    @app.get("/app-401/abort")
    async def app_401_abort() -> str:
        abort(401)

    @app.get("/app-401/own")
    async def app_401_own() -> tuple[str, int, dict[str, str]]:
        return "", 401, {"WWW-Authenticate": 'Basic realm="x"'}

    @app.get("/health")
    @auth.exempt
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/claims")
    @auth.exempt
    async def health_claims() -> dict[str, Any]:
        return current_claims()

    @public.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/optional")
    @auth.optional
    async def optional() -> dict[str, Any]:
        found = optional_claims()
        return {"sub": None if found is None else found["sub"]}

    @maybe.get("/who")
    async def who() -> dict[str, Any]:
        found = optional_claims()
        return {"sub": None if found is None else found["sub"]}

    @app.get("/scopes/any")
    @require_any_scope("orders:read", "orders:admin")
    async def scopes_any() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/scopes/all")
    @require_scopes("orders:read", "orders:write")
    def scopes_all() -> dict[str, bool]:  # a plain view: Quart runs it in a thread
        return {"ok": True}

    @app.get("/scopes/optional")
    @auth.optional
    @require_scopes("orders:read")
    async def scopes_optional() -> dict[str, bool]:
        return {"ok": True}

    @app.websocket("/ws")
    async def feed() -> None:
        await websocket.accept()
        await websocket.send(json.dumps({"sub": current_claims()["sub"]}))

    @app.errorhandler(401)
    async def own_401(_error: Exception) -> tuple[dict[str, bool], int]:
        return {"own": True}, 401

    auth.exempt(public)
    auth.optional(maybe)
    app.register_blueprint(public)
    app.register_blueprint(maybe)
    return app


async def reference_orders(request: StarletteRequest) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def reference_app(**options: Any) -> InvalidTokenMiddleware:
    app = Starlette(routes=[Route("/orders", reference_orders, methods=["GET", "HEAD"])])
    return InvalidTokenMiddleware(app, verifier=make_verifier(), realm=REALM, **options)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The Quart app and the reference, each under uvicorn."""
    with (
        run_uvicorn(quart_app(realm=REALM, allow_body_token=True)) as base,
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


# -- the hook's own refusals -----------------------------------------------------------


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


def test_head_refusal_has_the_headers_and_no_body(
    http: httpx.Client, reference: httpx.Client
) -> None:
    assert sent(reference.head("/orders")) == sent(http.head("/orders"))
    assert b"" == http.head("/orders").content


def test_cors_preflight_is_the_bare_204(http: httpx.Client, reference: httpx.Client) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    expected = reference.options("/orders", headers=preflight)
    answer = http.options("/orders", headers=preflight)
    assert (204, None, b"") == (expected.status_code, expected.headers.get("content-type"), b"")
    assert sent(expected) == sent(answer)


def test_form_body_token_is_read_without_losing_the_form(http: httpx.Client) -> None:
    """The hook reads the body asynchronously; the view still gets the whole form."""
    answer = http.post(
        "/orders",
        content=f"access_token={token(sub='alice')}&note=hello",
        headers={"Content-Type": FORM},
    )
    assert (200, {"sub": "alice", "note": "hello"}) == (answer.status_code, answer.json())


# -- failures raised by the application ------------------------------------------------


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/raise/revoked", AuthFailure(Reason.REVOKED)),
        ("/raise/expired", AuthFailure(Reason.EXPIRED)),
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


def test_other_exceptions_stay_quarts(http: httpx.Client) -> None:
    with capture_logs():
        answer = http.get("/raise/other", headers=bearer(token()))
    assert (500, None) == (answer.status_code, answer.headers.get("www-authenticate"))


# -- a 401 from the application --------------------------------------------------------


@pytest.mark.parametrize("path", ["/app-401/bare", "/app-401/abort"])
def test_bare_401_gets_the_challenge(http: httpx.Client, path: str) -> None:
    answer = http.get(path, headers=bearer(token()))
    assert (401, [BARE]) == (answer.status_code, answer.headers.get_list("www-authenticate"))


def test_raised_failure_wins_over_the_apps_own_401_handler(http: httpx.Client) -> None:
    """The app's errorhandler(401) shapes abort(401), never an AuthFailure."""
    aborted = http.get("/app-401/abort", headers=bearer(token()))
    raised = http.get("/raise/revoked", headers=bearer(token()))
    assert {"own": True} == aborted.json()
    assert rendered(AuthFailure(Reason.REVOKED)) == sent(raised)


def test_own_challenge_is_kept(http: httpx.Client) -> None:
    answer = http.get("/app-401/own", headers=bearer(token()))
    assert ['Basic realm="x"'] == answer.headers.get_list("www-authenticate")


# -- exempt and optional views ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/pub/ping"])
def test_exempt_views_never_read_the_token(http: httpx.Client, path: str) -> None:
    with capture_logs() as logs:
        answers = [http.get(path, headers=h) for h in ({}, bearer(EXPIRED), bearer("garbage"))]
    assert [200, 200, 200] == [a.status_code for a in answers]
    assert [] == reasons(logs)


def test_claims_in_an_exempt_view_are_a_programming_error(http: httpx.Client) -> None:
    """Not a false missing_token: the token was never read there."""
    with capture_logs():
        answer = http.get("/health/claims", headers=bearer(token()))
    assert (500, None) == (answer.status_code, answer.headers.get("www-authenticate"))


@pytest.mark.parametrize("path", ["/optional", "/maybe/who"])
def test_optional_view(http: httpx.Client, reference: httpx.Client, path: str) -> None:
    anonymous = http.get(path)
    named = http.get(path, headers=bearer(token(sub="alice")))
    expired = http.get(path, headers=bearer(EXPIRED))
    assert (200, {"sub": None}) == (anonymous.status_code, anonymous.json())
    assert (200, {"sub": "alice"}) == (named.status_code, named.json())
    assert sent(reference.get("/orders", headers=bearer(EXPIRED))) == sent(expired)


def test_a_view_cannot_be_both_exempt_and_optional() -> None:
    auth = InvalidToken()

    async def view() -> str:
        return ""

    auth.exempt(view)
    with pytest.raises(ValueError, match="both exempt and optional"):
        auth.optional(view)


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
def test_scope_decorators(
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


def test_scope_decorator_on_an_anonymous_request_is_the_bare_401(http: httpx.Client) -> None:
    answer = http.get("/scopes/optional")
    assert rendered(AuthFailure(Reason.MISSING_TOKEN)) == sent(answer)


def test_app_wide_scopes_from_config_join_the_views_in_the_challenge() -> None:
    app = quart_app(realm=REALM)
    app.extensions["invalidtoken"].guard = Guard(
        verifier=make_verifier(), realm=REALM, scopes=["orders"]
    )
    with run_uvicorn(app) as base, client(base) as http:
        answer = http.get("/scopes/all", headers=bearer(token(scope="orders orders:read")))
    expected = AuthFailure(
        Reason.INSUFFICIENT_SCOPE, scopes=["orders", "orders:read", "orders:write"]
    )
    assert rendered(expected, scopes=["orders"]) == sent(answer)


# -- configuration, the app's own body, websockets -------------------------------------


def test_query_token_response_is_private() -> None:
    """RFC 6750 §2.3: a response to a query-string token must not be cached publicly."""
    app = quart_app(realm=REALM, allow_query_token=True)
    with run_uvicorn(app) as base, client(base) as http:
        answer = http.get(f"/orders?access_token={token(sub='alice')}")
    assert (200, "private") == (answer.status_code, answer.headers.get("cache-control"))


def test_settings_come_from_config() -> None:
    app = Quart(__name__)
    app.config["INVALIDTOKEN_VERIFIER"] = make_verifier()
    app.config["INVALIDTOKEN_REALM"] = "from-config"
    InvalidToken(app)

    @app.get("/orders")
    async def orders() -> dict[str, Any]:
        return current_claims()

    served: Any = app
    with run_uvicorn(served) as base, client(base) as http:
        answer = http.get("/orders")
    assert 'Bearer realm="from-config"' == answer.headers["www-authenticate"]


def envelope(failure: AuthFailure) -> dict[str, object]:
    return {"error": {"code": failure.reason.value}}


def test_error_body_shapes_every_answer() -> None:
    with run_uvicorn(quart_app(realm=REALM, error_body=envelope)) as base, client(base) as http:
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
    expected = (401, 'Bearer realm="orders", error="invalid_token"', "expired")
    assert expected == (
        response.status_code,
        response.headers["www-authenticate"].split(", error_description")[0],
        json.loads(response.body or b"")["reason"],
    )


# -- misconfiguration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: InvalidToken(Quart(__name__), realm=REALM), ValueError, "needs a verifier"),
        (lambda: InvalidToken(verifier=make_verifier(), relm="x"), TypeError, "relm"),
        (
            lambda: InvalidToken(Quart(__name__), verifier=make_verifier(), realm='a"b'),
            ValueError,
            "realm",
        ),
        (lambda: require_scopes("orders read"), ValueError, "not valid"),
        (require_any_scope, ValueError, "at least one"),
    ],
    ids=["no-verifier", "unknown-option", "bad-realm", "scope", "any-none"],
)
def test_misconfiguration_fails_at_start_up(
    make: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()
