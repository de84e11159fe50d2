"""Starlette: ``InvalidTokenMiddleware`` with a ``Guard`` the endpoints share.

The middleware answers refusals, raised failures and bare 401s; ``optional_paths``
makes ``/optional`` optional; endpoints check scopes with ``guard.check_scopes``,
whose ``AuthFailure`` the middleware renders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from invalidtoken_mw import AuthFailure, Guard, InvalidTokenMiddleware, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from starlette.requests import Request

    from invalidtoken_mw import TokenVerifier

NAME = "Starlette"
SERVER = "asgi"
UNSUPPORTED: dict[str, str] = {}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> Starlette:
    """The matrix routes behind one guard."""
    guard = Guard(
        verifier=verifier,
        realm="orders",
        optional_paths=["/optional"],
        error_body=error_body,
        **options,
    )

    async def protected(request: Request) -> Response:
        return JSONResponse({"sub": request.state.token_claims["sub"]})

    async def raise_failure(_request: Request) -> Response:
        raise AuthFailure(Reason.REVOKED)

    async def raise_pyjwt(_request: Request) -> Response:
        raise jwt.ExpiredSignatureError("expired")

    async def bare_401(_request: Request) -> Response:
        return Response(status_code=401)

    async def optional(request: Request) -> Response:
        claims = request.state.token_claims
        return JSONResponse({"sub": None if claims is None else claims["sub"]})

    async def scopes_any(request: Request) -> Response:
        scopes = ["orders:read", "orders:admin"]
        guard.check_scopes(request.state.token_claims, scopes, any_of=True)
        return JSONResponse({"ok": True})

    async def scopes_all(request: Request) -> Response:
        guard.check_scopes(request.state.token_claims, ["orders:read", "orders:write"])
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/protected", protected),
            Route("/raise", raise_failure),
            Route("/raise-pyjwt", raise_pyjwt),
            Route("/bare-401", bare_401),
            Route("/optional", optional),
            Route("/scopes-any", scopes_any),
            Route("/scopes-all", scopes_all),
        ],
        middleware=[Middleware(InvalidTokenMiddleware, guard=guard)],
    )
