"""Litestar: ``InvalidTokenPlugin``, route ``opt`` for the optional route, scope guards.

The plugin's middleware answers refusals and gives a bare 401 the challenge; its
exception handlers answer failures the handlers raise; ``opt={"auth_optional": True}``
makes ``/optional`` optional; ``require_any_scope`` and ``require_scopes`` are guards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from litestar import Litestar, Request, Response, get

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.litestar import (
    InvalidTokenPlugin,
    TokenClaims,
    require_any_scope,
    require_scopes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from invalidtoken_mw import TokenVerifier

NAME = "Litestar"
SERVER = "asgi"
UNSUPPORTED: dict[str, str] = {}


@get("/protected")
async def protected(token_claims: TokenClaims) -> dict[str, Any]:
    return {"sub": token_claims["sub"]}


@get("/raise")
async def raise_failure() -> None:
    raise AuthFailure(Reason.REVOKED)


@get("/raise-pyjwt")
async def raise_pyjwt() -> None:
    raise jwt.ExpiredSignatureError("expired")


@get("/bare-401")
async def bare_401() -> Response[None]:
    return Response(None, status_code=401)


@get("/optional", opt={"auth_optional": True})
async def optional(request: Request[Any, Any, Any]) -> dict[str, Any]:
    claims = request.state.token_claims
    return {"sub": None if claims is None else claims["sub"]}


@get("/scopes-any", guards=[require_any_scope("orders:read", "orders:admin")])
async def scopes_any() -> dict[str, bool]:
    return {"ok": True}


@get("/scopes-all", guards=[require_scopes("orders:read", "orders:write")])
async def scopes_all() -> dict[str, bool]:
    return {"ok": True}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> Litestar:
    """The matrix routes with the plugin."""
    plugin = InvalidTokenPlugin(verifier=verifier, realm="orders", error_body=error_body, **options)
    handlers = [protected, raise_failure, raise_pyjwt, bare_401, optional, scopes_any, scopes_all]
    return Litestar(handlers, plugins=[plugin])
