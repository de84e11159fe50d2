"""install() as a FastAPI app sees it, under uvicorn: the app's own exception handlers,
optional routes, any-of scopes, the OpenAPI schema and testing an app with FakeIssuer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from invalidtoken_mw.fastapi import (
    AUTH_ERROR_SCHEMA,
    OptionalTokenClaims,
    TokenClaims,
    install,
    require_any_scope,
    require_scopes,
    token_claims,
)
from invalidtoken_mw.testing import FakeIssuer
from support.expected import EXPIRED_CHALLENGE
from support.servers import client, make_verifier, run_uvicorn
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

BARE = 'Bearer realm="orders"'
NOW = int(time.time())
READ = mint(payload=claims(scope="orders:read"))
ADMIN = mint(payload=claims(scope="orders:admin"))
NO_SCOPE = mint()
EXPIRED = mint(payload=claims(iat=NOW - 7200, exp=NOW - 3600))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def envelope(_request: Request, exc: Exception) -> JSONResponse:
    """The app's own HTTPException envelope."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"error": {"code": exc.status_code, "message": exc.detail}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def create_app(**options: Any) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(StarletteHTTPException, envelope)  # before install()
    install(app, verifier=make_verifier(), realm="orders", exclude_paths=["/health"], **options)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/items/mine")
    def mine(claims: TokenClaims) -> dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/items/{name}")
    def item(name: str, claims: OptionalTokenClaims) -> dict[str, Any]:
        return {"name": name, "sub": claims["sub"] if claims else None}

    @app.get("/http-401")
    def http_401() -> None:
        raise HTTPException(401, "Sign in first")

    @app.get("/middleware-only")
    def middleware_only() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/any", dependencies=[Depends(require_any_scope("orders:read", "orders:admin"))])
    def any_scope() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/all", dependencies=[Depends(require_scopes("orders:read", "orders:write"))])
    def all_scopes() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with run_uvicorn(create_app()) as url, client(url) as http_client:
        yield http_client


def answer(response: httpx.Response) -> tuple[int, str | None, Any]:
    return response.status_code, response.headers.get("www-authenticate"), response.json()


# -- the app's own HTTPException handler ---------------------------------------------


def test_apps_own_404_envelope_survives(http: httpx.Client) -> None:
    """An HTTPException handler registered before install() still answers (a 404 here)."""
    response = http.get("/no-such-route", headers=bearer(READ))
    assert (404, None, {"error": {"code": 404, "message": "Not Found"}}) == answer(response)


def test_apps_401_gets_the_challenge_then_the_apps_envelope(http: httpx.Client) -> None:
    """A 401 without a challenge gets ours, then goes to the app's own handler."""
    response = http.get("/http-401", headers=bearer(READ))
    expected = (401, BARE, {"error": {"code": 401, "message": "Sign in first"}})
    assert expected == answer(response)


def test_handler_registered_after_install_wins() -> None:
    """A handler registered after install() replaces the chain; the middleware still adds
    the challenge to its bare 401."""
    app = FastAPI()
    install(app, verifier=make_verifier(), realm="orders")
    app.add_exception_handler(StarletteHTTPException, envelope)

    @app.get("/http-401")
    def http_401() -> None:
        raise HTTPException(401, "Sign in first")

    with run_uvicorn(app) as url, client(url) as http_client:
        response = http_client.get("/http-401", headers=bearer(READ))
    assert (401, BARE, {"error": {"code": 401, "message": "Sign in first"}}) == answer(response)


def test_sync_handler_chained() -> None:
    """A plain (sync) handler of the app is chained too, in the thread pool."""
    app = FastAPI()

    def plain(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse({"plain": exc.status_code}, exc.status_code, exc.headers)

    app.add_exception_handler(StarletteHTTPException, plain)
    install(app, verifier=make_verifier(), realm="orders")
    with run_uvicorn(app) as url, client(url) as http_client:
        response = http_client.get("/nowhere", headers=bearer(READ))
    assert (404, None, {"plain": 404}) == answer(response)


def test_install_twice_refused() -> None:
    app = FastAPI()
    install(app, verifier=make_verifier())
    with pytest.raises(RuntimeError, match="already"):
        install(app, verifier=make_verifier())


# -- optional routes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        pytest.param("/items/tea", {}, (200, None, {"name": "tea", "sub": None}), id="anonymous"),
        pytest.param(
            "/items/tea", bearer(READ), (200, None, {"name": "tea", "sub": "user-1"}), id="token"
        ),
        pytest.param(
            "/items/tea", bearer(EXPIRED), (401, EXPIRED_CHALLENGE, "expired"), id="bad-token"
        ),
        # /items/mine comes first in the router: it is not optional although
        # /items/{name} would match it too.
        pytest.param("/items/mine", {}, (401, BARE, "missing_token"), id="earlier-route"),
        pytest.param("/middleware-only", {}, (401, BARE, "missing_token"), id="other-route"),
    ],
)
def test_optional_route(
    http: httpx.Client, path: str, headers: dict[str, str], expected: tuple[int, Any, Any]
) -> None:
    """OptionalTokenClaims: no token is anonymous (None), a token is verified, a bad one
    refused; the other routes still need one."""
    response = http.get(path, headers=headers)
    status, challenge, body = answer(response)
    assert expected == (status, challenge, body.get("reason", body) if status >= 400 else body)


def test_no_optional_routes_costs_nothing() -> None:
    """Without optional routes, the first request turns the route matching off for good."""
    app = FastAPI()
    install(app, verifier=make_verifier())

    @app.get("/me")
    def me(claims: TokenClaims) -> dict[str, Any]:
        return claims

    middleware: list[Any] = []

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        await app(scope, receive, send)
        if app.middleware_stack is not None and not middleware:
            layer: Any = app.middleware_stack
            while not hasattr(layer, "optional_route"):
                layer = layer.app
            middleware.append(layer)

    with run_uvicorn(outer) as url, client(url) as http_client:
        status = http_client.get("/me", headers=bearer(READ)).status_code
    assert (200, None) == (status, middleware[0].optional_route)


# -- scopes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "token", "expected"),
    [
        pytest.param("/any", READ, (200, None), id="any-first"),
        pytest.param("/any", ADMIN, (200, None), id="any-second"),
        pytest.param("/any", NO_SCOPE, (403, "orders:read orders:admin"), id="any-none"),
        pytest.param("/all", READ, (403, "orders:read orders:write"), id="all-one-missing"),
    ],
)
def test_scopes_any_and_all(
    http: httpx.Client, path: str, token: str, expected: tuple[int, str | None]
) -> None:
    """require_any_scope needs one of its scopes, require_scopes all; the challenge names them."""
    response = http.get(path, headers=bearer(token))
    challenge = response.headers.get("www-authenticate") or ""
    scope = challenge.partition('scope="')[2].rstrip('"') or None
    assert expected == (response.status_code, scope)


def test_require_any_scope_needs_a_scope() -> None:
    with pytest.raises(ValueError, match="at least one"):
        require_any_scope()


# -- OpenAPI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(http: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = http.get("/openapi.json").json()
    return document


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/middleware-only", [{"bearerAuth": []}], id="middleware-only"),
        pytest.param("/items/{name}", [{"bearerAuth": []}, {}], id="optional"),
        pytest.param(
            "/any",
            [{"bearerAuth": ["orders:read"]}, {"bearerAuth": ["orders:admin"]}],
            id="any-of",
        ),
        pytest.param("/all", [{"bearerAuth": ["orders:read", "orders:write"]}], id="all-of"),
        pytest.param("/health", None, id="excluded"),
    ],
)
def test_openapi_security(schema: dict[str, Any], path: str, expected: Any) -> None:
    """Every protected operation is secured; optional ones also allow {}; public ones opt out."""
    assert expected == schema["paths"][path]["get"].get("security")


def test_openapi_documents_the_real_refusal(http: httpx.Client, schema: dict[str, Any]) -> None:
    """401 and 403 point at AuthError, whose members are those of an actual refusal."""
    operation = schema["paths"]["/any"]["get"]
    refs = {
        status: operation["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        for status in ("401", "403")
    }
    body = http.get("/any", headers=bearer(NO_SCOPE)).json()
    component = schema["components"]["schemas"]["AuthError"]
    assert (
        {"401": "#/components/schemas/AuthError", "403": "#/components/schemas/AuthError"},
        AUTH_ERROR_SCHEMA,
        sorted(component["properties"]),
        True,
    ) == (
        refs,
        component,
        sorted(body),
        body["reason"] in component["properties"]["reason"]["enum"],
    )


def test_openapi_oauth2_pkce_sign_in() -> None:
    """With the issuer's endpoints, the schema offers an authorization-code scheme and /docs
    initialises Swagger UI's OAuth with PKCE."""
    app = create_app(
        oauth2_authorization_url="https://id.example.test/authorize",
        oauth2_token_url="https://id.example.test/token",
        swagger_client_id="orders-docs",
    )
    with run_uvicorn(app) as url, client(url) as http_client:
        document = http_client.get("/openapi.json").json()
        page = http_client.get("/docs").text
    scheme = document["components"]["securitySchemes"]["oauth2"]
    flow = scheme["flows"]["authorizationCode"]
    security = document["paths"]["/all"]["get"]["security"]
    assert (
        "https://id.example.test/authorize",
        "https://id.example.test/token",
        {"orders:read": "", "orders:write": "", "orders:admin": ""},
        [
            {"bearerAuth": ["orders:read", "orders:write"]},
            {"oauth2": ["orders:read", "orders:write"]},
        ],
        True,
        True,
    ) == (
        flow["authorizationUrl"],
        flow["tokenUrl"],
        flow["scopes"],
        security,
        '"usePkceWithAuthorizationCodeGrant": true' in page,
        '"clientId": "orders-docs"' in page,
    )


def test_oauth2_needs_both_urls() -> None:
    with pytest.raises(ValueError, match="both"):
        install(FastAPI(), verifier=make_verifier(), oauth2_token_url="https://id.test/token")


# -- testing your own app (docs/fastapi.md) ------------------------------------------


def test_fake_issuer_tokens_authenticate_in_your_own_tests() -> None:
    """The documented way: build the app with FakeIssuer's verifier, send its tokens."""
    issuer = FakeIssuer()
    app = FastAPI()
    install(app, verifier=issuer.verifier(), realm="orders")

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def orders(claims: TokenClaims) -> dict[str, Any]:
        return {"sub": claims["sub"]}

    token = issuer.token(sub="alice", scope="orders:read")
    with run_uvicorn(app) as url, client(url) as http_client:
        response = http_client.get("/orders", headers=bearer(token))
    assert (200, {"sub": "alice"}) == (response.status_code, response.json())


def test_dependency_overrides_alone_cannot_stand_in() -> None:
    """dependency_overrides replaces TokenClaims, but the middleware answers first."""
    app = FastAPI()
    install(app, verifier=make_verifier(), realm="orders")

    @app.get("/me")
    def me(claims: TokenClaims) -> dict[str, Any]:
        return claims

    app.dependency_overrides[token_claims] = lambda: {"sub": "alice"}
    with run_uvicorn(app) as url, client(url) as http_client:
        response = http_client.get("/me")
    assert (401, BARE) == (response.status_code, response.headers.get("www-authenticate"))
