"""The framework matrix's Flask row: the ``InvalidToken`` extension, as docs/flask.md sets it up.

Protected views need nothing but the extension; ``@auth.optional`` and the scope
decorators are the per-view mechanisms; ``abort(401)`` is Flask's usual bare 401.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from flask import Flask, abort

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.flask import (
    InvalidToken,
    current_claims,
    optional_claims,
    require_any_scope,
    require_scopes,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from invalidtoken_mw import TokenVerifier

NAME = "Flask extension"
SERVER = "wsgi"
UNSUPPORTED: dict[str, str] = {}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> Flask:
    """A fresh Flask application protected by the extension (realm "orders")."""
    app = Flask("matrix_flask_extension")
    auth = InvalidToken(app, verifier=verifier, realm="orders", error_body=error_body, **options)

    @app.get("/protected")
    def protected() -> dict[str, Any]:
        return {"sub": current_claims()["sub"]}

    @app.get("/raise")
    def raise_failure() -> dict[str, Any]:
        raise AuthFailure(Reason.REVOKED)

    @app.get("/raise-pyjwt")
    def raise_pyjwt() -> dict[str, Any]:
        raise jwt.ExpiredSignatureError("expired")

    @app.get("/bare-401")
    def bare_401() -> dict[str, Any]:
        abort(401)

    @app.get("/optional")
    @auth.optional
    def optional() -> dict[str, Any]:
        claims = optional_claims()
        return {"sub": None if claims is None else claims["sub"]}

    @app.get("/scopes-any")
    @require_any_scope("orders:read", "orders:admin")
    def scopes_any() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/scopes-all")
    @require_scopes("orders:read", "orders:write")
    def scopes_all() -> dict[str, bool]:
        return {"ok": True}

    return app
