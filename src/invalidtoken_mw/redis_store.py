"""RedisRevocationStore: revocations shared by every instance, through Redis.

- Keys are ``{prefix}jti:<hash of iss and jti>`` and ``{prefix}sub:<hash of iss and
  sub>``; token entries expire at the token's ``exp`` plus leeway, subject entries
  after the longest token lifetime. No key lives forever. Revoking a subject again
  never shortens an earlier revocation of it.
- One ``MGET`` answers a check. A short per-process cache (default 1 s) keeps Redis
  off the hot path; every revocation is published on a channel, and each instance's
  subscriber thread empties its cache at once (and again after a reconnect), so a
  revocation is effective everywhere well under a second.
- Redis outages: short timeouts, no retries on the request path, and a short pause
  before Redis is tried again; fail closed (``revocation_unavailable``, 503) by
  default, or fail open with a warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from typing import TYPE_CHECKING, Any

import structlog
from cachetools import LRUCache

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    _check_lifetime,
    revocation_keys,
    subject_revoked,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["RedisRevocationStore"]

_log = structlog.get_logger("invalidtoken_mw")
# Connection settings copied from a given sync client to its asyncio twin.
_ASYNC_COPY = ("host", "port", "db", "username", "password", "ssl", "path")
_Identity = tuple[str, "str | None", "str | None", "float | None"]
# Two revocations of one subject: the later ``before`` and the longer lifetime win,
# atomically, so a second revocation can never shorten the first.
_REVOKE_SUBJECT = """
local moment = ARGV[1]
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) > tonumber(moment) then moment = current end
local ttl = math.max(redis.call('TTL', KEYS[1]), tonumber(ARGV[2]))
redis.call('SET', KEYS[1], moment, 'EX', ttl)
return 1
"""


def _import_redis() -> Any:  # noqa: ANN401 - optional dependency
    try:
        import redis  # noqa: PLC0415 - optional dependency
        import redis.asyncio  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "RedisRevocationStore needs: pip install 'invalidtoken-mw[redis]'"
        ) from exc
    return redis


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:40]


class RedisRevocationStore:
    """Revocations in Redis, shared by every instance that points at it.

    Args:
        url: A ``redis://`` or ``rediss://`` URL. Either ``url`` or ``client``.
        client: A ready ``redis.Redis`` client (its own timeouts and retries apply).
        prefix: Prefix of every key and of the channel.
        local_cache_ttl: Seconds an answer is reused in-process (0 disables).
        max_token_lifetime: How long a subject revocation lasts, in seconds.
        leeway: Seconds added to each entry's lifetime, matching the verifier's leeway.
        fail_open: Accept tokens (with a warning log) when Redis is unreachable,
            instead of answering 503.
        timeout: Socket timeout, in seconds, for clients made from ``url``.
        retry_interval: After a Redis error, seconds before Redis is tried again.

    Raises:
        ValueError: Neither or both of ``url`` and ``client``; bad numbers.
        ImportError: ``redis`` is not installed (extra ``invalidtoken-mw[redis]``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,  # noqa: ANN401 - optional dependency's type
        prefix: str = "invalidtoken:",
        local_cache_ttl: float = 1.0,
        max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME,
        leeway: float = 60.0,
        fail_open: bool = False,
        timeout: float = 0.25,
        retry_interval: float = 1.0,
    ) -> None:
        """Configure the clients; nothing connects until first use."""
        redis = _import_redis()
        if (url is None) == (client is None):
            raise ValueError("pass exactly one of url='redis://...' or client=redis.Redis(...).")
        if local_cache_ttl < 0 or timeout <= 0 or retry_interval < 0:
            raise ValueError("local_cache_ttl and retry_interval must be >= 0, timeout > 0.")
        self.prefix = prefix
        self.channel = f"{prefix}revocations"
        self.max_token_lifetime = _check_lifetime(max_token_lifetime)
        self.leeway = float(leeway)
        self.fail_open = fail_open
        self.retry_interval = float(retry_interval)
        self._errors = (redis.RedisError, OSError)
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),
        }
        self._url = url
        self._async_options = options
        self._client = client if client is not None else redis.Redis.from_url(url, **options)
        self._async_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()
        # An LRU with the deadline in each entry: a hit costs a fraction of a TTLCache's.
        self._cache: LRUCache[_Identity, tuple[bool, float]] | None = (
            LRUCache(100_000) if local_cache_ttl else None
        )
        self._cache_ttl = float(local_cache_ttl)
        self._down_until = 0.0
        self._generation = 0  # bumped by every flush: a slower read must not refill
        self._subscriber: threading.Thread | None = None
        self._closed = threading.Event()

    # -- keys -------------------------------------------------------------------

    def _token_key(self, issuer: str, jti: str) -> str:
        return f"{self.prefix}jti:{_digest(issuer, jti)}"

    def _subject_key(self, issuer: str, subject: str) -> str:
        return f"{self.prefix}sub:{_digest(issuer, subject)}"

    def _keys(self, identity: _Identity) -> list[str]:
        iss, jti, sub, _ = identity
        return [
            self._token_key(iss, jti) if jti is not None else f"{self.prefix}none",
            self._subject_key(iss, sub) if sub is not None else f"{self.prefix}none",
        ]

    @staticmethod
    def _verdict(identity: _Identity, values: list[Any]) -> bool:
        token_entry, subject_entry = values
        if token_entry is not None:
            return True
        before = None if subject_entry is None else float(subject_entry)
        return subject_revoked(identity[3], before)

    # -- revoking -----------------------------------------------------------------

    def revoke(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Revoke one token until its ``exp``.

        Returns:
            ``False`` when the token has already expired (nothing is written).
        """
        if float(expires_at) + self.leeway <= time.time():
            return False
        expires = int(float(expires_at) + self.leeway) + 1
        self._client.set(self._token_key(issuer, jti), "1", exat=expires)
        self.flush_local_cache()  # this instance at once; the others through the channel
        self._client.publish(self.channel, "jti")
        return True

    def revoke_subject(self, subject: str, *, issuer: str, before: float | None = None) -> None:
        """Reject the subject's tokens issued before ``before`` (default: now)."""
        moment, ttl = self._subject_entry(before)
        self._client.eval(_REVOKE_SUBJECT, 1, self._subject_key(issuer, subject), moment, ttl)
        self.flush_local_cache()
        self._client.publish(self.channel, "sub")

    def _subject_entry(self, before: float | None) -> tuple[str, int]:
        """The stored ``before`` and the seconds it lasts (past tokens issued up to it)."""
        now = time.time()
        moment = now if before is None else float(before)
        return repr(moment), int(max(moment - now, 0) + self.max_token_lifetime + self.leeway) + 1

    async def revoke_async(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Async form of :meth:`revoke`."""
        if float(expires_at) + self.leeway <= time.time():
            return False
        expires = int(float(expires_at) + self.leeway) + 1
        client = self._async_client()
        await client.set(self._token_key(issuer, jti), "1", exat=expires)
        self.flush_local_cache()
        await client.publish(self.channel, "jti")
        return True

    async def revoke_subject_async(
        self, subject: str, *, issuer: str, before: float | None = None
    ) -> None:
        """Async form of :meth:`revoke_subject`."""
        moment, ttl = self._subject_entry(before)
        client = self._async_client()
        await client.eval(_REVOKE_SUBJECT, 1, self._subject_key(issuer, subject), moment, ttl)
        self.flush_local_cache()
        await client.publish(self.channel, "sub")

    # -- checking -----------------------------------------------------------------

    def _cached(self, identity: _Identity) -> bool | None:
        if self._cache is None:
            return None
        self._ensure_subscriber()
        with self._lock:
            entry = self._cache.get(identity)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def _store(self, identity: _Identity, *, verdict: bool, generation: int) -> None:
        if self._cache is not None:
            with self._lock:
                if generation == self._generation:  # no revocation arrived while reading
                    self._cache[identity] = (verdict, time.monotonic() + self._cache_ttl)

    def _unavailable(self, exc: BaseException, *, paused: bool) -> bool:
        if not paused:  # a request refused during the pause must not extend it
            self._down_until = time.monotonic() + self.retry_interval
        if self.fail_open:
            if not paused:  # one warning per failed attempt, not one per request
                _log.warning("revocation_check_skipped", error_type=type(exc).__name__)
            return False
        raise AuthFailure(Reason.REVOCATION_UNAVAILABLE) from exc

    def _paused(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether ``claims`` belong to a revoked token or subject.

        Raises:
            AuthFailure: ``revocation_unavailable`` when Redis cannot answer and the
                store fails closed.
        """
        identity = revocation_keys(claims)
        cached = self._cached(identity)
        if cached is not None:
            return cached
        generation, paused = self._generation, self._paused()
        try:
            if paused:
                raise ConnectionError("Redis marked unavailable; retrying shortly")
            verdict = self._verdict(identity, self._client.mget(self._keys(identity)))
        except self._errors as exc:
            return self._unavailable(exc, paused=paused)
        self._down_until = 0.0
        self._store(identity, verdict=verdict, generation=generation)
        return verdict

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Same as :meth:`is_revoked` on the asyncio client (never blocks the loop)."""
        identity = revocation_keys(claims)
        cached = self._cached(identity)
        if cached is not None:
            return cached
        generation, paused = self._generation, self._paused()
        try:
            if paused:
                raise ConnectionError("Redis marked unavailable; retrying shortly")
            values = await self._async_client().mget(self._keys(identity))
            verdict = self._verdict(identity, values)
        except self._errors as exc:
            return self._unavailable(exc, paused=paused)
        self._down_until = 0.0
        self._store(identity, verdict=verdict, generation=generation)
        return verdict

    def _async_client(self) -> Any:  # noqa: ANN401 - optional dependency's type
        """One asyncio client per event loop (connections belong to a loop)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            redis = _import_redis()
            if self._url is not None:
                client = redis.asyncio.Redis.from_url(self._url, **self._async_options)
            else:
                given = self._client.connection_pool.connection_kwargs
                kwargs = {k: given[k] for k in _ASYNC_COPY if k in given}
                client = redis.asyncio.Redis(**kwargs, **self._async_options)
            self._async_clients = {
                **{lp: c for lp, c in self._async_clients.items() if not lp.is_closed()},
                loop: client,
            }
        return client

    # -- invalidation ---------------------------------------------------------------

    def flush_local_cache(self) -> None:
        """Forget every cached answer (done automatically on each revocation)."""
        if self._cache is not None:
            with self._lock:
                self._generation += 1
                # A new cache rather than clear(), which evicts entries one by one.
                self._cache = LRUCache(self._cache.maxsize)

    def _ensure_subscriber(self) -> None:
        if self._subscriber is None or not self._subscriber.is_alive():
            with self._lock:
                if self._subscriber is None or not self._subscriber.is_alive():
                    self._subscriber = threading.Thread(
                        target=self._listen, name="invalidtoken-mw-revocations", daemon=True
                    )
                    self._subscriber.start()

    def _listen(self) -> None:
        """Empty the local cache on every published revocation; reconnect forever."""
        while not self._closed.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                self.flush_local_cache()  # anything may have been missed while away
                while not self._closed.is_set():
                    if pubsub.get_message(timeout=0.2) is not None:
                        self.flush_local_cache()
            except self._errors:
                self.flush_local_cache()
                self._closed.wait(0.2)
            finally:
                pubsub.close()

    def close(self) -> None:
        """Stop the subscriber thread and close the sync client (see :meth:`aclose`)."""
        self._closed.set()
        if self._subscriber is not None:
            self._subscriber.join(timeout=2)
        self._client.close()

    async def aclose(self) -> None:
        """Close this event loop's asyncio client, then everything :meth:`close` closes.

        Call it from the loop that served requests (an ASGI lifespan shutdown): an
        asyncio connection can only be closed on its own loop.
        """
        client = self._async_clients.get(asyncio.get_running_loop())
        if client is not None:
            self._async_clients = {
                lp: c for lp, c in self._async_clients.items() if c is not client
            }
            await client.aclose()
        await asyncio.to_thread(self.close)

    def __len__(self) -> int:
        """Revocation keys currently in Redis under this prefix (for operators and tests)."""
        return sum(1 for _ in self._client.scan_iter(match=f"{self.prefix}*", count=1000))
