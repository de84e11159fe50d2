"""Real servers for the end-to-end tests, and the small applications they serve.

:func:`run_uvicorn`, :func:`run_hypercorn`, :func:`run_granian` and :func:`run_waitress`
start a server on 127.0.0.1 with a free port in a background thread, wait until it
accepts connections, yield its base URL and, on exit, shut it down cleanly:
connections, listening socket and worker threads are all closed, so ``-W error`` sees
no ``ResourceWarning``.

The applications answer the same routes with the same bytes under every server
(:func:`success_body`), so a test can compare the servers byte for byte:

=========================  ================================================
route                      answer
=========================  ================================================
``/orders``                the claims, method and body (``OPTIONS``: 204)
``/health``, ``/healthz``  ``{"status": "ok"}`` plus the lifespan flag (ASGI)
``/raise/auth-failure``    raises ``AuthFailure(insufficient_scope)``
``/raise/expired``         raises ``jwt.ExpiredSignatureError``
``/app-401/bare``          a 401 without a challenge
``/app-401/own``           a 401 with its own ``Basic`` challenge
``/stream-then-fail``      streams one chunk, then raises ``AuthFailure``
``/ws``                    (ASGI) accepts and sends the token's ``sub``
=========================  ================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import uvicorn
import waitress
from fastapi import FastAPI
from flask import Flask
from flask import Response as FlaskResponse
from flask import g as flask_g
from flask import request as flask_request
from granian.constants import Interfaces as GranianInterfaces
from granian.server.embed import Server as GranianServer
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from waitress import wasyncore

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
)
from invalidtoken_mw.flask import InvalidToken
from support.tokens import AUDIENCE, ISSUER, SECRET

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from starlette.websockets import WebSocket

    from invalidtoken_mw import TokenVerifier

REALM = "orders"
REQUIRED_SCOPE = "orders:write"
WSGI_CLAIMS_KEY = "invalidtoken_mw.claims"
START_TIMEOUT = 10.0

MAIN_OPTIONS: dict[str, Any] = {
    "realm": REALM,
    "exclude_paths": ("/health",),
    "scopes": [REQUIRED_SCOPE],
}
"""The middleware as most services configure it: one realm, a public path, one scope."""

RELAXED_OPTIONS: dict[str, Any] = {
    "realm": REALM,
    "optional": True,
    "allow_query_token": True,
    "allow_body_token": True,
    "add_missing_challenge": False,
}
"""Every opt-in switched on: anonymous access, query and form-body tokens, no added challenge."""


def make_verifier() -> JWTVerifier:
    """A fresh verifier for the HS256 test tokens of :mod:`support.tokens`."""
    return JWTVerifier(key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)


def success_body(method: str, claims: dict[str, Any] | None, body: str) -> bytes:
    """The bytes every test application answers a successful ``/orders`` request with."""
    document = {"body": body, "claims": claims, "method": method}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


_PREFLIGHT_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, POST",
}
_OWN_CHALLENGE = {"www-authenticate": 'Basic realm="legacy"'}


# -- ASGI: Starlette and FastAPI -------------------------------------------------------


async def _orders(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=_PREFLIGHT_HEADERS)
    body = (await request.body()).decode()
    content = success_body(request.method, request.state.token_claims, body)
    return Response(content, media_type="application/json")


async def _health(request: Request) -> Response:
    started = getattr(request.state, "lifespan_started", False)
    return Response(json.dumps({"lifespan_started": started, "status": "ok"}))


def _fail_with_auth_failure() -> None:
    raise AuthFailure("insufficient_scope", scopes=[REQUIRED_SCOPE])


def _fail_with_pyjwt_error() -> None:
    raise jwt.ExpiredSignatureError("Signature has expired")


async def _raise_auth_failure(_request: Request) -> Response:
    _fail_with_auth_failure()
    return Response()


async def _raise_expired(_request: Request) -> Response:
    _fail_with_pyjwt_error()
    return Response()


async def _app_401_bare(_request: Request) -> Response:
    return Response(status_code=401)


async def _app_401_own(_request: Request) -> Response:
    return Response(status_code=401, headers=_OWN_CHALLENGE)


async def _stream_then_fail(_request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"partial"
        raise AuthFailure("expired")

    return StreamingResponse(chunks(), media_type="text/plain")


async def _websocket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.state.token_claims["sub"]})
    await websocket.close()


@contextlib.asynccontextmanager
async def _lifespan(_app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"lifespan_started": True}


def make_starlette_app(**options: Any) -> Starlette:
    """The Starlette test application with the middleware added by ``add_middleware``."""
    routes = [
        Route("/orders", _orders, methods=["GET", "POST", "OPTIONS"]),
        Route("/health", _health),
        Route("/health/live", _health),
        Route("/healthz", _health),
        Route("/raise/auth-failure", _raise_auth_failure),
        Route("/raise/expired", _raise_expired),
        Route("/app-401/bare", _app_401_bare),
        Route("/app-401/own", _app_401_own),
        Route("/stream-then-fail", _stream_then_fail),
        WebSocketRoute("/ws", _websocket),
    ]
    app = Starlette(routes=routes, lifespan=_lifespan)
    app.add_middleware(InvalidTokenMiddleware, verifier=make_verifier(), **options)
    return app


def make_fastapi_app(**options: Any) -> FastAPI:
    """A FastAPI application whose endpoints raise failures, middleware via ``add_middleware``."""
    app = FastAPI()
    # FastAPI endpoints take no Request here: it would need run-time annotations.
    app.add_api_route("/raise/auth-failure", _fail_with_auth_failure)
    app.add_api_route("/raise/expired", _fail_with_pyjwt_error)
    app.add_middleware(InvalidTokenMiddleware, verifier=make_verifier(), **options)
    return app


# -- WSGI: Flask -----------------------------------------------------------------------


def make_flask_app(**options: Any) -> Flask:
    """The Flask twin of :func:`make_starlette_app` (no websocket, no lifespan).

    ``PROPAGATE_EXCEPTIONS`` is on because these tests check the WSGI middleware's own
    handling of failures raised below it, with a Flask app as the thing below: without
    the setting Flask turns every exception a view raises into its own 500 page before
    the middleware can see it. That is the real behaviour of the plain recipe in
    production, which ``tests/test_flask_servers.py`` shows and the docs steer Flask
    users away from (to the ``InvalidToken`` extension).
    """
    app = Flask("orders")
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.route("/orders", methods=["GET", "POST", "OPTIONS"])
    def orders() -> FlaskResponse:
        if flask_request.method == "OPTIONS":
            return FlaskResponse(status=204, headers=_PREFLIGHT_HEADERS)
        claims = flask_request.environ[WSGI_CLAIMS_KEY]
        body = flask_request.get_data(as_text=True)
        content = success_body(flask_request.method, claims, body)
        return FlaskResponse(content, mimetype="application/json")

    @app.route("/health")
    @app.route("/health/live")
    @app.route("/healthz")
    def health() -> FlaskResponse:
        return FlaskResponse(json.dumps({"status": "ok"}))

    @app.route("/raise/auth-failure")
    def raise_auth_failure() -> FlaskResponse:
        _fail_with_auth_failure()
        return FlaskResponse()

    @app.route("/raise/expired")
    def raise_expired() -> FlaskResponse:
        _fail_with_pyjwt_error()
        return FlaskResponse()

    @app.route("/app-401/bare")
    def app_401_bare() -> FlaskResponse:
        return FlaskResponse(status=401)

    @app.route("/app-401/own")
    def app_401_own() -> FlaskResponse:
        return FlaskResponse(status=401, headers=_OWN_CHALLENGE)

    @app.route("/stream-then-fail")
    def stream_then_fail() -> FlaskResponse:
        def chunks() -> Iterator[bytes]:
            yield b"partial"
            raise AuthFailure("expired")

        return FlaskResponse(chunks(), mimetype="text/plain")

    # Flask types wsgi_app as a method; replacing it is the documented way to wrap it.
    app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, verifier=make_verifier(), **options
    )
    return app


# -- servers ---------------------------------------------------------------------------


def client(base_url: str) -> httpx.Client:
    """An HTTP client for a test server; proxy settings from the environment are ignored."""
    return httpx.Client(base_url=base_url, trust_env=False)


def _wait_until(ready: Callable[[], bool], thread: threading.Thread, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.01)


@contextlib.contextmanager
def run_uvicorn(app: ASGIApp, *, root_path: str = "") -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield ``http://127.0.0.1:<port>``.

    The listening socket is bound here (port 0), so the port is known before start.
    ``http="h11"`` and ``ws="websockets-sansio"`` are pinned: h11 refuses request
    heads over 16 KiB (``h11_max_incomplete_event_size``), and that websocket
    implementation advertises the ``websocket.http.response`` extension. Lifespan
    is on, so a failing startup fails the fixture. ``root_path`` is uvicorn's
    ``--root-path`` (the prefix a proxy in front strips).
    """
    # IPPROTO_TCP explicitly: asyncio only disables Nagle (TCP_NODELAY) on sockets whose
    # proto says TCP, and without it every keep-alive response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        http="h11",
        ws="websockets-sansio",
        lifespan="on",
        log_config=None,
        access_log=False,
        root_path=root_path,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        _wait_until(lambda: server.started, thread, "uvicorn")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def run_hypercorn(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with hypercorn (HTTP/1.1, asyncio) in a thread; yield its base URL.

    The listening socket is bound and listening here, and hypercorn serves a duplicate
    of it (``fd://``), so the port is known and connections queue from the start.
    Hypercorn has no "started" flag: the fixture waits until the application reports
    its lifespan startup complete (a failing startup fails the fixture). On exit the
    shutdown trigger fires inside hypercorn's own loop.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = HypercornConfig()
    config.bind = [f"fd://{os.dup(sock.fileno())}"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    # hypercorn types applications with its own, more precise ASGI types.
    framework: Any = _reporting_startup(app, started)

    main = hypercorn_serve(framework, config, shutdown_trigger=stop.wait)
    thread = threading.Thread(
        target=_run_until_complete, args=(loop, main), name="hypercorn", daemon=True
    )
    thread.start()
    try:
        _wait_until(started.is_set, thread, "hypercorn")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        if thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def run_granian(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` with granian's embedded server (ASGI, Rust HTTP) in a thread.

    Granian binds its own socket, so a free port is picked first; should another
    process take it in between, start-up fails and is retried on a fresh port (three
    attempts in all). Ready once the application reports its lifespan startup complete
    (granian listens before its worker starts the lifespan); stopped from its own loop.
    """
    for attempt in range(1, 4):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        started = threading.Event()
        server = GranianServer(
            _reporting_startup(app, started),
            address="127.0.0.1",
            port=port,
            interface=GranianInterfaces.ASGI,
            log_enabled=False,
        )
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=_run_until_complete, args=(loop, server.serve()), name="granian", daemon=True
        )
        thread.start()
        try:
            _wait_until(started.is_set, thread, "granian")
        except RuntimeError:
            if thread.is_alive():
                loop.call_soon_threadsafe(server.stop)
            thread.join(START_TIMEOUT)
            if attempt == 3:
                raise
            continue
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            loop.call_soon_threadsafe(server.stop)
            thread.join(START_TIMEOUT)
        return


def _run_until_complete(loop: asyncio.AbstractEventLoop, main: Awaitable[None]) -> None:
    try:
        loop.run_until_complete(main)
    finally:
        loop.close()


def _reporting_startup(app: ASGIApp, started: threading.Event) -> ASGIApp:
    """``app``, setting ``started`` when it reports its lifespan startup complete."""

    async def reporting(scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                started.set()
            await send(message)

        await app(scope, receive, watch if scope["type"] == "lifespan" else send)

    return reporting


@contextlib.contextmanager
def run_waitress(app: Any, *, threads: int = 8, **adjustments: Any) -> Iterator[str]:
    """Serve ``app`` with waitress in a thread; yield ``http://127.0.0.1:<port>``.

    waitress's ``run()`` only ends when its socket map is empty, which another
    thread cannot arrange safely, so the loop here polls a stop flag instead. On
    exit the worker threads finish first, then every connection and the listening
    socket close, all in the server's own thread. waitress accepts request heads of
    up to 256 KiB (``max_request_header_size``). ``adjustments`` are more waitress
    settings (e.g. ``clear_untrusted_proxy_headers``, or ``connection_limit``, 100 by
    default).
    """
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads, **adjustments)
    socket_map = server._map  # noqa: SLF001 - waitress has no public stop() for run()
    stop = threading.Event()

    def serve() -> None:
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=socket_map, count=1)
        finally:
            server.task_dispatcher.shutdown()
            for channel in list(socket_map.values()):
                if channel is not server:
                    channel.handle_close()
            server.close()

    # create_server has already bound and listened: connections queue from here on.
    thread = threading.Thread(target=serve, name="waitress", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(START_TIMEOUT)


# -- a verifier's claims at /me, under uvicorn and waitress ---------------------------------


async def _claims_json(request: Request) -> JSONResponse:
    return JSONResponse(request.state.token_claims)


def claims_on_uvicorn(verifier: TokenVerifier) -> contextlib.AbstractContextManager[str]:
    """Starlette with ``InvalidTokenMiddleware`` under uvicorn: ``GET /me`` answers the claims."""
    app = Starlette(routes=[Route("/me", _claims_json)])
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm=REALM)
    return run_uvicorn(app)


def claims_on_waitress(verifier: TokenVerifier) -> contextlib.AbstractContextManager[str]:
    """Flask with the ``InvalidToken`` extension under waitress: ``GET /me`` answers the claims."""
    app = Flask("claims")
    InvalidToken(app, verifier=verifier, realm=REALM)

    @app.get("/me")
    def me() -> dict[str, Any]:
        claims: dict[str, Any] = flask_g.token_claims
        return claims

    return run_waitress(app)


#: The two servers by name, for tests parametrized over them.
CLAIMS_SERVERS: dict[str, Callable[[TokenVerifier], contextlib.AbstractContextManager[str]]] = {
    "uvicorn": claims_on_uvicorn,
    "waitress": claims_on_waitress,
}
