"""Every adapter answers and logs the same, through real servers.

One table of requests (a valid token, each kind of refusal, a failure the application
raises, a bare 401 from the application, a CORS preflight, a public path) goes to the
same small application served five ways:

- ``InvalidTokenMiddleware`` on Starlette under uvicorn;
- ``InvalidTokenWSGIMiddleware`` on a plain WSGI application under waitress;
- ``InvalidTokenWSGIMiddleware`` on Flask under waitress;
- the Flask extension ``InvalidToken`` under waitress;
- FastAPI's ``install`` under uvicorn.

For each request every adapter must send the same status, the same headers (only the
headers servers add themselves, ``date``, ``server`` and ``content-length``, are left
out: body bytes are compared instead), the same body bytes and the same log events,
``auth_accepted`` included (``log_accepted=True``). The servers run in threads of this
process, so ``structlog.testing.capture_logs`` sees every event.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from flask import Flask, g
from flask import Response as FlaskResponse
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
)
from invalidtoken_mw.fastapi import install
from invalidtoken_mw.flask import InvalidToken
from invalidtoken_mw.testing import parse_challenges
from support.servers import client, run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, OTHER_SECRET, SECRET, claims, mint, tamper_signature

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import httpx
    from starlette.requests import Request

REQUIRED = ["orders:read", "orders:write"]
OPTIONS: dict[str, Any] = {
    "realm": "orders",
    "exclude_paths": ["/health"],
    "scopes": REQUIRED,
    "log_accepted": True,
    "log_rate_limit": None,
    "fingerprint_key": b"parity-test-fingerprint-key-32-b",
}
# Added by the servers, not by the middleware: they differ between uvicorn and waitress.
SERVER_HEADERS = frozenset({"date", "server", "content-length", "connection"})
# Seconds since expiry: read from the clock when each event is emitted.
CLOCK_FIELDS = frozenset({"expired_for_s"})
# Known only to a framework that has routed the request before the guard runs (Flask,
# Django); tests/test_events_servers.py checks it where it is known.
FRAMEWORK_FIELDS = frozenset({"route"})
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


def verifier() -> JWTVerifier:
    """A fresh verifier for the HS256 test tokens."""
    return JWTVerifier(key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)


def orders_body(claims_: dict[str, Any] | None) -> bytes:
    """What every application answers on ``/orders``: the subject it was given."""
    return json.dumps({"sub": None if claims_ is None else claims_["sub"]}).encode()


def raise_app_failure() -> None:
    """What every application does on ``/raise``: refuse with its own failure."""
    raise AuthFailure("insufficient_scope", scopes=["orders:admin"])


# -- the same application, five ways ------------------------------------------------------


async def _orders(request: Request) -> Response:
    return Response(orders_body(request.state.token_claims), media_type=JSON)


async def _health(_request: Request) -> Response:
    return Response(b"ok", media_type="text/plain")


async def _raise(_request: Request) -> Response:
    raise_app_failure()
    return Response()  # pragma: no cover - raised above


async def _bare_401(_request: Request) -> Response:
    return Response(b"no", status_code=401, media_type="text/plain")


ROUTES = [
    Route("/orders", _orders, methods=["GET", "OPTIONS"]),
    Route("/health", _health),
    Route("/raise", _raise),
    Route("/bare-401", _bare_401),
]


def starlette_app() -> Starlette:
    """Starlette with ``InvalidTokenMiddleware``."""
    app = Starlette(routes=ROUTES)
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier(), **OPTIONS)
    return app


def fastapi_app() -> FastAPI:
    """FastAPI protected by ``install``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for route in ROUTES:
        app.router.routes.append(route)
    install(app, verifier=verifier(), **OPTIONS)
    return app


def plain_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The same application in bare PEP 3333."""
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise_app_failure()
    if path == "/bare-401":
        status, content_type, body = "401 Unauthorized", TEXT, b"no"
    elif path == "/health":
        status, content_type, body = "200 OK", TEXT, b"ok"
    else:
        status, content_type = "200 OK", JSON
        body = orders_body(environ["invalidtoken_mw.claims"])
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def flask_app(claims_of: Callable[[], dict[str, Any] | None]) -> Flask:
    """The same application in Flask; ``claims_of`` reads the claims where they are."""
    app = Flask("parity")
    # The parity of the WSGI middleware's handling of raised failures is tested here, so
    # Flask must let a view's exception reach it; in production (no propagation) Flask
    # answers 500 itself instead, see tests/test_flask_servers.py and docs/flask.md.
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.route("/orders", methods=["GET", "OPTIONS"])
    def orders() -> FlaskResponse:
        return FlaskResponse(orders_body(claims_of()), mimetype=JSON)

    @app.route("/health")
    def health() -> FlaskResponse:
        return FlaskResponse(b"ok", mimetype="text/plain")

    @app.route("/raise")
    def raise_() -> FlaskResponse:
        raise_app_failure()
        return FlaskResponse()  # pragma: no cover - raised above

    @app.route("/bare-401")
    def bare_401() -> FlaskResponse:
        return FlaskResponse(b"no", status=401, mimetype="text/plain")

    return app


def flask_with_middleware() -> Flask:
    """Flask wrapped in ``InvalidTokenWSGIMiddleware``."""
    app = flask_app(lambda: _flask_environ()["invalidtoken_mw.claims"])
    app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, verifier=verifier(), **OPTIONS
    )
    return app


def _flask_environ() -> dict[str, Any]:
    from flask import request  # noqa: PLC0415 - the proxy, read inside a request

    environ: dict[str, Any] = request.environ
    return environ


def flask_with_extension() -> Flask:
    """Flask protected by the ``InvalidToken`` extension."""
    app = flask_app(lambda: g.token_claims)
    InvalidToken(app, verifier=verifier(), **OPTIONS)
    return app


@dataclass
class Served:
    """The base URL of every adapter's server."""

    urls: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """All five adapters, each behind its own real server, for the whole module."""
    with contextlib.ExitStack() as stack:
        yield Served(
            {
                "asgi-starlette-uvicorn": stack.enter_context(run_uvicorn(starlette_app())),
                "fastapi-install-uvicorn": stack.enter_context(run_uvicorn(fastapi_app())),
                "wsgi-plain-waitress": stack.enter_context(
                    run_waitress(
                        InvalidTokenWSGIMiddleware(plain_wsgi_app, verifier=verifier(), **OPTIONS)
                    )
                ),
                "wsgi-flask-waitress": stack.enter_context(run_waitress(flask_with_middleware())),
                "flask-extension-waitress": stack.enter_context(
                    run_waitress(flask_with_extension())
                ),
            }
        )


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One request: method, path and headers (``token`` becomes ``Authorization``)."""

    name: str
    path: str = "/orders"
    token: str | None = None
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()

    def send(self, http: httpx.Client) -> httpx.Response:
        headers = [("x-request-id", f"parity-{self.name}"), *self.headers]
        if self.token is not None:
            headers.append(("authorization", self.token))
        return http.request(self.method, self.path, headers=headers)


def bearer(**overrides: Any) -> str:
    """An ``Authorization`` value with a token of the test issuer."""
    return f"Bearer {mint(payload=claims(**{'scope': ' '.join(REQUIRED), **overrides}))}"


def rows() -> list[Row]:
    """The table, built per test run (tokens expire)."""
    valid = bearer()
    return [
        Row("valid", token=valid),
        Row("missing"),
        Row(
            "missing-cors-problem-json",
            headers=(("origin", "https://shop.example"), ("accept", "application/problem+json")),
        ),
        Row("missing-head", method="HEAD"),
        Row("malformed", token="Bearer abc def"),
        Row("expired", token=bearer(exp=1, iat=0)),
        Row("bad-signature", token=f"Bearer {tamper_signature(valid.split()[1])}"),
        Row("other-key", token=f"Bearer {mint(payload=claims(), key=OTHER_SECRET)}"),
        Row("wrong-audience", token=bearer(aud="https://elsewhere.example")),
        Row("insufficient-scope", token=bearer(scope="orders:read")),
        Row("app-raised-auth-failure", path="/raise", token=valid),
        Row("app-bare-401", path="/bare-401", token=valid),
        Row(
            "app-bare-401-cors",
            path="/bare-401",
            token=valid,
            headers=(("origin", "https://shop.example"),),
        ),
        Row(
            "cors-preflight",
            method="OPTIONS",
            headers=(
                ("origin", "https://shop.example"),
                ("access-control-request-method", "DELETE"),
            ),
        ),
        Row("excluded-path", path="/health"),
    ]


ROW_NAMES = [row.name for row in rows()]


@dataclass(frozen=True)
class Seen:
    """What one adapter sent and logged for one request."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    events: list[dict[str, Any]]


_LOG_LOCK = threading.Lock()  # capture_logs configures structlog globally: one at a time


def exchange(url: str, row: Row) -> Seen:
    """Send ``row`` to the server at ``url``; what came back and what was logged."""
    with _LOG_LOCK, capture_logs() as events, client(url) as http:
        response = row.send(http)
    headers = sorted(
        (name.decode("latin-1").lower(), value.decode("latin-1"))
        for name, value in response.headers.raw
        if name.decode("latin-1").lower() not in SERVER_HEADERS
    )
    logged = [
        {k: v for k, v in event.items() if k not in CLOCK_FIELDS | FRAMEWORK_FIELDS}
        for event in events
        if event.get("event") in {"auth_rejected", "auth_accepted"}
    ]
    return Seen(response.status_code, headers, response.content, logged)


@pytest.mark.parametrize("name", ROW_NAMES)
def test_every_adapter_answers_and_logs_the_same(served: Served, name: str) -> None:
    """The same status, headers, body bytes and log events from every adapter."""
    [row] = [r for r in rows() if r.name == name]
    seen = {adapter: exchange(url, row) for adapter, url in served.urls.items()}
    reference = seen["asgi-starlette-uvicorn"]
    differing = {adapter: s for adapter, s in seen.items() if s != reference}
    assert {} == differing, f"reference (ASGI): {reference}"
    # And the reference itself is the documented behaviour, not a shared mistake.
    expected_status = {
        "valid": 200,
        "excluded-path": 200,
        "cors-preflight": 204,
        "missing": 401,
        "missing-cors-problem-json": 401,
        "missing-head": 401,
        "app-bare-401": 401,
        "app-bare-401-cors": 401,
        "insufficient-scope": 403,
        "app-raised-auth-failure": 403,
    }.get(name, 401)
    assert expected_status == reference.status
    events = [e["event"] for e in reference.events]
    if name in {"valid", "app-bare-401", "app-bare-401-cors"}:
        assert ["auth_accepted"] == events
    elif name == "app-raised-auth-failure":
        assert ["auth_accepted", "auth_rejected"] == events
    elif name in {"cors-preflight", "excluded-path"}:
        assert [] == events
    else:
        assert ["auth_rejected"] == events


def test_insufficient_scope_challenge_lists_every_required_scope(served: Served) -> None:
    """RFC 6750 §3: ``scope`` is the scope the request requires, not only the missing part.

    A client re-authorising with exactly the challenge's scope then keeps the ones it
    had; the log event still says which were missing.
    """
    row = Row("scope-challenge", token=bearer(scope="orders:read"))
    for adapter, url in served.urls.items():
        seen = exchange(url, row)
        challenge = dict(seen.headers)["www-authenticate"]
        [parsed] = parse_challenges(challenge)
        [event] = seen.events
        assert (403, " ".join(REQUIRED), ["orders:write"]) == (
            seen.status,
            parsed.params.get("scope"),
            event.get("missing_scopes"),
        ), adapter
