"""Flask extension: ``InvalidToken``, ``require_scopes`` and ``current_claims``.

Follows the Flask extension pattern: ``InvalidToken(app)`` or ``InvalidToken()`` then
``init_app(app)`` (app factories); setup happens only in :meth:`InvalidToken.init_app`;
the instance is registered as ``app.extensions["invalidtoken"]``. Settings come from
keyword arguments, then ``INVALIDTOKEN_*`` config keys, then defaults (which
``init_app`` puts in ``app.config`` with ``setdefault``).

Authentication runs in a ``before_request`` hook through the same
:class:`~invalidtoken_mw.guard.Guard` as the middlewares, so answers and log events are
identical. ``AuthFailure`` and PyJWT errors raised in views are rendered by the library
even when the application has its own ``errorhandler(401)``; a 401 produced by a view
without a challenge gets one. A CORS preflight is answered with a bare 204 before any
view runs (``after_request`` hooks such as Flask-CORS's still add their headers),
unless ``preflight_passthrough`` is on.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, TypeVar, overload

import jwt
from flask import Blueprint, Flask, Response, current_app, g, request

from invalidtoken_mw.extract import TokenSource
from invalidtoken_mw.guard import PREFLIGHT_STATUS, Guard, failure_from_exception, is_cors_preflight
from invalidtoken_mw.log import RequestFacts
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import check_scopes, validate_scopes

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InvalidToken", "current_claims", "require_scopes"]

F = TypeVar("F", bound="Callable[..., Any]")
_EXTENSION = "invalidtoken"
_EXEMPT_ATTR = "_invalidtoken_exempt"
# Config key (without the INVALIDTOKEN_ prefix) for each Guard option.
_OPTIONS = (
    "verifier",
    "realm",
    "exclude_paths",
    "exclude_exact_paths",
    "preflight_passthrough",
    "optional",
    "scopes",
    "error_uri",
    "resource_metadata",
    "problem_json",
    "allow_query_token",
    "allow_body_token",
    "max_token_bytes",
    "add_missing_challenge",
    "retry_after",
    "request_id_header",
    "client_ip_header",
    "fingerprint_key",
    "log_rate_limit",
    "metrics",
    "log_accepted",
)
# The defaults init_app puts in app.config (setdefault): Guard's own keyword defaults.
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(Guard.__init__).parameters.items()
    if name in _OPTIONS and parameter.default is not inspect.Parameter.empty
}


class InvalidToken:
    """Protect a Flask application's views with bearer tokens.

    Args:
        app: The application; or call :meth:`init_app` later.
        **options: Any :class:`~invalidtoken_mw.guard.Guard` option (``verifier``,
            ``realm``, ``exclude_paths``, ...). Each can also be set as
            ``INVALIDTOKEN_<NAME>`` in ``app.config``; keyword arguments win.
    """

    def __init__(self, app: Flask | None = None, **options: Any) -> None:  # noqa: ANN401
        """Remember the options; set up ``app`` now if given."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.options = options
        self._exempt_blueprints: set[str] = set()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the hooks and handlers on ``app`` (app-factory friendly).

        Raises:
            ValueError: No verifier in the options or ``INVALIDTOKEN_VERIFIER``.
        """
        for name, default in _DEFAULTS.items():
            app.config.setdefault(f"INVALIDTOKEN_{name.upper()}", default)
        # An explicit None (e.g. log_rate_limit=None) is a setting too, not "unset".
        settings: dict[str, Any] = {}
        for name in _OPTIONS:
            key = f"INVALIDTOKEN_{name.upper()}"
            if name in self.options:
                settings[name] = self.options[name]
            elif key in app.config:
                settings[name] = app.config[key]
        if settings.get("verifier") is None:
            raise ValueError(
                "InvalidToken needs a verifier: InvalidToken(app, verifier=JWTVerifier(...))"
                " or app.config['INVALIDTOKEN_VERIFIER']."
            )
        guard: Guard[Flask] = Guard(app, **settings)
        app.extensions[_EXTENSION] = _State(self, guard)
        app.before_request(_authenticate)
        app.after_request(_add_challenge)
        app.register_error_handler(AuthFailure, _render_failure)
        app.register_error_handler(jwt.InvalidTokenError, _render_failure)

    @overload
    def exempt(self, view: Blueprint) -> Blueprint: ...

    @overload
    def exempt(self, view: F) -> F: ...

    def exempt(self, view: F | Blueprint) -> F | Blueprint:
        """Make a view function or a whole blueprint public (no token needed)."""
        if isinstance(view, Blueprint):
            self._exempt_blueprints.add(view.name)
            return view
        setattr(view, _EXEMPT_ATTR, True)
        return view


class _State:
    """What the hooks need, stored in ``app.extensions``."""

    def __init__(self, extension: InvalidToken, guard: Guard[Flask]) -> None:
        self.extension = extension
        self.guard = guard


def _state() -> _State:
    state: _State = current_app.extensions[_EXTENSION]
    return state


def _is_exempt(state: _State) -> bool:
    if request.blueprint and any(
        name in state.extension._exempt_blueprints  # noqa: SLF001 - the extension's own state
        for name in request.blueprint.split(".")
    ):
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(view is not None and getattr(view, _EXEMPT_ATTR, False))


def _facts() -> RequestFacts:
    guard = _state().guard
    forwarded = request.headers.getlist(guard.client_ip_header) if guard.client_ip_header else None
    return RequestFacts(
        method=request.method,
        path=request.path,
        client_ip=guard.client_ip(request.remote_addr, forwarded),
        user_agent=request.headers.get("User-Agent"),
        request_id=request.headers.get(guard.request_id_header)
        if guard.request_id_header
        else None,
    )


def _authenticate() -> Response | None:
    state = _state()
    guard = state.guard
    g.token_claims = None
    g.invalidtoken_token = None
    g.invalidtoken_private = False
    if guard.is_public(request.path) or _is_exempt(state):
        return None
    if request.method == "OPTIONS" and is_cors_preflight(
        request.method,
        {name.lower(): value for name, value in request.headers.items()},
        request.query_string.decode("latin-1"),
    ):
        if guard.preflight_passthrough:
            return None
        # Returning a response skips the view; after_request hooks (Flask-CORS) still run.
        answer = Response(status=PREFLIGHT_STATUS)
        answer.headers.remove("Content-Type")  # the same bare 204 as the middlewares
        return answer
    body = None
    if guard.extractor.wants_body(request.method, request.content_type):
        body = request.get_data(as_text=True)
    found = guard.extract(
        request.headers.getlist("Authorization"),
        request.query_string.decode("latin-1"),
        body,
    )
    if found is None:
        return None
    g.invalidtoken_token = found.token
    g.invalidtoken_private = found.source is TokenSource.QUERY
    g.token_claims = guard.authorize(guard.verifier.verify(found.token))
    guard.events.count_accepted()
    return None


def _render_failure(exc: Exception) -> Response:
    failure = failure_from_exception(exc) or AuthFailure(Reason.MALFORMED_TOKEN)
    guard = _state().guard
    answer = guard.reject(
        failure,
        _facts(),
        token=g.get("invalidtoken_token"),
        accept=request.headers.get("Accept"),
        origin=request.headers.get("Origin"),
    )
    return Response(answer.body, status=answer.status, headers=list(answer.headers))


def _add_challenge(response: Response) -> Response:
    # A response to a query-token request must not be cached publicly (RFC 6750 §2.3).
    private = bool(g.get("invalidtoken_private"))
    if private or (
        response.status_code == 401  # noqa: PLR2004
        and "WWW-Authenticate" not in response.headers
    ):
        guard = _state().guard
        patched = guard.patch_app_headers(
            response.status_code,
            list(response.headers.items()),
            cors="Origin" in request.headers,
            private=private,
        )
        response.headers.clear()
        response.headers.extend(patched)
    return response


def current_claims() -> dict[str, Any]:
    """The verified claims of the current request.

    Raises:
        AuthFailure: ``missing_token`` when the request carried no token (a public
            view, or optional authentication).
    """
    claims: dict[str, Any] | None = g.get("token_claims")
    if claims is None:
        raise AuthFailure(Reason.MISSING_TOKEN)
    return claims


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Decorate a view so it needs every one of ``scopes`` (403 ``insufficient_scope``).

    Raises:
        ValueError: A scope is not a valid RFC 6749 scope token (at import time).
    """
    required = validate_scopes(scopes)

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - any view
            check_scopes(current_claims(), required)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
