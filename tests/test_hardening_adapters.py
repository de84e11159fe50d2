"""Adapter hardening through real servers: CORS preflights, docs paths, forwarded clients.

Each test pins a defect found by an adversarial review (issue 13) and fails without its
fix:

- a preflight-shaped ``OPTIONS`` request ran an application's OPTIONS handler without a
  token, and a method-override layer inside the WSGI wrap turned one into a ``DELETE``;
  a preflight is now answered by the middleware, unless ``preflight_passthrough``
  hands *real* preflights to a CORS layer inside the application; a real CORS layer
  placed as the docs say still answers them;
- ``fastapi.install`` made every path below ``/docs`` and ``/redoc`` public;
- behind a proxy that appends its own ``X-Forwarded-For`` field line, the ASGI adapter
  logged the client-sent first line as ``client_ip``.

Servers: Starlette and FastAPI under uvicorn (Starlette also under hypercorn and granian
for the forwarded-client test), Flask under waitress.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from flask import Flask, g
from flask import Request as FlaskRequest
from flask import Response as FlaskResponse
from flask import request as flask_request
from flask_cors import CORS
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware
from invalidtoken_mw.fastapi import TokenClaims, install
from invalidtoken_mw.flask import InvalidToken
from invalidtoken_mw.guard import is_cors_preflight
from support.servers import (
    client,
    make_verifier,
    run_granian,
    run_hypercorn,
    run_uvicorn,
    run_waitress,
)
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, MutableMapping

    import httpx
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from starlette.requests import Request

ORIGIN = "https://app.example"
PREFLIGHT = {"origin": ORIGIN, "access-control-request-method": "DELETE"}
VALID = mint(payload=claims(scope="orders:write"))
EXPIRED = mint(payload=claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600))
OPTIONS: dict[str, Any] = {"realm": "orders"}
RAW_TIMEOUT = 5.0
CORS_OPTIONS: dict[str, Any] = {"allow_origins": [ORIGIN], "allow_methods": ["GET", "DELETE"]}

Calls = list[tuple[str, Any]]


# -- applications ---------------------------------------------------------------------


def starlette_app(calls: Calls, *, cors: str | None = None, **options: Any) -> Starlette:
    """``/orders`` accepts GET, DELETE and OPTIONS and records ``(method, claims)``.

    ``cors``: ``"outside"`` adds Starlette's CORSMiddleware after the middleware (so it
    is outermost, as the docs say), ``"inside"`` before it (so it sits below).
    """

    async def orders(request: Request) -> JSONResponse:
        claims = request.state.token_claims
        calls.append((request.method, claims))
        return JSONResponse({"method": request.method, "sub": claims and claims["sub"]})

    app = Starlette(routes=[Route("/orders", orders, methods=["GET", "DELETE", "OPTIONS"])])
    if cors == "inside":
        app.add_middleware(CORSMiddleware, **CORS_OPTIONS)
    app.add_middleware(InvalidTokenMiddleware, verifier=make_verifier(), **OPTIONS, **options)
    if cors == "outside":
        app.add_middleware(CORSMiddleware, **CORS_OPTIONS)
    return app


def fastapi_app(calls: Calls, *, cors: bool = False) -> FastAPI:
    """``install()`` with the default docs pages, ``/orders`` (DELETE, OPTIONS) recording
    ``(method, claims)``, and routes below the docs pages. ``cors`` adds Starlette's
    CORSMiddleware after ``install()``, as the docs say."""
    app = FastAPI()
    install(app, verifier=make_verifier(), realm="orders")
    if cors:
        app.add_middleware(CORSMiddleware, **CORS_OPTIONS)

    @app.options("/orders")
    def orders_options() -> dict[str, str]:
        calls.append(("OPTIONS", None))
        return {"handler": "options"}

    @app.delete("/orders")
    def orders_delete(claims: TokenClaims) -> dict[str, str]:
        calls.append(("DELETE", claims))
        return {"method": "DELETE"}

    @app.get("/docs/{item}")
    def below_docs(item: str) -> dict[str, str]:
        return {"item": item}

    @app.get("/redoc/{item}")
    def below_redoc(item: str) -> dict[str, str]:
        return {"item": item}

    return app


class HTTPMethodOverrideMiddleware:
    """The Flask documentation's method-override pattern, also honouring ``_method``.

    Like Rails, Laravel or Symfony, it lets a header (any of the three common names) or
    a ``_method`` query parameter choose the method the application sees.
    """

    allowed_methods = frozenset({"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS"})
    bodyless_methods = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})
    headers = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = next((environ[name] for name in self.headers if name in environ), "")
        query = FlaskRequest(environ).args
        method = (method or query.get("_method", "")).upper()
        if method in self.allowed_methods:
            environ["REQUEST_METHOD"] = method
        if method in self.bodyless_methods:
            environ["CONTENT_LENGTH"] = "0"
        return self.app(environ, start_response)


def flask_app(
    calls: Calls, *, extension: bool = False, cors: bool = False, **options: Any
) -> Flask:
    """``/orders`` accepts GET, DELETE and OPTIONS and records ``(method, claims)``.

    By default the README's one-line WSGI wrap sits around a method-override layer;
    ``extension=True`` uses the ``InvalidToken`` extension instead. ``cors`` adds
    Flask-CORS inside the application.
    """
    app = Flask("hardening")

    @app.route("/orders", methods=["GET", "DELETE", "OPTIONS"])
    def orders() -> FlaskResponse:
        if extension:
            claims = g.get("token_claims")
        else:
            claims = flask_request.environ.get("invalidtoken_mw.claims")
        calls.append((flask_request.method, claims))
        return FlaskResponse(flask_request.method, mimetype="text/plain")

    if cors:
        CORS(app, origins=[ORIGIN], methods=["GET", "DELETE"])
    if extension:
        InvalidToken(app, verifier=make_verifier(), **OPTIONS, **options)
    else:
        # Flask types wsgi_app as a method; replacing it is the documented way to wrap it.
        app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
            HTTPMethodOverrideMiddleware(app.wsgi_app),
            verifier=make_verifier(),
            **OPTIONS,
            **options,
        )
    return app


# -- helpers ---------------------------------------------------------------------------


def raw_request(url: str, head: str) -> bytes:
    """Send ``head`` (a request head, CRLF line ends) over a raw socket; read to EOF."""
    host, port = url.removeprefix("http://").split(":")
    chunks = []
    with socket.create_connection((host, int(port)), timeout=RAW_TIMEOUT) as sock:
        sock.sendall(head.encode("latin-1"))
        deadline = time.monotonic() + RAW_TIMEOUT
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def rejected(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """The ``auth_rejected`` events among captured log entries."""
    return [entry for entry in logs if entry["event"] == "auth_rejected"]


# -- servers ---------------------------------------------------------------------------


@dataclass
class Served:
    """A running server's base URL and what its handlers recorded."""

    url: str
    calls: Calls = field(default_factory=list)

    def client(self) -> httpx.Client:
        """A client of the server; the record of calls starts empty."""
        self.calls.clear()
        return client(self.url)


@contextlib.contextmanager
def serve(kind: str, make: Callable[[Calls], Any]) -> Iterator[Served]:
    """Build an application with ``make`` and serve it with ``kind`` (a server name)."""
    calls: Calls = []
    app = make(calls)
    if kind == "waitress-forwarded":
        # waitress drops X-Forwarded-* from peers that are not its trusted_proxy; with
        # trusted_proxy set it would also rewrite REMOTE_ADDR itself. Keep the header
        # as received, so the adapter's own reading of it is what is tested.
        server = run_waitress(app, clear_untrusted_proxy_headers=False)
    else:
        runner = {
            "uvicorn": run_uvicorn,
            "hypercorn": run_hypercorn,
            "granian": run_granian,
            "waitress": run_waitress,
        }
        server = runner[kind](app)
    with server as url:
        yield Served(url, calls)


@pytest.fixture(scope="module")
def starlette_server() -> Iterator[Served]:
    """Starlette with an OPTIONS handler, no CORS layer, under uvicorn."""
    with serve("uvicorn", starlette_app) as served:
        yield served


@pytest.fixture(scope="module")
def flask_server() -> Iterator[Served]:
    """Flask behind a method-override layer inside the WSGI wrap, under waitress."""
    with serve("waitress", flask_app) as served:
        yield served


@pytest.fixture(params=["starlette", "flask"])
def protected(request: pytest.FixtureRequest) -> Served:
    """Each of the two servers above."""
    served: Served = request.getfixturevalue(f"{request.param}_server")
    return served


@pytest.fixture(scope="module")
def fastapi_server() -> Iterator[Served]:
    """FastAPI with install(), an OPTIONS route and routes below /docs, under uvicorn."""
    with serve("uvicorn", fastapi_app) as served:
        yield served


# -- defect 3: a preflight never runs a protected handler ------------------------------


def test_preflight_never_reaches_an_options_handler(protected: Served) -> None:
    """A real preflight is answered by the middleware with a bare 204; the application's
    OPTIONS handler (Starlette route, Flask view) never runs without a token."""
    with protected.client() as http:
        response = http.options("/orders", headers=PREFLIGHT)
    expected: tuple[int, bytes, None, Calls] = (204, b"", None, [])
    assert expected == (
        response.status_code,
        response.content,
        response.headers.get("access-control-allow-origin"),
        protected.calls,
    )


def test_fastapi_options_route_never_runs_for_a_preflight(fastapi_server: Served) -> None:
    """A FastAPI ``@app.options`` route does not run for a preflight without a token."""
    with fastapi_server.client() as http:
        response = http.options("/orders", headers=PREFLIGHT)
    assert (204, b"", []) == (response.status_code, response.content, fastapi_server.calls)


NOT_PREFLIGHTS = [
    pytest.param({"x-http-method-override": "DELETE"}, "", id="x-http-method-override"),
    pytest.param({"x-http-method": "DELETE"}, "", id="x-http-method"),
    pytest.param({"x-method-override": "DELETE"}, "", id="x-method-override"),
    pytest.param({}, "_method=DELETE", id="query-_method"),
    pytest.param({}, "%5Fmethod=DELETE", id="query-percent-encoded-_method"),
]


@pytest.mark.parametrize(("headers", "query"), NOT_PREFLIGHTS)
def test_method_override_is_never_a_preflight(
    protected: Served, headers: dict[str, str], query: str
) -> None:
    """An OPTIONS request shaped like a preflight but carrying a method override is
    authenticated like any request: behind the override layer (Flask) it would reach the
    DELETE view. Without a token: 401 and no handler ran."""
    with protected.client() as http:
        response = http.options(f"/orders?{query}", headers={**PREFLIGHT, **headers})
    expected: tuple[int, str, Calls] = (401, 'Bearer realm="orders"', [])
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        protected.calls,
    )


def test_method_override_still_works_with_a_token(flask_server: Served) -> None:
    """The override layer is real: with a valid token the same request reaches DELETE."""
    with flask_server.client() as http:
        response = http.options(
            "/orders",
            headers={
                **PREFLIGHT,
                "x-http-method-override": "DELETE",
                "authorization": f"Bearer {VALID}",
            },
        )
    assert (200, b"DELETE", ["DELETE"]) == (
        response.status_code,
        response.content,
        [method for method, claims in flask_server.calls if claims],
    )


def _chunks() -> Iterator[bytes]:
    yield b"note=1"


@pytest.mark.parametrize(
    ("extra", "content", "reason"),
    [
        pytest.param({"authorization": f"Bearer {EXPIRED}"}, None, "expired", id="authorization"),
        pytest.param({}, b"note=1", "missing_token", id="content-length-body"),
        pytest.param({}, "chunked", "missing_token", id="chunked-body"),
    ],
)
def test_options_with_credentials_or_a_body_is_authenticated(
    protected: Served, extra: dict[str, str], content: bytes | str | None, reason: str
) -> None:
    """A preflight carries neither credentials nor a body (Fetch standard): an OPTIONS
    request with either is authenticated, and refused here, before any handler runs."""
    body = _chunks() if content == "chunked" else content
    with capture_logs() as logs, protected.client() as http:
        response = http.request("OPTIONS", "/orders", headers={**PREFLIGHT, **extra}, content=body)
    expected: tuple[int, list[str], Calls] = (401, [reason], [])
    assert expected == (
        response.status_code,
        [event["reason"] for event in rejected(logs)],
        protected.calls,
    )


BROWSER_PREFLIGHT = {
    "origin": ORIGIN,
    "access-control-request-method": "DELETE",
    "access-control-request-headers": "authorization, x-http-method-override",
}


@pytest.mark.parametrize(
    ("method", "extra", "query", "preflight"),
    [
        pytest.param("OPTIONS", {}, "", True, id="browser-preflight"),
        pytest.param("OPTIONS", {"content-length": "0"}, "", True, id="content-length-0"),
        pytest.param("OPTIONS", {}, "page=2&method=x", True, id="other-query"),
        pytest.param("options", {}, "", False, id="lower-case-method"),
        pytest.param("GET", {}, "", False, id="get"),
        pytest.param("OPTIONS", {"authorization": ""}, "", False, id="empty-authorization"),
        pytest.param("OPTIONS", {"content-length": "x"}, "", False, id="bad-content-length"),
        pytest.param("OPTIONS", {"transfer-encoding": "chunked"}, "", False, id="chunked"),
        pytest.param("OPTIONS", {}, "a=1;_method=DELETE", False, id="semicolon-_method"),
        pytest.param("OPTIONS", {}, "_METHOD=DELETE", False, id="upper-case-_method"),
        pytest.param("OPTIONS", {}, "%5fmethod", False, id="bare-encoded-_method"),
        pytest.param("OPTIONS", {}, "x-http-method-override=DELETE", False, id="query-header-name"),
    ],
)
def test_what_counts_as_a_preflight(
    method: str, extra: dict[str, str], query: str, *, preflight: bool
) -> None:
    """A browser's preflight (which lists the headers it will send, Authorization among
    them) counts; anything carrying more than a preflight may does not."""
    assert preflight is is_cors_preflight(method, {**BROWSER_PREFLIGHT, **extra}, query)


# -- defect 3: a CORS layer placed as documented still answers preflights --------------


@pytest.fixture(scope="module")
def starlette_cors_outside() -> Iterator[Served]:
    """Starlette: CORSMiddleware added after InvalidTokenMiddleware (outermost)."""
    with serve("uvicorn", lambda calls: starlette_app(calls, cors="outside")) as served:
        yield served


@pytest.fixture(scope="module")
def fastapi_cors_outside() -> Iterator[Served]:
    """FastAPI: CORSMiddleware added after install()."""
    with serve("uvicorn", lambda calls: fastapi_app(calls, cors=True)) as served:
        yield served


@pytest.fixture(scope="module")
def flask_cors_extension() -> Iterator[Served]:
    """Flask: the InvalidToken extension and Flask-CORS, under waitress."""
    with serve("waitress", lambda calls: flask_app(calls, extension=True, cors=True)) as served:
        yield served


@pytest.mark.parametrize(
    "setup", ["starlette_cors_outside", "fastapi_cors_outside", "flask_cors_extension"]
)
def test_documented_cors_layer_answers_preflights(
    request: pytest.FixtureRequest, setup: str
) -> None:
    """Each placement the docs recommend gives a preflight its CORS headers without any
    handler running, and the real request after it is still authenticated, its refusal
    readable by the page (CORS headers, challenge exposed)."""
    served: Served = request.getfixturevalue(setup)
    with served.client() as http:
        preflight = http.options("/orders", headers=PREFLIGHT)
        preflight_calls = list(served.calls)
        refused = http.delete("/orders", headers={"origin": ORIGIN})
        allowed = http.delete(
            "/orders", headers={"origin": ORIGIN, "authorization": f"Bearer {VALID}"}
        )
    expose = refused.headers.get("access-control-expose-headers", "").lower()
    assert ORIGIN == preflight.headers.get("access-control-allow-origin")
    assert "DELETE" in preflight.headers.get("access-control-allow-methods", "")
    assert [] == preflight_calls
    assert 401 == refused.status_code
    assert ORIGIN == refused.headers.get("access-control-allow-origin")
    assert "www-authenticate" in expose
    assert 200 == allowed.status_code
    assert ORIGIN == allowed.headers.get("access-control-allow-origin")
    assert ["DELETE"] == [method for method, claims in served.calls if claims]


@pytest.fixture(scope="module")
def cors_inside_default() -> Iterator[Served]:
    """Starlette: CORSMiddleware below InvalidTokenMiddleware, default options."""
    with serve("uvicorn", lambda calls: starlette_app(calls, cors="inside")) as served:
        yield served


@pytest.fixture(scope="module")
def cors_inside_passthrough() -> Iterator[Served]:
    """Starlette: CORSMiddleware below InvalidTokenMiddleware, preflight_passthrough on."""
    with serve(
        "uvicorn",
        lambda calls: starlette_app(calls, cors="inside", preflight_passthrough=True),
    ) as served:
        yield served


@pytest.mark.parametrize(
    ("setup", "preflight_origin"),
    [
        pytest.param("cors_inside_default", None, id="default"),
        pytest.param("cors_inside_passthrough", ORIGIN, id="preflight_passthrough"),
    ],
)
def test_cors_layer_below_the_middleware(
    request: pytest.FixtureRequest, setup: str, preflight_origin: str | None
) -> None:
    """A CORS layer below the middleware sees preflights only with preflight_passthrough
    (otherwise the bare 204 has no CORS headers and a browser refuses), and never sees
    the middleware's refusals: the docs say to put it outside."""
    served: Served = request.getfixturevalue(setup)
    with served.client() as http:
        preflight = http.options("/orders", headers=PREFLIGHT)
        refused = http.delete("/orders", headers={"origin": ORIGIN})
    expected: tuple[str | None, Calls, int, None] = (preflight_origin, [], 401, None)
    assert expected == (
        preflight.headers.get("access-control-allow-origin"),
        served.calls,
        refused.status_code,
        refused.headers.get("access-control-allow-origin"),
    )


@pytest.fixture(scope="module")
def flask_passthrough() -> Iterator[Served]:
    """Flask behind a method-override layer in the WSGI wrap, preflight_passthrough on."""
    with serve("waitress", lambda calls: flask_app(calls, preflight_passthrough=True)) as served:
        yield served


@pytest.mark.parametrize("setup", ["cors_inside_passthrough", "flask_passthrough"])
@pytest.mark.parametrize(("headers", "query"), NOT_PREFLIGHTS)
def test_passthrough_still_authenticates_a_method_override(
    request: pytest.FixtureRequest, setup: str, headers: dict[str, str], query: str
) -> None:
    """preflight_passthrough passes only real preflights: one with a method override is
    authenticated (Flask: the override layer would make it a DELETE)."""
    served: Served = request.getfixturevalue(setup)
    with served.client() as http:
        response = http.options(f"/orders?{query}", headers={**PREFLIGHT, **headers})
    assert (401, []) == (response.status_code, served.calls)


# -- defect 4: FastAPI docs pages are public by exact path only ------------------------


@pytest.fixture(scope="module")
def fastapi_root_path() -> Iterator[str]:
    """The FastAPI app under uvicorn with --root-path /api."""
    with run_uvicorn(fastapi_app([]), root_path="/api") as url:
        yield url


DOCS_PATHS = [
    pytest.param("/docs", 200, id="docs"),
    pytest.param("/redoc", 200, id="redoc"),
    pytest.param("/openapi.json", 200, id="openapi"),
    pytest.param("/docs/oauth2-redirect", 200, id="oauth2-redirect"),
    pytest.param("/docs/123", 401, id="below-docs"),
    pytest.param("/redoc/admin", 401, id="below-redoc"),
    pytest.param("/openapi.json/x", 401, id="below-openapi"),
]


@pytest.mark.parametrize("root_path", ["", "/api"], ids=["no-root-path", "root-path"])
@pytest.mark.parametrize(("path", "status"), DOCS_PATHS)
def test_fastapi_docs_public_by_exact_path_only(
    request: pytest.FixtureRequest, root_path: str, path: str, status: int
) -> None:
    """The docs pages answer without a token; the paths below them need one."""
    url = (
        request.getfixturevalue("fastapi_root_path")
        if root_path
        else request.getfixturevalue("fastapi_server").url
    )
    with client(url) as http:
        response = http.get(path)
    assert status == response.status_code


# -- defect 7: every X-Forwarded-For field line counts ---------------------------------


@pytest.fixture(scope="module")
def forwarded_servers() -> Iterator[dict[str, str]]:
    """Each adapter with client_ip_header="x-forwarded-for", under a real server."""
    forwarded: dict[str, Any] = {"client_ip_header": "x-forwarded-for"}
    with contextlib.ExitStack() as stack:
        yield {
            name: stack.enter_context(serve(kind, make)).url
            for name, kind, make in [
                ("starlette-uvicorn", "uvicorn", lambda c: starlette_app(c, **forwarded)),
                ("starlette-hypercorn", "hypercorn", lambda c: starlette_app(c, **forwarded)),
                ("starlette-granian", "granian", lambda c: starlette_app(c, **forwarded)),
                ("wsgi-waitress", "waitress-forwarded", lambda c: flask_app(c, **forwarded)),
                (
                    "flask-extension-waitress",
                    "waitress-forwarded",
                    lambda c: flask_app(c, extension=True, **forwarded),
                ),
            ]
        }


FORWARDED_SERVERS = [
    "starlette-uvicorn",
    "starlette-hypercorn",
    "starlette-granian",
    "wsgi-waitress",
    "flask-extension-waitress",
]


@pytest.mark.parametrize("server", FORWARDED_SERVERS)
@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["6.6.6.6", "10.0.0.7"], id="two-field-lines"),
        pytest.param(["6.6.6.6, 5.5.5.5", "10.0.0.7"], id="list-then-proxy-line"),
        pytest.param(["6.6.6.6, 10.0.0.7"], id="one-field-line"),
    ],
)
def test_client_ip_is_the_rightmost_entry_of_all_field_lines(
    forwarded_servers: dict[str, str], server: str, lines: list[str]
) -> None:
    """A proxy that appends its own X-Forwarded-For line (HAProxy's option forwardfor)
    after the client's: the lines are one list (RFC 9110 §5.3), so the proxy's entry,
    not the client's, is logged as client_ip."""
    url = forwarded_servers[server]
    head = "".join(f"X-Forwarded-For: {line}\r\n" for line in lines)
    with capture_logs() as logs:
        answer = raw_request(
            url, f"GET /orders HTTP/1.1\r\nHost: test\r\n{head}Connection: close\r\n\r\n"
        )
    expected = (b"HTTP/1.1 401", ["10.0.0.7"])
    assert expected == (answer[:12], [event["client_ip"] for event in rejected(logs)])
