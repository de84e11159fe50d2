"""An orders API protected by invalidtoken-mw (Flask).

Configuration comes from the environment, like the FastAPI example:
``INVALIDTOKEN_JWKS_URL`` or ``INVALIDTOKEN_KEY`` / ``INVALIDTOKEN_KEY_FILE``,
``INVALIDTOKEN_ALGORITHMS`` (default ``RS256``), ``INVALIDTOKEN_ISSUER``,
``INVALIDTOKEN_AUDIENCE`` (default ``api://orders``) and optionally
``INVALIDTOKEN_TOKEN_TYPE`` (e.g. ``at+jwt``) and ``INVALIDTOKEN_REDIS_URL``.

Run it: ``flask --app examples/flask/app.py:create_app run`` (see README.md beside this file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from invalidtoken_mw import JWTVerifier, MemoryRevocationStore
from invalidtoken_mw.flask import InvalidToken, current_claims, require_scopes

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]


def verifier_from_env(env: dict[str, str] | None = None) -> JWTVerifier:
    """Build the verifier from ``INVALIDTOKEN_*`` environment variables."""
    env = dict(os.environ) if env is None else env
    key: str | None = env.get("INVALIDTOKEN_KEY")
    if env.get("INVALIDTOKEN_KEY_FILE"):
        key = Path(env["INVALIDTOKEN_KEY_FILE"]).read_text(encoding="utf-8")
    revocation: Any = MemoryRevocationStore()
    if env.get("INVALIDTOKEN_REDIS_URL"):
        from invalidtoken_mw import RedisRevocationStore  # noqa: PLC0415 - optional extra

        revocation = RedisRevocationStore(env["INVALIDTOKEN_REDIS_URL"])
    return JWTVerifier(
        key=key,
        jwks_url=env.get("INVALIDTOKEN_JWKS_URL"),
        algorithms=env.get("INVALIDTOKEN_ALGORITHMS", "RS256").split(","),
        issuer=env.get("INVALIDTOKEN_ISSUER"),
        audience=env.get("INVALIDTOKEN_AUDIENCE", "api://orders"),
        token_type=env.get("INVALIDTOKEN_TOKEN_TYPE") or None,
        revocation=revocation,
    )


auth = InvalidToken()


def create_app(verifier: JWTVerifier | None = None) -> Flask:
    """The orders API; ``verifier`` defaults to :func:`verifier_from_env`."""
    app = Flask(__name__)
    app.config["INVALIDTOKEN_REALM"] = "orders"
    app.config["INVALIDTOKEN_VERIFIER"] = verifier if verifier is not None else verifier_from_env()
    auth.init_app(app)

    @app.get("/health")
    @auth.exempt
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders")
    @require_scopes("orders:read")
    def list_orders() -> dict[str, Any]:
        return {"subject": current_claims().get("sub"), "orders": ORDERS}

    @app.post("/orders")
    @require_scopes("orders:write")
    def create_order() -> tuple[dict[str, Any], int]:
        return {"id": len(ORDERS) + 1, "item": "tea", "by": current_claims().get("sub")}, 201

    return app
