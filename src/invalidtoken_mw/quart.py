"""Quart extension: ``InvalidToken``, ``current_claims``, ``optional_claims``, scope decorators.

The asynchronous twin of :mod:`invalidtoken_mw.flask`, with the same names: the
extension pattern (``InvalidToken(app)``, or ``InvalidToken()`` then ``init_app(app)``;
the instance is registered as ``app.extensions["invalidtoken"]``), settings from keyword
arguments, then ``INVALIDTOKEN_*`` config keys, then defaults.

Authentication runs in ``before_request`` and ``before_websocket`` hooks through the
same :class:`~invalidtoken_mw.guard.Guard` as the middlewares
(:meth:`~invalidtoken_mw.guard.Guard.authenticate_async`: nothing blocks the event
loop), so answers and log events are identical. ``AuthFailure`` and PyJWT errors raised
in views are rendered by the library; a 401 produced by a view without a challenge gets
one. A refused websocket handshake gets the HTTP answer when the server supports the
``websocket.http.response`` extension; otherwise Quart closes the connection.

Per view: ``@auth.exempt`` makes a view (or a blueprint) public: its token is never
read. ``@auth.optional`` makes authentication optional: a request without a token runs
the view anonymously (``optional_claims()`` is ``None``), a bad token is still refused.
``@require_scopes(...)`` needs every scope, ``@require_any_scope(...)`` at least one.

Prefer this extension to wrapping ``app.asgi_app`` in
:class:`~invalidtoken_mw.asgi.InvalidTokenMiddleware`: Quart turns an exception a view
raises into its own 500 page before an ASGI middleware can see it, so an
``AuthFailure`` raised by a view only gets its proper answer from the extension.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

import jwt
from quart import Blueprint, Quart, Response, current_app, g, has_request_context, request
from quart import websocket as current_websocket
from quart.wrappers import Request as QuartRequest
from werkzeug.datastructures import Headers

from invalidtoken_mw._extension import (
    EXEMPT,
    KEY,
    OPTIONAL,
    ContextState,
    HeaderView,
    ViewMarks,
    any_scopes,
    check_options,
    claims_of,
    guard_from_config,
    required_roles,
)
from invalidtoken_mw.guard import (
    MAX_FORM_BYTES,
    AuthOutcome,
    Guard,
    Rejected,
    note_scope,
)
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import validate_scopes
from invalidtoken_mw.stepup import StepUp

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from quart.wrappers import BaseRequestWebsocket

__all__ = [
    "InvalidToken",
    "current_claims",
    "optional_claims",
    "require_any_role",
    "require_any_scope",
    "require_roles",
    "require_scopes",
    "require_step_up",
]

F = TypeVar("F", bound="Callable[..., Any]")


class InvalidToken:
    """Protect a Quart application's views and websockets with bearer tokens.

    Args:
        app: The application; or call :meth:`init_app` later.
        **options: Any :class:`~invalidtoken_mw.GuardSettings` field (``verifier``,
            ``realm``, ``exclude_paths``, ...). Each can also be set as
            ``INVALIDTOKEN_<NAME>`` in ``app.config``; keyword arguments win.

    Raises:
        TypeError: An unknown option.
    """

    def __init__(self, app: Quart | None = None, **options: Any) -> None:  # noqa: ANN401
        """Remember the options; set up ``app`` now if given."""
        check_options(options)
        self.options = options
        self._marks = ViewMarks()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Register the hooks and handlers on ``app`` (app-factory friendly).

        Raises:
            ValueError: No verifier in the options or ``INVALIDTOKEN_VERIFIER``, or
                a setting is unusable (strings from config are read as
                :class:`~invalidtoken_mw.GuardSettings` explains).
        """
        app.extensions[KEY] = _State(self, guard_from_config(app.config, self.options))
        app.before_request(_authenticate_request)
        app.before_websocket(_authenticate_websocket)
        app.after_request(_finish)
        app.register_error_handler(AuthFailure, _render_failure)
        app.register_error_handler(jwt.InvalidTokenError, _render_failure)

    @overload
    def exempt(self, view: Blueprint) -> Blueprint: ...

    @overload
    def exempt(self, view: F) -> F: ...

    def exempt(self, view: F | Blueprint) -> F | Blueprint:
        """Make a view function or a whole blueprint public (no token needed).

        The token of a request to an exempt view is never read, so such a view has no
        claims: :func:`current_claims` and :func:`optional_claims` raise
        ``RuntimeError`` there. A public view that uses the claims when a token is sent
        wants :meth:`optional` instead. Paths in ``exclude_paths`` behave the same way.

        Raises:
            ValueError: ``view`` is already optional (:meth:`optional`).
        """
        return self._mark(view, EXEMPT)

    @overload
    def optional(self, view: Blueprint) -> Blueprint: ...

    @overload
    def optional(self, view: F) -> F: ...

    def optional(self, view: F | Blueprint) -> F | Blueprint:
        """Make authentication optional for a view function or a whole blueprint.

        A request without a token reaches the view anonymously
        (:func:`optional_claims` returns ``None``); a request with a token is verified
        as usual, so a bad token is still refused and a good one's claims reach the
        view. Scope decorators on the view still need a token.

        Raises:
            ValueError: ``view`` is already exempt (:meth:`exempt`).
        """
        return self._mark(view, OPTIONAL)

    def _mark(self, view: F | Blueprint, mark: str) -> F | Blueprint:
        if isinstance(view, Blueprint):
            self._marks.mark_blueprint(view.name, mark)
        else:
            self._marks.mark_view(view, mark)
        return view

    def stats(self) -> dict[str, int]:
        """The current application's counters (see :meth:`Guard.stats`)."""
        return _state().guard.stats()


class _State:
    """What the hooks need, stored in ``app.extensions``."""

    def __init__(self, extension: InvalidToken, guard: Guard) -> None:
        self.extension = extension
        self.guard = guard


class _Request(HeaderView):
    """The guard's view of a Quart request or websocket (an ``AsyncRequestView``)."""

    __slots__ = ()
    request: BaseRequestWebsocket

    def note(self, outcome: AuthOutcome) -> None:
        note_scope(cast("dict[str, Any]", self.request.scope), outcome)

    async def read_form(self) -> str | None:
        # Cached by Quart, so the view can still read the form or the data.
        current = self.request
        length = current.content_length
        if not isinstance(current, QuartRequest) or length is None or length > MAX_FORM_BYTES:
            return None
        data: bytes = await current.get_data(cache=True, as_text=False, parse_form_data=False)
        return data.decode("latin-1")


def _state() -> _State:
    state: _State = current_app.extensions[KEY]
    return state


def _is_marked(state: _State, current: BaseRequestWebsocket, mark: str) -> bool:
    view = current_app.view_functions.get(current.endpoint or "")
    return state.extension._marks.marked(current.blueprint, view, mark)  # noqa: SLF001


def _response(refused: Rejected) -> Response:
    answer = refused.answer
    response = Response(answer.body, status=answer.status)
    # Exactly the guard's headers: Quart would otherwise add its default content type
    # (the bare 204) and count the empty body of a HEAD answer as its Content-Length.
    response.headers = Headers(list(answer.headers))
    return response


async def _authenticate(current: BaseRequestWebsocket) -> Response | None:
    state = _state()
    context = g._get_current_object()  # noqa: SLF001 - one proxy lookup
    served = state.guard.serve_metadata(getattr(current, "method", "GET"), current.path)
    if served is not None:  # RFC 9728 metadata, whatever view the path would reach
        return _response(served)
    # Exempt views and excluded paths never read the token: remember it, so that asking
    # for the claims there is a clear programming error instead of a false missing_token.
    if _is_marked(state, current, EXEMPT) or state.guard.is_public(current.path):
        ContextState.begin(context, public=True, view=None)
        return None
    view = _Request(current)
    ContextState.begin(context, public=False, view=view)
    optional = _is_marked(state, current, OPTIONAL)
    outcome = await state.guard.authenticate_async(view, optional=optional)
    if isinstance(outcome, Rejected):
        # Returned, not raised: the view never runs; after_request hooks do.
        return _response(outcome)
    ContextState.accept(context, outcome)
    return None


# Coroutine functions: Quart runs a plain function hook in a thread.
async def _authenticate_request() -> Response | None:
    return await _authenticate(request._get_current_object())  # type: ignore[attr-defined,unused-ignore]  # noqa: SLF001 - one proxy lookup


async def _authenticate_websocket() -> Response | None:
    return await _authenticate(current_websocket._get_current_object())  # type: ignore[attr-defined,unused-ignore]  # noqa: SLF001


def _view() -> _Request:
    view: _Request | None = g.get("invalidtoken_request")
    if view is not None:
        return view
    if has_request_context():
        return _Request(request._get_current_object())  # type: ignore[attr-defined,unused-ignore]  # noqa: SLF001
    return _Request(current_websocket._get_current_object())  # type: ignore[attr-defined,unused-ignore]  # noqa: SLF001


async def _render_failure(exc: Exception) -> Response:
    refused = _state().guard.reject(exc, _view(), token=g.get("invalidtoken_token"))
    if refused is None:  # pragma: no cover - registered for authentication failures only
        raise exc
    return _response(refused)


async def _finish(response: Response) -> Response:
    # A response to a query-token request must not be cached publicly (RFC 6750 §2.3).
    private = bool(g.get("invalidtoken_private"))
    if private or response.status_code == 401:  # noqa: PLR2004
        finished = _state().guard.finish_headers(
            response.status_code, list(response.headers.items()), _view(), private=private
        )
        response.headers.clear()
        response.headers.extend(finished)
    return response


def _claims(name: str) -> dict[str, Any] | None:
    return claims_of(g, name)


def current_claims() -> dict[str, Any]:
    """The verified claims of the current request or websocket.

    Raises:
        AuthFailure: ``missing_token`` when the request carried no token (an anonymous
            request to an :meth:`~InvalidToken.optional` view, or with the ``optional``
            setting): the client gets the bare 401 challenge.
        RuntimeError: In an exempt view (:meth:`InvalidToken.exempt`, or a path in
            ``exclude_paths``), whose token is never read: a programming error.
    """
    claims = _claims("current_claims")
    if claims is None:
        raise AuthFailure(Reason.MISSING_TOKEN)
    return claims


def optional_claims() -> dict[str, Any] | None:
    """The verified claims of the current request, or ``None`` when it is anonymous.

    For :meth:`~InvalidToken.optional` views (or the ``optional`` setting): ``None``
    means the request carried no token; a bad token never reaches the view.

    Raises:
        RuntimeError: In an exempt view (:meth:`InvalidToken.exempt`, or a path in
            ``exclude_paths``), whose token is never read: a programming error.
    """
    return _claims("optional_claims")


def require_scopes(*scopes: str) -> Callable[[F], F]:
    """Decorate a view so it needs every one of ``scopes`` (403 ``insufficient_scope``).

    The app-wide ``scopes`` setting still applies; the challenge names every scope the
    request needs. An anonymous request (optional authentication) gets the bare 401.
    The view may be a coroutine function or a plain function (run as Quart runs it).

    Raises:
        ValueError: A scope is not a valid RFC 6749 scope token (at import time).
    """
    return _scope_decorator(validate_scopes(scopes), any_of=False)


def require_any_scope(*scopes: str) -> Callable[[F], F]:
    """Decorate a view so it needs at least one of ``scopes`` (403 ``insufficient_scope``).

    The app-wide ``scopes`` setting still applies (all of them); the challenge names
    the scopes the request may present. An anonymous request (optional
    authentication) gets the bare 401.

    Raises:
        ValueError: No scope, or a scope that is not a valid RFC 6749 scope token
            (at import time).
    """
    return _scope_decorator(any_scopes(scopes), any_of=True)


def _scope_decorator(required: tuple[str, ...], *, any_of: bool) -> Callable[[F], F]:
    return _checking(lambda guard, claims: guard.check_scopes(claims, required, any_of=any_of))


def require_roles(*roles: str) -> Callable[[F], F]:
    """Decorate a view so it needs every one of ``roles`` (403 ``insufficient_role``).

    Roles are read from the ``role_claims`` setting (default ``roles``). An anonymous
    request (optional authentication) gets the bare 401.

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_decorator(required_roles(roles, "require_roles"), any_of=False)


def require_any_role(*roles: str) -> Callable[[F], F]:
    """Decorate a view so it needs at least one of ``roles`` (403 ``insufficient_role``).

    Roles are read from the ``role_claims`` setting (default ``roles``). An anonymous
    request (optional authentication) gets the bare 401.

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_decorator(required_roles(roles, "require_any_role"), any_of=True)


def _role_decorator(required: tuple[str, ...], *, any_of: bool) -> Callable[[F], F]:
    return _checking(lambda guard, claims: guard.check_roles(claims, required, any_of=any_of))


def require_step_up(
    *, acr_values: Sequence[str] | None = None, max_age: int | None = None
) -> Callable[[F], F]:
    """Decorate a view so it needs a strong or recent user authentication.

    RFC 9470 step-up: the token's ``acr`` must be one of ``acr_values`` and/or its
    ``auth_time`` no older than ``max_age`` seconds (with the verifier's ``leeway``);
    otherwise 401 ``insufficient_user_authentication``, whose challenge carries
    ``acr_values`` / ``max_age`` so the client can have the user authenticate again.
    An anonymous request (optional authentication) gets the bare 401. The app-wide
    ``acr_values`` / ``max_age`` settings apply as well.

    Raises:
        ValueError: Neither ``acr_values`` nor ``max_age``, an empty ``acr_values``, a
            value a challenge cannot carry, or a negative ``max_age`` (at import time).
        TypeError: ``acr_values`` is a single string or ``max_age`` not an integer.
    """
    requirement = StepUp(acr_values, max_age)
    return _checking(lambda guard, claims: guard.check_step_up(claims, requirement))


def _checking(check: Callable[[Guard, dict[str, Any] | None], None]) -> Callable[[F], F]:
    """A view decorator: ``check(guard, claims)`` (the route's own requirement), then the view."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - any view
            check(_state().guard, current_claims())
            # ensure_async: a plain view runs in Quart's thread pool, as it would undecorated.
            return await current_app.ensure_async(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
