"""The stacks people use today, each built the way its documentation shows.

- Starlette ``AuthenticationMiddleware`` with a PyJWT ``AuthenticationBackend`` and
  ``@requires("authenticated")`` (decoding with a key object parsed once);
- FastAPI ``HTTPBearer`` with an ``async`` dependency calling ``jwt.decode``;
- flask-jwt-extended ``@jwt_required()``, configured with ``JWT_DECODE_*`` and the PEM
  public key;
- Authlib ``ResourceProtector`` with the RFC 9068 ``JWTBearerTokenValidator`` on Flask,
  returning a pre-imported joserfc key from ``get_jwks``.

They are benchmark-only dependencies (``pip install --group bench``). No
``from __future__ import annotations`` here: FastAPI reads the dependency's annotations
at run time.
"""

from typing import Annotated, Any

import jwt
from authlib.integrations.flask_oauth2 import (  # type: ignore[import-untyped]
    ResourceProtector,
)
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator  # type: ignore[import-untyped]
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import PlainTextResponse as FastAPIPlainText
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from flask import Flask
from flask_jwt_extended import JWTManager, jwt_required
from joserfc.jwk import ECKey, Key, OctKey, RSAKey
from stacks import AUDIENCE, ISSUER, AlgKeys
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
from timing import PATH


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
        return AuthCredentials(["authenticated"]), SimpleUser(claims["sub"])


def starlette_pyjwt(keys: AlgKeys) -> Starlette:
    """Starlette + ``AuthenticationMiddleware`` + ``@requires("authenticated")``."""

    @requires("authenticated")
    async def orders(request: Request) -> PlainTextResponse:  # noqa: ARG001 - found by name
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route(PATH, orders)],
        middleware=[Middleware(AuthenticationMiddleware, backend=PyJWTBackend(keys))],
    )


def fastapi_httpbearer(keys: AlgKeys) -> FastAPI:
    """FastAPI + ``HTTPBearer`` + an async dependency that decodes with PyJWT."""
    bearer = HTTPBearer()
    key, algorithms = keys.verifying, [keys.alg]

    async def current_claims(
        credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                credentials.credentials,
                key,
                algorithms=algorithms,
                audience=AUDIENCE,
                issuer=ISSUER,
            )
        except jwt.InvalidTokenError as exc:
            raise HTTPException(401, "Invalid token", {"WWW-Authenticate": "Bearer"}) from exc
        return claims

    app = FastAPI()

    @app.get(PATH, response_class=FastAPIPlainText)
    async def orders(
        _claims: Annotated[dict[str, Any], Depends(current_claims)],
    ) -> FastAPIPlainText:
        return FastAPIPlainText("ok")

    return app


def flask_jwt_extended(keys: AlgKeys) -> Flask:
    """Flask + flask-jwt-extended ``@jwt_required()`` for externally issued tokens."""
    app = Flask("flask_jwt_extended")
    app.config.update(
        JWT_ALGORITHM=keys.alg,
        JWT_DECODE_ALGORITHMS=[keys.alg],
        JWT_DECODE_AUDIENCE=AUDIENCE,
        JWT_DECODE_ISSUER=ISSUER,
    )
    app.config["JWT_SECRET_KEY" if keys.alg.startswith("HS") else "JWT_PUBLIC_KEY"] = keys.pem
    JWTManager(app)

    @app.get(PATH)
    @jwt_required()  # type: ignore[untyped-decorator]
    def orders() -> str:
        return "ok"

    return app


class _RFC9068Validator(JWTBearerTokenValidator):  # type: ignore[misc]
    def __init__(self, key: Key) -> None:
        super().__init__(issuer=ISSUER, resource_server=AUDIENCE)
        self._key = key

    def get_jwks(self) -> Key:
        return self._key


def authlib_flask(keys: AlgKeys) -> Flask:
    """Flask + Authlib ``ResourceProtector`` + the RFC 9068 JWT validator."""
    key: Key
    if keys.alg.startswith("HS"):
        key = OctKey.import_key(keys.signing)
    elif keys.alg.startswith("RS"):
        key = RSAKey.import_key(keys.pem)
    else:
        key = ECKey.import_key(keys.pem)
    app = Flask("authlib")
    require_oauth = ResourceProtector()
    require_oauth.register_token_validator(_RFC9068Validator(key))

    @app.get(PATH)
    @require_oauth()  # type: ignore[untyped-decorator]
    def orders() -> str:
        return "ok"

    return app
