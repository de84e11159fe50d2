"""FastAPI: ``install()`` with the dependencies of ``invalidtoken_mw.fastapi``.

The middleware answers refusals, raised failures and bare 401s; ``OptionalTokenClaims``
makes ``/optional`` optional; ``require_any_scope`` and ``require_scopes`` check scopes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from fastapi import Depends, FastAPI, Response

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.fastapi import (
    OptionalTokenClaims,
    TokenClaims,
    install,
    require_any_scope,
    require_scopes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from invalidtoken_mw import TokenVerifier

NAME = "FastAPI"
SERVER = "asgi"
UNSUPPORTED: dict[str, str] = {}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> FastAPI:
    """The matrix routes on an app protected by ``install()``."""
    app = FastAPI()
    install(app, verifier=verifier, realm="orders", error_body=error_body, **options)

    @app.get("/protected")
    def protected(claims: TokenClaims) -> dict[str, Any]:
        return {"sub": claims["sub"]}

    @app.get("/raise")
    def raise_failure(_claims: TokenClaims) -> None:
        raise AuthFailure(Reason.REVOKED)

    @app.get("/raise-pyjwt")
    def raise_pyjwt(_claims: TokenClaims) -> None:
        raise jwt.ExpiredSignatureError("expired")

    @app.get("/bare-401")
    def bare_401(_claims: TokenClaims) -> Response:
        return Response(status_code=401)

    @app.get("/optional")
    def optional(claims: OptionalTokenClaims) -> dict[str, Any]:
        return {"sub": None if claims is None else claims["sub"]}

    @app.get(
        "/scopes-any", dependencies=[Depends(require_any_scope("orders:read", "orders:admin"))]
    )
    def scopes_any() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/scopes-all", dependencies=[Depends(require_scopes("orders:read", "orders:write"))])
    def scopes_all() -> dict[str, bool]:
        return {"ok": True}

    return app
