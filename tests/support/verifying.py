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
    from invalidtoken_mw.keys import KeySource, VerifyingKey
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


class CountingKeys:
    """A key source wrapping the verifier's own and counting the keys it hands out.

    The verifier asks for a key once per token it really checks (past the structure
    checks, on a cache miss), so this counts full verifications.
    """

    def __init__(self, inner: KeySource) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def version(self) -> int:
        """The wrapped source's version."""
        return self.inner.version

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:
        """Count, then look the key up for real."""
        self.calls += 1
        return self.inner.key_for(kid, alg)

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:
        """Count, then look the key up for real."""
        self.calls += 1
        return await self.inner.key_for_async(kid, alg)

    def holds(self, key: VerifyingKey) -> bool:
        """Whether the wrapped source still publishes ``key``."""
        return self.inner.holds(key)

    def refresh(self) -> None:
        """Refresh the wrapped source."""
        self.inner.refresh()

    async def refresh_async(self) -> None:
        """Refresh the wrapped source."""
        await self.inner.refresh_async()


class ExplodingKeys(CountingKeys):
    """A key source that fails the way a library bug would."""

    def __init__(self, inner: KeySource, error: type[Exception] = RuntimeError) -> None:
        super().__init__(inner)
        self.error = error

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:  # noqa: ARG002
        """Fail unexpectedly."""
        raise self.error("boom")

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:  # noqa: ARG002
        """Fail unexpectedly."""
        raise self.error("boom")


def count_decodes(verifier: JWTVerifier, monkeypatch: pytest.MonkeyPatch) -> CountingKeys:
    """Make ``verifier`` count its full verifications for the rest of the test."""
    counter = CountingKeys(verifier.keys)
    monkeypatch.setattr(verifier, "keys", counter)
    return counter


def jwks_verifier(server: JWKSServer, **options: Any) -> JWTVerifier:
    """A verifier using ``server``'s JWKS with a short cool-down."""
    options.setdefault("algorithms", list(ASYMMETRIC))
    options.setdefault("jwks_cooldown", COOLDOWN)
    return JWTVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE, **options)


def signed_with_kid(alg: str, kid: str, payload: dict[str, Any] | None = None) -> str:
    """A token signed with the session key for ``alg``, naming ``kid``."""
    return mint(alg, payload, headers={"kid": kid})
