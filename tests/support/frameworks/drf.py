"""Django REST framework: ``APIView`` classes behind the Django middleware.

``InvalidTokenAuthentication`` is the default authentication class (``request.user``,
``request.auth``); scopes come from the ``HasAnyScope`` / ``HasScopes`` permissions and
``required_scopes``; ``@optional`` marks the optional view. A failure raised in an
``APIView`` goes through DRF's default exception handler, which re-raises it, to the
middleware's ``process_exception``. Served as Django's WSGI application under waitress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import jwt
from django.urls import path

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.django import current_claims, optional
from support.django_project import configure, wsgi_app

# DRF reads Django's settings when its view classes are defined.
configure()

from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from invalidtoken_mw.drf import HasAnyScope, HasScopes  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from django.core.handlers.wsgi import WSGIHandler
    from rest_framework.request import Request

    from invalidtoken_mw import TokenVerifier

NAME = "Django REST framework"
SERVER = "wsgi"
UNSUPPORTED: dict[str, str] = {}


class Protected(APIView):
    def get(self, request: Request) -> Response:
        return Response({"sub": current_claims(request)["sub"]})


class RaiseFailure(APIView):
    def get(self, _request: Request) -> Response:
        raise AuthFailure(Reason.REVOKED)


class RaisePyJWT(APIView):
    def get(self, _request: Request) -> Response:
        raise jwt.ExpiredSignatureError("expired")


class Bare401(APIView):
    def get(self, _request: Request) -> Response:
        return Response({"detail": "not for you"}, status=401)


@optional
class Optional(APIView):
    def get(self, request: Request) -> Response:
        # request.auth: the claims, or None for an anonymous request.
        return Response({"sub": None if request.auth is None else current_claims(request)["sub"]})


class ScopesAny(APIView):
    permission_classes = (HasAnyScope,)
    required_scopes: ClassVar[list[str]] = ["orders:read", "orders:admin"]

    def get(self, _request: Request) -> Response:
        return Response({"ok": True})


class ScopesAll(APIView):
    permission_classes = (HasScopes,)
    required_scopes: ClassVar[list[str]] = ["orders:read", "orders:write"]

    def get(self, _request: Request) -> Response:
        return Response({"ok": True})


urlpatterns = [
    path("protected", Protected.as_view()),
    path("raise", RaiseFailure.as_view()),
    path("raise-pyjwt", RaisePyJWT.as_view()),
    path("bare-401", Bare401.as_view()),
    path("optional", Optional.as_view()),
    path("scopes-any", ScopesAny.as_view()),
    path("scopes-all", ScopesAll.as_view()),
]


def build(
    verifier: TokenVerifier,
    *,
    error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None,
    **options: Any,
) -> WSGIHandler:
    """Django's WSGI application, DRF configured as docs/django.md shows."""
    return wsgi_app(
        urlpatterns, {"verifier": verifier, "realm": "orders", "error_body": error_body, **options}
    )
