"""Django: ``invalidtoken_mw.django.InvalidTokenMiddleware`` in ``MIDDLEWARE``.

Configured from ``settings.INVALIDTOKEN``; ``process_view`` decides each request with the
view's decorators (``@optional``, ``@require_any_scope``, ``@require_scopes``),
``process_exception`` answers raised failures, and a bare 401 gets the challenge. Served
as Django's WSGI application under waitress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.django import current_claims, optional, require_any_scope, require_scopes
from support.django_project import wsgi_app

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from django.core.handlers.wsgi import WSGIHandler

    from invalidtoken_mw import TokenVerifier

NAME = "Django"
SERVER = "wsgi"
UNSUPPORTED: dict[str, str] = {}


def protected(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"sub": current_claims(request)["sub"]})


def raise_failure(_request: HttpRequest) -> HttpResponse:
    raise AuthFailure(Reason.REVOKED)


def raise_pyjwt(_request: HttpRequest) -> HttpResponse:
    raise jwt.ExpiredSignatureError("expired")


def bare_401(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"detail": "not for you"}, status=401)


@optional
def optional_view(request: HttpRequest) -> HttpResponse:
    claims = request.token_claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": None if claims is None else claims["sub"]})


@require_any_scope("orders:read", "orders:admin")
def scopes_any(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


@require_scopes("orders:read", "orders:write")
def scopes_all(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


urlpatterns = [
    path("protected", protected),
    path("raise", raise_failure),
    path("raise-pyjwt", raise_pyjwt),
    path("bare-401", bare_401),
    path("optional", optional_view),
    path("scopes-any", scopes_any),
    path("scopes-all", scopes_all),
]


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> WSGIHandler:
    """Django's WSGI application with ``INVALIDTOKEN`` set as docs/django.md shows."""
    return wsgi_app(
        urlpatterns, {"verifier": verifier, "realm": "orders", "error_body": error_body, **options}
    )
