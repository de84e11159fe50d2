"""Verifier helpers shared by the test_verify_* modules: verdicts, test verifiers, counters."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from invalidtoken_mw.reasons import AuthFailure
from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    AUDIENCE,
    ISSUER,
    b64url,
    claims,
    mint,
    session_keys,
)

if TYPE_CHECKING:
    import jwt

    from support.jwks_server import JWKSServer

APIS = pytest.mark.parametrize("api", ["sync", "async"])
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")
COOLDOWN = 0.05
HS256 = {"alg": "HS256", "typ": "JWT"}
# The base64url claims segment of a valid token, for hand-built tokens.
CLAIMS_B64 = b64url(json.dumps(claims()).encode())


def verdict(verifier: JWTVerifier, token: str, api: str = "sync") -> str:
    """Return ``"valid"`` or the reason value, through the sync or the async API."""
    try:
        if api == "async":
            asyncio.run(verifier.verify_async(token))
        else:
            verifier.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


def failure_of(verifier: JWTVerifier, token: str) -> AuthFailure:
    """Return the failure ``verify`` raises (the test fails if it accepts the token)."""
    with pytest.raises(AuthFailure) as info:
        verifier.verify(token)
    return info.value


def static_verifier(alg: str = "HS256", **options: Any) -> JWTVerifier:
    """A verifier holding the session's key for ``alg``, expecting ISSUER and AUDIENCE."""
    options.setdefault("issuer", ISSUER)
    options.setdefault("audience", AUDIENCE)
    return JWTVerifier(key=session_keys().verifying_key(alg), algorithms=[alg], **options)


class CountingDecoder:
    """Wraps the verifier's PyJWT decoder and counts the decodes it really performs."""

    def __init__(self, inner: jwt.PyJWT) -> None:
        self.inner = inner
        self.calls = 0

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        """Count, then decode for real."""
        self.calls += 1
        return self.inner.decode(*args, **kwargs)


def count_decodes(verifier: JWTVerifier, monkeypatch: pytest.MonkeyPatch) -> CountingDecoder:
    """Make ``verifier`` count its decodes for the rest of the test."""
    counter = CountingDecoder(verifier._decoder)  # noqa: SLF001 - the one seam for counting decodes
    monkeypatch.setattr(verifier, "_decoder", counter)
    return counter


def jwks_verifier(server: JWKSServer, **options: Any) -> JWTVerifier:
    """A verifier using ``server``'s JWKS with a short cool-down."""
    options.setdefault("algorithms", list(ASYMMETRIC))
    options.setdefault("jwks_cooldown", COOLDOWN)
    return JWTVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE, **options)


def signed_with_kid(alg: str, kid: str, payload: dict[str, Any] | None = None) -> str:
    """A token signed with the session key for ``alg``, naming ``kid``."""
    return mint(alg, payload, headers={"kid": kid})
