"""State shared by every instance through Redis: revocations, and DPoP proofs seen.

:class:`RedisReplayCache` remembers DPoP proofs (RFC 9449 §11.1) with one
``SET key 1 NX EX ttl`` each, on clients with the same short timeouts and no retries as
the revocation store's, so an unreachable or silent Redis costs a request at most a
few timeouts and answers 503 (``dpop_replay_unavailable``), never a hang.

:class:`RedisRevocationStore`:

- Keys are ``{prefix}jti:<hash of iss and jti>`` and ``{prefix}sub:<hash of iss and
  sub>``; token entries expire at the token's ``exp`` plus leeway (the end of the year
  9999 at the latest, for an ``exp`` beyond it or beyond any float), subject entries
  after the longest token lifetime. No key lives forever. Revoking a subject again
  never shortens an earlier revocation of it.
- One ``MGET`` answers a check. A short per-process cache (default 1 s) keeps Redis
  off the hot path; every revocation is published on a channel, and each instance's
  subscriber thread empties its cache at once (and again after a reconnect), so a
  revocation is effective everywhere well under a second.
- Every check runs on an asyncio client: the ASGI path on the application's loop, the
  sync (WSGI) path on one private loop thread per store. So both paths share one
  deadline (``timeout`` for Redis to answer, after at most ``timeout`` waiting for a
  free connection), one bound on connections in flight (``max_connections`` per loop)
  and single flight: concurrent checks of one identity share one ``MGET``.
- Redis outages: short timeouts, no retries on the request path, and a short pause
  before Redis is tried again; fail closed (``revocation_unavailable``, 503) by
  default, or fail open with a warning. Any error or malformed reply from Redis counts
  as an outage. Local back-pressure (no free connection within ``timeout``) is not an
  outage: it never fails open and never starts the pause.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from cachetools import LRUCache

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    _check_lifetime,
    _expiry,
    _revocation_moment,
    revocation_keys,
    subject_revoked,
)

if TYPE_CHECKING:
    from collections.abc import Coroutine, Mapping

__all__ = ["RedisReplayCache", "RedisRevocationStore"]

_log = structlog.get_logger("invalidtoken_mw")
# Connection settings copied from a given sync client to its asyncio twin.
# The connection class (plain, TLS, Unix socket) is mapped by name; TLS settings are
# copied when set, so a twin of a TLS client verifies the same certificates.
_ASYNC_COPY = (
    "host",
    "port",
    "db",
    "username",
    "password",
    "path",
    "client_name",
    "credential_provider",
    "ssl_keyfile",
    "ssl_certfile",
    "ssl_cert_reqs",
    "ssl_include_verify_flags",
    "ssl_exclude_verify_flags",
    "ssl_ca_certs",
    "ssl_ca_data",
    "ssl_ca_path",
    "ssl_check_hostname",
    "ssl_min_version",
    "ssl_ciphers",
    "ssl_password",
)
_Identity = tuple[str, "str | None", "str | None", "float | None"]
# One check talks to Redis for at most this many timeouts: connecting, the handshake's
# replies and the reply each get one from redis-py; the overall bound makes the sum
# hold even when every byte arrives just in time (a trickle). Waiting for a free
# connection has the same bound: the checks ahead each hold theirs no longer.
_EXCHANGE_TIMEOUTS = 3
# A sync check waits this much beyond its own deadlines for the private loop to answer
# (a loop starved of the GIL by many request threads), then gives up as back-pressure.
_BRIDGE_GRACE = 1.0
# The latest expiry written (9999-12-31T23:59:59Z, well within what Redis accepts): a
# token whose exp is later, or beyond any float (10**309), never expires, and stays
# revoked until then.
_LATEST_EXAT = 253_402_300_799
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


class UnexpectedReplyError(Exception):
    """Redis answered a check with something other than two strings or nils."""


class LocalBackpressureError(Exception):
    """No connection to Redis came free in time: this process is saturated, not Redis."""


def _import_redis(needed_by: str = "RedisRevocationStore") -> Any:  # noqa: ANN401 - optional dependency
    try:
        import redis  # noqa: PLC0415 - optional dependency
        import redis.asyncio  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(f"{needed_by} needs: pip install 'invalidtoken-mw[redis]'") from exc
    return redis


def _client_options(redis: Any, timeout: float) -> dict[str, Any]:  # noqa: ANN401 - redis
    """Connection settings of every client on the request path: short timeouts, no retries."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": redis.retry.Retry(redis.backoff.NoBackoff(), 0),
    }


def _digest(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:40]


@dataclass(frozen=True)
class _Outcome:
    """What one ``MGET`` flight found: a verdict, or the error that stopped it."""

    verdict: bool = False
    error: BaseException | None = None
    local: bool = False  # the error is local back-pressure, not a Redis outage


@dataclass
class _LoopState:
    """Everything a check needs that belongs to one event loop."""

    client: Any
    slots: asyncio.Semaphore
    flights: dict[tuple[_Identity, int], asyncio.Task[_Outcome]] = field(default_factory=dict)


class _Bridge:
    """A private event loop in one daemon thread, running the sync path's checks."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="invalidtoken-mw-redis", daemon=True
        )
        self.thread.start()

    def alive(self) -> bool:
        """Whether the loop still runs in this process (a fork keeps no threads)."""
        return self.pid == os.getpid() and self.thread.is_alive() and not self.loop.is_closed()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Run ``coroutine`` on the loop; the caller waits on the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Stop the loop, wait for its thread, close it."""
        if self.alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=2)
        if not self.thread.is_alive() and not self.loop.is_closed():
            self.loop.close()


class RedisRevocationStore:
    """Revocations in Redis, shared by every instance that points at it.

    Args:
        url: A ``redis://`` or ``rediss://`` URL. Either ``url`` or ``client``.
        client: A ready ``redis.Redis`` client. Revocations, the pub/sub subscriber and
            ``len()`` use it as it is (its own pool, timeouts and retries apply);
            checks use an asyncio client with its connection settings and this
            store's ``timeout`` and ``max_connections``.
        prefix: Prefix of every key and of the channel.
        local_cache_ttl: Seconds an answer is reused in-process (0 disables).
        max_token_lifetime: How long a subject revocation lasts, in seconds.
        leeway: The verifier's clock-skew leeway, in seconds: added to each entry's
            lifetime, and a subject revocation also covers tokens issued up to
            ``leeway`` seconds after its moment.
        fail_open: Accept tokens (with a warning log) when Redis is unreachable,
            instead of answering 503.
        timeout: Seconds Redis has to answer a check (connecting included), and
            at most as long again to wait for a free connection; also the socket
            timeout of clients made from ``url``.
        retry_interval: After a Redis error, seconds before Redis is tried again.
        max_connections: Connections to Redis per event loop (the sync path has one
            loop of its own); checks beyond it wait for a free one.

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
        max_connections: int = 100,
    ) -> None:
        """Configure the clients; nothing connects until first use."""
        redis = _import_redis()
        if (url is None) == (client is None):
            raise ValueError("pass exactly one of url='redis://...' or client=redis.Redis(...).")
        if local_cache_ttl < 0 or timeout <= 0 or retry_interval < 0 or max_connections < 1:
            raise ValueError(
                "local_cache_ttl and retry_interval must be >= 0, timeout > 0,"
                " max_connections >= 1."
            )
        self.prefix = prefix
        self.channel = f"{prefix}revocations"
        self.max_token_lifetime = _check_lifetime(max_token_lifetime)
        self.leeway = float(leeway)
        self.fail_open = fail_open
        self.timeout = float(timeout)
        self.retry_interval = float(retry_interval)
        self.max_connections = int(max_connections)
        self._options = _client_options(redis, timeout)
        self._url = url
        if client is None:
            # Blocking: more concurrent revocations than connections wait for one.
            pool = redis.BlockingConnectionPool.from_url(
                url, max_connections=self.max_connections, timeout=timeout, **self._options
            )
            client = redis.Redis.from_pool(pool)
        self._client = client
        self._loops: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._bridge: _Bridge | None = None
        self._lock = threading.Lock()
        # An LRU with the deadline in each entry: a hit costs a fraction of a TTLCache's.
        self._cache: LRUCache[_Identity, tuple[bool, float]] | None = (
            LRUCache(100_000) if local_cache_ttl else None
        )
        self._cache_ttl = float(local_cache_ttl)
        self._down_until = 0.0
        self._down_error = "ConnectionError"  # why Redis is paused, for the log
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

    def _verdict(self, identity: _Identity, values: object) -> bool:
        """The answer in an ``MGET`` reply, whose shape is checked first.

        Raises:
            UnexpectedReplyError: Not two strings or nils, or a subject entry that is
                not a finite number (something else than this store speaks Redis).
        """
        if not isinstance(values, list) or len(values) != 2:  # noqa: PLR2004 - two keys asked
            raise UnexpectedReplyError(f"MGET answered {type(values).__name__}")
        if not all(value is None or isinstance(value, (bytes, str)) for value in values):
            raise UnexpectedReplyError("MGET answered a value that is not a string")
        token_entry, subject_entry = values
        if token_entry is not None:
            return True
        before = None
        if subject_entry is not None:
            try:
                before = float(subject_entry)
            except ValueError:
                before = math.nan
            if not math.isfinite(before):
                raise UnexpectedReplyError("a subject entry is not a number")
        return subject_revoked(identity[3], before, self.leeway)

    # -- revoking -----------------------------------------------------------------

    def revoke(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Revoke one token until its ``exp``.

        A token whose ``exp`` is beyond the year 9999 (``10**309`` included) stays
        revoked until then: every key keeps an expiry Redis accepts.

        Returns:
            ``False`` when the token has already expired (nothing is written).

        Raises:
            ValueError: ``expires_at`` is NaN or not a number.
        """
        expires = self._token_exat(expires_at)
        if expires is None:
            return False
        self._client.set(self._token_key(issuer, jti), "1", exat=expires)
        self.flush_local_cache()  # this instance at once; the others through the channel
        self._client.publish(self.channel, "jti")
        return True

    def revoke_subject(self, subject: str, *, issuer: str, before: float | None = None) -> None:
        """Reject the subject's tokens issued before ``before`` (default: now) plus ``leeway``.

        Raises:
            ValueError: ``before`` is not a finite number.
        """
        moment, ttl = self._subject_entry(before)
        self._client.eval(_REVOKE_SUBJECT, 1, self._subject_key(issuer, subject), moment, ttl)
        self.flush_local_cache()
        self._client.publish(self.channel, "sub")

    def _token_exat(self, expires_at: float) -> int | None:
        """The Unix time a token entry expires at; ``None`` when the token already has."""
        expires = _expiry(expires_at) + self.leeway
        if expires <= time.time():
            return None
        return int(min(expires, _LATEST_EXAT)) + 1

    def _subject_entry(self, before: float | None) -> tuple[str, int]:
        """The stored ``before`` and the seconds it lasts (past tokens issued up to it)."""
        now = time.time()
        moment = _revocation_moment(before)
        lasts = max(moment - now, 0) + self.max_token_lifetime + self.leeway
        return repr(moment), int(min(lasts, _LATEST_EXAT - now)) + 1

    async def revoke_async(self, *, jti: str, issuer: str, expires_at: float) -> bool:
        """Async form of :meth:`revoke`."""
        expires = self._token_exat(expires_at)
        if expires is None:
            return False
        client = self._loop_state().client
        await client.set(self._token_key(issuer, jti), "1", exat=expires)
        self.flush_local_cache()
        await client.publish(self.channel, "jti")
        return True

    async def revoke_subject_async(
        self, subject: str, *, issuer: str, before: float | None = None
    ) -> None:
        """Async form of :meth:`revoke_subject`."""
        moment, ttl = self._subject_entry(before)
        client = self._loop_state().client
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

    def _paused(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def _answer(self, outcome: _Outcome) -> bool:
        """A flight's outcome as one caller's answer: the verdict, fail open, or 503."""
        error = outcome.error
        if error is None:
            return outcome.verdict
        if self.fail_open and not outcome.local:  # back-pressure never fails open
            return False
        raise AuthFailure(
            Reason.REVOCATION_UNAVAILABLE, context={"error_type": type(error).__name__}
        ) from error

    def _early(self, identity: _Identity) -> bool | _Outcome | None:
        """An answer without Redis: cached, or the outage pause; ``None``: ask Redis."""
        cached = self._cached(identity)
        if cached is not None:
            return cached
        if self._paused():  # requests during the pause neither extend it nor log
            return _Outcome(error=ConnectionError(f"Redis paused after {self._down_error}"))
        return None

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether ``claims`` belong to a revoked token or subject.

        The check runs on the store's private event loop, so it keeps the same
        deadline and single flight as :meth:`is_revoked_async`; this thread waits.

        Raises:
            AuthFailure: ``revocation_unavailable`` when Redis cannot answer and the
                store fails closed, or when no connection comes free in time.
        """
        identity = revocation_keys(claims)
        early = self._early(identity)
        if isinstance(early, bool):
            return early
        if early is not None:
            return self._answer(early)
        future = self._sync_bridge().submit(self._flight(identity))
        try:
            budget = 2 * _EXCHANGE_TIMEOUTS * self.timeout + _BRIDGE_GRACE
            outcome = future.result(timeout=budget)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()  # the shared flight itself goes on, shielded
            outcome = _Outcome(error=LocalBackpressureError(str(exc)), local=True)
        return self._answer(outcome)

    async def is_revoked_async(self, claims: Mapping[str, Any]) -> bool:
        """Same as :meth:`is_revoked` on the asyncio client (never blocks the loop)."""
        identity = revocation_keys(claims)
        early = self._early(identity)
        if isinstance(early, bool):
            return early
        if early is not None:
            return self._answer(early)
        return self._answer(await self._flight(identity))

    async def _flight(self, identity: _Identity) -> _Outcome:
        """Join this loop's ``MGET`` for ``identity``, starting it if none is in flight.

        A flight is shared only within one cache generation: a check that begins
        after a revocation never takes the answer of a read that began before it.
        """
        state = self._loop_state()
        key = (identity, self._generation)
        flight = state.flights.get(key)
        if flight is None:
            flight = asyncio.get_running_loop().create_task(self._read(state, identity, key[1]))
            state.flights[key] = flight
            flight.add_done_callback(lambda done: _forget(state.flights, key, done))
        # Shielded: one caller cancelled (a client gone) does not cancel the others' read.
        return await asyncio.shield(flight)

    async def _read(self, state: _LoopState, identity: _Identity, generation: int) -> _Outcome:
        """One ``MGET`` within the budget; every error becomes an outcome, never a raise."""
        budget = _EXCHANGE_TIMEOUTS * self.timeout
        try:
            await asyncio.wait_for(state.slots.acquire(), budget)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            error = LocalBackpressureError(f"no free Redis connection within {budget} s")
            error.__cause__ = exc
            return _Outcome(error=error, local=True)
        try:
            if self._paused():  # Redis failed while this check waited for a connection
                return _Outcome(error=ConnectionError(f"Redis paused after {self._down_error}"))
            values = await asyncio.wait_for(state.client.mget(self._keys(identity)), budget)
            verdict = self._verdict(identity, values)
        # Whatever Redis (or a proxy in its place) answers, redis-py may raise anything
        # from a bad reply: every error is an outage, never a 500.
        except Exception as exc:  # noqa: BLE001
            return self._failed(exc)
        finally:
            state.slots.release()
        self._down_until = 0.0
        self._store(identity, verdict=verdict, generation=generation)
        return _Outcome(verdict=verdict)

    def _failed(self, exc: Exception) -> _Outcome:
        """Record a failed read: pause Redis (unless the pool was full) and warn once."""
        if isinstance(exc, _import_redis().exceptions.MaxConnectionsError):
            return _Outcome(error=exc, local=True)
        self._down_until = time.monotonic() + self.retry_interval
        self._down_error = type(exc).__name__
        if self.fail_open:  # one warning per failed read, not one per request
            _log.warning("revocation_check_skipped", error_type=type(exc).__name__)
        return _Outcome(error=exc)

    def _loop_state(self) -> _LoopState:
        """This event loop's client, connection slots and flights (connections belong to a loop)."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            with self._lock:  # loops in other threads (the sync path's) add theirs too
                state = self._loops.get(loop)
                if state is None:
                    client = self._new_async_client()
                    state = _LoopState(client, asyncio.Semaphore(self.max_connections))
                    self._loops = {
                        **{lp: st for lp, st in self._loops.items() if not lp.is_closed()},
                        loop: state,
                    }
        return state

    def _new_async_client(self) -> Any:  # noqa: ANN401 - optional dependency's type
        redis = _import_redis()
        options = {
            **self._options,
            "max_connections": self.max_connections,
            "timeout": self.timeout,
        }
        if self._url is not None:
            pool = redis.asyncio.BlockingConnectionPool.from_url(self._url, **options)
        else:
            given_pool = self._client.connection_pool
            given = given_pool.connection_kwargs
            kwargs = {k: given[k] for k in _ASYNC_COPY if given.get(k) is not None}
            name = getattr(given_pool, "connection_class", redis.Connection).__name__
            connection_class = getattr(redis.asyncio.connection, name, redis.asyncio.Connection)
            pool = redis.asyncio.BlockingConnectionPool(
                connection_class=connection_class, **kwargs, **options
            )
        return redis.asyncio.Redis.from_pool(pool)

    def _sync_bridge(self) -> _Bridge:
        bridge = self._bridge
        if bridge is None or not bridge.alive():
            with self._lock:
                if self._bridge is None or not self._bridge.alive():
                    self._bridge = _Bridge()
                bridge = self._bridge
        return bridge

    # -- invalidation ---------------------------------------------------------------

    def flush_local_cache(self) -> None:
        """Forget every cached answer (done automatically on each revocation)."""
        with self._lock:
            self._generation += 1  # also keeps later checks out of earlier flights
            if self._cache is not None:
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
            # Any failure, a garbled reply included, means: reconnect after a pause.
            except Exception:  # noqa: BLE001
                self.flush_local_cache()
                self._closed.wait(0.2)
            finally:
                pubsub.close()

    def close(self) -> None:
        """Stop the subscriber and the sync path's loop, close the clients (see :meth:`aclose`)."""
        self._closed.set()
        if self._subscriber is not None:
            self._subscriber.join(timeout=2)
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            if bridge.alive():
                closing = bridge.submit(self._aclose_loop_client())
                try:
                    closing.result(timeout=2)
                except Exception:  # noqa: BLE001 - closing must not fail on a broken link
                    closing.cancel()
            bridge.stop()
        self._client.close()

    async def _aclose_loop_client(self) -> None:
        with self._lock:
            state = self._loops.get(asyncio.get_running_loop())
            self._loops = {lp: st for lp, st in self._loops.items() if st is not state}
        if state is not None:
            await state.client.aclose()

    async def aclose(self) -> None:
        """Close this event loop's asyncio client, then everything :meth:`close` closes.

        Call it from the loop that served requests (an ASGI lifespan shutdown): an
        asyncio connection can only be closed on its own loop.
        """
        await self._aclose_loop_client()
        await asyncio.to_thread(self.close)

    def __len__(self) -> int:
        """Revocation keys currently in Redis under this prefix (for operators and tests)."""
        return sum(1 for _ in self._client.scan_iter(match=f"{self.prefix}*", count=1000))


def _forget(
    flights: dict[tuple[_Identity, int], asyncio.Task[_Outcome]],
    key: tuple[_Identity, int],
    done: asyncio.Task[_Outcome],
) -> None:
    """Drop a finished flight (unless a newer one already took its place)."""
    if flights.get(key) is done:
        del flights[key]


class RedisReplayCache:
    """A DPoP replay cache shared by every instance through Redis (see the module).

    Args:
        url: The Redis URL (``redis://host:6379/0``); or give ``client`` and
            ``async_client``.
        prefix: Prefix of the keys written.
        client: A ``redis.Redis`` for synchronous adapters (used as it is: its own
            timeouts apply).
        async_client: A ``redis.asyncio.Redis`` for ASGI adapters (made from ``url``,
            one per event loop, when not given).
        timeout: Seconds Redis has to connect and to answer, for clients made from
            ``url``.

    Raises:
        ValueError: No ``url`` nor client; a ``timeout`` that is not positive.
        ImportError: ``redis`` is not installed (extra ``invalidtoken-mw[redis]``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "invalidtoken:dpop:",
        client: Any = None,  # noqa: ANN401 - redis.Redis, an optional dependency
        async_client: Any = None,  # noqa: ANN401
        timeout: float = 0.25,
    ) -> None:
        """Configure the clients; nothing connects until the first proof."""
        if url is None and client is None and async_client is None:
            raise ValueError("RedisReplayCache needs url= (e.g. 'redis://localhost:6379/0').")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ValueError(f"RedisReplayCache timeout must be seconds > 0, got {timeout!r}.")
        redis = _import_redis("RedisReplayCache")
        self._redis = redis
        self._url = url
        self.prefix = prefix
        self._options = _client_options(redis, float(timeout))
        if client is None and url is not None:
            client = redis.Redis.from_url(url, **self._options)
        self._client = client
        self._async_client = async_client
        self._loop_clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._lock = threading.Lock()

    def remember(self, key: str, ttl: int) -> bool:
        """Record ``key`` with ``SET NX EX``; ``False`` if it was there."""
        if self._client is None:
            raise RuntimeError("RedisReplayCache has no synchronous client: give url= or client=.")
        return bool(self._client.set(self.prefix + key, b"1", nx=True, ex=ttl))

    async def remember_async(self, key: str, ttl: int) -> bool:
        """As :meth:`remember`, with an asyncio client of the running loop."""
        client = self._async_client
        if client is None:
            client = self._loop_client()
        return bool(await client.set(self.prefix + key, b"1", nx=True, ex=ttl))

    def _loop_client(self) -> Any:  # noqa: ANN401 - redis.asyncio.Redis
        """The running loop's client (connections belong to a loop); closed loops' go."""
        loop = asyncio.get_running_loop()
        client = self._loop_clients.get(loop)
        if client is None:
            with self._lock:
                client = self._loop_clients.get(loop)
                if client is None:
                    client = self._redis.asyncio.Redis.from_url(self._url, **self._options)
                    self._loop_clients = {
                        **{lp: c for lp, c in self._loop_clients.items() if not lp.is_closed()},
                        loop: client,
                    }
        return client

    def close(self) -> None:
        """Close the synchronous client's connections."""
        if self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the running loop's asyncio client (e.g. at the application's shutdown)."""
        with self._lock:
            client = self._loop_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
