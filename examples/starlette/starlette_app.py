"""An orders API protected by invalidtoken-mw (plain Starlette).

Configuration comes from the environment, like the FastAPI example:
``INVALIDTOKEN_JWKS_URL`` or ``INVALIDTOKEN_KEY`` / ``INVALIDTOKEN_KEY_FILE``,
``INVALIDTOKEN_ALGORITHMS`` (default ``RS256``), ``INVALIDTOKEN_ISSUER``,
``INVALIDTOKEN_AUDIENCE`` (default ``api://orders``) and optionally
``INVALIDTOKEN_TOKEN_TYPE`` (e.g. ``at+jwt``) and ``INVALIDTOKEN_REDIS_URL``.

Run it: ``uvicorn --factory starlette_app:create_app --app-dir examples/starlette`` (see
README.md beside this file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import (
    AuthFailure,
    Guard,
    InvalidTokenMiddleware,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
)
from invalidtoken_mw import verifier_from_env as from_env

if TYPE_CHECKING:
    from starlette.requests import Request

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]
MENU = ["coffee beans", "tea"]
#: Sessions this application has ended itself (a sign-out list of its own); their
#: tokens are still valid to the verifier until they expire.
SIGNED_OUT = frozenset({"session-7"})


def verifier_from_env() -> JWTVerifier:
    """The verifier, from ``INVALIDTOKEN_*`` environment variables (see the module docstring)."""
    return from_env(
        algorithms=["RS256"], audience="api://orders", revocation=MemoryRevocationStore()
    )


def current_claims(request: Request) -> dict[str, Any]:
    """The verified claims; a token of a signed-out session is refused as revoked."""
    claims: dict[str, Any] = request.state.token_claims
    if claims.get("sid") in SIGNED_OUT:
        # Raised, not answered here: the middleware answers it like its own refusals
        # (401, challenge, JSON body, one auth_rejected log event).
        raise AuthFailure(Reason.REVOKED)
    return claims


def create_app(verifier: JWTVerifier | None = None) -> Starlette:
    """The orders API; ``verifier`` defaults to :func:`verifier_from_env`."""
    guard = Guard(
        verifier=verifier if verifier is not None else verifier_from_env(),
        realm="orders",
        exclude_paths=["/health"],  # public: the token is never read
        optional_paths=["/menu"],  # a token is optional; a bad one is still refused
    )

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def menu(request: Request) -> JSONResponse:
        claims = request.state.token_claims  # None: no token was sent
        return JSONResponse({"items": MENU, "for": None if claims is None else claims["sub"]})

    async def list_orders(request: Request) -> JSONResponse:
        claims = current_claims(request)
        guard.check_scopes(claims, ["orders:read"])  # 403 insufficient_scope otherwise
        return JSONResponse({"subject": claims.get("sub"), "orders": ORDERS})

    async def create_order(request: Request) -> JSONResponse:
        claims = current_claims(request)
        guard.check_scopes(claims, ["orders:write"])
        order = {"id": len(ORDERS) + 1, "item": "tea", "quantity": 1}
        return JSONResponse({**order, "by": claims.get("sub")}, status_code=201)

    async def reports(request: Request) -> JSONResponse:
        claims = current_claims(request)
        # Either scope will do; the 403 challenge names both.
        guard.check_scopes(claims, ["reports:read", "orders:admin"], any_of=True)
        return JSONResponse({"subject": claims.get("sub"), "reports": []})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/menu", menu),
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders", create_order, methods=["POST"]),
            Route("/reports", reports),
        ],
        middleware=[Middleware(InvalidTokenMiddleware, guard=guard)],
    )
