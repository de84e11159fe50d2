"""The demo's application: the orders API of ``examples/fastapi``, built in code.

Part of the package so that ``invalidtoken-mw demo`` runs from an installed wheel, not
only from a source checkout. Needs the ``demo`` extra (FastAPI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI

from invalidtoken_mw.fastapi import (
    TokenClaims,
    install,
    require_roles,
    require_scopes,
    require_step_up,
)
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from invalidtoken_mw.verify import JWTVerifier

__all__ = ["create_app"]

ORDERS = [{"id": 1, "item": "coffee beans", "quantity": 2}]


MFA_ACR = "urn:example:mfa"
"""The ``acr`` a multi-factor login gets, required to replace the orders."""


def create_app(verifier: JWTVerifier, **options: Any) -> FastAPI:  # noqa: ANN401 - GuardSettings
    """The orders API: ``GET``, ``POST``, ``DELETE``, ``PUT`` and ``PATCH`` on ``/orders``.

    ``GET`` needs ``orders:read``, ``POST`` ``orders:write``, ``DELETE`` the
    ``orders-admin`` role, ``PUT`` a multi-factor login (``acr``, RFC 9470) and
    ``PATCH`` a DPoP-bound token (RFC 9449).

    ``/health`` is public; every other answer to a bad token comes from ``verifier``.
    ``options`` go to ``install``.
    """
    app = FastAPI(title="Orders API (invalidtoken-mw demo)")
    install(app, verifier=verifier, realm="orders", exclude_paths=["/health"], **options)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def list_orders(claims: TokenClaims) -> dict[str, Any]:
        return {"subject": claims.get("sub"), "orders": ORDERS}

    @app.post("/orders", dependencies=[Depends(require_scopes("orders:write"))], status_code=201)
    def create_order(claims: TokenClaims) -> dict[str, Any]:
        return {"id": len(ORDERS) + 1, "item": "tea", "quantity": 1, "by": claims.get("sub")}

    @app.delete("/orders", dependencies=[Depends(require_roles("orders-admin"))])
    def clear_orders() -> dict[str, Any]:
        return {"orders": ORDERS}  # the demo never deletes: admins see the list

    # Replacing every order is sensitive: it needs a multi-factor login (RFC 9470).
    @app.put("/orders", dependencies=[Depends(require_step_up(acr_values=[MFA_ACR]))])
    def replace_orders() -> dict[str, Any]:
        return {"orders": ORDERS}  # the demo never replaces: the list is shown

    @app.patch("/orders")
    def update_orders(claims: TokenClaims) -> dict[str, Any]:
        # One route that takes proof-of-possession only: a bearer token is the wrong method.
        if "jkt" not in (claims.get("cnf") or {}):
            raise AuthFailure(Reason.DPOP_REQUIRED)
        return {"orders": ORDERS}

    return app
