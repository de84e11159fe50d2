"""FastAPI helpers: ``install``, ``TokenClaims`` and ``require_scopes``.

``install(app, verifier=...)`` adds :class:`~invalidtoken_mw.InvalidTokenMiddleware`
(with the pages ``/docs``, ``/redoc`` and ``/openapi.json`` public, by exact path only:
``/docs/123`` still needs a token) and a handler that gives
``HTTPException(401)`` raised by application code, and FastAPI's own ``HTTPBearer``
failures (a bare ``Bearer``), a correct RFC 6750 challenge with the realm. Authentication failures
themselves (:class:`~invalidtoken_mw.AuthFailure`, PyJWT errors) are left to the
middleware, which renders and logs them.

Scopes go through FastAPI's security dependencies, so the OpenAPI schema shows the
bearer scheme and each route's scopes, and ``/docs`` lets a person authorize::

    @app.get("/orders", dependencies=[Depends(require_scopes("orders:read"))])
    def orders(claims: TokenClaims) -> dict[str, str]: ...
"""

# No ``from __future__ import annotations``: FastAPI reads these dependencies'
# annotations at run time, and ``require_scopes`` builds one from a local variable.
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.exception_handlers import http_exception_handler
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from invalidtoken_mw.asgi import InvalidTokenMiddleware
from invalidtoken_mw.guard import Guard, TokenVerifier, expose_challenge
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.scopes import check_scopes, validate_scopes
from invalidtoken_mw.settings import GuardSettings

__all__ = ["TokenClaims", "bearer_scheme", "install", "require_scopes", "token_claims"]

# Where install() leaves its Guard on app.state, for the route-level scope check.
_GUARD_STATE = "invalidtoken_guard"

bearer_scheme = HTTPBearer(
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="A bearer access token (RFC 6750).",
    auto_error=False,
)
"""The OpenAPI security scheme: documents bearer auth and gives /docs an Authorize button.

``auto_error=False``: the middleware, not FastAPI, answers missing credentials.
"""


async def token_claims(
    request: Request,
    security_scopes: SecurityScopes,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> dict[str, Any]:
    """The verified claims of the request, checked against the route's scopes.

    Raises:
        AuthFailure: ``missing_token`` on a public or optional route without a token;
            ``insufficient_scope`` when a required scope is not granted.
    """
    claims: dict[str, Any] | None = getattr(request.state, "token_claims", None)
    if claims is None:
        raise AuthFailure(Reason.MISSING_TOKEN)
    if security_scopes.scopes:
        # The challenge names every scope the request needs: the app's and the route's.
        guard: Guard | None = getattr(request.app.state, _GUARD_STATE, None)
        app_scopes = guard.scopes if guard is not None else ()
        check_scopes(claims, (*app_scopes, *security_scopes.scopes))
    return claims


TokenClaims = Annotated[dict[str, Any], Security(token_claims)]
"""``claims: TokenClaims`` in an endpoint's signature gives the verified claims."""


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


def install(
    app: FastAPI,
    *,
    verifier: TokenVerifier,
    realm: str = "api",
    exclude_paths: Iterable[str] = (),
    public_docs: bool = True,
    **options: Any,  # noqa: ANN401 - passed through to InvalidTokenMiddleware
) -> None:
    """Protect ``app``: add the middleware and the ``HTTPException`` challenge handler.

    Args:
        app: The FastAPI application.
        verifier: Verifies tokens (usually a :class:`~invalidtoken_mw.JWTVerifier`).
        realm: The challenge's realm.
        exclude_paths: More public paths (see :class:`~invalidtoken_mw.GuardSettings`).
        public_docs: Keep the app's docs, ReDoc, OpenAPI and OAuth2-redirect URLs public
            (``/docs``, ``/redoc``, ``/openapi.json`` by default, or as configured), each
            by its exact path: the paths below them still need a token.
        **options: Any other :class:`~invalidtoken_mw.GuardSettings` field.

    Add a CORS middleware *after* calling ``install`` so that it is the outermost
    layer and answers preflights itself (see ``preflight_passthrough``).
    """
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
    app.add_middleware(InvalidTokenMiddleware, guard=guard)
    app.add_exception_handler(StarletteHTTPException, _challenge_handler(guard))


def _challenge_handler(guard: Guard) -> Callable[[Request, Exception], Any]:
    bare = guard.bare_challenge  # the installed guard's, from the one challenge builder

    async def handler(request: Request, exc: Exception) -> Response:
        """Give a 401 without a proper challenge (or HTTPBearer's bare ``Bearer``) ours."""
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it
        if exc.status_code == 401:  # noqa: PLR2004
            headers = dict(exc.headers or {})
            current = next((v for k, v in headers.items() if k.lower() == "www-authenticate"), "")
            if "realm=" not in current:
                headers = {k: v for k, v in headers.items() if k.lower() != "www-authenticate"}
                headers["WWW-Authenticate"] = bare
            if "origin" in request.headers:  # CORS: let browser clients read the challenge
                headers = dict(expose_challenge(headers.items()))
            exc = StarletteHTTPException(exc.status_code, exc.detail, headers)
        return await http_exception_handler(request, exc)

    return handler
