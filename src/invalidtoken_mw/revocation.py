"""Revocation: tokens (by ``iss`` + ``jti``) and subjects that must stop working.

Entries are keyed by the issuer and token id, never by a hash of the token string (one
token can be written several ways), and expire when the token would have expired, so
a store never grows without bound. :class:`MemoryRevocationStore` is the one-process
default; :class:`~invalidtoken_mw.RedisRevocationStore` shares revocations between
instances.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import TLRUCache

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_MAX_TOKEN_LIFETIME",
    "MemoryRevocationStore",
    "RevocationStore",
    "revocation_keys",
]

DEFAULT_MAX_TOKEN_LIFETIME = 86400.0


class RevocationStore(Protocol):
    """What the verifier needs from a revocation store."""

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the verified ``claims`` belong to a revoked token or subject."""
        ...  # pragma: no cover - protocol

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Same as :meth:`is_revoked`, without blocking the event loop."""
        ...  # pragma: no cover - protocol


def revocation_keys(claims: Mapping[str, Any]) -> tuple[str, str | None, str | None, float | None]:
    """The identity a revocation check needs: ``(iss, jti, sub, iat)``, types checked."""
    iss = claims.get("iss")
    jti = claims.get("jti")
    sub = claims.get("sub")
    iat = claims.get("iat")
    return (
        iss if isinstance(iss, str) else "",
        jti if isinstance(jti, str) else None,
        sub if isinstance(sub, str) else None,
        float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None,
    )


def subject_revoked(iat: float | None, revoked_before: float | None, leeway: float) -> bool:
    """Whether a subject revocation at ``revoked_before`` covers a token issued at ``iat``.

    It covers tokens without ``iat`` and tokens issued before ``revoked_before +
    leeway``: an issuer whose clock runs ahead by up to the leeway (which the verifier
    tolerates) stamps a token minted just before the revocation with a later ``iat``.
    """
    return revoked_before is not None and (iat is None or iat < revoked_before + leeway)


def _check_lifetime(max_token_lifetime: float) -> float:
    if max_token_lifetime <= 0:
        raise ValueError("max_token_lifetime must be > 0 seconds (default 86400).")
    return float(max_token_lifetime)


class MemoryRevocationStore:
    """A bounded, thread-safe revocation store for one process.

    Args:
        maxsize: Entries kept at most per kind (token ids, subjects); the least
            recently used are dropped first when full.
        max_token_lifetime: How long a subject revocation lasts, in seconds: the
            longest lifetime of a token your issuer hands out.
        leeway: The verifier's clock-skew leeway, in seconds: added to each entry's
            lifetime, and a subject revocation also covers tokens issued up to
            ``leeway`` seconds after its moment (an issuer clock running ahead).
    """

    def __init__(
        self,
        *,
        maxsize: int = 100_000,
        max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME,
        leeway: float = 60.0,
    ) -> None:
        """Create the empty store."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1.")
        self.max_token_lifetime = _check_lifetime(max_token_lifetime)
        self.leeway = float(leeway)
        self._lock = threading.Lock()
        self._tokens: TLRUCache[tuple[str, str], float] = TLRUCache(
            maxsize, lambda _k, expires, _now: expires, timer=time.time
        )
        self._subjects: TLRUCache[tuple[str, str], float] = TLRUCache(
            maxsize, self._subject_expiry, timer=time.time
        )

    def _subject_expiry(self, _key: tuple[str, str], before: float, _now: float) -> float:
        return before + self.max_token_lifetime + self.leeway

    def revoke(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Revoke one token until ``expires_at`` (its ``exp``).

        Returns:
            ``False`` when the token has already expired (nothing is stored).
        """
        expires = float(expires_at) + self.leeway
        if expires <= time.time():
            return False
        with self._lock:
            self._tokens[(issuer, jti)] = expires
        return True

    def revoke_subject(self, subject: str, *, issuer: str, before: float | None = None) -> None:
        """Reject the subject's tokens issued before ``before`` (default: now) plus ``leeway``."""
        moment = time.time() if before is None else float(before)
        with self._lock:
            previous = self._subjects.get((issuer, subject))
            self._subjects[(issuer, subject)] = max(moment, previous or moment)

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether ``claims`` belong to a revoked token or subject."""
        iss, jti, sub, iat = revocation_keys(claims)
        with self._lock:
            if jti is not None and (iss, jti) in self._tokens:
                return True
            revoked_before = None if sub is None else self._subjects.get((iss, sub))
        return subject_revoked(iat, revoked_before, self.leeway)

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Same as :meth:`is_revoked` (in memory: nothing to wait for)."""
        return self.is_revoked(claims)

    async def revoke_async(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Async form of :meth:`revoke`."""
        return self.revoke(jti=jti, issuer=issuer, expires_at=expires_at)

    async def revoke_subject_async(
        self, subject: str, *, issuer: str, before: float | None = None
    ) -> None:
        """Async form of :meth:`revoke_subject`."""
        self.revoke_subject(subject, issuer=issuer, before=before)

    def __len__(self) -> int:
        """Entries currently held (token ids plus subjects)."""
        with self._lock:
            self._tokens.expire()
            self._subjects.expire()
            return len(self._tokens) + len(self._subjects)
