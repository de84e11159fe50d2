"""JWKS fetch and cache: signing keys by ``kid``, refreshed safely (RFC 7517 §5).

:class:`JWKSCache` fetches a JSON Web Key Set over HTTP(S), parses each key once into a
:class:`jwt.PyJWK` and answers ``get_key(kid)`` from memory. Refreshing is safe under load:

- **Lifetime.** The set is fresh for the response's ``Cache-Control: max-age`` (minus
  ``Age``, RFC 9111 §4.2), clamped to ``[min_ttl, max_ttl]``; ``default_ttl`` without one.
- **Cool-down.** No fetch starts sooner than ``cooldown`` seconds after the previous
  attempt ended, whatever triggers it (a stale set or an unknown ``kid``), so a flood of
  random ``kid`` values costs at most one fetch per cool-down window.
- **Single flight.** Concurrent callers that need a refresh share one fetch: threads wait
  on one lock and re-check whether a fetch finished meanwhile; asyncio tasks of one event
  loop await one shared task that runs the fetch in a worker thread.
- **Stale-while-error.** A failed refresh keeps the previous keys and logs
  ``jwks_refresh_failed``; with nothing cached, callers get ``key_unavailable`` (503).

Only the ``kid`` chooses a key: the ``jku``, ``x5u`` and ``jwk`` token headers are never
used (RFC 8725 §3.10).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from http.client import HTTPException
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import jwt
import structlog

from invalidtoken_mw._version import __version__
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from email.message import Message
    from http.client import HTTPMessage
    from typing import TypeGuard

__all__ = ["JWKSCache"]

_log = structlog.get_logger("invalidtoken_mw")

_MAX_KEYS = 100
_MAX_BODY_BYTES = 1 << 20
_MAX_COOLDOWN = 10.0
_READ_CHUNK = 1 << 16
_ASYMMETRIC_KTYS = frozenset({"RSA", "EC", "OKP"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE | re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)
_DELTA_SECONDS_CAP = float(2**31)
# Everything a malformed response or one malformed key can raise; none may escape as a 500.
_FETCH_ERRORS = (OSError, HTTPException, ValueError, RecursionError, jwt.PyJWTError)
_KEY_ERRORS = (jwt.PyJWTError, TypeError, ValueError)
# A key set is refreshed in the background once this share of its lifetime has passed.
_REFRESH_AHEAD = 0.8


class _InvalidJWKSError(ValueError):
    """Raised when a response is not a usable JWK Set."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One consistent view of the cache, replaced as a whole after every fetch attempt."""

    keys: Mapping[str, jwt.PyJWK]
    sole: jwt.PyJWK | None
    loaded: bool
    expires_at: float
    attempted_at: float | None
    refresh_at: float
    error: Exception | None


class _SafeRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s), and never from https down to http."""

    def redirect_request(  # noqa: PLR0917 - the signature is urllib's
        self,
        req: urllib.request.Request,
        fp: Any,  # noqa: ANN401 - urllib's untyped file object
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        """Refuse a redirect that leaves http(s) or downgrades https to http."""
        scheme = urlsplit(newurl).scheme.lower()
        if scheme not in {"http", "https"} or (req.type == "https" and scheme != "https"):
            raise urllib.error.HTTPError(newurl, code, "unsafe JWKS redirect", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class JWKSCache:
    """A thread-safe, bounded cache of the signing keys published at a JWKS URL.

    Construction validates the configuration and does no network I/O; the first
    :meth:`get_key` (or :meth:`refresh`) fetches. Call :meth:`get_key` from threads and
    :meth:`get_key_async` from an event loop; both share one cache and one cool-down.

    Args:
        url: The JWKS endpoint, ``http`` or ``https`` with a host and no credentials.
        timeout: Seconds a fetch may take (connect, and reading the body) before it fails.
        cooldown: Minimum seconds between two fetch attempts, in ``(0, 10]``.
        min_ttl: Lower bound for a response's ``max-age``.
        max_ttl: Upper bound for a response's ``max-age``.
        default_ttl: Lifetime of a response without ``max-age``, in ``[min_ttl, max_ttl]``.
        clock: Monotonic time source in seconds, for lifetimes and the cool-down.

    Raises:
        ValueError: If an argument is out of range; the message says which and why.
        TypeError: If ``clock`` is not callable.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        cooldown: float = 5.0,
        min_ttl: float = 60.0,
        max_ttl: float = 86400.0,
        default_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Validate the configuration; see the class docstring for the arguments."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// URL with a host, got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials (user:password@); remove them")
        for name, value in (("timeout", timeout), ("cooldown", cooldown)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if cooldown > _MAX_COOLDOWN:
            raise ValueError(
                f"cooldown must be at most {_MAX_COOLDOWN:g} s so rotated keys are picked up"
                f" quickly, got {cooldown!r}"
            )
        if not (math.isfinite(min_ttl) and math.isfinite(max_ttl) and 0 <= min_ttl <= max_ttl):
            raise ValueError(
                f"need 0 <= min_ttl <= max_ttl (finite), got min_ttl={min_ttl!r},"
                f" max_ttl={max_ttl!r}"
            )
        if not min_ttl <= default_ttl <= max_ttl:
            raise ValueError(
                f"default_ttl must lie in [min_ttl, max_ttl] = [{min_ttl!r}, {max_ttl!r}],"
                f" got {default_ttl!r}"
            )
        if not callable(clock):
            raise TypeError("clock must be a callable returning seconds, e.g. time.monotonic")
        self._url = url
        # Logged instead of the URL: a query string may carry an API key.
        self._log_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self._timeout = float(timeout)
        self._cooldown = float(cooldown)
        self._min_ttl = float(min_ttl)
        self._max_ttl = float(max_ttl)
        self._default_ttl = float(default_ttl)
        self._clock = clock
        self._opener = urllib.request.build_opener(_SafeRedirectHandler)
        self._fetch_lock = threading.Lock()
        self._tasks_lock = threading.Lock()
        self._tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._fetch_count = 0
        self._background: threading.Thread | None = None
        self._snapshot = _Snapshot(
            {},
            None,
            loaded=False,
            expires_at=-math.inf,
            attempted_at=None,
            refresh_at=-math.inf,
            error=None,
        )

    @property
    def fetch_count(self) -> int:
        """The number of HTTP fetches attempted so far, successful or not."""
        return self._fetch_count

    def get_key(self, kid: str | None) -> jwt.PyJWK:
        """Return the signing key for ``kid``, refreshing in this thread when allowed.

        A ``None`` kid selects the key only when the set holds exactly one key. Do not
        call this from an event loop (it may block for up to ``timeout``); use
        :meth:`get_key_async` there.

        Args:
            kid: The token's ``kid`` header, used only as a dictionary key.

        Returns:
            The parsed key, with ``key``, ``key_id`` and ``algorithm_name``.

        Raises:
            AuthFailure: ``unknown_key`` if no key matches even after the allowed refresh;
                ``key_unavailable`` if no key set could ever be fetched.
        """
        seen = self._snapshot
        known = self._known(seen, kid)
        if known is not None:
            return known
        if self._may_fetch(seen):
            self._refresh_shared(seen)
        return self._select(self._snapshot, kid)

    async def get_key_async(self, kid: str | None) -> jwt.PyJWK:
        """Return the signing key for ``kid``; any fetch runs in a worker thread.

        Concurrent tasks of one event loop share one in-flight fetch, and the loop never
        blocks: the fetch lock is only ever taken in the worker thread.

        Args:
            kid: The token's ``kid`` header, used only as a dictionary key.

        Returns:
            The parsed key, with ``key``, ``key_id`` and ``algorithm_name``.

        Raises:
            AuthFailure: As for :meth:`get_key`.
        """
        seen = self._snapshot
        known = self._known(seen, kid)
        if known is not None:
            return known
        if self._may_fetch(seen):
            loop = asyncio.get_running_loop()
            with self._tasks_lock:
                task = self._tasks.get(loop)
                if task is None:
                    task = loop.create_task(asyncio.to_thread(self._refresh_shared, seen))
                    self._tasks[loop] = task
                    task.add_done_callback(functools.partial(self._forget_task, loop))
            # Shielded: one caller's cancellation must not cancel the others' fetch.
            await asyncio.shield(task)
        return self._select(self._snapshot, kid)

    def refresh(self) -> None:
        """Fetch the key set now, ignoring the cool-down (for start-up or a prefetch).

        Raises:
            AuthFailure: ``key_unavailable`` if the fetch failed; previously cached keys,
                if any, are kept and still served.
        """
        with self._fetch_lock:
            snapshot = self._fetch()
        if snapshot.error is not None:
            raise AuthFailure(Reason.KEY_UNAVAILABLE) from snapshot.error

    async def refresh_async(self) -> None:
        """Like :meth:`refresh`, with the fetch in a worker thread.

        Raises:
            AuthFailure: ``key_unavailable`` if the fetch failed.
        """
        await asyncio.to_thread(self.refresh)

    def _known(self, snapshot: _Snapshot, kid: str | None) -> jwt.PyJWK | None:
        """A fresh cached key for ``kid``; starts a background refresh when one is due.

        Past 80% of the set's lifetime a refresh starts in a daemon thread while the
        cached key keeps answering, so a request never waits for a routine refresh.
        ``None`` when the key is unknown or the set has expired: the caller refreshes
        (subject to the cool-down) or serves what it has.
        """
        key = _lookup(snapshot, kid)
        if key is None:
            return None
        now = self._clock()
        if now >= snapshot.expires_at:
            return None
        if now >= snapshot.refresh_at and self._may_fetch(snapshot):
            with self._tasks_lock:
                if self._background is None or not self._background.is_alive():
                    self._background = threading.Thread(
                        target=self._refresh_shared,
                        args=(snapshot,),
                        name="invalidtoken-mw-jwks-refresh",
                        daemon=True,
                    )
                    self._background.start()
        return key

    def _may_fetch(self, snapshot: _Snapshot) -> bool:
        last = snapshot.attempted_at
        return last is None or self._clock() - last >= self._cooldown

    def _refresh_shared(self, seen: _Snapshot) -> None:
        with self._fetch_lock:
            # Whoever held the lock before us fetched already: share its result.
            if self._snapshot is seen:
                self._fetch()

    def _forget_task(self, loop: asyncio.AbstractEventLoop, _task: asyncio.Task[None]) -> None:
        with self._tasks_lock:
            self._tasks.pop(loop, None)

    def _select(self, snapshot: _Snapshot, kid: str | None) -> jwt.PyJWK:
        key = _lookup(snapshot, kid)
        if key is not None:
            return key
        if not snapshot.loaded:
            raise AuthFailure(Reason.KEY_UNAVAILABLE) from snapshot.error
        raise AuthFailure(Reason.UNKNOWN_KEY)

    def _fetch(self) -> _Snapshot:
        """Fetch, parse and publish a new snapshot; the caller holds the fetch lock."""
        self._fetch_count += 1
        previous = self._snapshot
        try:
            body, headers = self._download()
            keys, sole = _parse_jwks(body)
            ttl = self._ttl(headers)
        except _FETCH_ERRORS as exc:
            _log.warning(
                "jwks_refresh_failed",
                url=self._log_url,
                error_type=type(exc).__name__,
                serving_stale=previous.loaded,
            )
            # Without its traceback the error does not pin this frame, and through `previous`
            # every earlier snapshot and response body, for the length of an outage.
            error = exc.with_traceback(None)
            snapshot = replace(previous, attempted_at=self._clock(), error=error)
        else:
            now = self._clock()
            snapshot = _Snapshot(
                keys,
                sole,
                loaded=True,
                expires_at=now + ttl,
                attempted_at=now,
                refresh_at=now + ttl * _REFRESH_AHEAD,
                error=None,
            )
        self._snapshot = snapshot
        return snapshot

    def _download(self) -> tuple[bytes, Message]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            self._url,
            headers={
                "Accept": "application/jwk-set+json, application/json",
                "User-Agent": f"invalidtoken-mw/{__version__}",
            },
        )
        deadline = time.monotonic() + self._timeout
        try:
            response = self._opener.open(request, timeout=self._timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise
        with response:
            chunks: list[bytes] = []
            size = 0
            # read1 returns after one socket read, so a trickling server meets the deadline.
            while chunk := response.read1(_READ_CHUNK):
                size += len(chunk)
                if size > _MAX_BODY_BYTES:
                    raise _InvalidJWKSError(f"the JWKS response exceeds {_MAX_BODY_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError("the JWKS response took longer than the timeout")
                chunks.append(chunk)
            return b"".join(chunks), response.headers

    def _ttl(self, headers: Message) -> float:
        match = _MAX_AGE.search(", ".join(headers.get_all("Cache-Control", [])))
        if match is None:
            return self._default_ttl
        age = _DIGITS.fullmatch(headers.get("Age", "").strip())
        lifetime = _seconds(match.group(1)) - (_seconds(age.group()) if age else 0.0)
        return min(max(lifetime, self._min_ttl), self._max_ttl)


def _seconds(digits: str) -> float:
    """Read a delta-seconds value, capped at 2**31 as RFC 9111 §1.2.2 requires."""
    return min(float(digits), _DELTA_SECONDS_CAP)


def _lookup(snapshot: _Snapshot, kid: str | None) -> jwt.PyJWK | None:
    return snapshot.sole if kid is None else snapshot.keys.get(kid)


def _is_signing_jwk(entry: object) -> TypeGuard[dict[str, Any]]:
    """Tell whether ``entry`` looks like a public signature key (RFC 7517 §4.2, §4.3).

    Symmetric (``oct``) keys are refused: a key published in a JWKS is public, so anyone
    could sign with it. ``alg: none`` is refused before pyjwt sees it.
    """
    if not isinstance(entry, dict):
        return False
    kid, alg, ops = entry.get("kid"), entry.get("alg"), entry.get("key_ops")
    return (
        entry.get("kty") in _ASYMMETRIC_KTYS
        and entry.get("use", "sig") == "sig"
        and (kid is None or isinstance(kid, str))
        and (alg is None or (isinstance(alg, str) and alg != "none"))
        and (ops is None or (isinstance(ops, list) and "verify" in ops))
    )


def _parse_jwks(body: bytes) -> tuple[dict[str, jwt.PyJWK], jwt.PyJWK | None]:
    """Parse a JWK Set into keys by ``kid`` and the sole key (if there is exactly one).

    Each key is parsed on its own, so one malformed or unsupported key is skipped instead
    of failing the set; at most ``_MAX_KEYS`` keys are kept and the first of a repeated
    ``kid`` wins.

    Raises:
        ValueError: If the body is not JSON or holds no usable signing key.
    """
    document = json.loads(body)
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise _InvalidJWKSError("the JWKS document has no 'keys' array")
    keys: list[jwt.PyJWK] = []
    for entry in filter(_is_signing_jwk, entries):
        try:
            keys.append(jwt.PyJWK.from_dict(entry))
        except _KEY_ERRORS:
            continue
        if len(keys) == _MAX_KEYS:
            break
    if not keys:
        raise _InvalidJWKSError("the JWKS holds no usable signing key")
    by_kid: dict[str, jwt.PyJWK] = {}
    for key in keys:
        if key.key_id is not None:
            by_kid.setdefault(key.key_id, key)
    return by_kid, (keys[0] if len(keys) == 1 else None)
