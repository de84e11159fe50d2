"""VerdictCache: what a verifier has already decided about a token, by its digest.

A client resends its token until it expires, so remembering the verdict turns every
request after the first into a dictionary lookup:

- **Accepted tokens** are remembered with their claims until the earlier of
  ``ttl`` and the token's own ``exp`` (plus leeway), and with the key that verified
  them: once the key source no longer publishes that key (an issuer withdrew it from
  its JWKS, and a refresh saw it), the verdict is dropped and the token is checked
  again, so it is refused ``unknown_key``.
- **Lasting refusals** (a bad signature, an expired token, a wrong claim: anything
  decided after the signature check, which would cost a signature check again) are
  remembered for ``negative_ttl`` as plain values (reason, description, context),
  never as the raised exception, whose traceback would keep the request's frames alive.
  They are forgotten when the key source changes. Refusals that are cheaper to
  recompute than to store (bad structure, an algorithm not allowed) are not remembered.
- **Entries are keyed by a 16-byte digest** of the token, never by the token: an entry
  costs the same whatever the token's size, and no token is kept in memory.

Both maps are bounded LRU caches (``cachetools``), guarded by one lock, so the cache is
safe to share between threads and event loops.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from cachetools import LRUCache

from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Mapping

    from invalidtoken_mw.keys import KeySource, VerifyingKey

__all__ = ["LASTING_REASONS", "VerdictCache"]

LASTING_REASONS = frozenset(
    {
        Reason.MALFORMED_TOKEN,
        Reason.ALGORITHM_NOT_ALLOWED,
        Reason.BAD_SIGNATURE,
        Reason.EXPIRED,
        Reason.WRONG_ISSUER,
        Reason.WRONG_AUDIENCE,
        Reason.WRONG_TOKEN_TYPE,
        Reason.MISSING_CLAIM,
        Reason.WRONG_CLAIM,
        Reason.REVOKED,
    }
)
"""Verdicts that stay true for a given token, key and configuration; safe to remember."""
_DIGEST_BYTES = 16  # 128 bits of SHA-256: no collision by chance or by design
# Digests of recent tokens of usual size are remembered, so a resent token costs a dict
# lookup rather than a SHA-256; the map is emptied when full (at most about 0.7 MiB).
_DIGESTS_REMEMBERED = 256
_DIGEST_MEMO_CHARS = 2048


class _Accepted(NamedTuple):
    claims: dict[str, Any]
    reuse_until: float  # the earlier of ttl and expires_at
    expires_at: float  # exp + leeway
    nested: tuple[str, ...]  # the claims holding a list or an object: copied deep
    key: VerifyingKey  # the key that verified the token
    version: int  # the key source's version when last known to hold ``key``


class _Refused(NamedTuple):
    reason: Reason
    description: str
    context: Mapping[str, object]
    until: float
    version: int
    signature_verified: bool


def digest(token: str) -> bytes:
    """The cache key of ``token``: the first 16 bytes of SHA-256 over its UTF-8 bytes.

    SHA-256 rather than a faster-looking hash: CPUs compute it in hardware, and no
    attacker can make two tokens share an entry.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()[:_DIGEST_BYTES]


_CONTAINERS = (dict, list)  # the JSON values a copy must copy in turn


def copy_claims(claims: dict[str, Any], *, nested: bool) -> dict[str, Any]:
    """A copy of decoded JSON claims the caller may change without touching ``claims``.

    Deep only where it must be (``nested``), and several times faster than ``deepcopy``.
    """
    return _copy_value(claims) if nested else dict(claims)


def _containers(claims: dict[str, Any]) -> tuple[str, ...]:
    """The names of the claims holding an object or an array (copied deep)."""
    return tuple(name for name, value in claims.items() if type(value) in _CONTAINERS)


def _copy_value(value: Any) -> Any:  # noqa: ANN401 - a JSON object or array
    """A deep copy of a JSON object or array: a shallow one, then its containers copied."""
    if type(value) is dict:
        copy = dict(value)  # one C call; then only the nested values are replaced
        for key, member in value.items():
            if type(member) in _CONTAINERS:
                copy[key] = _copy_value(member)
        return copy
    return [_copy_value(item) if type(item) in _CONTAINERS else item for item in value]


class VerdictCache:
    """Remembered verdicts, by token digest; see the module docstring.

    Args:
        size: Accepted tokens remembered, and as many refusals (``0``: remember nothing).
        ttl: Longest time an accepted token is remembered, in seconds.
        negative_ttl: How long a lasting refusal is remembered (``0``: not at all).
        keys: The key source whose keys verified the tokens, to forget what a
            withdrawn key verified.
        leeway: Seconds added to ``exp`` before a remembered token counts as expired.
    """

    __slots__ = (
        "_accepted",
        "_digests",
        "_keys",
        "_leeway",
        "_lock",
        "_negative_ttl",
        "_refused",
        "_ttl",
    )

    def __init__(
        self,
        *,
        size: int,
        ttl: float,
        negative_ttl: float,
        keys: KeySource,
        leeway: float,
    ) -> None:
        """Create empty caches."""
        self._accepted: LRUCache[bytes, _Accepted] | None = LRUCache(size) if size else None
        self._refused: LRUCache[bytes, _Refused] | None = (
            LRUCache(size) if size and negative_ttl else None
        )
        self._ttl = float(ttl)
        self._negative_ttl = float(negative_ttl)
        self._keys = keys
        self._leeway = float(leeway)
        self._lock = threading.Lock()
        self._digests: dict[str, bytes] = {}

    def key(self, token: str) -> bytes:
        """The cache key of ``token`` (its digest); ``b""`` when nothing is remembered."""
        if self._accepted is None:
            return b""
        known = self._digests.get(token)
        if known is None:
            known = digest(token)
            if len(token) <= _DIGEST_MEMO_CHARS:
                # Single dict operations are atomic: threads may race here harmlessly.
                if len(self._digests) >= _DIGESTS_REMEMBERED:
                    self._digests.clear()
                self._digests[token] = known
        return known

    @property
    def enabled(self) -> bool:
        """Whether anything is remembered at all."""
        return self._accepted is not None

    def lookup(self, key: bytes) -> dict[str, Any] | None:
        """A copy of the remembered claims, or ``None`` when nothing usable is remembered.

        Raises:
            AuthFailure: The remembered refusal (a fresh exception per call), or
                ``expired`` for an accepted token whose ``exp`` has passed.
        """
        if self._accepted is None:
            return None
        with self._lock:
            hit = self._accepted.get(key)
            refused = None if hit is not None or self._refused is None else self._refused.get(key)
        if hit is not None:
            return self._accepted_hit(key, hit)
        if refused is not None:
            if time.time() < refused.until and refused.version == self._keys.version:
                failure = AuthFailure(refused.reason, refused.description, context=refused.context)
                failure.signature_verified = refused.signature_verified
                raise failure
            self.forget(key)
        return None

    def _accepted_hit(self, key: bytes, hit: _Accepted) -> dict[str, Any] | None:
        now = time.time()
        if now >= hit.reuse_until:
            self.forget(key)
            if now >= hit.expires_at:
                expired = AuthFailure(Reason.EXPIRED)
                expired.signature_verified = True  # the remembered verdict was verified
                raise expired
            return None
        if hit.version != self._keys.version:
            # The key source changed since: keep the verdict only if its key is still there.
            if not self._keys.holds(hit.key):
                self.forget(key)
                return None
            with self._lock:
                if self._accepted is not None and key in self._accepted:
                    self._accepted[key] = hit._replace(version=self._keys.version)
        # Deep where nested: the app may change a scope list of its copy.
        claims = hit.claims
        copy = dict(claims)
        for name in hit.nested:
            copy[name] = _copy_value(claims[name])
        return copy

    def remember(
        self,
        key: bytes,
        claims: dict[str, Any],
        nested: bool,  # noqa: FBT001 - internal, positional for speed
        verified_by: VerifyingKey,
        version: int,
    ) -> dict[str, Any]:
        """Remember freshly decoded ``claims``; return a copy to hand out.

        ``claims`` itself is kept and never handed out; ``nested`` says whether it may
        hold lists or objects (then copies are deep). ``version`` is the key source's
        version read before the key was looked up, so a refresh racing this request
        makes the next lookup check the key again.
        """
        if self._accepted is None:
            return claims
        expires_at = math.inf
        exp = claims.get("exp")
        if exp is not None:
            # A JSON number the verifier accepted; one beyond any float never ends.
            try:
                expires_at = int(exp) + self._leeway
            except OverflowError:
                expires_at = math.inf
        reuse_until = min(time.time() + self._ttl, expires_at)
        containers = _containers(claims) if nested else ()
        entry = _Accepted(claims, reuse_until, expires_at, containers, verified_by, version)
        with self._lock:
            self._accepted[key] = entry
        return copy_claims(claims, nested=nested)

    def remember_refusal(self, key: bytes, failure: AuthFailure, version: int) -> None:
        """Remember a lasting refusal (see :data:`LASTING_REASONS`) as plain values."""
        if self._refused is None or failure.reason not in LASTING_REASONS:
            return
        entry = _Refused(
            failure.reason,
            failure.description,
            failure.context,
            time.time() + self._negative_ttl,
            version,
            failure.signature_verified,
        )
        with self._lock:
            self._refused[key] = entry

    def forget(self, key: bytes) -> None:
        """Forget whatever is remembered about the token with this digest."""
        with self._lock:
            if self._accepted is not None:
                self._accepted.pop(key, None)
            if self._refused is not None:
                self._refused.pop(key, None)
