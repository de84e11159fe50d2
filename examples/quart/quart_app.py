"""An orders API protected by invalidtoken-mw (Quart).

Configuration comes from the environment, like the FastAPI example:
``INVALIDTOKEN_JWKS_URL`` or ``INVALIDTOKEN_KEY`` / ``INVALIDTOKEN_KEY_FILE``,
``INVALIDTOKEN_ALGORITHMS`` (default ``RS256``), ``INVALIDTOKEN_ISSUER``,
``INVALIDTOKEN_AUDIENCE`` (default ``api://orders``) and optionally
``INVALIDTOKEN_TOKEN_TYPE`` (e.g. ``at+jwt``) and ``INVALIDTOKEN_REDIS_URL``.

Run it: ``uvicorn --factory quart_app:create_app --app-dir examples/quart`` (see README.md
beside this file).
"""

from __future__ import annotations

from typing import Any

from quart import Quart

from invalidtoken_mw import JWTVerifier, MemoryRevocationStore
from invalidtoken_mw import verifier_from_env as from_env
from invalidtoken_mw.quart import InvalidToken, current_claims, require_scopes

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]


def verifier_from_env() -> JWTVerifier:
    """The verifier, from ``INVALIDTOKEN_*`` environment variables (see the module docstring)."""
    return from_env(
        algorithms=["RS256"], audience="api://orders", revocation=MemoryRevocationStore()
    )


auth = InvalidToken()


def create_app(verifier: JWTVerifier | None = None) -> Quart:
    """The orders API; ``verifier`` defaults to :func:`verifier_from_env`."""
    app = Quart(__name__)
    app.config["INVALIDTOKEN_REALM"] = "orders"
    app.config["INVALIDTOKEN_VERIFIER"] = verifier if verifier is not None else verifier_from_env()
    auth.init_app(app)

    @app.get("/health")
    @auth.exempt
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders")
    @require_scopes("orders:read")
    async def list_orders() -> dict[str, Any]:
        return {"subject": current_claims().get("sub"), "orders": ORDERS}

    @app.post("/orders")
    @require_scopes("orders:write")
    async def create_order() -> tuple[dict[str, Any], int]:
        order = {"id": len(ORDERS) + 1, "item": "tea", "quantity": 1}
        return {**order, "by": current_claims().get("sub")}, 201

    return app
