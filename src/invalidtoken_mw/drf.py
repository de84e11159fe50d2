"""Django REST framework: an authentication class, scope permissions, an exception handler.

Works together with :class:`invalidtoken_mw.django.InvalidTokenMiddleware`, which
decides every request before DRF sees it (one verification, one log event per
request); the classes here read its outcome::

    REST_FRAMEWORK = {
        "DEFAULT_AUTHENTICATION_CLASSES": ["invalidtoken_mw.drf.InvalidTokenAuthentication"],
    }

* :class:`InvalidTokenAuthentication` gives DRF a :class:`TokenUser` and the claims
  (``request.user``, ``request.auth``), and our challenge for DRF's own 401s
  (``NotAuthenticated``).
* :class:`HasScopes` and :class:`HasAnyScope` check the view's ``required_scopes``;
  :class:`HasRoles` and :class:`HasAnyRole` its ``required_roles``; :class:`HasStepUp`
  its ``required_acr_values`` and ``required_max_age`` (RFC 9470 step-up).
* An ``AuthFailure`` or PyJWT error raised in an ``APIView`` is re-raised by DRF's
  default exception handler and answered by the middleware; a project with its own
  ``EXCEPTION_HANDLER`` that answers every exception calls :func:`exception_handler`
  first (or uses it as the handler).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from invalidtoken_mw.django import (
    check_roles,
    check_scopes,
    check_step_up,
    failure_response,
    request_guard,
)
from invalidtoken_mw.stepup import StepUp

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from django.http import HttpRequest
    from django.http.response import HttpResponseBase
    from rest_framework.request import Request
    from rest_framework.views import APIView

__all__ = [
    "HasAnyRole",
    "HasAnyScope",
    "HasRoles",
    "HasScopes",
    "HasStepUp",
    "InvalidTokenAuthentication",
    "TokenUser",
    "exception_handler",
]


class TokenUser:
    """The user of a request authenticated by a token, with no database behind it.

    Attributes:
        claims: The verified claims.
        id: The ``sub`` claim (also ``pk`` and ``username``).
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, claims: Mapping[str, Any]) -> None:
        """Hold the claims; the identity is the ``sub`` claim."""
        self.claims = claims
        subject = claims.get("sub")
        self.id = self.pk = self.username = None if subject is None else str(subject)

    def __str__(self) -> str:
        """The subject."""
        return self.username or ""

    def __eq__(self, other: object) -> bool:
        """Two token users are equal when their subjects are."""
        return isinstance(other, TokenUser) and other.id == self.id

    def __hash__(self) -> int:
        """Hashed by subject, like a Django user by primary key."""
        return hash(self.id)

    def get_username(self) -> str:
        """The subject, as Django's ``AbstractBaseUser.get_username``."""
        return str(self)


def _django_request(request: Request | HttpRequest) -> HttpRequest:
    # DRF's Request wraps Django's; the middleware's outcome is on Django's.
    inner: HttpRequest = getattr(request, "_request", request)
    return inner


class InvalidTokenAuthentication(BaseAuthentication):
    """DRF authentication from :class:`~invalidtoken_mw.django.InvalidTokenMiddleware`.

    ``authenticate`` returns ``(user, claims)`` for a request with a verified token and
    ``None`` for an anonymous one (a public or optional view), so DRF's permissions
    decide; it never verifies again. ``authenticate_header`` returns the middleware's
    challenge, so DRF's ``NotAuthenticated`` 401 carries ``WWW-Authenticate: Bearer
    realm=...``. Override :meth:`get_user` to map claims to your own user model.

    Raises:
        ImproperlyConfigured: The middleware is not in ``settings.MIDDLEWARE``.
    """

    def authenticate(self, request: Request) -> tuple[Any, dict[str, Any]] | None:
        """``(user, claims)`` from the middleware's outcome, or ``None`` (anonymous)."""
        inner = _django_request(request)
        request_guard(inner)  # the middleware must have decided this request
        claims: dict[str, Any] | None = getattr(inner, "token_claims", None)
        if claims is None:
            return None
        return self.get_user(claims), claims

    def get_user(self, claims: dict[str, Any]) -> Any:  # noqa: ANN401 - any user model
        """The user for verified ``claims``: a :class:`TokenUser` unless overridden."""
        return TokenUser(claims)

    def authenticate_header(self, request: Request) -> str:
        """The bare challenge, for DRF's own 401 answers."""
        return request_guard(_django_request(request)).bare_challenge


class _ClaimPermission(BasePermission):
    """Reads a list from a view attribute and hands it to one of the django checks."""

    attribute = "required_scopes"
    example = "['orders:read']"
    check: Callable[..., None]
    any_of = False

    def has_permission(self, request: Request, view: APIView) -> bool:
        values: object = getattr(view, self.attribute, None)
        if not values or isinstance(values, str) or not isinstance(values, (list, tuple)):
            name = type(self).__name__
            raise TypeError(
                f"{name} needs a list in the view's {self.attribute},"
                f" e.g. {self.attribute} = {self.example} on {type(view).__name__}."
            )
        # Raised, not False: the middleware answers it with the challenge it calls for.
        type(self).check(_django_request(request), values, any_of=self.any_of)
        return True


class _ScopePermission(_ClaimPermission):
    check = staticmethod(check_scopes)


class _RolePermission(_ClaimPermission):
    attribute = "required_roles"
    example = "['admin']"
    check = staticmethod(check_roles)


class HasScopes(_ScopePermission):
    """Needs every scope of the view's ``required_scopes`` (403 ``insufficient_scope``).

    An anonymous request gets ``missing_token`` (401). The answer is the middleware's,
    like every refusal.
    """


class HasAnyScope(_ScopePermission):
    """Needs at least one scope of the view's ``required_scopes``."""

    any_of = True


class HasRoles(_RolePermission):
    """Needs every role of the view's ``required_roles`` (403 ``insufficient_role``).

    Roles are read from the ``role_claims`` setting (default ``roles``). An anonymous
    request gets ``missing_token`` (401).
    """


class HasAnyRole(_RolePermission):
    """Needs at least one role of the view's ``required_roles``."""

    any_of = True


class HasStepUp(BasePermission):
    """Needs the view's step-up requirement (401 ``insufficient_user_authentication``).

    The view sets ``required_acr_values`` (a list of accepted ``acr`` values) and/or
    ``required_max_age`` (seconds since ``auth_time``); the requirement is checked
    once per view class, on its first request, and kept. An anonymous request gets
    ``missing_token`` (401).
    """

    def has_permission(self, request: Request, view: APIView) -> bool:
        """Check the token against the view's requirement (raising, to be answered)."""
        view_class = type(view)
        requirement = view_class.__dict__.get("_invalidtoken_step_up")
        if not isinstance(requirement, StepUp):
            acr_values = getattr(view, "required_acr_values", None)
            max_age = getattr(view, "required_max_age", None)
            if acr_values is None and max_age is None:
                raise TypeError(
                    "HasStepUp needs required_acr_values (e.g. ['urn:example:mfa']) and/or"
                    f" required_max_age (e.g. 300) on {view_class.__name__}."
                )
            requirement = StepUp(acr_values, max_age)
            # Built once per view class: a requirement is configuration, not per request.
            view_class._invalidtoken_step_up = requirement  # type: ignore[attr-defined]  # noqa: SLF001
        check_step_up(_django_request(request), requirement)
        return True


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponseBase | None:
    """DRF's ``EXCEPTION_HANDLER`` answering token failures like the middleware.

    An ``AuthFailure`` or PyJWT ``InvalidTokenError`` gets the middleware's answer
    (same bytes, one log event); anything else goes to DRF's default handler. Call it
    first from a handler of your own.
    """
    # Imported here: DRF imports this module (DEFAULT_AUTHENTICATION_CLASSES) while it
    # initialises rest_framework.views, so a module-level import would be circular.
    from rest_framework.views import exception_handler as drf_exception_handler  # noqa: PLC0415

    request = context.get("request")
    if request is not None:
        answer = failure_response(_django_request(request), exc)
        if answer is not None:
            return answer
    return drf_exception_handler(exc, context)
