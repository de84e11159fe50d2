"""The application one process of the two-process revocation test serves (under uvicorn).

Configured from the environment, so each process builds its own verifier, Redis store
and connections:

- ``INVALIDTOKEN_TEST_SECRET``: the HS256 secret;
- ``INVALIDTOKEN_TEST_REDIS_URL``: the shared Redis;
- ``INVALIDTOKEN_TEST_PREFIX``: the key and channel prefix;
- ``INVALIDTOKEN_TEST_CACHE_TTL``: the store's local cache, in seconds (long in the
  test, so only the pub/sub channel can make a revocation effective in time);
- ``INVALIDTOKEN_TEST_FAIL_OPEN``: ``1`` makes the store fail open (default: closed).

Every response, refusals included, carries the serving process id in ``x-worker-pid``,
so a test can tell workers apart. Routes: ``/health`` (public), ``/orders`` (answers
the token's ``sub``) and ``POST
/revoke`` (public, for the test only: JSON ``{"jti", "expires_at"}`` or ``{"subject"}``,
revoked for the test issuer through this process's store).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from invalidtoken_mw import InvalidTokenMiddleware, JWTVerifier, RedisRevocationStore
from support.tokens import AUDIENCE, ISSUER

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


def with_worker_pid(app: ASGIApp) -> ASGIApp:
    """``app``, with ``x-worker-pid`` added to every HTTP response it sends."""
    pid = str(os.getpid()).encode()

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], (b"x-worker-pid", pid)]}
            await send(message)

        await app(scope, receive, send_with_pid)

    return wrapped


def build_app() -> Starlette:
    """The guarded application, with a store closed at lifespan shutdown."""
    store = RedisRevocationStore(
        os.environ["INVALIDTOKEN_TEST_REDIS_URL"],
        prefix=os.environ["INVALIDTOKEN_TEST_PREFIX"],
        local_cache_ttl=float(os.environ["INVALIDTOKEN_TEST_CACHE_TTL"]),
        fail_open=os.environ.get("INVALIDTOKEN_TEST_FAIL_OPEN") == "1",
    )
    verifier = JWTVerifier(
        key=os.environ["INVALIDTOKEN_TEST_SECRET"].encode(),
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        revocation=store,
    )

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def orders(request: Request) -> Response:
        return PlainTextResponse(request.state.token_claims["sub"])

    async def revoke(request: Request) -> Response:
        order = await request.json()
        if "subject" in order:
            await store.revoke_subject_async(order["subject"], issuer=ISSUER)
        else:
            await store.revoke_async(
                jti=order["jti"], issuer=ISSUER, expires_at=order["expires_at"]
            )
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        await store.aclose()

    routes = [
        Route("/health", health),
        Route("/orders", orders),
        Route("/revoke", revoke, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=verifier,
        realm="orders",
        exclude_paths=("/health", "/revoke"),
    )
    return app


app = with_worker_pid(build_app())
