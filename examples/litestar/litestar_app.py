"""An orders API protected by invalidtoken-mw (Litestar).

Configuration comes from the environment, like the FastAPI example:
``INVALIDTOKEN_JWKS_URL`` or ``INVALIDTOKEN_KEY`` / ``INVALIDTOKEN_KEY_FILE``,
``INVALIDTOKEN_ALGORITHMS`` (default ``RS256``), ``INVALIDTOKEN_ISSUER``,
``INVALIDTOKEN_AUDIENCE`` (default ``api://orders``) and optionally
``INVALIDTOKEN_TOKEN_TYPE`` (e.g. ``at+jwt``) and ``INVALIDTOKEN_REDIS_URL``.

Run it: ``uvicorn --factory litestar_app:create_app --app-dir examples/litestar`` (see README.md
beside this file).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get, post

from invalidtoken_mw import JWTVerifier, MemoryRevocationStore
from invalidtoken_mw import verifier_from_env as from_env
from invalidtoken_mw.litestar import InvalidTokenPlugin, TokenClaims, require_scopes

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]


def verifier_from_env() -> JWTVerifier:
    """The verifier, from ``INVALIDTOKEN_*`` environment variables (see the module docstring)."""
    return from_env(
        algorithms=["RS256"], audience="api://orders", revocation=MemoryRevocationStore()
    )


@get("/health", opt={"exclude_from_auth": True})
async def health() -> dict[str, str]:
    """Public: no token needed."""
    return {"status": "ok"}


@get("/orders", guards=[require_scopes("orders:read")])
async def list_orders(token_claims: TokenClaims) -> dict[str, Any]:
    """The orders, for a token granting ``orders:read``."""
    return {"subject": token_claims.get("sub"), "orders": ORDERS}


@post("/orders", guards=[require_scopes("orders:write")])
async def create_order(token_claims: TokenClaims) -> dict[str, Any]:
    """A new order (201), for a token granting ``orders:write``."""
    return {"id": len(ORDERS) + 1, "item": "tea", "quantity": 1, "by": token_claims.get("sub")}


def create_app(verifier: JWTVerifier | None = None) -> Litestar:
    """The orders API; ``verifier`` defaults to :func:`verifier_from_env`."""
    plugin = InvalidTokenPlugin(
        verifier=verifier if verifier is not None else verifier_from_env(), realm="orders"
    )
    return Litestar([health, list_orders, create_order], plugins=[plugin])
