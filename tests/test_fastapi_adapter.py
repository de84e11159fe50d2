"""The FastAPI helpers: install(), TokenClaims, require_scopes, under a real uvicorn server.

Covers the public documentation routes, the OpenAPI security scheme and scopes, the
``HTTPException(401)`` and ``HTTPBearer`` normalisation, failures raised by endpoints and
dependencies, the websocket route, and finding the token, expiry, missing scopes and
the output (body, CORS, log) through ``install()``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.fastapi import TokenClaims, install, require_scopes
from support.expected import (
    CHARACTERS_DETAIL,
    EMPTY_DETAIL,
    EXPIRED_CHALLENGE,
    EXPIRED_DETAIL,
    OVERSIZED_DETAIL,
    SEVERAL_DETAIL,
    WRAPPED_DETAIL,
    invalid_request,
    invalid_token,
    scope_challenge,
)
from support.servers import client, make_verifier, run_uvicorn
from support.tokens import claims, mint, tamper_signature

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping


NOW = int(time.time())
FORM = "application/x-www-form-urlencoded"
BARE = 'Bearer realm="orders"'
READ_CLAIMS = claims(scope="orders:read")
READ = mint(payload=READ_CLAIMS)
READ_WRITE_SCP = mint(payload=claims(scp=["orders:read", "orders:write"]))
NO_SCOPE = mint()
EXPIRED = mint(payload=claims(scope="orders:read", iat=NOW - 7200, exp=NOW - 3600))
BAD_SIGNATURE = tamper_signature(READ)


def bearer(token: str) -> dict[str, str]:
    """The headers presenting ``token`` the usual way."""
    return {"authorization": f"Bearer {token}"}


def outcome(response: httpx.Response) -> tuple[int, str | None, str | None]:
    """Status, challenge and the body's ``reason`` (``None`` when the body has none)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    reason = body.get("reason") if isinstance(body, dict) else None
    return response.status_code, response.headers.get("www-authenticate"), reason


def rejected(logs: list[MutableMapping[str, Any]]) -> list[str]:
    """The reasons of the ``auth_rejected`` events among captured log entries."""
    return [entry["reason"] for entry in logs if entry["event"] == "auth_rejected"]


def fail_with_auth_failure() -> None:
    """A dependency (or endpoint body) raising the library's own failure."""
    raise AuthFailure(Reason.EXPIRED)


def fail_with_pyjwt_error() -> None:
    """A dependency (or endpoint body) whose own token decoding raised a pyjwt error."""
    raise jwt.ExpiredSignatureError("Signature has expired")


own_bearer = HTTPBearer(scheme_name="legacyBearer")


def add_routes(app: FastAPI) -> None:
    """The scoped routes, the claims route and the websocket route."""

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def list_orders(claims: TokenClaims) -> dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.post("/orders", dependencies=[Depends(require_scopes("orders:write"))], status_code=201)
    async def create_order(claims: TokenClaims) -> dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/me")
    def me(claims: TokenClaims) -> dict[str, Any]:
        return claims

    @app.get("/public/claims")
    def public_claims(claims: TokenClaims) -> dict[str, Any]:
        return claims

    @app.websocket("/ws")
    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"sub": websocket.scope["state"]["token_claims"]["sub"]})
        await websocket.close()


def add_failing_routes(app: FastAPI) -> None:
    """Endpoints and dependencies that fail, and endpoints raising HTTPException."""

    @app.get("/raise/auth-failure")
    def raise_auth_failure() -> None:
        fail_with_auth_failure()

    @app.get("/raise/expired")
    async def raise_expired() -> None:
        fail_with_pyjwt_error()

    @app.get("/depends/auth-failure", dependencies=[Depends(fail_with_auth_failure)])
    def depends_auth_failure() -> None: ...

    @app.get("/depends/expired", dependencies=[Depends(fail_with_pyjwt_error)])
    async def depends_expired() -> None: ...

    @app.get("/http-401")
    def http_401() -> None:
        raise HTTPException(401, "Sign in first")

    @app.get("/http-401-own")
    def http_401_own() -> None:
        raise HTTPException(401, "Legacy", headers={"WWW-Authenticate": 'Basic realm="legacy"'})

    @app.get("/http-404")
    def http_404() -> None:
        raise HTTPException(404, "No such order")

    @app.get("/legacy")
    def legacy(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(own_bearer)],
    ) -> dict[str, str]:
        return {"scheme": credentials.scheme}


def create_app(**options: Any) -> FastAPI:
    """The test application protected by ``install()``; ``/legacy`` and ``/public`` are public."""
    app = FastAPI()
    install(
        app,
        **{
            "verifier": make_verifier(),
            "realm": "orders",
            "exclude_paths": ["/legacy", "/public"],
            **options,
        },
    )
    add_routes(app)
    add_failing_routes(app)
    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The usual configuration under uvicorn."""
    with run_uvicorn(create_app()) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    """A client of the usual configuration."""
    with client(base_url) as http_client:
        yield http_client


@pytest.fixture(scope="module")
def relaxed() -> Iterator[httpx.Client]:
    """A client of an app installed with the query and form-body token methods on."""
    app = create_app(allow_query_token=True, allow_body_token=True)
    with run_uvicorn(app) as url, client(url) as http_client:
        yield http_client


# -- documentation ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"])
def test_documentation_stays_public(http: httpx.Client, path: str) -> None:
    """install() keeps /docs, /redoc and /openapi.json reachable without a token."""
    with capture_logs() as logs:
        response = http.get(path)
    assert (200, None, []) == (
        response.status_code,
        response.headers.get("www-authenticate"),
        rejected(logs),
    )


def test_documentation_protected_when_asked() -> None:
    """install(public_docs=False) protects the documentation like any other route."""
    app = create_app(public_docs=False)
    with run_uvicorn(app) as url, client(url) as http_client:
        response = http_client.get("/openapi.json")
    assert (401, BARE, "missing_token") == outcome(response)


def test_openapi_declares_the_bearer_scheme(http: httpx.Client) -> None:
    """The schema's securitySchemes has the bearer scheme: type http, scheme bearer, JWT."""
    schemes = http.get("/openapi.json").json()["components"]["securitySchemes"]
    expected = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A bearer access token (RFC 6750).",
    }
    assert expected == schemes["bearerAuth"]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        pytest.param("get", "/orders", [{"bearerAuth": ["orders:read"]}], id="read"),
        pytest.param("post", "/orders", [{"bearerAuth": ["orders:write"]}], id="write"),
        pytest.param("get", "/me", [{"bearerAuth": []}], id="claims-only"),
        pytest.param("get", "/http-401", [{"bearerAuth": []}], id="middleware-only"),
    ],
)
def test_openapi_lists_each_routes_scopes(
    http: httpx.Client, method: str, path: str, expected: list[dict[str, list[str]]] | None
) -> None:
    """Each operation's security requirement names the bearer scheme and the route's scopes."""
    operation = http.get("/openapi.json").json()["paths"][path][method]
    assert expected == operation.get("security")


# -- claims and scopes -----------------------------------------------------------------


def test_token_claims_gives_the_verified_claims(http: httpx.Client) -> None:
    """An endpoint parameter typed TokenClaims receives the verified claims."""
    assert (200, READ_CLAIMS) == (
        http.get("/me", headers=bearer(READ)).status_code,
        http.get("/me", headers=bearer(READ)).json(),
    )


@pytest.mark.parametrize("credentials", [None, READ], ids=["no-token", "valid-token"])
def test_token_claims_on_an_excluded_path_is_a_mistake_that_names_optional(
    credentials: str | None,
) -> None:
    """TokenClaims on an excluded path: the token is never read there, with or without one.

    Answering missing_token was false when a valid token was sent; the dependency now
    says what to use instead (a configuration mistake, seen on the first request).
    """
    headers = {} if credentials is None else bearer(credentials)

    async def call() -> None:
        transport = httpx.ASGITransport(app=create_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await c.get("/public/claims", headers=headers)

    with pytest.raises(RuntimeError, match="Use OptionalTokenClaims"):
        asyncio.run(call())


@pytest.mark.parametrize(
    ("method", "token", "expected"),
    [
        pytest.param("GET", READ, (200, None, None), id="read-granted"),
        pytest.param("GET", READ_WRITE_SCP, (200, None, None), id="scp-list-granted"),
        pytest.param(
            "GET",
            NO_SCOPE,
            (403, scope_challenge("orders:read"), "insufficient_scope"),
            id="read-missing",
        ),
        pytest.param(
            "POST",
            READ,
            (403, scope_challenge("orders:write"), "insufficient_scope"),
            id="write-missing",
        ),
        pytest.param("POST", READ_WRITE_SCP, (201, None, None), id="write-granted-by-scp"),
    ],
)
def test_require_scopes(
    http: httpx.Client, method: str, token: str, expected: tuple[int, str | None, str | None]
) -> None:
    """require_scopes passes a token granting the scope (scope or scp), 403s one lacking it."""
    assert expected == outcome(http.request(method, "/orders", headers=bearer(token)))


def test_require_scopes_refuses_an_invalid_scope() -> None:
    """A scope that is not an RFC 6749 scope-token fails when the dependency is made."""
    with pytest.raises(ValueError, match=r"RFC 6749"):
        require_scopes('orders"read')


# -- HTTPException and HTTPBearer ------------------------------------------------------


def test_http_exception_401_gets_the_realm_challenge(http: httpx.Client) -> None:
    """HTTPException(401) from app code gets Bearer realm="orders"; its detail is kept."""
    response = http.get("/http-401", headers=bearer(READ))
    expected = (401, [BARE], {"detail": "Sign in first"})
    assert expected == (
        response.status_code,
        response.headers.get_list("www-authenticate"),
        response.json(),
    )


def test_http_exception_401_challenge_exposed_under_cors(http: httpx.Client) -> None:
    """Under CORS, the challenge added to an app's HTTPException(401) is exposed."""
    response = http.get("/http-401", headers={**bearer(READ), "origin": "https://app.example"})
    expected = (401, BARE, "www-authenticate")
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.headers.get("access-control-expose-headers"),
    )


def test_http_exception_401_with_own_challenge_is_kept(http: httpx.Client) -> None:
    """An HTTPException(401) that names its own challenge with a realm keeps it."""
    response = http.get("/http-401-own", headers=bearer(READ))
    assert (401, ['Basic realm="legacy"']) == (
        response.status_code,
        response.headers.get_list("www-authenticate"),
    )


def test_other_http_exceptions_untouched(http: httpx.Client) -> None:
    """HTTPException(404) is answered as FastAPI does, without a challenge."""
    response = http.get("/http-404", headers=bearer(READ))
    expected = (404, None, {"detail": "No such order"})
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.json(),
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-credentials"),
        pytest.param({"authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
    ],
)
def test_fastapi_http_bearer_failure_normalised(
    http: httpx.Client, headers: dict[str, str]
) -> None:
    """FastAPI's own HTTPBearer(auto_error=True) 401 gets the realm challenge, not bare Bearer."""
    response = http.get("/legacy", headers=headers)
    assert (401, [BARE]) == (response.status_code, response.headers.get_list("www-authenticate"))


def test_fastapi_http_bearer_success(http: httpx.Client) -> None:
    """A bearer token satisfies the app's own HTTPBearer on a public route."""
    response = http.get("/legacy", headers=bearer(READ))
    assert (200, {"scheme": "Bearer"}) == (response.status_code, response.json())


# -- failures raised by the application ----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/raise/auth-failure",
        "/raise/expired",
        "/depends/auth-failure",
        "/depends/expired",
    ],
)
def test_raised_failures_rendered_like_the_middleware(http: httpx.Client, path: str) -> None:
    """AuthFailure and pyjwt errors from endpoints or dependencies get the middleware's bytes."""
    refused = http.get("/orders", headers=bearer(EXPIRED))
    with capture_logs() as logs:
        raised = http.get(path, headers=bearer(READ))
    expected = (
        401,
        EXPIRED_CHALLENGE,
        refused.content,
        refused.headers.get("content-type"),
        "no-store",
        ["expired"],
    )
    assert expected == (
        raised.status_code,
        raised.headers.get("www-authenticate"),
        raised.content,
        raised.headers.get("content-type"),
        raised.headers.get("cache-control"),
        rejected(logs),
    )


# -- websocket -------------------------------------------------------------------------


def test_websocket_with_valid_token(base_url: str) -> None:
    """A valid token opens the websocket and the endpoint sees its claims."""
    url = base_url.replace("http://", "ws://") + "/ws"
    with connect(url, additional_headers=bearer(READ)) as websocket:
        message = websocket.recv(timeout=5)
    assert '{"sub":"user-1"}' == message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, (401, BARE), id="missing"),
        pytest.param(bearer(EXPIRED), (401, EXPIRED_CHALLENGE), id="expired"),
    ],
)
def test_websocket_denied_before_accept(
    base_url: str, headers: dict[str, str], expected: tuple[int, str]
) -> None:
    """A bad token is refused during the handshake with the HTTP status and challenge."""
    url = base_url.replace("http://", "ws://") + "/ws"
    with capture_logs() as logs, pytest.raises(InvalidStatus) as caught:
        connect(url, additional_headers=headers)
    response = caught.value.response
    assert (*expected, 1) == (
        response.status_code,
        response.headers["www-authenticate"],
        len(rejected(logs)),
    )


# -- finding the token -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], (401, BARE, "missing_token"), id="no-credentials"),
        pytest.param(
            [("authorization", "Basic dXNlcjpwYXNz")],
            (401, BARE, "missing_token"),
            id="basic",
        ),
        pytest.param([("authorization", f"bearer {READ}")], (200, None, None), id="lower"),
        pytest.param([("authorization", f"BEARER {READ}")], (200, None, None), id="upper"),
        pytest.param(
            [("authorization", f"Bearer   {READ}")], (200, None, None), id="several-spaces"
        ),
        pytest.param(
            [("authorization", "Bearer")],
            (400, invalid_request(EMPTY_DETAIL), "invalid_request"),
            id="bearer",
        ),
        pytest.param(
            [("authorization", "Bearer not$a*token!")],
            (401, invalid_token(CHARACTERS_DETAIL), "malformed_token"),
            id="characters",
        ),
        pytest.param(
            [("authorization", f"Bearer {READ[:20]} {READ[20:]}")],
            (401, invalid_token(WRAPPED_DETAIL), "malformed_token"),
            id="space-inside",
        ),
        pytest.param(
            [("authorization", f"Bearer {READ}"), ("authorization", f"Bearer {NO_SCOPE}")],
            (400, invalid_request(SEVERAL_DETAIL), "invalid_request"),
            id="two-headers",
        ),
        pytest.param(
            [("authorization", "Bearer " + "A" * 9000)],
            (401, invalid_token(OVERSIZED_DETAIL), "malformed_token"),
            id="oversized",
        ),
        pytest.param(
            [("authorization", f"Bearer {EXPIRED}")],
            (401, EXPIRED_CHALLENGE, "expired"),
            id="expired",
        ),
    ],
)
def test_finding_and_verifying_the_token(
    http: httpx.Client,
    headers: list[tuple[str, str]],
    expected: tuple[int, str | None, str | None],
) -> None:
    """Each way of presenting (or not presenting) a token gets its status, challenge and reason."""
    assert expected == outcome(http.get("/orders", headers=headers))


def test_expired_within_leeway_accepted(http: httpx.Client) -> None:
    """A token expired 30 s ago, within the 60 s leeway, is accepted."""
    token = mint(payload=claims(scope="orders:read", exp=int(time.time()) - 30))
    assert (200, None, None) == outcome(http.get("/orders", headers=bearer(token)))


def test_query_token_ignored_by_default(http: httpx.Client) -> None:
    """With the query method off (the default), ?access_token= is ignored: a bare 401."""
    response = http.get("/orders", params={"access_token": READ})
    assert (401, BARE, "missing_token") == outcome(response)


def test_query_token_accepted_and_private(relaxed: httpx.Client) -> None:
    """install() passes options through: a query token is accepted and marked private."""
    response = relaxed.get("/orders", params={"access_token": READ})
    expected = (200, "private", {"sub": "user-1"})
    assert expected == (
        response.status_code,
        response.headers.get("cache-control"),
        response.json(),
    )


def test_form_body_token_accepted(relaxed: httpx.Client) -> None:
    """With the body method on, a form-body token on POST is accepted."""
    response = relaxed.post(
        "/orders", content=f"access_token={READ_WRITE_SCP}", headers={"content-type": FORM}
    )
    assert (201, {"sub": "user-1"}) == (response.status_code, response.json())


def test_header_and_query_token(relaxed: httpx.Client) -> None:
    """A token in the header and one in the query (query method on) is a 400."""
    response = relaxed.get("/orders", params={"access_token": READ}, headers=bearer(READ))
    assert (400, invalid_request(SEVERAL_DETAIL), "invalid_request") == outcome(response)


# -- output --------------------------------------------------------------------------


def test_body_members(http: httpx.Client) -> None:
    """The body carries every problem and OAuth member; status equals the HTTP status."""
    response = http.get("/orders", headers=bearer(EXPIRED))
    expected = {
        "type": "tag:invalidtoken-mw,2026:reason:expired",
        "title": "Access token expired",
        "status": 401,
        "detail": EXPIRED_DETAIL,
        "error": "invalid_token",
        "error_description": EXPIRED_DETAIL,
        "reason": "expired",
    }
    assert (expected, "application/json", "no-store") == (
        response.json(),
        response.headers.get("content-type"),
        response.headers.get("cache-control"),
    )


def test_problem_json_when_asked(http: httpx.Client) -> None:
    """Accept: application/problem+json gets that media type."""
    headers = {**bearer(EXPIRED), "accept": "application/problem+json"}
    response = http.get("/orders", headers=headers)
    assert (401, "application/problem+json") == (
        response.status_code,
        response.headers.get("content-type"),
    )


def test_no_body_on_head(http: httpx.Client) -> None:
    """A refused HEAD request gets the status and challenge but no body."""
    response = http.head("/orders", headers=bearer(EXPIRED))
    assert (401, EXPIRED_CHALLENGE, b"") == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.content,
    )


def test_challenge_exposed_under_cors(http: httpx.Client) -> None:
    """With an Origin header, a refusal lists WWW-Authenticate in Access-Control-Expose-Headers."""
    response = http.get("/orders", headers={"origin": "https://app.example"})
    assert (401, "www-authenticate") == (
        response.status_code,
        response.headers.get("access-control-expose-headers"),
    )


@pytest.mark.parametrize(
    ("authorization", "token"),
    [
        pytest.param(f'Bearer "{READ}"', READ, id="quoted"),
        pytest.param(f"Bearer {EXPIRED}", EXPIRED, id="expired"),
        pytest.param(f"Bearer {BAD_SIGNATURE}", BAD_SIGNATURE, id="bad-signature"),
        pytest.param(f"Bearer {NO_SCOPE}", NO_SCOPE, id="insufficient-scope"),
        pytest.param(f"Bearer {READ.rsplit('.', 1)[0]}", READ.rsplit(".", 1)[0], id="truncated"),
    ],
)
def test_token_never_echoed(http: httpx.Client, authorization: str, token: str) -> None:
    """Neither the token nor any long segment of it appears in a header, the body or the log."""
    with capture_logs() as logs:
        response = http.get("/orders", headers={"authorization": authorization})
    fragments = {token} | {part for part in token.split(".") if len(part) >= 16}
    written = [*(f"{k}: {v}" for k, v in response.headers.multi_items()), response.text]
    written.append(repr(logs))
    leaks = [(f[:16], text[:40]) for f in fragments for text in written if f in text]
    assert response.status_code >= 400
    assert [] == leaks


@pytest.mark.parametrize(
    ("method", "path", "headers", "reason"),
    [
        pytest.param("GET", "/orders", {}, "missing_token", id="missing"),
        pytest.param("GET", "/orders", bearer(BAD_SIGNATURE), "bad_signature", id="signature"),
        pytest.param("POST", "/orders", bearer(READ), "insufficient_scope", id="scope"),
        pytest.param("GET", "/raise/expired", bearer(READ), "expired", id="endpoint-pyjwt"),
        pytest.param("GET", "/depends/auth-failure", bearer(READ), "expired", id="dependency"),
    ],
)
def test_one_event_per_rejection(
    http: httpx.Client, method: str, path: str, headers: dict[str, str], reason: str
) -> None:
    """Every refused request logs exactly one auth_rejected event, carrying its reason."""
    with capture_logs() as logs:
        http.request(method, path, headers=headers)
    assert [reason] == rejected(logs)


@pytest.mark.parametrize("path", ["/orders", "/http-401", "/legacy"])
def test_no_event_without_rejection(http: httpx.Client, path: str) -> None:
    """Accepted requests and the app's own 401s log no auth_rejected event."""
    with capture_logs() as logs:
        http.get(path, headers=bearer(READ) if path != "/legacy" else {})
    assert [] == rejected(logs)


def test_install_keeps_custom_docs_urls_public() -> None:
    """Docs served at custom URLs stay public, and the default URLs are then protected."""
    app = FastAPI(docs_url="/api-docs", redoc_url=None, openapi_url="/spec.json")
    install(app, verifier=make_verifier(), realm="orders")

    async def statuses_of(*paths: str) -> tuple[int, ...]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return tuple([(await http.get(path)).status_code for path in paths])

    statuses = asyncio.run(statuses_of("/api-docs", "/spec.json", "/docs"))
    assert (200, 200, 401) == statuses
