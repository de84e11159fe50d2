"""Role checks and claim rules through real servers, in each adapter that has route checks.

Every framework's ``require_roles`` / ``require_any_role`` reads the configured
``role_claims`` (Keycloak's ``realm_access.roles`` here) and answers the same bytes: 403,
``error="insufficient_scope"`` with no ``scope``, reason ``insufficient_role``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path
from fastapi import Depends, FastAPI
from flask import Flask
from litestar import Litestar, get
from quart import Quart
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import Guard, InvalidTokenMiddleware, JWTVerifier
from invalidtoken_mw import django as django_adapter
from invalidtoken_mw import fastapi as fastapi_adapter
from invalidtoken_mw import flask as flask_adapter
from invalidtoken_mw import litestar as litestar_adapter
from invalidtoken_mw import quart as quart_adapter
from support.django_project import wsgi_app
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint
from test_claim_rules import cognito, cognito_verifier

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.requests import Request


ROLE_CLAIMS = ["realm_access.roles"]
CHALLENGE = (
    'Bearer realm="orders", error="insufficient_scope", error_description="The access'
    ' token does not grant the role this request requires."'
)
CHALLENGE_ANY = (
    'Bearer realm="orders", error="insufficient_scope", error_description="The access'
    ' token grants none of the roles this request accepts; any one of them will do."'
)


def _flask(verifier: JWTVerifier) -> Any:

    app = Flask("roles")
    flask_adapter.InvalidToken(app, verifier=verifier, realm="orders", role_claims=ROLE_CLAIMS)

    @app.get("/admin")
    @flask_adapter.require_roles("admin", "auditor")
    def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/staff")
    @flask_adapter.require_any_role("admin", "staff")
    def staff() -> dict[str, bool]:
        return {"ok": True}

    return run_waitress(app)


def _quart(verifier: JWTVerifier) -> Any:

    app = Quart("roles")
    quart_adapter.InvalidToken(app, verifier=verifier, realm="orders", role_claims=ROLE_CLAIMS)

    @app.get("/admin")
    @quart_adapter.require_roles("admin", "auditor")
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/staff")
    @quart_adapter.require_any_role("admin", "staff")
    async def staff() -> dict[str, bool]:
        return {"ok": True}

    return run_uvicorn(app)  # type: ignore[arg-type]


def _fastapi(verifier: JWTVerifier) -> Any:

    app = FastAPI()
    fastapi_adapter.install(app, verifier=verifier, realm="orders", role_claims=ROLE_CLAIMS)

    @app.get("/admin", dependencies=[Depends(fastapi_adapter.require_roles("admin", "auditor"))])
    def admin() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/staff", dependencies=[Depends(fastapi_adapter.require_any_role("admin", "staff"))])
    def staff() -> dict[str, bool]:
        return {"ok": True}

    return run_uvicorn(app)


def _litestar(verifier: JWTVerifier) -> Any:

    @get("/admin", guards=[litestar_adapter.require_roles("admin", "auditor")])
    async def admin() -> dict[str, bool]:
        return {"ok": True}

    @get("/staff", guards=[litestar_adapter.require_any_role("admin", "staff")])
    async def staff() -> dict[str, bool]:
        return {"ok": True}

    plugin = litestar_adapter.InvalidTokenPlugin(
        verifier=verifier, realm="orders", role_claims=ROLE_CLAIMS
    )
    return run_uvicorn(Litestar([admin, staff], plugins=[plugin]))  # type: ignore[arg-type]


@django_adapter.require_roles("admin", "auditor")
def _django_admin(_request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@django_adapter.require_any_role("admin", "staff")
def _django_staff(_request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def _django(verifier: JWTVerifier) -> Any:
    patterns = [path("admin", _django_admin), path("staff", _django_staff)]
    settings = {"verifier": verifier, "realm": "orders", "role_claims": ROLE_CLAIMS}
    return run_waitress(wsgi_app(patterns, settings))


def _drf(verifier: JWTVerifier) -> Any:
    # DRF reads Django's settings when its view classes are defined.
    from support.django_project import configure  # noqa: PLC0415

    configure()
    from rest_framework.response import Response  # noqa: PLC0415
    from rest_framework.views import APIView  # noqa: PLC0415

    from invalidtoken_mw.drf import HasAnyRole, HasRoles  # noqa: PLC0415

    class Admin(APIView):
        permission_classes = (HasRoles,)
        required_roles: ClassVar[list[str]] = ["admin", "auditor"]

        def get(self, _request: object) -> Response:
            return Response({"ok": True})

    class Staff(APIView):
        permission_classes = (HasAnyRole,)
        required_roles: ClassVar[list[str]] = ["admin", "staff"]

        def get(self, _request: object) -> Response:
            return Response({"ok": True})

    patterns = [path("admin", Admin.as_view()), path("staff", Staff.as_view())]
    settings = {"verifier": verifier, "realm": "orders", "role_claims": ROLE_CLAIMS}
    return run_waitress(wsgi_app(patterns, settings))


BUILDERS = {
    "django": _django,
    "drf": _drf,
    "flask": _flask,
    "quart": _quart,
    "fastapi": _fastapi,
    "litestar": _litestar,
}


@pytest.fixture(scope="module", params=list(BUILDERS))
def served(request: pytest.FixtureRequest) -> Iterator[Any]:
    with BUILDERS[request.param](make_verifier()) as base, client(base) as http:
        yield http


def _token(*roles: str) -> dict[str, str]:
    token = mint(payload=claims(realm_access={"roles": list(roles)}, roles=["admin", "auditor"]))
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("roles", "admin", "staff"),
    [
        (("admin", "auditor"), 200, 200),
        (("staff",), 403, 200),
        (("admin",), 403, 200),
        ((), 403, 403),
    ],
)
def test_roles_all_and_any(served: Any, roles: tuple[str, ...], admin: int, staff: int) -> None:
    """Roles come from realm_access.roles only: the top-level roles claim grants nothing."""
    admin_answer = served.get("/admin", headers=_token(*roles))
    staff_answer = served.get("/staff", headers=_token(*roles))
    assert (admin_answer.status_code, staff_answer.status_code) == (admin, staff)
    if admin == 403:
        assert admin_answer.headers["www-authenticate"] == CHALLENGE
        assert admin_answer.json()["reason"] == "insufficient_role"
    if staff == 403:
        assert staff_answer.headers["www-authenticate"] == CHALLENGE_ANY


def test_roles_need_a_token(served: Any) -> None:
    answer = served.get("/admin")
    challenge = answer.headers["www-authenticate"]
    assert (answer.status_code, challenge) == (401, 'Bearer realm="orders"')


async def _cognito_view(request: Request) -> JSONResponse:
    return JSONResponse({"client_id": request.state.token_claims["client_id"]})


@pytest.fixture(scope="module")
def cognito_api() -> Iterator[Any]:
    app = Starlette(routes=[Route("/orders", _cognito_view)])
    guard = Guard(verifier=cognito_verifier(), realm="orders", scopes=["orders/read"])
    with run_uvicorn(InvalidTokenMiddleware(app, guard=guard)) as base, client(base) as http:
        yield http


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({}, 200, None),
        ({"client_id": "app-9"}, 401, "wrong_claim"),
        ({"token_use": "id"}, 401, "wrong_claim"),
        ({"aud": "app-1", "token_use": "id"}, 401, "wrong_audience"),
    ],
)
def test_cognito_access_tokens_through_a_real_server(
    cognito_api: Any, overrides: dict[str, Any], status: int, reason: str | None
) -> None:
    answer = cognito_api.get("/orders", headers={"Authorization": f"Bearer {cognito(**overrides)}"})
    assert answer.status_code == status
    if reason is None:
        assert answer.json() == {"client_id": "app-1"}
    else:
        assert answer.json()["reason"] == reason
        assert "app-9" not in answer.text
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
