"""FastAPI helpers: ``install``, ``TokenClaims``, ``OptionalTokenClaims`` and the scope checks.

``install(app, verifier=...)`` adds :class:`~invalidtoken_mw.InvalidTokenMiddleware`
(with the pages ``/docs``, ``/redoc`` and ``/openapi.json`` public, by exact path only:
``/docs/123`` still needs a token), chains the app's ``HTTPException`` handlers so that
a 401 raised by application code (or FastAPI's own ``HTTPBearer`` failure, a bare
``Bearer``) gets a correct RFC 6750 challenge with the realm before the app's handler
answers it, and documents the protection in the OpenAPI schema. Authentication failures
themselves (:class:`~invalidtoken_mw.AuthFailure`, PyJWT errors) are left to the
middleware, which renders and logs them.

Per route:

* ``claims: TokenClaims`` hands an endpoint the verified claims;
* ``claims: OptionalTokenClaims`` makes the route's token optional: without one the
  endpoint gets ``None``, a token that is sent is verified and a bad one refused;
* ``Depends(require_scopes("a", "b"))`` needs every scope, and
  ``Depends(require_any_scope("a", "b"))`` at least one.

Scopes go through FastAPI's security dependencies, so the OpenAPI schema shows the
bearer scheme and each route's scopes, and ``/docs`` lets a person authorize::

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def orders(claims: TokenClaims) -> dict[str, str]: ...
"""

# No ``from __future__ import annotations``: FastAPI reads these dependencies'
# annotations at run time, and ``require_scopes`` builds one from a local variable.
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Router

from invalidtoken_mw.asgi import ASGIApp, InvalidTokenMiddleware, Scope
from invalidtoken_mw.guard import Guard, TokenVerifier, expose_challenge
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import check_roles, check_scopes, validate_roles, validate_scopes
from invalidtoken_mw.settings import GuardSettings
from invalidtoken_mw.stepup import DEFAULT_LEEWAY, StepUp, check_step_up

__all__ = [
    "AUTH_ERROR_SCHEMA",
    "OptionalTokenClaims",
    "TokenClaims",
    "bearer_scheme",
    "install",
    "optional_token_claims",
    "require_any_role",
    "require_any_scope",
    "require_roles",
    "require_scopes",
    "require_step_up",
    "token_claims",
]

# Where install() leaves its Guard on app.state, for the route-level scope checks.
_GUARD_STATE = "invalidtoken_guard"
# The attribute naming a require_any_scope dependency's alternatives (for OpenAPI).
_ANY_OF = "_invalidtoken_any_of"
_BEARER = "bearerAuth"
_OAUTH2 = "oauth2"
_AUTH_ERROR = "AuthError"

bearer_scheme = HTTPBearer(
    scheme_name=_BEARER,
    bearerFormat="JWT",
    description="A bearer access token (RFC 6750).",
    auto_error=False,
)
"""The OpenAPI security scheme: documents bearer auth and gives /docs an Authorize button.

``auto_error=False``: the middleware, not FastAPI, answers missing credentials.
"""

#: The JSON Schema of the body the library sends with a refusal (``AuthError`` in the
#: OpenAPI components): RFC 9457 members, the OAuth ``error`` members and ``reason``.
AUTH_ERROR_SCHEMA: dict[str, Any] = {
    "title": _AUTH_ERROR,
    "description": "Why the request was refused (RFC 9457 problem details with the OAuth"
    " error code of RFC 6750 and the library's reason).",
    "type": "object",
    "required": ["type", "title", "status", "detail", "error", "error_description", "reason"],
    "properties": {
        "type": {"type": "string", "description": "A URI naming the reason."},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "The HTTP status."},
        "detail": {"type": "string"},
        "error": {
            "type": ["string", "null"],
            "enum": ["invalid_request", "invalid_token", "insufficient_scope", None],
            "description": "The RFC 6750 error code; null without credentials.",
        },
        "error_description": {"type": "string"},
        "reason": {"type": "string", "enum": [reason.value for reason in Reason]},
    },
}


_PUBLIC_ROUTE = (
    "TokenClaims on a path in exclude_paths: the token is never read there, so there are"
    " no claims. Use OptionalTokenClaims (and drop the path from exclude_paths) to use the"
    " claims when a token is sent."
)


def _path(request: Request) -> str:
    """The path below the mount point, as the middleware matched it."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _route_guard(request: Request) -> Guard | None:
    guard: Guard | None = getattr(request.app.state, _GUARD_STATE, None)
    return guard


async def token_claims(
    request: Request,
    security_scopes: SecurityScopes,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any]:
    """The verified claims of the request, checked against the route's scopes.

    Raises:
        AuthFailure: ``missing_token`` without a token (``optional`` or an optional
            route); ``insufficient_scope`` when a required scope is not granted.
        RuntimeError: On a path in ``exclude_paths`` (or a docs page), where the token
            is never read: use :data:`OptionalTokenClaims` to use the claims when a
            token is sent.
    """
    claims: dict[str, Any] | None = getattr(request.state, "token_claims", None)
    if claims is None:
        guard = _route_guard(request)
        if guard is not None and guard.is_public(_path(request)):
            raise RuntimeError(_PUBLIC_ROUTE)
        raise AuthFailure(Reason.MISSING_TOKEN)
    if security_scopes.scopes:
        # The challenge names every scope the request needs: the app's and the route's.
        guard = _route_guard(request)
        if guard is not None:
            guard.check_scopes(claims, security_scopes.scopes)
        else:
            check_scopes(claims, security_scopes.scopes)
    return claims


TokenClaims = Annotated[dict[str, Any], Security(token_claims)]
"""``claims: TokenClaims`` in an endpoint's signature gives the verified claims."""


async def optional_token_claims(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any] | None:
    """The verified claims, or ``None`` when the request carried no token.

    A route that depends on this (usually through :data:`OptionalTokenClaims`) is an
    optional-authentication route: ``install()``'s middleware lets a request without a
    token through to it anonymously, and still verifies (and refuses) a token that is
    sent.
    """
    claims: dict[str, Any] | None = getattr(request.state, "token_claims", None)
    return claims


#: ``claims: OptionalTokenClaims`` makes the route's token optional: the verified claims,
#: or ``None`` without a token. A bad token is still refused.
OptionalTokenClaims = Annotated[dict[str, Any] | None, Security(optional_token_claims)]


def require_scopes(*scopes: str) -> Callable[..., dict[str, Any]]:
    """A dependency requiring every one of ``scopes``; use as ``Depends(require_scopes(...))``.

    Raises:
        ValueError: A scope is not a valid RFC 6749 scope token (at import time).
    """
    required = list(validate_scopes(scopes))

    def checker(
        claims: Annotated[dict[str, Any], Security(token_claims, scopes=required)],
    ) -> dict[str, Any]:
        return claims

    checker.__name__ = f"require_scopes_{'_'.join(required) or 'none'}"
    return checker


def require_any_scope(*scopes: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency requiring at least one of ``scopes``: ``Depends(require_any_scope(...))``.

    The app-wide ``scopes`` of ``install()`` are still all required. A refusal is 403
    ``insufficient_scope`` whose challenge lists the alternatives; the OpenAPI schema
    lists one security requirement per alternative.

    Raises:
        ValueError: No scope, or one that is not a valid RFC 6749 scope token (at
            import time).
    """
    alternatives = tuple(validate_scopes(scopes))
    if not alternatives:
        raise ValueError("require_any_scope needs at least one scope, e.g. 'orders:read'.")

    async def checker(request: Request, claims: TokenClaims) -> dict[str, Any]:
        guard = _route_guard(request)
        if guard is not None:
            guard.check_scopes(claims, alternatives, any_of=True)
        else:
            check_scopes(claims, alternatives, any_of=True)
        return claims

    checker.__name__ = f"require_any_scope_{'_'.join(alternatives)}"
    setattr(checker, _ANY_OF, alternatives)
    return checker


def _role_checker(
    roles: tuple[str, ...], *, any_of: bool, name: str
) -> Callable[..., Awaitable[dict[str, Any]]]:
    required = validate_roles(roles)
    if not required:
        raise ValueError(f"{name} needs at least one role, e.g. 'admin'.")

    async def checker(request: Request, claims: TokenClaims) -> dict[str, Any]:
        guard = _route_guard(request)
        if guard is not None:
            guard.check_roles(claims, required, any_of=any_of)
        else:
            check_roles(claims, required, any_of=any_of)
        return claims

    checker.__name__ = f"{name}_{'_'.join(required)}"
    return checker


def require_roles(*roles: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency requiring every one of ``roles``: ``Depends(require_roles("admin"))``.

    Roles are read from ``install()``'s ``role_claims`` (default ``roles``); a refusal
    is 403 ``insufficient_role`` (``error="insufficient_scope"``, no ``scope``).

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_checker(roles, any_of=False, name="require_roles")


def require_any_role(*roles: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency requiring at least one of ``roles``: ``Depends(require_any_role(...))``.

    Raises:
        ValueError: No role, or one that is empty or holds a space (at import time).
    """
    return _role_checker(roles, any_of=True, name="require_any_role")


def require_step_up(
    *, acr_values: Sequence[str] | None = None, max_age: int | None = None
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """A dependency requiring a strong or recent authentication: ``Depends(require_step_up(...))``.

    RFC 9470 step-up: the token's ``acr`` must be one of ``acr_values`` and/or its
    ``auth_time`` no older than ``max_age`` seconds (with the verifier's ``leeway``);
    otherwise 401 ``insufficient_user_authentication``, whose challenge carries
    ``acr_values`` / ``max_age`` so the client can have the user authenticate again.
    The app-wide ``acr_values`` / ``max_age`` settings apply as well.

    Raises:
        ValueError: Neither ``acr_values`` nor ``max_age``, an empty ``acr_values``, a
            value a challenge cannot carry, or a negative ``max_age`` (at import time).
        TypeError: ``acr_values`` is a single string or ``max_age`` not an integer.
    """
    requirement = StepUp(acr_values, max_age)

    async def checker(request: Request, claims: TokenClaims) -> dict[str, Any]:
        guard = _route_guard(request)
        if guard is not None:
            guard.check_step_up(claims, requirement)
        else:
            check_step_up(claims, requirement, now=time.time(), leeway=DEFAULT_LEEWAY)
        return claims

    checker.__name__ = "require_step_up"
    return checker


def install(
    app: FastAPI,
    *,
    verifier: TokenVerifier,
    realm: str = "api",
    exclude_paths: Iterable[str] = (),
    public_docs: bool = True,
    oauth2_authorization_url: str | None = None,
    oauth2_token_url: str | None = None,
    oauth2_scopes: Mapping[str, str] | None = None,
    swagger_client_id: str | None = None,
    **options: Any,  # noqa: ANN401 - passed through to InvalidTokenMiddleware
) -> None:
    """Protect ``app``: the middleware, the ``HTTPException`` challenge and the OpenAPI schema.

    Args:
        app: The FastAPI application.
        verifier: Verifies tokens (usually a :class:`~invalidtoken_mw.JWTVerifier`).
        realm: The challenge's realm.
        exclude_paths: More public paths (see :class:`~invalidtoken_mw.GuardSettings`).
        public_docs: Keep the app's docs, ReDoc, OpenAPI and OAuth2-redirect URLs public
            (``/docs``, ``/redoc``, ``/openapi.json`` by default, or as configured), each
            by its exact path: the paths below them still need a token.
        oauth2_authorization_url: The issuer's authorization endpoint. With
            ``oauth2_token_url`` it adds an OAuth2 authorization-code scheme to the
            schema, and Swagger UI signs in with PKCE (``app.swagger_ui_init_oauth``).
        oauth2_token_url: The issuer's token endpoint.
        oauth2_scopes: Scopes offered at sign-in, by name with a description; the
            scopes the routes require are offered too.
        swagger_client_id: The OAuth client (a public client, without a secret)
            Swagger UI signs in as.
        **options: Any other :class:`~invalidtoken_mw.GuardSettings` field
            (``scopes``, ``optional_paths``, ``error_body``...).

    Raises:
        RuntimeError: ``install`` was already called for ``app``.
        ValueError: Only one of the two OAuth2 URLs, or an unusable option.

    ``HTTPException`` handlers the app registered *before* ``install`` (and FastAPI's
    default) still answer: a 401 without a proper challenge gets the realm challenge
    first. Add a CORS middleware *after* calling ``install`` so that it is the
    outermost layer and answers preflights itself (see ``preflight_passthrough``).
    """
    if getattr(app.state, _GUARD_STATE, None) is not None:
        raise RuntimeError("install() was already called for this app: call it once.")
    if (oauth2_authorization_url is None) != (oauth2_token_url is None):
        raise ValueError(
            "Swagger UI sign-in needs both oauth2_authorization_url and oauth2_token_url"
            " (the issuer's authorization and token endpoints), or neither."
        )
    docs = (app.docs_url, app.redoc_url, app.openapi_url, app.swagger_ui_oauth2_redirect_url)
    # Exact paths: exclude_paths would also make everything below /docs public.
    exact = [*(p for p in docs if p and public_docs), *options.pop("exclude_exact_paths", ())]
    guard = Guard(
        GuardSettings.from_options(
            verifier=verifier,
            realm=realm,
            exclude_paths=exclude_paths,
            exclude_exact_paths=exact,
            **options,
        )
    )
    setattr(app.state, _GUARD_STATE, guard)
    app.add_middleware(_RouteAwareMiddleware, guard=guard, router=app.router)
    _chain_http_exception_handlers(app, guard)
    oauth2: dict[str, Any] | None = None
    if oauth2_authorization_url is not None and oauth2_token_url is not None:
        oauth2 = {
            "type": "oauth2",
            "description": "Sign in with the issuer (authorization code with PKCE).",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": oauth2_authorization_url,
                    "tokenUrl": oauth2_token_url,
                    "scopes": dict(oauth2_scopes or {}),
                }
            },
        }
        init = {**(app.swagger_ui_init_oauth or {}), "usePkceWithAuthorizationCodeGrant": True}
        if swagger_client_id is not None:
            init["clientId"] = swagger_client_id
        app.swagger_ui_init_oauth = init
    app.openapi = _secured_openapi(app, guard, oauth2)  # type: ignore[method-assign]


# -- which routes make the token optional ----------------------------------------------


def _dependency_calls(route: BaseRoute) -> Iterator[Callable[..., Any]]:
    """Every dependency callable of a FastAPI route, its sub-dependencies included."""
    dependant = getattr(route, "dependant", None)
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        if current.call is not None:
            yield current.call
        stack.extend(current.dependencies)


def _is_optional_route(route: BaseRoute) -> bool:
    return any(call is optional_token_claims for call in _dependency_calls(route))


def _any_of(route: BaseRoute) -> tuple[str, ...]:
    for call in _dependency_calls(route):
        alternatives: tuple[str, ...] | None = getattr(call, _ANY_OF, None)
        if alternatives:
            return alternatives
    return ()


class _RouteAwareMiddleware(InvalidTokenMiddleware):
    """The middleware, told which requests go to an optional-authentication route.

    The routes are read on the first request (after start-up, when the app has its
    routes); an app without such routes then pays nothing more than the plain
    middleware. Otherwise each request is matched against the routes up to the last
    optional one, as the router will match it: the first full match decides.
    """

    def __init__(self, app: ASGIApp, /, *, guard: Guard, router: Router) -> None:
        super().__init__(app, guard=guard)
        self._router = router
        self._candidates: list[tuple[BaseRoute, bool]] = []
        self.optional_route = self._first_request

    def _first_request(self, scope: Scope) -> bool:
        routes = list(self._router.routes)
        marked = [index for index, route in enumerate(routes) if _is_optional_route(route)]
        if not marked:
            self.optional_route = None
            return False
        self._candidates = [
            (route, _is_optional_route(route)) for route in routes[: marked[-1] + 1]
        ]
        self.optional_route = self._match
        return self._match(scope)

    def _match(self, scope: Scope) -> bool:
        for route, optional in self._candidates:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return optional
        return False


# -- HTTPException ---------------------------------------------------------------------

Handler = Callable[[Request, Exception], Any]


def _chain_http_exception_handlers(app: FastAPI, guard: Guard) -> None:
    """Put the challenge step in front of every ``HTTPException`` handler the app has."""
    handlers = app.exception_handlers
    kinds: list[type[StarletteHTTPException]] = [
        kind
        for kind in handlers
        if isinstance(kind, type) and issubclass(kind, StarletteHTTPException)
    ]
    if StarletteHTTPException not in kinds:
        kinds.append(StarletteHTTPException)
    for kind in kinds:
        app.add_exception_handler(
            kind, _challenge_handler(guard, handlers.get(kind, http_exception_handler))
        )


def _challenge_handler(guard: Guard, then: Handler) -> Handler:
    bare = guard.bare_challenge  # the installed guard's, from the one challenge builder
    asynchronous = inspect.iscoroutinefunction(then) or inspect.iscoroutinefunction(
        getattr(then, "__call__", None)  # noqa: B004 - a handler object's own method
    )

    async def handler(request: Request, exc: Exception) -> Response:
        """Give a 401 without a proper challenge (or HTTPBearer's bare ``Bearer``) ours."""
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 401:  # noqa: PLR2004
            headers = dict(exc.headers or {})
            current = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
            if "realm=" not in current:
                headers = {k: v for k, v in headers.items() if k.lower() != "www-authenticate"}
                headers["WWW-Authenticate"] = bare
            if "origin" in request.headers:  # CORS: let browser clients read the challenge
                headers = dict(expose_challenge(headers.items()))
            # The same exception, so the app's handler still sees its own class and detail.
            exc.headers = headers
        if asynchronous:
            response: Response = await then(request, exc)
        else:  # Starlette runs a plain handler in the thread pool; so do we
            response = await run_in_threadpool(then, request, exc)
        return response

    return handler


# -- OpenAPI ---------------------------------------------------------------------------


def _secured_openapi(
    app: FastAPI, guard: Guard, oauth2: dict[str, Any] | None
) -> Callable[[], dict[str, Any]]:
    """Wrap ``app.openapi``: mark what the middleware protects, document its answers."""
    generate = app.openapi
    done: list[dict[str, Any]] = []  # the last schema marked (FastAPI caches it)

    def openapi() -> dict[str, Any]:
        schema = generate()
        if done and done[0] is schema:
            return schema
        _mark(schema, app, guard, oauth2)
        done[:] = [schema]
        return schema

    return openapi


def _mark(
    schema: dict[str, Any], app: FastAPI, guard: Guard, oauth2: dict[str, Any] | None
) -> None:
    components = schema.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    schemes.setdefault(
        _BEARER, bearer_scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    custom = guard.settings.error_body is not None
    body: dict[str, Any] = (
        {"type": "object", "description": "The application's error envelope (error_body)."}
        if custom
        else AUTH_ERROR_SCHEMA
    )
    components.setdefault("schemas", {}).setdefault(_AUTH_ERROR, body)
    # The problem+json variant is offered only for the library's own document.
    media = ("application/json",) if custom or not guard.settings.problem_json else None
    offered: dict[str, str] = {}
    paths: dict[str, Any] = schema.get("paths", {})
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        item = paths.get(route.path_format)
        if item is None or guard.is_public(route.path_format):
            continue
        optional = guard.is_optional(route.path_format) or _is_optional_route(route)
        alternatives = _any_of(route)
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None:
                _secure(
                    operation, guard, optional, alternatives, oauth2=oauth2 is not None, media=media
                )
                for requirement in operation["security"]:
                    offered.update(dict.fromkeys(requirement.get(_BEARER, ()), ""))
    if oauth2 is not None:
        scopes = oauth2["flows"]["authorizationCode"]["scopes"]
        scheme = {**oauth2}
        scheme["flows"] = {"authorizationCode": {**oauth2["flows"]["authorizationCode"]}}
        scheme["flows"]["authorizationCode"]["scopes"] = {**offered, **scopes}
        schemes.setdefault(_OAUTH2, scheme)


def _secure(
    operation: dict[str, Any],
    guard: Guard,
    optional: bool,  # noqa: FBT001 - a private helper's flags
    alternatives: tuple[str, ...],
    *,
    oauth2: bool,
    media: tuple[str, ...] | None,
) -> None:
    """One operation: its security requirements and its 401 and 403 answers."""
    requirements: list[dict[str, list[str]]] = [
        r for r in operation.get("security", []) if r and _BEARER in r
    ]
    others = [r for r in operation.get("security", []) if r and _BEARER not in r]
    needed = list(guard.scopes)
    for requirement in requirements:
        needed += [s for s in requirement[_BEARER] if s not in needed]
    if alternatives:
        base = [s for s in needed if s not in alternatives]
        options = [[*base, scope] for scope in alternatives]
    else:
        options = [needed]
    security: list[dict[str, list[str]]] = [{_BEARER: scopes} for scopes in options]
    if oauth2:
        security += [{_OAUTH2: scopes} for scopes in options]
    security += others
    if optional:
        security.append({})  # no credentials: an anonymous request is allowed too
    operation["security"] = security
    responses = operation.setdefault("responses", {})
    responses.setdefault("401", _answer("The token is missing, invalid or expired.", media))
    if any(options) or alternatives:
        responses.setdefault("403", _answer("The token does not grant a required scope.", media))


def _answer(description: str, media: tuple[str, ...] | None) -> dict[str, Any]:
    body = {"schema": {"$ref": f"#/components/schemas/{_AUTH_ERROR}"}}
    types = media or ("application/json", "application/problem+json")
    return {
        "description": description,
        "headers": {
            "WWW-Authenticate": {
                "description": "The RFC 6750 Bearer challenge: realm, error, error_description"
                " and, for a missing scope, scope.",
                "schema": {"type": "string"},
            }
        },
        "content": dict.fromkeys(types, body),
    }
