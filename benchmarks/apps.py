"""The bare applications and our middlewares on top of them.

Every application answers ``GET /orders`` with a constant ``ok``; the bare ones check
nothing. Endpoints are ``async`` on Starlette and FastAPI (a sync endpoint would run in
the thread pool, and that hop would dominate every number).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from flask import Flask
from material import AUDIENCE, ISSUER
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware, JWTVerifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from material import AlgKeys
    from starlette.requests import Request

    from invalidtoken_mw import RevocationStore

PATH = "/orders"
REALM = "orders"
# The library's default: a burst of 50 events per reason, then 10 per second.
DEFAULT_LOG_RATE_LIMIT: tuple[int, float] | None = (50, 10.0)


async def _ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def bare_starlette(middleware: Sequence[Middleware] = ()) -> Starlette:
    """Starlette with one async route and the given middleware."""
    return Starlette(routes=[Route(PATH, _ok)], middleware=list(middleware))


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


def verifier(keys: AlgKeys, *, revocation: RevocationStore | None = None) -> JWTVerifier:
    """Our verifier as the README configures it, for a static key."""
    return JWTVerifier(
        key=keys.verifying,
        algorithms=[keys.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        revocation=revocation,
    )


def _options(
    keys: AlgKeys,
    revocation: RevocationStore | None,
    scopes: Sequence[str],
    log_rate_limit: tuple[int, float] | None,
) -> dict[str, Any]:
    return {
        "verifier": verifier(keys, revocation=revocation),
        "realm": REALM,
        "scopes": list(scopes),
        "log_rate_limit": log_rate_limit,
    }


def ours_starlette(
    keys: AlgKeys,
    *,
    revocation: RevocationStore | None = None,
    scopes: Sequence[str] = (),
    log_rate_limit: tuple[int, float] | None = DEFAULT_LOG_RATE_LIMIT,
) -> Starlette:
    """Bare Starlette plus ``InvalidTokenMiddleware``."""
    options = _options(keys, revocation, scopes, log_rate_limit)
    return bare_starlette([Middleware(InvalidTokenMiddleware, **options)])


def ours_fastapi(keys: AlgKeys, *, scopes: Sequence[str] = ()) -> FastAPI:
    """Bare FastAPI plus ``InvalidTokenMiddleware``, added the one-line way."""
    app = bare_fastapi()
    app.add_middleware(
        InvalidTokenMiddleware, **_options(keys, None, scopes, DEFAULT_LOG_RATE_LIMIT)
    )
    return app


def ours_flask(
    keys: AlgKeys,
    *,
    revocation: RevocationStore | None = None,
    scopes: Sequence[str] = (),
    log_rate_limit: tuple[int, float] | None = DEFAULT_LOG_RATE_LIMIT,
) -> Flask:
    """Bare Flask with its ``wsgi_app`` wrapped in ``InvalidTokenWSGIMiddleware``."""
    app = bare_flask()
    options = _options(keys, revocation, scopes, log_rate_limit)
    app.wsgi_app = InvalidTokenWSGIMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app
