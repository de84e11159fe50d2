"""Litestar plugin: ``InvalidTokenPlugin``, ``require_scopes`` and ``require_any_scope``.

Litestar runs an application's middleware once per route, around its own exception
handling: an exception a handler raises is turned into a response (a 500 for an
unknown type) before any middleware sees it, so a plain
``DefineMiddleware(InvalidTokenMiddleware, ...)`` cannot answer an
:class:`~invalidtoken_mw.AuthFailure` raised in a handler. The plugin adds the three
pieces Litestar needs, all calling the same :class:`~invalidtoken_mw.guard.Guard` as
the other adapters, so the answers and log events are identical:

* a pure ASGI middleware, the outermost of the application's own, that authenticates
  each request before its handler runs, honours per-route ``opt`` keys (public or
  optional), and gives a 401 without a challenge (a handler's own, or Litestar's
  ``NotAuthorizedException``) the bare one;
* exception handlers for ``AuthFailure`` and PyJWT's ``InvalidTokenError`` that send
  the guard's answer, byte for byte;
* a ``token_claims`` dependency.

Per route, Litestar's ``opt`` and guards do the rest::

    app = Litestar(
        [orders, health, feed],
        plugins=[InvalidTokenPlugin(verifier=verifier, realm="orders")],
    )

    @get("/health", opt={"exclude_from_auth": True})      # public: no token needed
    @get("/feed", opt={"auth_optional": True})            # a token is optional
    @get("/orders", guards=[require_scopes("orders:read")])
    @get("/reports", guards=[require_any_scope("reports:read", "admin")])

The verified claims are ``request.state.token_claims`` (``None`` on a public route and
on an optional one without a token), or a handler parameter ``token_claims``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jwt
from litestar import Request, Response, route
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin

from invalidtoken_mw.asgi import _deny, _Request
from invalidtoken_mw.guard import Guard, Rejected
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import validate_roles, validate_scopes
from invalidtoken_mw.stepup import StepUp

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.handlers import BaseRouteHandler

    from invalidtoken_mw.asgi import ASGIApp, Message, Receive, Scope, Send
    from invalidtoken_mw.settings import GuardSettings

    # The signature of a Litestar guard.
    RouteGuard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]

__all__ = [
    "EXCLUDE_OPT_KEY",
    "OPTIONAL_OPT_KEY",
    "InvalidTokenPlugin",
    "LitestarTokenMiddleware",
    "TokenClaims",
    "require_any_role",
    "require_any_scope",
    "require_roles",
    "require_scopes",
    "require_step_up",
]

#: The ``opt`` key that makes a route public (the key Litestar's own authentication
#: middleware uses): ``@get("/health", opt={"exclude_from_auth": True})``.
EXCLUDE_OPT_KEY = "exclude_from_auth"
#: The ``opt`` key that makes the token optional on a route: without one the handler
#: runs with ``token_claims`` ``None``; a token that is sent is verified all the same.
OPTIONAL_OPT_KEY = "auth_optional"

try:
    from litestar.di import NamedDependency
except ImportError:  # pragma: no cover - Litestar before 2.23 injects by name alone
    TokenClaims = dict[str, Any]
else:
    TokenClaims = NamedDependency[dict[str, Any]]  # type: ignore[misc]
    """``token_claims: TokenClaims`` in a handler's signature gives the verified claims.

    On an optional route without a token it answers ``missing_token`` (read
    ``request.state.token_claims`` there instead). Litestar injects it by the parameter
    name ``token_claims``.
    """

# Where the middleware leaves what the exception handlers and guards need: in the
# scope, not in request.state, so the token is not handed to the application as state.
_SCOPE_KEY = "invalidtoken_mw.litestar"
_CLAIMS = "token_claims"


class _Authenticated(NamedTuple):
    """One request's outcome, for the exception handlers and the scope guards."""

    guard: Guard
    view: _Request
    token: str | None
    public: bool = False


class LitestarTokenMiddleware:
    """The plugin's ASGI middleware; added by :class:`InvalidTokenPlugin`, not by hand.

    Litestar calls it per route, with the route handler in ``scope["route_handler"]``:
    its ``opt`` decides whether the route is public or its token optional.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: Guard,
        exclude_opt_key: str = EXCLUDE_OPT_KEY,
        optional_opt_key: str = OPTIONAL_OPT_KEY,
    ) -> None:
        """Hold the route's application and the plugin's guard."""
        self.app = app
        self.guard = guard
        self.exclude_opt_key = exclude_opt_key
        self.optional_opt_key = optional_opt_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an http or websocket request, then call the route."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        handler = scope.get("route_handler")
        opt: dict[str, Any] = getattr(handler, "opt", None) or {}
        state = scope.setdefault("state", {})
        request = _Request(scope, receive)
        if opt.get(self.exclude_opt_key):
            state[_CLAIMS] = None
            scope[_SCOPE_KEY] = _Authenticated(self.guard, request, None, public=True)
            await self.app(scope, receive, send)
            return
        optional = bool(opt.get(self.optional_opt_key))
        outcome = await self.guard.authenticate_async(request, optional=optional)
        if isinstance(outcome, Rejected):
            await _deny(scope, send, outcome)
            return
        state[_CLAIMS] = outcome.claims
        # An excluded path's token is never read: asking for its claims is a mistake.
        public = outcome.claims is None and self.guard.is_public(request.path)
        scope[_SCOPE_KEY] = _Authenticated(self.guard, request, outcome.token, public=public)
        private = outcome.private

        def watch(message: Message) -> Awaitable[None]:
            # Litestar's exception handling sits inside this middleware: a
            # NotAuthorizedException or a handler's own 401 passes through here.
            if message["type"] == "http.response.start" and (
                message["status"] == 401 or private  # noqa: PLR2004
            ):
                message = self._finish(request, message, private=private)
            return send(message)

        await self.app(scope, request.receive, watch)

    def _finish(self, request: _Request, message: Message, *, private: bool) -> Message:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
        ]
        finished = self.guard.finish_headers(message["status"], headers, request, private=private)
        return {
            **message,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in finished],
        }


class InvalidTokenPlugin(InitPlugin):
    """Protect a Litestar application with bearer tokens.

    ``Litestar(route_handlers, plugins=[InvalidTokenPlugin(verifier=..., realm=...)])``.

    Args:
        guard: A ready :class:`~invalidtoken_mw.Guard` (alone), or
        settings: a :class:`~invalidtoken_mw.GuardSettings`, or
        exclude_opt_key: The route ``opt`` key that makes a route public.
        optional_opt_key: The route ``opt`` key that makes its token optional.
        **options: any :class:`~invalidtoken_mw.GuardSettings` field (``verifier``,
            ``realm``, ``exclude_paths``, ``optional_paths``, ``error_body``, ...).

    Raises:
        TypeError: No verifier, an unknown option, or ``guard`` with other settings.
        ValueError: A setting is unusable (the message says how to fix it).
    """

    __slots__ = ("exclude_opt_key", "guard", "optional_opt_key")

    def __init__(
        self,
        *,
        guard: Guard | None = None,
        settings: GuardSettings | None = None,
        exclude_opt_key: str = EXCLUDE_OPT_KEY,
        optional_opt_key: str = OPTIONAL_OPT_KEY,
        **options: Any,  # noqa: ANN401 - the GuardSettings fields
    ) -> None:
        """Build the guard now, so a bad configuration fails at start-up."""
        if guard is None and settings is None and options.get("verifier") is None:
            raise TypeError(
                "InvalidTokenPlugin needs a verifier:"
                " InvalidTokenPlugin(verifier=JWTVerifier(...), realm=...)."
            )
        self.guard = Guard.for_adapter(guard, settings, options)
        self.exclude_opt_key = exclude_opt_key
        self.optional_opt_key = optional_opt_key

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add the middleware (outermost), the exception handlers and ``token_claims``."""
        middleware = DefineMiddleware(
            LitestarTokenMiddleware,  # type: ignore[arg-type]  # typed with plain ASGI mappings
            guard=self.guard,
            exclude_opt_key=self.exclude_opt_key,
            optional_opt_key=self.optional_opt_key,
        )
        app_config.middleware.insert(0, middleware)
        handlers = app_config.exception_handlers
        handlers[AuthFailure] = self._render_failure
        handlers[jwt.InvalidTokenError] = self._render_failure
        app_config.dependencies.setdefault(_CLAIMS, Provide(_token_claims, sync_to_thread=False))
        resource = self.guard.protected_resource
        if resource is not None:
            # Litestar runs middleware only on a route: this one exists for the
            # middleware to answer the RFC 9728 metadata on, as the guard does everywhere.
            app_config.route_handlers.append(_metadata_route(resource.path))
        return app_config

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (see :meth:`Guard.stats`)."""
        return self.guard.stats()

    def _render_failure(self, request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
        """The guard's answer to a failure a handler, a dependency or a guard raised."""
        authenticated = _authenticated(request.scope)
        if authenticated is None:  # a route the middleware did not run for
            view, token = _Request(request.scope, request.receive), None  # type: ignore[arg-type]
        else:
            view, token = authenticated.view, authenticated.token
        refused = self.guard.reject(exc, view, token=token)
        if refused is None:  # pragma: no cover - registered for authentication failures only
            raise exc
        answer = refused.answer
        headers = dict(answer.headers)
        return Response(
            answer.body,
            status_code=answer.status,
            headers=headers,
            media_type=headers.get("content-type"),
        )


def _metadata_route(path: str) -> Any:  # noqa: ANN401 - a Litestar route handler
    """A route on the metadata path; the middleware answers every request on it."""

    @route(
        path,
        http_method=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
        sync_to_thread=False,
    )
    def protected_resource_metadata() -> None:  # pragma: no cover - never reached
        return None

    return protected_resource_metadata


def _authenticated(scope: Mapping[str, Any]) -> _Authenticated | None:
    """What the middleware left in ``scope``; ``None`` where it did not run."""
    found = scope.get(_SCOPE_KEY)
    return found if isinstance(found, _Authenticated) else None


_PUBLIC_ROUTE = (
    "{name} on a route exempt from authentication (opt {key!r} or a path in"
    " exclude_paths): the token is never read there, so there are no claims. Mark the"
    " route optional (opt={{'auth_optional': True}}) to use the claims when a token is sent."
)


def _claims(scope: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The verified claims, for a dependency or a guard.

    Raises:
        AuthFailure: ``missing_token``: the request is anonymous (an optional route).
        RuntimeError: The plugin is not installed, or the route is public.
    """
    authenticated = _authenticated(scope)
    if authenticated is None:
        raise RuntimeError(
            f"{name} needs InvalidTokenPlugin: Litestar(..., plugins="
            "[InvalidTokenPlugin(verifier=...)])."
        )
    if authenticated.public:
        raise RuntimeError(_PUBLIC_ROUTE.format(name=name, key=EXCLUDE_OPT_KEY))
    claims: dict[str, Any] | None = scope.get("state", {}).get(_CLAIMS)
    if claims is None:
        raise AuthFailure(Reason.MISSING_TOKEN)
    return claims


def _token_claims(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The ``token_claims`` dependency: the verified claims (see :data:`TokenClaims`)."""
    return _claims(request.scope, "token_claims")


def _scope_guard(scopes: tuple[str, ...], *, any_of: bool) -> RouteGuard:
    name = "require_any_scope" if any_of else "require_scopes"

    def check(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        claims = _claims(connection.scope, name)
        authenticated = _authenticated(connection.scope)
        assert authenticated is not None  # noqa: S101 - _claims checked it
        authenticated.guard.check_scopes(claims, scopes, any_of=any_of)

    return check


def require_scopes(*scopes: str) -> RouteGuard:
    """A Litestar guard requiring every one of ``scopes`` (403 ``insufficient_scope``).

    ``@get("/orders", guards=[require_scopes("orders:read")])``; the scopes of the
    plugin's ``scopes`` option are required as well, and the challenge names them all.

    Raises:
        ValueError: A scope is not a valid RFC 6749 scope token (at import time).
    """
    return _scope_guard(validate_scopes(scopes), any_of=False)


def require_any_scope(*scopes: str) -> RouteGuard:
    """A Litestar guard requiring at least one of ``scopes`` (403 ``insufficient_scope``).

    ``@get("/orders", guards=[require_any_scope("orders:read", "orders:admin")])``; the
    plugin's ``scopes`` are all required as well.

    Raises:
        ValueError: No scope, or one that is not a valid RFC 6749 scope token.
    """
    required = validate_scopes(scopes)
    if not required:
        raise ValueError("require_any_scope needs at least one scope.")
    return _scope_guard(required, any_of=True)


def _role_guard(roles: tuple[str, ...], *, any_of: bool, name: str) -> RouteGuard:
    if not roles:
        raise ValueError(f"{name} needs at least one role, e.g. 'admin'.")

    def check(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        claims = _claims(connection.scope, name)
        authenticated = _authenticated(connection.scope)
        assert authenticated is not None  # noqa: S101 - _claims checked it
        authenticated.guard.check_roles(claims, roles, any_of=any_of)

    return check


def require_roles(*roles: str) -> RouteGuard:
    """A Litestar guard requiring every one of ``roles`` (403 ``insufficient_role``).

    ``@get("/admin", guards=[require_roles("admin")])``; roles are read from the
    plugin's ``role_claims`` option (default ``roles``).

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_guard(validate_roles(roles), any_of=False, name="require_roles")


def require_any_role(*roles: str) -> RouteGuard:
    """A Litestar guard requiring at least one of ``roles`` (403 ``insufficient_role``).

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_guard(validate_roles(roles), any_of=True, name="require_any_role")


def require_step_up(
    *, acr_values: Sequence[str] | None = None, max_age: int | None = None
) -> RouteGuard:
    """A Litestar guard requiring a strong or recent user authentication.

    ``@get("/pay", guards=[require_step_up(acr_values=["urn:example:mfa"])])``.
    RFC 9470 step-up: the token's ``acr`` must be one of ``acr_values`` and/or its
    ``auth_time`` no older than ``max_age`` seconds (with the verifier's ``leeway``);
    otherwise 401 ``insufficient_user_authentication``, whose challenge carries
    ``acr_values`` / ``max_age`` so the client can have the user authenticate again.
    The plugin's ``acr_values`` / ``max_age`` options apply as well.

    Raises:
        ValueError: Neither ``acr_values`` nor ``max_age``, an empty ``acr_values``, a
            value a challenge cannot carry, or a negative ``max_age`` (at import time).
        TypeError: ``acr_values`` is a single string or ``max_age`` not an integer.
    """
    requirement = StepUp(acr_values, max_age)

    def check(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        claims = _claims(connection.scope, "require_step_up")
        authenticated = _authenticated(connection.scope)
        assert authenticated is not None  # noqa: S101 - _claims checked it
        authenticated.guard.check_step_up(claims, requirement)

    return check
