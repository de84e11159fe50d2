"""Revocation: tokens (by ``iss`` + ``jti``) and subjects that must stop working.

Entries are keyed by the issuer and token id, never by a hash of the token string (one
token can be written several ways), and expire when the token would have expired, so
a store never grows without bound. :class:`MemoryRevocationStore` is the one-process
default; :class:`~invalidtoken_mw.RedisRevocationStore` shares revocations between
instances.

Claims reach a store only once the token's signature and registered claims passed, but
a signed claim can still be absurd: an ``iat`` of ``-10**309`` is a valid JSON number
beyond any float. Stores read ``iat`` through :func:`revocation_keys`, which never
raises and keeps the order of every moment (see its docstring). The verifier asks a
store through :func:`check_revocation` (or :func:`check_revocation_async`): whatever
a store raises, a bug in it included, ends as ``revocation_unavailable`` (503) with a
logged error, never as a 500.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from cachetools import TLRUCache

from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DEFAULT_MAX_TOKEN_LIFETIME",
    "STORE_ERROR_EVENT",
    "MemoryRevocationStore",
    "RevocationStore",
    "check_revocation",
    "check_revocation_async",
    "revocation_keys",
]

DEFAULT_MAX_TOKEN_LIFETIME = 86400.0
"""The stores' default ``max_token_lifetime``: a subject revocation lasts a day."""
STORE_ERROR_EVENT = "revocation_store_error"
"""The event logged (at ``error``) when a revocation store raises something unexpected."""

_log = structlog.get_logger("invalidtoken_mw")


class _Throttle:
    """At most one event per key and interval; the next one counts those left out.

    A broken store fails every request, and the middleware rate-limits only its
    ``auth_rejected`` events: this keeps the extra error event from flooding the log.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, int]] = {}  # key -> (last emitted, left out)

    def acquire(self, key: str) -> int | None:
        """``None``: leave this event out; else how many were left out before it."""
        now = self._clock()
        with self._lock:
            last, left_out = self._last.get(key, (-math.inf, 0))
            if now - last < self.interval:
                self._last[key] = (last, left_out + 1)
                return None
            if len(self._last) >= 64:  # noqa: PLR2004 - error types are few; stay bounded
                self._last.clear()
            self._last[key] = (now, 0)
            return left_out


_store_error_log = _Throttle(interval=1.0)


class RevocationStore(Protocol):
    """What the verifier needs from a revocation store.

    The verifier asks through :func:`check_revocation`: an :class:`AuthFailure` a store
    raises is the answer; any other exception is ``revocation_unavailable`` (503).
    """

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the verified ``claims`` belong to a revoked token or subject."""
        ...  # pragma: no cover - protocol

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Same as :meth:`is_revoked`, without blocking the event loop."""
        ...  # pragma: no cover - protocol


def revocation_keys(claims: Mapping[str, Any]) -> tuple[str, str | None, str | None, float | None]:
    """The identity a revocation check needs: ``(iss, jti, sub, iat)``, types checked.

    Never raises, whatever the claims hold. ``iat`` stays the claim's own number,
    never converted: Python compares an integer with a float exactly, so an ``iat`` of
    ``-10**309`` (beyond any float) is earlier than every revocation moment and
    ``10**309`` later than all of them, as the rules say: a subject revocation covers
    the first token and not the second. An ``iat`` that is not a number (a string, a
    boolean) or is NaN (which orders with nothing) counts as no ``iat``: a subject
    revocation covers it, failing closed.
    """
    iss = claims.get("iss")
    jti = claims.get("jti")
    sub = claims.get("sub")
    return (
        iss if isinstance(iss, str) else "",
        jti if isinstance(jti, str) else None,
        sub if isinstance(sub, str) else None,
        _number(claims.get("iat")),
    )


def _number(value: object) -> int | float | None:
    """``value`` when it is a number that orders (an int, a float but NaN), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if isinstance(value, float) and math.isnan(value) else value


def _as_float(value: object) -> float | None:
    """A number as a float of the same order: an int beyond the float range is an infinity.

    ``float(10**309)`` raises ``OverflowError``; here it is ``inf`` (and ``-10**309``
    ``-inf``), which is still later (earlier) than every real moment. ``None`` when
    ``value`` is not a number or is NaN.
    """
    number = _number(value)
    if isinstance(number, int):
        try:
            return float(number)
        except OverflowError:
            return math.inf if number > 0 else -math.inf
    return number


def _expiry(expires_at: float) -> float:
    """``expires_at`` (a token's ``exp``) as a float of the same order, never overflowing.

    An ``exp`` beyond the float range is an infinity of its sign: ``10**309`` is a
    token that never expires, ``-10**309`` one that expired long ago.

    Raises:
        ValueError: ``expires_at`` is NaN or not a number.
    """
    moment = _as_float(expires_at)
    if moment is None:
        raise ValueError("expires_at must be a number of seconds since the epoch (the exp).")
    return moment


def _revocation_moment(before: float | None) -> float:
    """The moment of a subject revocation: ``before``, or now when ``None``.

    Raises:
        ValueError: ``before`` is not a finite number (an infinite moment would revoke
            every future token of the subject, or none, and cannot expire).
    """
    if before is None:
        return time.time()
    moment = _as_float(before)
    if moment is None or not math.isfinite(moment):
        raise ValueError("before must be a finite number of seconds since the epoch.")
    return moment


def subject_revoked(iat: float | None, revoked_before: float | None, leeway: float) -> bool:
    """Whether a subject revocation at ``revoked_before`` covers a token issued at ``iat``.

    It covers tokens without ``iat`` and tokens issued before ``revoked_before +
    leeway``: an issuer whose clock runs ahead by up to the leeway (which the verifier
    tolerates) stamps a token minted just before the revocation with a later ``iat``.
    ``iat`` may lie beyond any float (see :func:`revocation_keys`): ``-10**309`` is
    covered, ``10**309`` is not.
    """
    return revoked_before is not None and (iat is None or iat < revoked_before + leeway)


def check_revocation(store: RevocationStore, claims: Mapping[str, Any]) -> bool:
    """Ask ``store`` whether ``claims`` are revoked; whatever it raises is a 503, never a 500.

    The verifier calls this rather than ``store.is_revoked`` directly.

    Raises:
        AuthFailure: The one the store raised, unchanged (e.g. ``revocation_unavailable``
            from :class:`~invalidtoken_mw.RedisRevocationStore`); or, for any other
            exception (a bug, an outage of your own store), ``revocation_unavailable``
            with the exception's type as ``error_type`` in the ``auth_rejected`` event,
            after a ``revocation_store_error`` event naming it (never the token or
            its claims).
    """
    try:
        return bool(store.is_revoked(claims))
    except AuthFailure:
        raise
    except Exception as exc:
        raise _store_failed(store, exc) from exc


async def check_revocation_async(store: RevocationStore, claims: Mapping[str, Any]) -> bool:
    """:func:`check_revocation` through ``store.is_revoked_async``, on the event loop.

    Raises:
        AuthFailure: As :func:`check_revocation`.
    """
    try:
        return bool(await store.is_revoked_async(claims))
    except AuthFailure:
        raise
    except Exception as exc:
        raise _store_failed(store, exc) from exc


def _store_failed(store: object, exc: Exception) -> AuthFailure:
    """Log an unexpected store error (type names only) and make it the outage answer."""
    error_type = type(exc).__name__
    suppressed = _store_error_log.acquire(error_type)
    if suppressed is not None:
        fields: dict[str, object] = {"error_type": error_type, "store": type(store).__name__}
        if suppressed:
            fields["suppressed"] = suppressed
        _log.error(STORE_ERROR_EVENT, **fields)
    return AuthFailure(Reason.REVOCATION_UNAVAILABLE, context={"error_type": error_type})


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

        An ``exp`` beyond the float range (``10**309``) is a token that never expires:
        its entry stays until the store is full and it is the least recently used.

        Returns:
            ``False`` when the token has already expired (nothing is stored).

        Raises:
            ValueError: ``expires_at`` is NaN or not a number.
        """
        expires = _expiry(expires_at) + self.leeway
        if expires <= time.time():
            return False
        with self._lock:
            self._tokens[(issuer, jti)] = expires
        return True

    def revoke_subject(self, subject: str, *, issuer: str, before: float | None = None) -> None:
        """Reject the subject's tokens issued before ``before`` (default: now) plus ``leeway``.

        Raises:
            ValueError: ``before`` is not a finite number.
        """
        moment = _revocation_moment(before)
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
