"""The four stacks people use today, each built the way its documentation shows.

- Starlette ``AuthenticationMiddleware`` with a PyJWT ``AuthenticationBackend`` and
  ``@requires`` (decoding with a key object parsed once);
- FastAPI ``HTTPBearer`` with an ``async`` dependency calling ``jwt.decode``
  (``Security`` scopes for the scope check);
- flask-jwt-extended ``@jwt_required()``, configured with ``JWT_DECODE_*`` and the PEM
  public key (``token_in_blocklist_loader`` for revocation, its documented Redis recipe);
- Authlib ``ResourceProtector`` with the RFC 9068 ``JWTBearerTokenValidator`` on Flask,
  returning a pre-imported joserfc key from ``get_jwks``.

Revocation is n/a where the library has no revocation hook (Starlette, FastAPI and
Authlib's RFC 9068 validator), and the scope check where it has no scope support
(flask-jwt-extended).

No ``from __future__ import annotations`` here: FastAPI reads the dependency's
annotations at run time, and they name a local ``HTTPBearer``.
"""

from collections.abc import Callable
from typing import Annotated, Any

import jwt
import redis
from apps import PATH
from authlib.integrations.flask_oauth2 import (  # type: ignore[import-untyped]
    ResourceProtector,
)
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # type: ignore[import-untyped]
from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from flask import Flask
from flask_jwt_extended import JWTManager, jwt_required
from joserfc.jwk import ECKey, Key, OctKey, RSAKey
from material import AUDIENCE, ISSUER, AlgKeys
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
    requires,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

# flask-jwt-extended's blocklist loader: (jwt_header, jwt_payload) -> revoked?
Blocklist = Callable[[dict[str, Any], dict[str, Any]], bool]


class PyJWTBackend(AuthenticationBackend):
    """The ``AuthenticationBackend`` from Starlette's docs, decoding with PyJWT."""

    def __init__(self, keys: AlgKeys) -> None:
        """Keep the pre-parsed key."""
        self.key = keys.verifying
        self.algorithms = [keys.alg]

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        """Decode the bearer token; no header means an anonymous request."""
        if "Authorization" not in conn.headers:
            return None
        scheme, _, token = conn.headers["Authorization"].partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = jwt.decode(
                token, self.key, algorithms=self.algorithms, audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("Invalid token") from exc
        scopes = ["authenticated", *str(claims.get("scope", "")).split()]
        return AuthCredentials(scopes), SimpleUser(claims["sub"])


def starlette_pyjwt(keys: AlgKeys, *, scope: str | None = None) -> Starlette:
    """Starlette + ``AuthenticationMiddleware`` + ``@requires("authenticated")``."""
    needed = ["authenticated"] if scope is None else ["authenticated", scope]

    @requires(needed)
    async def orders(request: Request) -> PlainTextResponse:  # noqa: ARG001 - found by name
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route(PATH, orders)],
        middleware=[Middleware(AuthenticationMiddleware, backend=PyJWTBackend(keys))],
    )


def fastapi_httpbearer(keys: AlgKeys, *, scope: str | None = None) -> FastAPI:
    """FastAPI + ``HTTPBearer`` + an async dependency that decodes with PyJWT."""
    bearer = HTTPBearer()
    key, algorithms = keys.verifying, [keys.alg]

    async def current_claims(
        security_scopes: SecurityScopes,
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    ) -> dict[str, Any]:
        challenge = {"WWW-Authenticate": "Bearer"}
        try:
            claims: dict[str, Any] = jwt.decode(
                credentials.credentials,
                key,
                algorithms=algorithms,
                audience=AUDIENCE,
                issuer=ISSUER,
            )
        except jwt.ExpiredSignatureError as exc:
            raise HTTPException(401, "Token expired", headers=challenge) from exc
        except jwt.InvalidTokenError as exc:
            raise HTTPException(401, "Invalid token", headers=challenge) from exc
        granted = str(claims.get("scope", "")).split()
        if any(needed not in granted for needed in security_scopes.scopes):
            raise HTTPException(403, "Not enough permissions", headers=challenge)
        return claims

    app = FastAPI()
    scopes = [] if scope is None else [scope]

    @app.get(PATH, response_class=FastAPIPlainText)
    async def orders(
        _claims: Annotated[dict[str, Any], Security(current_claims, scopes=scopes)],
    ) -> FastAPIPlainText:
        return FastAPIPlainText("ok")

    return app


def flask_jwt_extended(keys: AlgKeys, *, blocklist: Blocklist | None = None) -> Flask:
    """Flask + flask-jwt-extended ``@jwt_required()`` for externally issued tokens."""
    app = Flask("flask_jwt_extended")
    app.config.update(
        JWT_ALGORITHM=keys.alg,
        JWT_DECODE_ALGORITHMS=[keys.alg],
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_ISSUER=ISSUER,
    )
    if keys.alg.startswith("HS"):
        app.config["JWT_SECRET_KEY"] = keys.pem
    else:
        app.config["JWT_PUBLIC_KEY"] = keys.pem
    manager = JWTManager(app)
    if blocklist is not None:
        manager.token_in_blocklist_loader(blocklist)

    @app.get(PATH)
    @jwt_required()  # type: ignore[untyped-decorator]
    def orders() -> str:
        return "ok"

    return app


def memory_blocklist(revoked_jtis: set[str]) -> Blocklist:
    """flask-jwt-extended's in-memory blocklist recipe."""

    def check(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return payload["jti"] in revoked_jtis

    return check


def redis_blocklist(client: redis.Redis) -> Blocklist:
    """flask-jwt-extended's Redis blocklist recipe: one ``GET`` of the ``jti`` per request."""

    def check(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
        return client.get(payload["jti"]) is not None

    return check


class _RFC9068Validator(JWTBearerTokenValidator):  # type: ignore[misc]
    def __init__(self, key: Key) -> None:
        super().__init__(issuer=ISSUER, resource_server=AUDIENCE)
        self._key = key

    def get_jwks(self) -> Key:
        return self._key


def _joserfc_key(keys: AlgKeys) -> Key:
    key: Key
    if keys.alg.startswith("HS"):
        key = OctKey.import_key(keys.signing)
    elif keys.alg.startswith("RS"):
        key = RSAKey.import_key(keys.pem)
    else:
        key = ECKey.import_key(keys.pem)
    return key


def authlib_flask(keys: AlgKeys, *, scope: str | None = None) -> Flask:
    """Flask + Authlib ``ResourceProtector`` + the RFC 9068 JWT validator."""
    app = Flask("authlib")
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(_RFC9068Validator(_joserfc_key(keys)))

    @app.get(PATH)
    @require_oauth(scope)  # type: ignore[untyped-decorator]
    def orders() -> str:
        return "ok"

    return app
