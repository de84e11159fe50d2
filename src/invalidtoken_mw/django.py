"""Django adapter: ``InvalidTokenMiddleware``, route decorators and ``current_claims``.

List the middleware in ``settings.MIDDLEWARE`` and configure it with a settings dict::

    MIDDLEWARE = [..., "invalidtoken_mw.django.InvalidTokenMiddleware", ...]
    INVALIDTOKEN = {"verifier": JWTVerifier(...), "realm": "orders"}

The keys of ``INVALIDTOKEN`` are the fields of :class:`~invalidtoken_mw.GuardSettings`;
a missing or unusable setting raises ``ImproperlyConfigured`` when Django loads its
middleware (start-up). The middleware holds one :class:`~invalidtoken_mw.guard.Guard`,
so it sends the same bytes and log events as the ASGI and WSGI middlewares.

Each request is decided in ``process_view``, once Django knows the view, so the view's
markers count: :func:`exempt` (public), :func:`optional` (a token is verified when sent),
:func:`require_scopes` (all of) and :func:`require_any_scope` (any of). A URL that
resolves to no view is not authenticated (Django answers its 404). On success the
claims are ``request.token_claims`` (``None`` on a public or anonymous request);
:func:`current_claims` returns them or raises ``missing_token``. An ``AuthFailure`` or a
PyJWT ``InvalidTokenError`` raised by a view is answered by ``process_exception``; a 401
from a view without a challenge gets one. Both sync (WSGI) and async (ASGI) stacks are
served; under ASGI the token is verified without blocking the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar
from urllib.parse import quote

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.utils.module_loading import import_string

from invalidtoken_mw.guard import (
    MAX_FORM_BYTES,
    Accepted,
    AuthOutcome,
    Guard,
    Rejected,
    note_environ,
    note_scope,
)
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import validate_roles, validate_scopes
from invalidtoken_mw.settings import FIELDS, GuardSettings
from invalidtoken_mw.stepup import StepUp

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

__all__ = [
    "SETTING",
    "InvalidTokenMiddleware",
    "check_roles",
    "check_scopes",
    "check_step_up",
    "current_claims",
    "exempt",
    "failure_response",
    "guard_from_settings",
    "optional",
    "request_guard",
    "require_any_role",
    "require_any_scope",
    "require_roles",
    "require_scopes",
    "require_step_up",
]

#: The name of the Django setting that configures the middleware.
SETTING = "INVALIDTOKEN"
V = TypeVar("V")
# Settings that may name an object by its dotted path, the Django way.
_IMPORTABLE = ("verifier", "error_body")
_ROUTE_ATTR = "_invalidtoken_route"
_STATE_ATTR = "_invalidtoken_state"
# Set on a request the middleware let through unauthenticated: an @exempt view or a path
# in exclude_paths, where the token is never read.
_PUBLIC_ATTR = "_invalidtoken_public"
_PUBLIC_VIEW = (
    "current_claims() in a view exempt from authentication (@exempt or a path in"
    " exclude_paths): the token is never read there, so there are no claims. Mark the view"
    " @optional instead to use the claims when a token is sent."
)
_CHALLENGE = "www-authenticate"


# -- configuration ---------------------------------------------------------------------


def _options(config: Mapping[Any, Any], example: str) -> dict[str, Any]:
    """The settings dict as GuardSettings options, dotted paths imported."""
    options: dict[str, Any] = {}
    for key, value in config.items():
        name = key.lower() if isinstance(key, str) else key
        if name in options:
            raise ImproperlyConfigured(f"settings.{SETTING} names {name!r} twice.")
        options[name] = value
    unknown = sorted(str(name) for name in options if name not in FIELDS)
    if unknown:
        raise ImproperlyConfigured(
            f"settings.{SETTING} has unknown key(s) {', '.join(unknown)}; the keys are the"
            f" fields of GuardSettings: {', '.join(FIELDS)}."
        )
    if options.get("verifier") is None:
        raise ImproperlyConfigured(f"settings.{SETTING} needs a verifier, e.g. {example}.")
    for name in _IMPORTABLE:
        value = options.get(name)
        if isinstance(value, str):
            try:
                options[name] = import_string(value)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"settings.{SETTING}[{name!r}]: cannot import {value!r}: {exc}"
                ) from exc
    verifier = options["verifier"]
    if not hasattr(verifier, "verify") and callable(verifier):
        # A factory (e.g. one reading the environment), called when the middleware starts.
        options["verifier"] = verifier()
    return options


def guard_from_settings() -> Guard:
    """A :class:`~invalidtoken_mw.guard.Guard` built from ``settings.INVALIDTOKEN``.

    Keys are :class:`~invalidtoken_mw.GuardSettings` field names (upper-case accepted);
    ``verifier`` and ``error_body`` may be dotted paths to the object, and ``verifier``
    a function (or the dotted path to one) that returns the verifier: it is called
    when the middleware starts, so ``settings.py`` needs no keys or network.

    Raises:
        ImproperlyConfigured: The setting is missing, not a dict, has no verifier, an
            unknown key or an unusable value; the message says how to fix it.
    """
    config = getattr(settings, SETTING, None)
    example = f'{SETTING} = {{"verifier": JWTVerifier(...), "realm": "api"}}'
    if config is None:
        raise ImproperlyConfigured(
            f"invalidtoken_mw.django needs settings.{SETTING}, e.g. {example}."
        )
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(
            f"settings.{SETTING} must be a dict, e.g. {example}; got {type(config).__name__}."
        )
    options = _options(config, example)
    try:
        return Guard(GuardSettings.from_options(**options))
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"settings.{SETTING}: {exc}") from exc


# -- the request as the guard reads it -------------------------------------------------


@functools.lru_cache(maxsize=64)  # names come from the code and the settings only
def _meta_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in {"CONTENT_TYPE", "CONTENT_LENGTH"} else "HTTP_" + key


class _Request:
    """The guard's view of a Django request (both request-view protocols)."""

    __slots__ = ("method", "path", "request")

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        self.method: str = request.method or "GET"
        # path_info is the path below the mount point (SCRIPT_NAME), like PATH_INFO.
        self.path: str = request.path_info

    def header(self, name: str) -> str | None:
        value = self.request.META.get(_meta_key(name))
        return None if value is None else str(value)

    def field_lines(self, name: str) -> list[str]:
        # WSGI servers and Django's ASGI handler join repeated lines into one value.
        value = self.request.META.get(_meta_key(name))
        return [] if value is None else [str(value)]

    def query_string(self) -> str:
        return str(self.request.META.get("QUERY_STRING", ""))

    def full_path(self) -> str:
        return self.request.path

    def peer(self) -> str | None:
        value = self.request.META.get("REMOTE_ADDR")
        return None if value is None else str(value)

    def target(self) -> tuple[str, str]:
        # The scheme as Django sees it (SECURE_PROXY_SSL_HEADER applies) and the path.
        return str(self.request.scheme), quote(self.request.path)

    def note(self, outcome: AuthOutcome) -> None:
        # Under WSGI, META is the server's environ (its access log reads these keys);
        # under ASGI the scope is the server's.
        scope = getattr(self.request, "scope", None)
        if scope is not None:
            note_scope(scope, outcome)
        else:
            note_environ(self.request.META, outcome)

    def route(self) -> str | None:
        match = getattr(self.request, "resolver_match", None)
        template = getattr(match, "route", None)
        return template if isinstance(template, str) and template else None

    def _form(self) -> str | None:
        try:
            length = int(self.request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0 or length > MAX_FORM_BYTES:
            return None
        # Django keeps the body, so the view can still read request.body or request.POST.
        return self.request.body.decode("latin-1")

    def read_form(self) -> str | None:
        return self._form()


class _AsyncRequest(_Request):
    """As :class:`_Request`, for ``Guard.authenticate_async``.

    Django's ASGI handler has read the whole body into memory (or a spooled file)
    before the request object exists, so reading it never waits on the network.
    """

    __slots__ = ()

    async def read_form(self) -> str | None:  # type: ignore[override]
        return self._form()


class _State(NamedTuple):
    """What the middleware remembers on a request (``request._invalidtoken_state``)."""

    guard: Guard
    view: _Request
    token: str | None = None
    private: bool = False


# -- route markers ---------------------------------------------------------------------


class _Route(NamedTuple):
    """What a view's decorators say: public, optional, the scope and role requirements."""

    exempt: bool = False
    optional: bool = False
    scopes: tuple[tuple[tuple[str, ...], bool], ...] = ()  # (scopes, any_of) each
    roles: tuple[tuple[tuple[str, ...], bool], ...] = ()  # (roles, any_of) each
    step_up: tuple[StepUp, ...] = ()  # each must be met


_DEFAULT_ROUTE = _Route()


def _route(view: object) -> _Route:
    """The markers of a view function, or of the class behind a class-based view."""
    route = getattr(view, _ROUTE_ATTR, None)
    if route is None:
        route = getattr(getattr(view, "view_class", None), _ROUTE_ATTR, None)
    return route if isinstance(route, _Route) else _DEFAULT_ROUTE


def _mark(view: V, **changes: Any) -> V:  # noqa: ANN401 - a _Route field
    route = getattr(view, _ROUTE_ATTR, _DEFAULT_ROUTE)
    if "scopes" in changes:
        changes["scopes"] = (*route.scopes, *changes["scopes"])
    if "roles" in changes:
        changes["roles"] = (*route.roles, *changes["roles"])
    if "step_up" in changes:
        changes["step_up"] = (*route.step_up, *changes["step_up"])
    setattr(view, _ROUTE_ATTR, route._replace(**changes))
    return view


def exempt(view: V) -> V:
    """Make a view public: no token is looked for, ``request.token_claims`` is ``None``.

    Works on a view function and on a class-based view (Django's ``View``, DRF's
    ``APIView``). Put it above ``@api_view`` and other decorators.
    """
    return _mark(view, exempt=True)


def optional(view: V) -> V:
    """Make a token optional for a view: verified when sent, anonymous otherwise.

    Without a token the view runs with ``request.token_claims`` ``None``; a token that
    is sent is verified, and a bad one is refused as anywhere else.
    """
    return _mark(view, optional=True)


def _scopes_marker(scopes: tuple[str, ...], *, any_of: bool, name: str) -> Callable[[V], V]:
    required = validate_scopes(scopes)
    if not required:
        raise ValueError(f"{name}() needs at least one scope, e.g. {name}('orders:read').")

    def decorator(view: V) -> V:
        return _mark(view, scopes=((required, any_of),))

    return decorator


def require_scopes(*scopes: str) -> Callable[[V], V]:
    """Decorate a view so it needs every one of ``scopes`` (403 ``insufficient_scope``).

    The app-wide ``scopes`` setting is needed as well; decorators stack (each must be
    satisfied). A request without a token on an optional or exempt view gets
    ``missing_token``.

    Raises:
        ValueError: No scope, or one that is not an RFC 6749 scope token (at import).
    """
    return _scopes_marker(scopes, any_of=False, name="require_scopes")


def require_any_scope(*scopes: str) -> Callable[[V], V]:
    """Decorate a view so it needs at least one of ``scopes`` (403 ``insufficient_scope``).

    Raises:
        ValueError: No scope, or one that is not an RFC 6749 scope token (at import).
    """
    return _scopes_marker(scopes, any_of=True, name="require_any_scope")


def _roles_marker(roles: tuple[str, ...], *, any_of: bool, name: str) -> Callable[[V], V]:
    required = validate_roles(roles)
    if not required:
        raise ValueError(f"{name}() needs at least one role, e.g. {name}('admin').")

    def decorator(view: V) -> V:
        return _mark(view, roles=((required, any_of),))

    return decorator


def require_roles(*roles: str) -> Callable[[V], V]:
    """Decorate a view so it needs every one of ``roles`` (403 ``insufficient_role``).

    Roles are read from the ``role_claims`` setting (default ``roles``); decorators
    stack (each must be satisfied), and are checked after the scopes.

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _roles_marker(roles, any_of=False, name="require_roles")


def require_any_role(*roles: str) -> Callable[[V], V]:
    """Decorate a view so it needs at least one of ``roles`` (403 ``insufficient_role``).

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _roles_marker(roles, any_of=True, name="require_any_role")


def require_step_up(
    *, acr_values: Sequence[str] | None = None, max_age: int | None = None
) -> Callable[[V], V]:
    """Decorate a view so it needs a strong or recent user authentication.

    RFC 9470 step-up: the token's ``acr`` must be one of ``acr_values`` and/or its
    ``auth_time`` no older than ``max_age`` seconds (with the verifier's ``leeway``);
    otherwise 401 ``insufficient_user_authentication``, whose challenge carries
    ``acr_values`` / ``max_age`` so the client can have the user authenticate again.
    Checked after the scopes and roles; decorators stack. The app-wide ``acr_values``
    / ``max_age`` settings apply as well.

    Raises:
        ValueError: Neither ``acr_values`` nor ``max_age``, an empty ``acr_values``, a
            value a challenge cannot carry, or a negative ``max_age`` (at import time).
        TypeError: ``acr_values`` is a single string or ``max_age`` not an integer.
    """
    requirement = StepUp(acr_values, max_age)

    def decorator(view: V) -> V:
        return _mark(view, step_up=(requirement,))

    return decorator


# -- reading the outcome ---------------------------------------------------------------


def current_claims(request: object) -> dict[str, Any]:
    """The verified claims of ``request`` (Django's ``HttpRequest`` or DRF's ``Request``).

    Raises:
        AuthFailure: ``missing_token`` when the request carried no token on an
            :func:`optional` view; answered by the middleware.
        RuntimeError: In an :func:`exempt` view or a path in ``exclude_paths``, where
            the token is never read: mark the view :func:`optional` to use the claims
            when a token is sent.
    """
    claims: dict[str, Any] | None = getattr(request, "token_claims", None)
    if claims is None:
        inner = getattr(request, "_request", request)  # DRF's Request wraps Django's
        if getattr(inner, _PUBLIC_ATTR, False):
            raise RuntimeError(_PUBLIC_VIEW)
        raise AuthFailure(Reason.MISSING_TOKEN)
    return claims


def check_scopes(request: object, scopes: Iterable[str], *, any_of: bool = False) -> None:
    """Check scopes inside a view, e.g. different ones per HTTP method.

    Like :func:`require_scopes` (or :func:`require_any_scope` with ``any_of``); the
    failure is raised and answered by the middleware.

    Raises:
        AuthFailure: ``insufficient_scope``, or ``missing_token`` without a token.
    """
    request_guard(request).check_scopes(current_claims(request), scopes, any_of=any_of)


def check_roles(request: object, roles: Iterable[str], *, any_of: bool = False) -> None:
    """Check roles inside a view, e.g. different ones per HTTP method.

    Like :func:`require_roles` (or :func:`require_any_role` with ``any_of``); the
    failure is raised and answered by the middleware.

    Raises:
        AuthFailure: ``insufficient_role``, or ``missing_token`` without a token.
    """
    request_guard(request).check_roles(current_claims(request), roles, any_of=any_of)


def check_step_up(request: object, requirement: StepUp) -> None:
    """Check a step-up requirement inside a view, e.g. only for some HTTP methods.

    Like :func:`require_step_up`; build ``requirement`` (a
    :class:`~invalidtoken_mw.stepup.StepUp`) once, at import time.

    Raises:
        AuthFailure: ``insufficient_user_authentication``, or ``missing_token``
            without a token.
    """
    request_guard(request).check_step_up(current_claims(request), requirement)


def request_guard(request: object) -> Guard:
    """The guard of the middleware that decided ``request`` (Django's or DRF's request).

    Raises:
        ImproperlyConfigured: The middleware did not see the request: it is not in
            ``settings.MIDDLEWARE``.
    """
    state: _State | None = getattr(getattr(request, "_request", request), _STATE_ATTR, None)
    if state is None:
        raise ImproperlyConfigured(
            "this request was not seen by invalidtoken_mw.django.InvalidTokenMiddleware:"
            " add it to settings.MIDDLEWARE."
        )
    return state.guard


def failure_response(request: HttpRequest, exc: BaseException) -> HttpResponse | None:
    """The middleware's answer to a failure raised while serving ``request``.

    For an ``AuthFailure`` or a PyJWT ``InvalidTokenError``: the same bytes and the one
    log event of any refusal; ``None`` for any other exception (handle it yourself).
    For handlers of your own, e.g. DRF's ``EXCEPTION_HANDLER``.

    Raises:
        ImproperlyConfigured: The middleware is not in ``settings.MIDDLEWARE``.
    """
    request_guard(request)
    state: _State = getattr(request, _STATE_ATTR)
    refused = state.guard.reject(exc, state.view, token=state.token)
    return None if refused is None else _response(refused)


def _response(refused: Rejected) -> HttpResponse:
    answer = refused.answer
    response = HttpResponse(answer.body, status=answer.status)
    if all(name != "content-type" for name, _ in answer.headers):
        del response["Content-Type"]  # the same bare 204 as the other adapters
    for name, value in answer.headers:
        response[name] = value
    return response


# -- the middleware --------------------------------------------------------------------


class InvalidTokenMiddleware:
    """Authenticate bearer tokens for a Django project (sync and async).

    Add ``"invalidtoken_mw.django.InvalidTokenMiddleware"`` to ``settings.MIDDLEWARE``
    and configure ``settings.INVALIDTOKEN`` (see :func:`guard_from_settings`). Place it
    below middleware that must see every request first (CORS, security headers).

    Raises:
        ImproperlyConfigured: ``settings.INVALIDTOKEN`` is missing or unusable.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]
    ) -> None:
        """Build the guard from the settings; follow the mode Django chose (sync or async)."""
        self.get_response = get_response
        self.guard = guard_from_settings()
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
            # Django calls process_view in the handler's mode: a coroutine here, so the
            # token is verified on the event loop without a thread.
            self.process_view = self._process_view_async  # type: ignore[method-assign,assignment]

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (see :meth:`Guard.stats`)."""
        return self.guard.stats()

    def __call__(self, request: HttpRequest) -> Any:  # noqa: ANN401 - a response or a coroutine
        """Call the rest of the stack, then finish a 401 or a query-token response."""
        if self.is_async:
            return self._call_async(request)
        request.token_claims = None  # type: ignore[attr-defined]
        # The RFC 9728 metadata path usually resolves to no view: answered before routing.
        served = self.guard.serve_metadata(request.method or "GET", request.path_info)
        if served is not None:
            return _response(served)
        response: HttpResponseBase = self.get_response(request)  # type: ignore[assignment]
        return self._finish(request, response)

    async def _call_async(self, request: HttpRequest) -> HttpResponseBase:
        request.token_claims = None  # type: ignore[attr-defined]
        served = self.guard.serve_metadata(request.method or "GET", request.path_info)
        if served is not None:
            return _response(served)
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        return self._finish(request, response)

    def _finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        state: _State | None = getattr(request, _STATE_ATTR, None)
        private = state is not None and state.private
        if response.status_code == 401 or private:  # noqa: PLR2004
            view = state.view if state is not None else _Request(request)
            current = list(response.items())
            finished = self.guard.finish_headers(
                response.status_code, current, view, private=private
            )
            if finished != current:
                for name, value in finished:
                    response[name] = value
        return response

    # -- the decision, once the view is known ----------------------------------------

    def _before(self, request: HttpRequest, view_func: object) -> tuple[_Route, bool]:
        """The view's markers; whether the guard must decide at all."""
        route = _route(view_func)
        if route.exempt:
            setattr(request, _STATE_ATTR, _State(self.guard, _Request(request)))
            setattr(request, _PUBLIC_ATTR, True)
            return route, False
        return route, True

    def _after(
        self, request: HttpRequest, view: _Request, route: _Route, outcome: Accepted | Rejected
    ) -> HttpResponse | None:
        if isinstance(outcome, Rejected):
            setattr(request, _STATE_ATTR, _State(self.guard, view))
            return _response(outcome)
        setattr(request, _STATE_ATTR, _State(self.guard, view, outcome.token, outcome.private))
        request.token_claims = outcome.claims  # type: ignore[attr-defined]
        if outcome.claims is None and self.guard.is_public(view.path):
            setattr(request, _PUBLIC_ATTR, True)
        return self._check_scopes(request, view, route, outcome)

    def _check_scopes(
        self, request: HttpRequest, view: _Request, route: _Route, outcome: Accepted
    ) -> HttpResponse | None:
        if not (route.scopes or route.roles or route.step_up):
            return None
        try:
            if outcome.claims is None:
                raise AuthFailure(Reason.MISSING_TOKEN)  # noqa: TRY301 - answered just below
            for scopes, any_of in route.scopes:
                self.guard.check_scopes(outcome.claims, scopes, any_of=any_of)
            for roles, any_of in route.roles:
                self.guard.check_roles(outcome.claims, roles, any_of=any_of)
            for requirement in route.step_up:
                self.guard.check_step_up(outcome.claims, requirement)
        except AuthFailure as failure:
            refused = self.guard.reject(failure, view, token=outcome.token)
            if refused is None:  # pragma: no cover - an AuthFailure is always one
                raise
            request.token_claims = None  # type: ignore[attr-defined]
            return _response(refused)
        return None

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        """Decide the request: ``None`` lets the view run; else the refusal to send."""
        del view_args, view_kwargs
        route, decide = self._before(request, view_func)
        if not decide:
            return self._check_scopes(request, _Request(request), route, Accepted(None))
        view = _Request(request)
        outcome = self.guard.authenticate(view, optional=route.optional)
        return self._after(request, view, route, outcome)

    async def _process_view_async(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        """:meth:`process_view` without blocking the event loop (ASGI)."""
        del view_args, view_kwargs
        route, decide = self._before(request, view_func)
        if not decide:
            return self._check_scopes(request, _Request(request), route, Accepted(None))
        view = _AsyncRequest(request)
        outcome = await self.guard.authenticate_async(view, optional=route.optional)
        return self._after(request, view, route, outcome)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer an ``AuthFailure`` or PyJWT error raised by a view; ``None`` for others."""
        if getattr(request, _STATE_ATTR, None) is None:
            # Raised before process_view (another middleware's process_view).
            setattr(request, _STATE_ATTR, _State(self.guard, _Request(request)))
        return failure_response(request, exception)
