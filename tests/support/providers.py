"""The configuration blocks of docs/providers.md, served against provider-shaped issuers.

:func:`config_block` reads a ``<!-- provider-config: NAME -->`` block from the page;
:func:`serve_provider` runs it against a :class:`~invalidtoken_mw.testing.LocalIssuer`
with the provider's real origins replaced by the issuer's loopback one, on a FastAPI
application served by uvicorn, so the tests verify exactly what the page tells users.
"""

from __future__ import annotations

import base64
import contextlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from jwt.algorithms import RSAAlgorithm
from starlette.responses import JSONResponse

from invalidtoken_mw.fastapi import require_roles, require_scopes
from invalidtoken_mw.testing import LocalIssuer, mint_token
from support.servers import client, run_uvicorn

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from starlette.requests import Request

PAGE = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
# "no-run" keeps tests/test_docs.py from running the blocks without their issuer.
_BLOCK = re.compile(
    r"<!-- provider-config: ([a-z0-9-]+) -->\n<!-- no-run -->\n```python\n(.*?)\n```", re.DOTALL
)


def config_blocks() -> dict[str, str]:
    """Every configuration block of docs/providers.md, by its marker's name."""
    blocks: dict[str, str] = {}
    for name, code in _BLOCK.findall(PAGE.read_text(encoding="utf-8")):
        assert name not in blocks, f"two blocks are named {name!r}"
        blocks[name] = code
    return blocks


def config_block(name: str) -> str:
    """The configuration block named ``name``."""
    return config_blocks()[name]


def encryption_jwk(kid: str = "enc-key-1") -> tuple[Any, dict[str, Any]]:
    """An RSA-OAEP encryption key (``use: enc``) as Keycloak publishes it, and its private half."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.update(kid=kid, use="enc", alg="RSA-OAEP")
    return private, jwk


def sign_with(private: Any, kid: str, claims: dict[str, Any]) -> str:
    """A token signed RS256 by ``private`` under ``kid`` (a key the issuer does not sign with)."""
    return mint_token(private, algorithm="RS256", claims=claims, headers={"kid": kid, "typ": "JWT"})


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of ``token``, decoded without any check (to assert on its shape)."""
    import json  # noqa: PLC0415

    segment = token.split(".", maxsplit=1)[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


async def _claims(request: Request) -> JSONResponse:
    return JSONResponse(request.state.token_claims)


def _app(scope: str | None, role: str | None) -> FastAPI:
    app = FastAPI()
    app.add_route("/claims", _claims)
    if scope is not None:
        app.add_api_route("/scoped", _ok, dependencies=[Depends(require_scopes(scope))])
    if role is not None:
        app.add_api_route("/role", _ok, dependencies=[Depends(require_roles(role))])
    return app


def _ok() -> dict[str, bool]:
    return {"ok": True}


@contextlib.contextmanager
def serve_provider(
    name: str,
    issuer: LocalIssuer,
    origins: tuple[str, ...],
    *,
    scope: str | None = None,
    role: str | None = None,
) -> Iterator[httpx.Client]:
    """Run block ``name`` with ``origins`` pointing at ``issuer``; yield a client for its app.

    The app answers ``/claims`` (any valid token: its claims), ``/scoped`` (needs
    ``scope``) and ``/role`` (needs ``role``).
    """
    code = config_block(name)
    for origin in origins:
        assert origin in code, f"block {name!r} does not mention {origin}"
        code = code.replace(origin, issuer.origin)
    app = _app(scope, role)
    namespace: dict[str, Any] = {"app": app}
    exec(compile(code, f"docs/providers.md[{name}]", "exec"), namespace)  # noqa: S102 - our own docs
    with run_uvicorn(app) as url, client(url) as http:
        yield http
