"""Quart: the ``InvalidToken`` extension, ``@auth.optional`` and the scope decorators.

The extension's ``before_request`` hook answers refusals, its error handlers answer
failures the views raise and its ``after_request`` hook gives a bare 401 the challenge;
``@auth.optional`` makes ``/optional`` optional; ``require_any_scope`` and
``require_scopes`` decorate the scoped views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from quart import Quart

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.quart import (
    InvalidToken,
    current_claims,
    optional_claims,
    require_any_scope,
    require_scopes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from invalidtoken_mw import TokenVerifier

NAME = "Quart"
SERVER = "asgi"
UNSUPPORTED: dict[str, str] = {}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> Quart:
    """The matrix routes with the extension."""
    app = Quart(__name__)
    auth = InvalidToken(app, verifier=verifier, realm="orders", error_body=error_body, **options)

    @app.get("/protected")
    async def protected() -> dict[str, Any]:
        return {"sub": current_claims()["sub"]}

    @app.get("/raise")
    async def raise_failure() -> dict[str, Any]:
        raise AuthFailure(Reason.REVOKED)

    @app.get("/raise-pyjwt")
    async def raise_pyjwt() -> dict[str, Any]:
        raise jwt.ExpiredSignatureError("expired")

    @app.get("/bare-401")
    async def bare_401() -> tuple[str, int]:
        return "", 401

    @app.get("/optional")
    @auth.optional
    async def optional() -> dict[str, Any]:
        claims = optional_claims()
        return {"sub": None if claims is None else claims["sub"]}

    @app.get("/scopes-any")
    @require_any_scope("orders:read", "orders:admin")
    async def scopes_any() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/scopes-all")
    @require_scopes("orders:read", "orders:write")
    async def scopes_all() -> dict[str, bool]:
        return {"ok": True}

    return app
