"""The verifier of the orders API, from the environment."""

from __future__ import annotations

from invalidtoken_mw import JWTVerifier, MemoryRevocationStore
from invalidtoken_mw import verifier_from_env as from_env


def verifier_from_env() -> JWTVerifier:
    """The verifier, from ``INVALIDTOKEN_*`` environment variables (see the README)."""
    return from_env(
        algorithms=["RS256"], audience="api://orders", revocation=MemoryRevocationStore()
    )
