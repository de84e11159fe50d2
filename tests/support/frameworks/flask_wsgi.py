"""The framework matrix's plain-WSGI Flask row: ``app.wsgi_app`` wrapped in the middleware.

Deliberately left as a production app runs it: ``PROPAGATE_EXCEPTIONS`` is not set and
debug and testing mode are off, so this row shows what the plain recipe really does.
Flask catches a view's exception and answers its own 500 page before the WSGI middleware
can see it, and the middleware does not know Flask's routes; both columns say so and
point to the extension (:mod:`invalidtoken_mw.flask`). The views for those columns are
written the way a user would try, so the matrix can show they fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from flask import Flask, abort, request

from invalidtoken_mw import AuthFailure, InvalidTokenWSGIMiddleware, Reason, check_scopes
from invalidtoken_mw.wsgi import CLAIMS_KEY

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from invalidtoken_mw import TokenVerifier

NAME = "Flask (plain WSGI middleware)"
SERVER = "wsgi"
UNSUPPORTED: dict[str, str] = {
    "raise": (
        "Flask turns an exception a view raises into its own 500 page before a WSGI"
        " middleware sees it (only debug/testing mode or PROPAGATE_EXCEPTIONS let it"
        " through); use the InvalidToken extension, which handles AuthFailure and PyJWT"
        " errors in Flask itself."
    ),
    "scopes": (
        "The middleware does not know Flask's routes (only the app-wide `scopes` option),"
        " and a view that checks scopes itself must raise, which Flask turns into a 500;"
        " use the extension's @require_scopes / @require_any_scope."
    ),
}


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> Flask:
    """A fresh Flask application behind ``InvalidTokenWSGIMiddleware`` (realm "orders")."""
    app = Flask("matrix_flask_wsgi")

    def claims() -> dict[str, Any] | None:
        found: dict[str, Any] | None = request.environ.get(CLAIMS_KEY)
        return found

    @app.get("/protected")
    def protected() -> dict[str, Any]:
        return {"sub": (claims() or {}).get("sub")}

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
    def optional() -> dict[str, Any]:
        found = claims()
        return {"sub": None if found is None else found["sub"]}

    @app.get("/scopes-any")
    def scopes_any() -> dict[str, bool]:
        check_scopes(claims() or {}, ["orders:read", "orders:admin"], any_of=True)
        return {"ok": True}

    @app.get("/scopes-all")
    def scopes_all() -> dict[str, bool]:
        check_scopes(claims() or {}, ["orders:read", "orders:write"])
        return {"ok": True}

    # Flask types wsgi_app as a method; replacing it is the documented way to wrap it.
    app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        verifier=verifier,
        realm="orders",
        optional_paths=["/optional"],  # the middleware's per-path optional authentication
        error_body=error_body,
        **options,
    )
    return app
