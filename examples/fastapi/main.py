"""An orders API protected by invalidtoken-mw (FastAPI).

Configuration comes from the environment:

- ``INVALIDTOKEN_JWKS_URL`` (an identity provider's JWKS endpoint), or
  ``INVALIDTOKEN_KEY`` / ``INVALIDTOKEN_KEY_FILE`` (an HMAC secret or a PEM public key);
- ``INVALIDTOKEN_ALGORITHMS`` (comma-separated, default ``RS256``);
- ``INVALIDTOKEN_ISSUER`` and ``INVALIDTOKEN_AUDIENCE`` (default ``api://orders``);
- ``INVALIDTOKEN_TOKEN_TYPE`` (optional): the required ``typ`` header, e.g. ``at+jwt``;
- ``INVALIDTOKEN_REDIS_URL`` (optional): share revocations through Redis.

With ``prometheus_client`` installed it also serves a public ``/metrics`` endpoint.

Run it: ``uvicorn --factory main:create_app --app-dir examples/fastapi`` (see README.md
beside this file).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Response, WebSocket

from invalidtoken_mw import JWTVerifier, MemoryRevocationStore, PrometheusMetrics, check_scopes
from invalidtoken_mw import verifier_from_env as from_env
from invalidtoken_mw.fastapi import OptionalTokenClaims, TokenClaims, install, require_scopes

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]
MENU = ["coffee beans", "tea"]


def verifier_from_env() -> JWTVerifier:
    """The verifier, from ``INVALIDTOKEN_*`` environment variables (see the module docstring)."""
    return from_env(
        algorithms=["RS256"], audience="api://orders", revocation=MemoryRevocationStore()
    )


def prometheus_endpoint(app: FastAPI) -> list[PrometheusMetrics]:
    """Serve ``/metrics`` when prometheus_client is installed; the counters to feed it."""
    try:
        import prometheus_client  # noqa: PLC0415 - optional: the [prometheus] extra
    except ImportError:
        return []
    registry = prometheus_client.CollectorRegistry()  # one per app: tests build several

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(
            prometheus_client.generate_latest(registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    return [PrometheusMetrics(registry)]


def create_app(verifier: JWTVerifier | None = None) -> FastAPI:
    """The orders API; ``verifier`` defaults to :func:`verifier_from_env`."""
    app = FastAPI(title="Orders API (invalidtoken-mw example)")
    install(
        app,
        verifier=verifier if verifier is not None else verifier_from_env(),
        realm="orders",
        exclude_paths=["/health", "/metrics"],
        metrics=prometheus_endpoint(app),
    )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/menu")
    def menu(claims: OptionalTokenClaims) -> dict[str, Any]:
        # Optional authentication: anyone may read the menu; a token, when sent, is
        # verified (a bad one is refused) and personalises the answer.
        return {"items": MENU, "for": claims.get("sub") if claims else None}

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def list_orders(claims: TokenClaims) -> dict[str, Any]:
        return {"subject": claims.get("sub"), "orders": ORDERS}

    @app.post("/orders", dependencies=[Depends(require_scopes("orders:write"))], status_code=201)
    def create_order(claims: TokenClaims) -> dict[str, Any]:
        return {"id": len(ORDERS) + 1, "item": "tea", "quantity": 1, "by": claims.get("sub")}

    @app.websocket("/ws/orders")
    async def order_feed(websocket: WebSocket) -> None:
        # The middleware refused bad tokens before this point (HTTP 401/403 or close 1008);
        # a failure raised here before accept() is denied the same way.
        claims = websocket.scope["state"]["token_claims"]
        check_scopes(claims, ["orders:read"])
        await websocket.accept()
        await websocket.send_json({"subject": claims.get("sub"), "orders": ORDERS})
        await websocket.close()

    return app
