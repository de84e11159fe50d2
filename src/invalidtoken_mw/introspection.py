"""IntrospectionVerifier: opaque access tokens, checked by the authorization server (RFC 7662).

An opaque token (a random string, not a JWT) means nothing to a resource server: only the
authorization server that issued it knows whether it is active and what it grants.
:class:`IntrospectionVerifier` asks it, by ``POST``-ing the token to its introspection
endpoint (RFC 7662 §2.1) with the resource server's own client credentials, and returns
the answer's members as the token's claims, so the Guard's scope and role checks read
``scope`` (and any other member) as they read a JWT's claims.

- **Where.** ``introspection_url=...``, or ``issuer_url=...``: the endpoint is then the
  ``introspection_endpoint`` of the issuer's metadata (OpenID Connect Discovery, then
  RFC 8414, as :class:`~invalidtoken_mw.discovery.DiscoveryKeys` finds it), loaded on
  first use and kept.
- **Client authentication.** ``client_secret_basic`` (RFC 6749 §2.3.1: the form-encoded
  ``client_id`` and secret in an ``Authorization: Basic`` header, the default) or
  ``client_secret_post`` (both in the form body). The secret is never logged and never
  appears in :func:`repr`. ``private_key_jwt`` is not offered.
- **Never blocking, one deadline, no retries.** The call runs in a small pool of worker
  threads owned by the verifier; a thread waits for it, an asyncio task awaits it without
  blocking the event loop, each no longer than ``timeout`` seconds (connection, TLS,
  request and the whole answer, as for a JWKS fetch). A failed call is not retried on the
  request path: the request is answered ``introspection_unavailable`` (503) and the next
  request for that token asks again.
- **Single flight.** Concurrent requests (threads and tasks alike) presenting one token
  the verifier has no answer for cause exactly one introspection call; they all wait for it.
- **Cache.** Answers are remembered by a keyed hash of the token (HMAC-SHA256 under a
  random key drawn when the verifier is created), never by the token (a resent token
  finds its key in a small in-process memo, as a JWT finds its digest): an active token
  until its ``exp`` (at most ``cache_ttl`` seconds), an inactive one (or one refused
  for its audience, issuer or type) for ``inactive_ttl`` seconds. The cache is a bounded
  LRU map (``cache_size`` entries) behind one lock.
- **Checks.** ``active`` must be the JSON ``true``; ``exp`` and ``nbf`` (when present) are
  checked with ``leeway``; ``iss`` against ``issuer``, ``aud`` against ``audience`` and
  ``token_type`` (case-insensitively, RFC 6749 §5.1) against ``token_type``, each only
  when configured. A revocation store, when given, is asked about every accepted answer.
- **Failures.** ``"active": false`` is ``inactive_token`` (401). An endpoint that cannot
  be reached, times out, answers other than ``200``, or answers something that is not a
  JSON object with a boolean ``active`` is ``introspection_unavailable`` (503), never a
  500 and never an acceptance, with an ``introspection_failed`` warning naming the
  ``cause`` in the vocabulary of ``jwks_refresh_failed`` (``timeout``,
  ``connection_refused``, ``http_status`` with ``status_code``, ``not_json``...; at most
  one per cause per second, with ``suppressed`` counting those left out).

Example::

    verifier = IntrospectionVerifier(
        issuer_url="https://id.example.com/",
        client_id="orders-api",
        client_secret=os.environ["INTROSPECTION_SECRET"],
        audience="orders",
    )
    app = InvalidTokenMiddleware(app, verifier=verifier)
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import math
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote_plus, urlencode, urlsplit

import structlog
from cachetools import LRUCache

from invalidtoken_mw._keyhealth import FetchFailure, FetchProblem, describe
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.discovery import _check_issuer_url, download_metadata
from invalidtoken_mw.jwks import _FETCH_ERRORS, _checked_tls, _remaining, _request
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import _Throttle, check_revocation, check_revocation_async
from invalidtoken_mw.verdicts import copy_claims

if TYPE_CHECKING:
    import ssl
    from collections.abc import Sequence

    from invalidtoken_mw.revocation import RevocationStore

__all__ = ["INTROSPECTION_CAUSES", "IntrospectionVerifier"]

_log = structlog.get_logger("invalidtoken_mw")

_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
_ACCEPT = "application/json"
_FORM = "application/x-www-form-urlencoded"
_OK = 200
_KEY_BYTES = 16  # 128 bits of HMAC-SHA256: no collision by chance or by design
# Worker threads per verifier: introspection calls for distinct tokens run side by side,
# and a flood of new tokens waits its turn rather than creating threads without bound.
_WORKERS = 8
# Distinct tokens waiting for an answer at once; beyond this a new token is answered 503
# at once (cause "overloaded") rather than queued behind calls that cannot finish in time.
_MAX_PENDING = 256
# Waiters give the call this much longer than its deadline, for the worker to be scheduled.
_WAIT_GRACE = 0.1
# After the issuer metadata failed to load, no new attempt for this many seconds.
_METADATA_COOLDOWN = 5.0
_INVALID = "invalid_introspection_response"
_KEYS_REMEMBERED = 256
_KEY_MEMO_CHARS = 2048

INTROSPECTION_CAUSES: tuple[str, ...] = (
    "http_status",
    "timeout",
    "connection_refused",
    "dns_failure",
    "tls_error",
    "connection_failed",
    "invalid_response",
    "body_too_large",
    "not_json",
    "not_json_object",
    _INVALID,
    "overloaded",
    "discovery_failed",
    "unexpected_error",
)
"""Every ``cause`` of an ``introspection_failed`` event (and of a 503 it answers)."""


class _Entry(NamedTuple):
    """One remembered answer: claims (kept, copies handed out) or a refusal."""

    claims: dict[str, Any] | None
    nested: bool
    reason: Reason | None
    description: str
    until: float  # time.time() after which the answer is asked again


class _Flight(NamedTuple):
    done: Future[_Entry | FetchFailure]
    deadline: float  # monotonic; waiters give up here


class IntrospectionVerifier:
    """A :class:`~invalidtoken_mw.TokenVerifier` for opaque tokens (RFC 7662 introspection).

    Construction validates the configuration and does no network I/O.

    Args:
        introspection_url: The introspection endpoint, ``https`` (or ``http``) with a
            host. Exactly one of this and ``issuer_url``.
        issuer_url: The issuer identifier: the endpoint is its metadata's
            ``introspection_endpoint`` (https for an https issuer), loaded on first use.
            It is not the expected ``iss``: RFC 7662 answers need not carry one.
        client_id: The resource server's client id at the authorization server.
        client_secret: Its client secret (never logged).
        auth_method: ``"client_secret_basic"`` (default) or ``"client_secret_post"``.
        audience: Accept only answers whose ``aud`` (a string or a list) names one of
            these; an answer without ``aud`` is refused ``wrong_audience``.
        issuer: Accept only answers whose ``iss`` is one of these (``wrong_issuer``).
        token_type: Accept only answers whose ``token_type`` equals this (or one of
            these), ignoring case, e.g. ``"Bearer"`` (``wrong_token_type``).
        cache_ttl: Longest time an active answer is reused, in seconds; never past the
            answer's ``exp``. ``0`` asks for every request.
        inactive_ttl: How long an inactive answer (or a refusal decided on an active
            one, except ``not_yet_valid``) is reused, in seconds. ``0``: not at all.
        timeout: Seconds one introspection call may take in all (with ``issuer_url``,
            the first call's metadata fetch included).
        revocation: A revocation store asked about every accepted answer's claims.
        ssl_context: The TLS context for ``https`` (it must check certificates).
        leeway: Seconds of clock skew allowed on ``exp`` and ``nbf``.
        cache_size: Answers remembered (a bounded LRU map); ``0`` remembers nothing.
        token_type_hint: The ``token_type_hint`` sent with each token (RFC 7662 §2.1),
            or ``None`` to send none.

    Raises:
        ValueError: An argument is unusable; the message says which and how to fix it.
        TypeError: ``ssl_context`` is not an SSL context or ``revocation`` no store.
    """

    def __init__(
        self,
        introspection_url: str | None = None,
        *,
        issuer_url: str | None = None,
        client_id: str,
        client_secret: str,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        token_type: str | Sequence[str] | None = None,
        cache_ttl: float = 300.0,
        inactive_ttl: float = 10.0,
        timeout: float = 3.0,
        revocation: RevocationStore | None = None,
        ssl_context: ssl.SSLContext | None = None,
        leeway: float = 60.0,
        cache_size: int = 10_000,
        token_type_hint: str | None = "access_token",  # noqa: S107 - a hint, not a secret
    ) -> None:
        """Validate the configuration; see the class docstring for the arguments."""
        _check_options(
            introspection_url,
            issuer_url,
            {"client_id": client_id, "client_secret": client_secret},
            auth_method,
            {"cache_ttl": cache_ttl, "inactive_ttl": inactive_ttl, "leeway": leeway},
            timeout,
            cache_size,
        )
        if revocation is not None and not callable(getattr(revocation, "is_revoked", None)):
            raise TypeError(
                "revocation must be a store with is_revoked(), e.g. MemoryRevocationStore()."
            )
        self.introspection_url = introspection_url
        self.issuer_url = issuer_url
        self.client_id = client_id
        self.auth_method = auth_method
        self.audience = _strings(audience, "audience")
        self.issuer = _strings(issuer, "issuer")
        types = _strings(token_type, "token_type")
        self.token_type = types
        self._token_types = None if types is None else frozenset(t.lower() for t in types)
        self.revocation = revocation
        self._cache_ttl = float(cache_ttl)
        self._inactive_ttl = float(inactive_ttl)
        self._timeout = float(timeout)
        self._leeway = float(leeway)
        self._tls = _checked_tls(ssl_context)
        # What every call sends besides the token, computed once (the secret lives here only).
        self._headers, self._form = _client_auth(
            client_id, client_secret, auth_method, token_type_hint
        )
        # The cache key is HMAC-SHA256 under a key no one else knows: an entry, a log or
        # a memory dump never yields the token, nor lets anyone test a guess offline.
        self._hmac_key = secrets.token_bytes(32)
        # The keys of the last few tokens, so a resent token costs a dict lookup rather than
        # an HMAC (3 to 4 us with OpenSSL 3): in this process's memory only, as the JWT
        # verifier's digest memo; the answers themselves are filed under the HMAC alone.
        self._keys: dict[str, bytes] = {}
        self._cache: LRUCache[bytes, _Entry] | None = LRUCache(cache_size) if cache_size else None
        # Guards the cache and the flights; never held across network I/O.
        self._lock = threading.Lock()
        self._flights: dict[bytes, _Flight] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._endpoint = introspection_url
        # Serialises the metadata fetch among worker threads only (never an event loop).
        self._metadata_lock = threading.Lock()
        self._metadata_failure: tuple[float, FetchFailure] | None = None
        self._calls = 0
        # At most one introspection_failed event per cause per second, per verifier.
        self._failure_log = _Throttle(interval=1.0)

    # -- public API -------------------------------------------------------------

    @property
    def call_count(self) -> int:
        """How many introspection calls were started so far (for tests and benchmarks)."""
        return self._calls

    def cache_key(self, token: str) -> bytes:
        """The key ``token``'s answer is remembered under: a keyed hash, never the token."""
        known = self._keys.get(token)
        if known is None:
            known = hmac.digest(self._hmac_key, token.encode("utf-8", "surrogatepass"), "sha256")[
                :_KEY_BYTES
            ]
            if len(token) <= _KEY_MEMO_CHARS:
                # Single dict operations are atomic: threads may race here harmlessly.
                if len(self._keys) >= _KEYS_REMEMBERED:
                    self._keys.clear()
                self._keys[token] = known
        return known

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of an active token (a copy the caller may change).

        Blocks the calling thread for at most ``timeout`` seconds when the token's
        answer is not remembered.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        key = self.cache_key(token)
        entry: _Entry | FetchFailure | None = self._remembered(key)
        if entry is None:
            entry = _waited(self._join(token, key))
        claims = _answer(entry)
        if self.revocation is not None and check_revocation(self.revocation, claims):
            raise AuthFailure(Reason.REVOKED)
        return claims

    async def verify_async(self, token: str) -> dict[str, Any]:
        """:meth:`verify` without blocking the event loop (the call runs in a worker thread).

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        key = self.cache_key(token)
        entry: _Entry | FetchFailure | None = self._remembered(key)
        if entry is None:
            entry = await _waited_async(self._join(token, key))
        claims = _answer(entry)
        if self.revocation is not None and await check_revocation_async(self.revocation, claims):
            raise AuthFailure(Reason.REVOKED)
        return claims

    def forget(self, token: str) -> None:
        """Forget the remembered answer for ``token``, so the next request asks again."""
        key = self.cache_key(token)
        with self._lock:
            if self._cache is not None:
                self._cache.pop(key, None)

    def close(self) -> None:
        """Stop the worker threads once the calls in flight have ended."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def __repr__(self) -> str:
        """The endpoint and the client id; never the secret (this may reach a log)."""
        where = self.introspection_url or f"issuer_url={self.issuer_url!r}"
        return f"IntrospectionVerifier({where!r}, client_id={self.client_id!r})"

    # -- the cache and the one call per token -----------------------------------

    def _remembered(self, key: bytes) -> _Entry | None:
        cache = self._cache
        if cache is None:
            return None
        with self._lock:
            entry = cache.get(key)
        if entry is None or time.time() < entry.until:
            return entry
        with self._lock:
            cache.pop(key, None)
        return None

    def _join(self, token: str, key: bytes) -> _Entry | FetchFailure | _Flight:
        """The remembered answer, the call in flight for ``key``, or a new call."""
        joined = self._join_locked(token, key)
        if isinstance(joined, FetchFailure):
            self._log_failure(joined)
        return joined

    def _join_locked(self, token: str, key: bytes) -> _Entry | FetchFailure | _Flight:
        with self._lock:
            cache = self._cache
            entry = None if cache is None else cache.get(key)
            if entry is not None and time.time() < entry.until:
                return entry  # a call finished since the lookup
            flight = self._flights.get(key)
            if flight is not None:
                return flight
            if len(self._flights) >= _MAX_PENDING:
                return FetchFailure(
                    "overloaded", f"{_MAX_PENDING} distinct tokens are already being introspected"
                )
            start = time.monotonic()
            done: Future[_Entry | FetchFailure] = Future()
            # A running future cannot be cancelled by one waiter that gives up on it.
            done.set_running_or_notify_cancel()
            flight = _Flight(done, start + self._timeout + _WAIT_GRACE)
            self._flights[key] = flight
            self._calls += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_WORKERS, "invalidtoken-mw-introspect")
            pool = self._pool
        try:
            pool.submit(self._run, token, key, done, start + self._timeout)
        except RuntimeError:
            # close() raced this request, or the interpreter is shutting down: answer it.
            with self._lock:
                self._flights.pop(key, None)
            failure = FetchFailure("unexpected_error", "the verifier's workers were stopped")
            done.set_result(failure)
            return failure
        return flight

    def _run(
        self, token: str, key: bytes, done: Future[_Entry | FetchFailure], deadline: float
    ) -> None:
        """One introspection call, in a worker thread: remember and publish its answer."""
        outcome: _Entry | FetchFailure
        try:
            outcome = self._introspect(token, deadline)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave waiters hanging
            outcome = FetchFailure(
                "unexpected_error",
                f"an unexpected error ({type(exc).__name__}) stopped the call",
                {"error_type": type(exc).__name__},
            )
        with self._lock:
            if (
                isinstance(outcome, _Entry)
                and self._cache is not None
                and outcome.until > time.time()
            ):
                self._cache[key] = outcome
            # Removed only once remembered: a request arriving now finds one or the other.
            self._flights.pop(key, None)
        done.set_result(outcome)
        if isinstance(outcome, FetchFailure):
            self._log_failure(outcome)

    def _log_failure(self, failure: FetchFailure) -> None:
        suppressed = self._failure_log.acquire(failure.cause)
        if suppressed is None:
            return
        fields = dict(failure.fields)
        if suppressed:
            fields["suppressed"] = suppressed
        fields.setdefault("url", self._endpoint or self.issuer_url)
        _log.warning("introspection_failed", cause=failure.cause, detail=failure.detail, **fields)

    # -- the call itself ----------------------------------------------------------

    def _introspect(self, token: str, deadline: float) -> _Entry | FetchFailure:
        """POST the token; the answer as an entry, or why there is none."""
        try:
            endpoint = self._endpoint or self._discover(deadline)
            data = urlencode({"token": token, **self._form}).encode("ascii")
            body, _, status = _request(
                endpoint,
                _remaining(deadline),
                self._tls,
                _ACCEPT,
                data=data,
                headers=self._headers,
                # Credentials and the token must not follow a redirect anywhere.
                follow_redirects=False,
            )
            if status != _OK:
                return FetchFailure(
                    "http_status", f"the server answered HTTP {status}", {"status_code": status}
                )
            return self._read(body)
        except FetchProblem as exc:
            return FetchFailure(exc.cause, exc.detail, dict(exc.fields))
        except _FETCH_ERRORS as exc:
            failure = describe(exc)
            if failure is None:  # pragma: no cover - describe answers every exception
                raise
            return failure

    def _discover(self, deadline: float) -> str:
        """The endpoint from the issuer's metadata, fetched once (blocking: a worker thread).

        Raises:
            FetchProblem: The metadata could not be loaded (now or within the cool-down).
        """
        if not self._metadata_lock.acquire(timeout=_remaining(deadline)):
            raise TimeoutError("the issuer metadata fetch did not finish within the timeout")
        try:
            if self._endpoint is not None:
                return self._endpoint
            last = self._metadata_failure
            if last is not None and time.monotonic() - last[0] < _METADATA_COOLDOWN:
                failure = last[1]
                raise FetchProblem(failure.cause, failure.detail, **failure.fields)
            issuer_url = self.issuer_url
            if issuer_url is None:  # pragma: no cover - set when introspection_url is not
                raise AssertionError("no issuer_url")
            try:
                metadata = download_metadata(
                    issuer_url, deadline, self._tls, introspection_needed=True
                )
            except FetchProblem as exc:
                failure = FetchFailure(
                    "discovery_failed",
                    f"the issuer metadata did not load ({exc.cause}): {exc.detail}",
                    {"discovery_cause": exc.cause, **exc.fields},
                )
                self._metadata_failure = (time.monotonic(), failure)
                raise FetchProblem(failure.cause, failure.detail, **failure.fields) from None
            endpoint = metadata.introspection_endpoint
            if endpoint is None:  # pragma: no cover - introspection_needed checks it
                raise AssertionError("no introspection_endpoint")
            _log.info("introspection_endpoint_discovered", issuer=issuer_url, url=endpoint)
            self._endpoint = endpoint
            return endpoint
        finally:
            self._metadata_lock.release()

    def _read(self, body: bytes) -> _Entry:
        """Check an introspection answer (RFC 7662 §2.2) and decide.

        Raises:
            FetchProblem: The answer is not a usable introspection response.
        """
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise FetchProblem("not_json", "the introspection response is not JSON") from None
        if not isinstance(document, dict):
            raise FetchProblem("not_json_object", "the introspection response is not an object")
        active = document.get("active")
        if type(active) is not bool:
            raise FetchProblem(_INVALID, "the response has no boolean 'active' member")
        now = time.time()
        if not active:
            return self._refusal(Reason.INACTIVE_TOKEN, now)
        exp = _numeric(document, "exp")
        nbf = _numeric(document, "nbf")
        refusal = self._refused(document, exp, nbf, now)
        if refusal is not None:
            return refusal
        until = now + self._cache_ttl
        if exp is not None:
            until = min(until, exp)
        nested = any(type(value) in {dict, list} for value in document.values())
        return _Entry(document, nested, None, "", until)

    def _refused(
        self, document: dict[str, Any], exp: float | None, nbf: float | None, now: float
    ) -> _Entry | None:
        """The refusal an active answer still earns under the configured checks, if any."""
        if exp is not None and now >= exp + self._leeway:
            return self._refusal(Reason.EXPIRED, now)
        if nbf is not None and now < nbf - self._leeway:
            # Not remembered: the same token becomes valid within seconds.
            return _Entry(
                None,
                nested=False,
                reason=Reason.NOT_YET_VALID,
                description=Reason.NOT_YET_VALID.description,
                until=0,
            )
        if self.issuer is not None and document.get("iss") not in self.issuer:
            return self._refusal(Reason.WRONG_ISSUER, now)
        if self.audience is not None and not _names_one(document.get("aud"), self.audience):
            return self._refusal(Reason.WRONG_AUDIENCE, now)
        if self._token_types is not None:
            kind = document.get("token_type")
            if not isinstance(kind, str) or kind.lower() not in self._token_types:
                wanted = " or ".join(self.token_type or ())
                return self._refusal(
                    Reason.WRONG_TOKEN_TYPE, now, Sentence.NOT_THE_TOKEN_TYPE.format(typ=wanted)
                )
        return None

    def _refusal(self, reason: Reason, now: float, description: str | None = None) -> _Entry:
        return _Entry(
            None,
            nested=False,
            reason=reason,
            description=description or reason.description,
            until=now + self._inactive_ttl,
        )


# -- waiting, in a thread or on an event loop ------------------------------------


def _waited(joined: _Entry | FetchFailure | _Flight) -> _Entry | FetchFailure:
    if not isinstance(joined, _Flight):
        return joined
    try:
        return joined.done.result(timeout=max(0.0, joined.deadline - time.monotonic()))
    except TimeoutError:
        return _late()


async def _waited_async(joined: _Entry | FetchFailure | _Flight) -> _Entry | FetchFailure:
    if not isinstance(joined, _Flight):
        return joined
    waiter = asyncio.wrap_future(joined.done)
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, joined.deadline - time.monotonic()))
        return waiter.result() if waiter.done() else _late()
    finally:
        # Detach from a call still running: it must not call back into this loop later.
        waiter.cancel()


def _late() -> FetchFailure:
    # The worker logs the call's own outcome when it ends; this request only stops waiting.
    return FetchFailure("timeout", "no complete answer within the timeout")


def _answer(outcome: _Entry | FetchFailure) -> dict[str, Any]:
    """The claims to hand out (a copy), or the refusal raised afresh."""
    if isinstance(outcome, FetchFailure):
        raise AuthFailure(
            Reason.INTROSPECTION_UNAVAILABLE, context={"introspection_cause": outcome.cause}
        )
    if outcome.claims is None:
        raise AuthFailure(outcome.reason or Reason.INACTIVE_TOKEN, outcome.description)
    return copy_claims(outcome.claims, nested=outcome.nested)


# -- checks -----------------------------------------------------------------------


def _numeric(document: dict[str, Any], name: str) -> float | None:
    """A NumericDate member, if present.

    Raises:
        FetchProblem: It is present but not a finite number.
    """
    value = document.get(name)
    if value is None:
        return None
    if type(value) not in {int, float} or not math.isfinite(value):
        raise FetchProblem(_INVALID, f"the response's {name} is not a number of seconds")
    return float(value)


def _names_one(aud: object, accepted: tuple[str, ...]) -> bool:
    if isinstance(aud, str):
        return aud in accepted
    return isinstance(aud, list) and any(isinstance(a, str) and a in accepted for a in aud)


def _strings(value: str | Sequence[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{name} must be a non-empty string or a list of them.")
    return values


def _check_number(name: str, value: float, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number of seconds, e.g. 3.")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} seconds.")


def _check_endpoint(url: str) -> None:
    if not isinstance(url, str):
        raise TypeError(
            "introspection_url must be a string such as 'https://id.example.com/introspect'."
        )
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            "introspection_url must be an https:// URL with a host, e.g."
            f" 'https://id.example.com/oauth2/introspect', got {url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "introspection_url must not carry credentials (user:password@): give"
            " client_id=... and client_secret=... instead"
        )


def _check_options(  # noqa: PLR0917 - internal, called once
    introspection_url: str | None,
    issuer_url: str | None,
    credentials: dict[str, str],
    auth_method: str,
    durations: dict[str, float],
    timeout: float,
    cache_size: int,
) -> None:
    if (introspection_url is None) == (issuer_url is None):
        raise ValueError(
            "pass exactly one of introspection_url=... (the endpoint) or issuer_url=..."
            " (its metadata names the endpoint)."
        )
    if introspection_url is not None:
        _check_endpoint(introspection_url)
    if issuer_url is not None:
        _check_issuer_url(issuer_url)
    for name, value in credentials.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string.")
    if auth_method not in _AUTH_METHODS:
        raise ValueError(
            f"auth_method must be 'client_secret_basic' or 'client_secret_post', got"
            f" {auth_method!r} (private_key_jwt is not supported)."
        )
    for name, number in durations.items():
        _check_number(name, number, positive=False)
    _check_number("timeout", timeout, positive=True)
    if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
        raise ValueError("cache_size must be a whole number >= 0, e.g. 10000.")


def _client_auth(
    client_id: str, client_secret: str, auth_method: str, token_type_hint: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The headers and form fields every call sends besides the token."""
    headers = {"Content-Type": _FORM}
    form: dict[str, str] = {}
    if token_type_hint is not None:
        form["token_type_hint"] = token_type_hint
    if auth_method == "client_secret_basic":
        # RFC 6749 §2.3.1: both are form-encoded before they are joined and encoded.
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    else:
        form["client_id"] = client_id
        form["client_secret"] = client_secret
    return headers, form
