"""Keys, tokens, the bare applications and invalidtoken-mw on top of them (public API only).

Every application answers ``GET /orders`` with a constant ``ok`` (the ``claims_*`` ones
with the token's subject, read the documented way); the bare ones check nothing.
Endpoints are ``async`` on Starlette and FastAPI (a sync endpoint would run in the thread
pool, and that hop would dominate every number). Every valid token carries
the claims all the peers insist on (RFC 9068's ``iss``, ``aud``, ``sub``, ``client_id``,
``iat``, ``exp``, ``jti``, plus ``scope`` and ``typ: at+jwt``), so a rejection is always
the scenario's defect and never a peer's configuration.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from flask import Flask
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from timing import PATH

from invalidtoken_mw import (
    IntrospectionVerifier,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    OpenTelemetryMetrics,
    PrometheusMetrics,
)

if TYPE_CHECKING:
    from starlette.requests import Request

    from invalidtoken_mw import RevocationStore

ISSUER = "https://id.example.com/"
AUDIENCE = "api://orders"
ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_ALG = "RS256"  # what most identity providers sign access tokens with


@dataclass(frozen=True)
class AlgKeys:
    """The keys of one algorithm in every form a stack is configured with."""

    alg: str
    signing: Any  # the private key or HMAC secret
    forging: Any  # a key of the same kind nobody trusts
    verifying: Any  # a parsed public key object (or the secret)
    pem: str  # the verifying key as PEM text (or the secret as text)


def make_keys() -> dict[str, AlgKeys]:
    """One key per algorithm: a 32-byte secret, RSA 2048, P-256."""
    secret, other = secrets.token_hex(16).encode(), secrets.token_hex(16).encode()
    keys = {"HS256": AlgKeys("HS256", secret, other, secret, secret.decode())}
    for alg, generate in (
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ):
        private = generate()
        public = private.public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        keys[alg] = AlgKeys(alg, private, generate(), public, pem.decode())
    return keys


def mint(keys: AlgKeys, *, age: int = 0, forged: bool = False, pad: int = 0) -> str:
    """An access token issued ``age`` seconds ago for two hours, with a unique ``jti``.

    ``pad`` adds a claim of that many characters, for tokens of a chosen size.
    """
    now = int(time.time()) - age
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-4711",
        "client_id": "orders-web",
        "iat": now,
        "exp": now + 7200,
        "jti": secrets.token_hex(12),
        "scope": "orders:read",
    }
    if pad:
        claims["pad"] = "x" * pad
    key = keys.forging if forged else keys.signing
    return jwt.encode(claims, key, algorithm=keys.alg, headers={"typ": "at+jwt"})


async def _ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def bare_starlette() -> Starlette:
    """Starlette with one async route."""
    return Starlette(routes=[Route(PATH, _ok)])


def bare_fastapi() -> FastAPI:
    """FastAPI with one async route returning a plain-text response."""
    app = FastAPI()

    @app.get(PATH, response_class=FastAPIPlainText)
    async def orders() -> FastAPIPlainText:
        return FastAPIPlainText("ok")

    return app


def bare_flask() -> Flask:
    """Flask with one view."""
    app = Flask("bare")

    @app.get(PATH)
    def orders() -> str:
        return "ok"

    return app


def verifier(keys: AlgKeys, revocation: RevocationStore | None = None) -> JWTVerifier:
    """Our verifier as the README configures it, for a static key."""
    return JWTVerifier(
        key=keys.verifying,
        algorithms=[keys.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        revocation=revocation,
    )


def ours_starlette(keys: AlgKeys, revocation: RevocationStore | None = None) -> Starlette:
    """Bare Starlette plus ``InvalidTokenMiddleware`` with its default options."""
    app = bare_starlette()
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier(keys, revocation))
    return app


def ours_fastapi(keys: AlgKeys) -> FastAPI:
    """Bare FastAPI plus ``InvalidTokenMiddleware``, added the one-line way."""
    app = bare_fastapi()
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier(keys))
    return app


async def _subject(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.token_claims["sub"])


def claims_starlette(keys: AlgKeys) -> Starlette:
    """``ours_starlette`` whose route answers the subject read from ``request.state``."""
    app = Starlette(routes=[Route(PATH, _subject)])
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier(keys))
    return app


def claims_flask(keys: AlgKeys) -> Flask:
    """``ours_flask`` whose view answers the subject read from the WSGI environ."""
    app = Flask("claims")

    @app.get(PATH)
    def orders() -> str:
        return str(flask_request.environ["invalidtoken_mw.claims"]["sub"])

    wrapped = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=verifier(keys))
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app


def _metrics() -> list[Any]:
    """Both metrics backends, each on its own registry or meter provider (the SDK's)."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - bench-only
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    return [PrometheusMetrics(CollectorRegistry()), OpenTelemetryMetrics(meter)]


def metrics_starlette(keys: AlgKeys) -> Starlette:
    """``ours_starlette`` with Prometheus and OpenTelemetry metrics on."""
    app = bare_starlette()
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier(keys), metrics=_metrics())
    return app


def metrics_flask(keys: AlgKeys) -> Flask:
    """``ours_flask`` with Prometheus and OpenTelemetry metrics on."""
    app = bare_flask()
    wrapped = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=verifier(keys), metrics=_metrics())
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app


def ours_flask(keys: AlgKeys, revocation: RevocationStore | None = None) -> Flask:
    """Bare Flask with its ``wsgi_app`` wrapped in ``InvalidTokenWSGIMiddleware``."""
    app = bare_flask()
    wrapped = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=verifier(keys, revocation))
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app


# -- opaque tokens: IntrospectionVerifier with its answer cached ------------------------


class _BacklogServer(ThreadingHTTPServer):
    """Listens with room for many concurrent first calls (the default backlog of 5 drops SYNs)."""

    request_queue_size = 128
    daemon_threads = True


class IntrospectionEndpoint:
    """A loopback RFC 7662 endpoint calling every token active; it counts the calls it gets."""

    def __init__(self, delay: float = 0.0) -> None:
        """Start serving on a free port, in a thread; each answer waits ``delay`` seconds."""
        self.calls = 0
        counting = threading.Lock()
        endpoint = self
        answer = json.dumps(
            {
                "active": True,
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": "user-42",
                "scope": "orders:read",
                "exp": int(time.time()) + 86_400,
            }
        ).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with counting:
                    endpoint.calls += 1
                time.sleep(delay)  # a slow answer keeps concurrent requests waiting together
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - its name
                """Quiet."""

        self._server = _BacklogServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/introspect"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def introspection_verifier(url: str) -> IntrospectionVerifier:
    """An ``IntrospectionVerifier`` checking audience and issuer, as a service would."""
    return IntrospectionVerifier(
        url,
        client_id="orders-api",
        client_secret="bench-secret",  # noqa: S106 - a loopback benchmark credential
        audience=AUDIENCE,
        issuer=ISSUER,
    )


def opaque_starlette(url: str) -> Starlette:
    """Bare Starlette plus ``InvalidTokenMiddleware`` with an ``IntrospectionVerifier``."""
    app = bare_starlette()
    app.add_middleware(InvalidTokenMiddleware, verifier=introspection_verifier(url))
    return app


def opaque_flask(url: str) -> Flask:
    """Bare Flask wrapped in ``InvalidTokenWSGIMiddleware`` with an ``IntrospectionVerifier``."""
    app = bare_flask()
    wrapped = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=introspection_verifier(url))
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app
