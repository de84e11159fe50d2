"""JWKS fetch and cache: signing keys by ``kid``, refreshed safely (RFC 7517 §5).

:class:`JWKSCache` fetches a JSON Web Key Set over HTTP(S), parses each key once into a
:class:`jwt.PyJWK` and answers ``get_key(kid)`` from memory. Refreshing is safe under load:

- **Lifetime.** The set is fresh for the response's ``Cache-Control: max-age`` (minus
  ``Age``, RFC 9111 §4.2), clamped to ``[min_ttl, max_ttl]`` (at most an hour by
  default, so a key the issuer withdraws stops verifying within the hour);
  ``default_ttl`` without one.
- **Cool-down.** No fetch starts sooner than ``cooldown`` seconds after the previous
  attempt ended, whatever triggers it (a stale set or an unknown ``kid``), with one
  exception for key rotation below; a flood of random ``kid`` values costs at most one
  fetch per cool-down window.
- **Rotation inside the cool-down.** An issuer that rotates publishes the new key and
  signs with it, perhaps seconds after some unknown ``kid`` started the cool-down. So
  one early fetch per cool-down window is allowed, at least ``min_interval`` seconds
  after the last successful one ended, for the first ``kid`` refused since that fetch
  other than the one it looked for: the shape of a rotation (one new ``kid``), not of
  a flood (whose second random ``kid`` takes the allowance, and whose later ones are
  not that ``kid``). A token signed with a just-published key is thus accepted on its
  first request, unless it comes within ``min_interval`` of the last fetch (a retry a
  second later is) or another unknown ``kid`` came first (one cool-down later is).
  Whatever the traffic, fetches stay at least ``min_interval`` apart and at most two
  start per cool-down window; after a failed fetch only the cool-down applies.
- **One deadline per fetch.** A fetch has ``timeout`` seconds of wall-clock time for the
  whole exchange: connecting, the TLS handshake, the status line, the headers, the body
  and any redirect. Every socket operation may wait only for the time left, so a server
  that trickles bytes cannot stretch it (``http.client`` alone renews its timeout with
  every byte received).
- **Single flight, never more.** At most one fetch is in flight, in a thread of its own;
  callers that need its result (threads and asyncio tasks alike) wait for it, each for
  no longer than its deadline, and the event loop never blocks. No lock is ever held
  across network I/O.
- **Stale while revalidate.** Once a key set has loaded, a ``kid`` it holds is answered
  from memory at once, even when the set is due or past due for a refresh: the refresh
  runs in the background. Only a ``kid`` the set lacks, or a cache that never loaded,
  waits, and only for the one fetch in flight.
- **Stale while error.** A failed refresh keeps the previous keys and logs
  ``jwks_refresh_failed`` with a stable ``cause`` (``http_status`` and its
  ``status_code``, ``timeout``, ``connection_refused``, ``not_a_key_set``,
  ``discovery_document``...) and a ``detail`` sentence; :attr:`JWKSCache.last_failure`
  keeps it. With nothing cached, callers get ``key_unavailable`` (503).
- **Certificates checked.** ``https`` URLs are fetched with certificate and host name
  checks (the system's trust store, or the ``ssl_context`` given); a context that turns
  them off is refused, and no redirect may lead from ``https`` down to ``http``.

Only the ``kid`` chooses a key: the ``jku``, ``x5u`` and ``jwk`` token headers are never
used (RFC 8725 §3.10). Several keys may share a ``kid`` when their ``kty`` or ``alg``
differ (RFC 7517 §4.5); the token's ``alg`` then picks among them.

It is a :class:`~invalidtoken_mw.keys.KeySource`: :meth:`JWKSCache.key_for` hands out
each key prepared for the token's algorithm, the same object for as long as the set
publishes the same key, and :attr:`JWKSCache.version` changes when a refresh adds,
withdraws or changes a key, so a verifier can drop what a withdrawn key verified.

Each key is checked once, when its set loads: a key without ``alg`` is given the one its
``kty`` and ``crv`` imply (EC P-256, P-384, P-521 and secp256k1: ES256, ES384, ES512 and
ES256K; OKP Ed25519 and Ed448: EdDSA; RSA: RS256, or any RS*/PS* the verifier allows),
and a key PyJWT's minimum length refuses (RSA under 2048 bits) is left out with one
``jwks_key_skipped`` warning naming its ``kid``.
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import io
import json
import math
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

import jwt
import structlog

from invalidtoken_mw import _keyhealth
from invalidtoken_mw._keyhealth import FetchProblem, describe
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw._version import __version__
from invalidtoken_mw.keys import VerifyingKey
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from email.message import Message
    from http.client import HTTPMessage
    from typing import TypeGuard

    from _typeshed import ReadableBuffer, WriteableBuffer

__all__ = ["JWKSCache"]

_log = structlog.get_logger("invalidtoken_mw")

_MAX_KEYS = 100
_MAX_BODY_BYTES = 1 << 20
_MAX_COOLDOWN = 10.0
_READ_CHUNK = 1 << 16
_ASYMMETRIC_KTYS = frozenset({"RSA", "EC", "OKP"})
# The algorithm a key without ``alg`` verifies, by (kty, crv) (RFC 7518 §3.4, RFC 8037 §3.1).
# PyJWT infers these itself except for Ed448; RSA is left to PyJWT (RS256) and the verifier.
_ALG_BY_CURVE: dict[tuple[object, object], str] = {
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("EC", "secp256k1"): "ES256K",
    ("OKP", "Ed25519"): "EdDSA",
    ("OKP", "Ed448"): "EdDSA",
}
# What an RSA key without ``alg`` may verify (RFC 7518 §3.3, §3.5).
_RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE | re.ASCII)
_DIGITS = re.compile(r"\d+", re.ASCII)
_DELTA_SECONDS_CAP = float(2**31)
# Everything a malformed response or one malformed key can raise; none may escape as a 500.
_FETCH_ERRORS = (OSError, HTTPException, ValueError, RecursionError, jwt.PyJWTError)
_KEY_ERRORS = (jwt.PyJWTError, TypeError, ValueError)
# A key set is refreshed in the background once this share of its lifetime has passed.
_REFRESH_AHEAD = 0.8
# Waiters give a fetch this much longer than its own deadline, for parsing the keys and
# for the fetch thread to be scheduled; the network exchange itself ends at the deadline.
_WAIT_GRACE = 0.1
# How much of a document's jwks_uri a failure message quotes.
_SHOWN_URI = 200
# Stands for "no kid" where ``None`` (a token without ``kid``) is a kid like any other.
_NO_KID: Final = object()


class _InvalidJWKSError(FetchProblem, ValueError):
    """Raised when a response is not a usable JWK Set; ``cause`` says why."""


@dataclass(frozen=True, slots=True, eq=False)
class _Key:
    """A parsed key, the ``alg`` its JWK declares, and the key prepared per algorithm.

    ``verifying`` holds one :class:`VerifyingKey` per algorithm the key may verify: its
    declared ``alg`` only, or else every algorithm its type fits (RSA: RS* and PS*).
    """

    jwk: jwt.PyJWK
    declared: str | None
    verifying: Mapping[str, VerifyingKey]


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """One consistent view of the cache, replaced as a whole after every fetch attempt."""

    keys: Mapping[str, tuple[_Key, ...]]
    sole: _Key | None
    loaded: bool
    expires_at: float
    attempted_at: float | None
    refresh_at: float
    error: Exception | None
    # Every key by its JWK text, to keep the same objects while a key is republished.
    by_text: Mapping[str, _Key] = field(default_factory=dict)
    # Every VerifyingKey handed out for this set, and a number that changes with them.
    current: frozenset[VerifyingKey] = frozenset()
    version: int = 0


@dataclass(frozen=True, slots=True)
class _Flight:
    """The one fetch in progress: ``done`` holds its snapshot, waiters give up at ``deadline``."""

    done: Future[_Snapshot]
    deadline: float


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (monotonic); ``TimeoutError`` once none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the JWKS fetch took longer than the timeout")
    return left


class _DeadlineReader(io.RawIOBase):
    """Reads a socket, each read waiting only for the time left before the deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        # The socket's own file keeps the connection open after http.client closes the
        # socket object (urllib does, right after the response head), as sock.makefile does.
        self._file = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        """This is a read-only stream."""
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int | None:
        """Read into ``buffer``, waiting no longer than the deadline allows."""
        self._sock.settimeout(_remaining(self._deadline))
        return self._file.readinto(buffer)

    def close(self) -> None:
        """Release the socket's file (and with it the connection, once all are closed)."""
        self._file.close()
        super().close()


class _DeadlineSocket:
    """The connected socket as ``http.client`` sees it, bound by one deadline.

    ``http.client`` gives a socket one timeout per operation, and a server that sends a
    byte just before each timeout could hold a fetch for ever; here every write, every
    read of the status line, headers, chunk sizes and body, may only wait for what is left.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self._deadline = deadline

    def setsockopt(self, level: int, option: int, value: int) -> None:
        """Set a socket option (``http.client`` turns Nagle off)."""
        self.sock.setsockopt(level, option, value)

    def sendall(self, data: ReadableBuffer) -> None:
        """Send all of ``data`` before the deadline."""
        self.sock.settimeout(_remaining(self._deadline))
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        """A buffered reader whose every read honours the deadline (only ``"rb"`` is used)."""
        if mode != "rb":
            raise ValueError(f"only 'rb' is supported, got {mode!r}")
        return io.BufferedReader(_DeadlineReader(self.sock, self._deadline))

    def close(self) -> None:
        """Close the socket (for real once the response's reader is closed too)."""
        self.sock.close()


class _DeadlineHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose whole exchange must end by ``deadline``."""

    def __init__(self, host: str, *, deadline: float, **kwargs: Any) -> None:  # noqa: ANN401 - http.client's keyword arguments
        super().__init__(host, **kwargs)
        self.deadline = deadline
        # http.client's hook for opening the TCP connection (and for a proxy's tunnel).
        self._create_connection = self._open_socket

    def _open_socket(
        self,
        address: tuple[str, int],
        _timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> _DeadlineSocket:
        # Name resolution has no timeout in the standard library, and a host with several
        # addresses gives each what is left; callers never wait past the deadline anyway
        # (see JWKSCache), and only one fetch is ever in flight.
        sock = socket.create_connection(address, _remaining(self.deadline), source_address)
        return _DeadlineSocket(sock, self.deadline)


class _DeadlineHTTPSConnection(_DeadlineHTTPConnection, http.client.HTTPSConnection):
    """An HTTPS connection whose whole exchange, TLS handshake included, ends by ``deadline``."""

    def __init__(self, host: str, *, deadline: float, tls: ssl.SSLContext, **kwargs: Any) -> None:  # noqa: ANN401 - http.client's keyword arguments
        super().__init__(host, deadline=deadline, context=tls, **kwargs)
        self.tls = tls

    def connect(self) -> None:
        """Connect (through a proxy's tunnel, if any), then shake hands before the deadline."""
        http.client.HTTPConnection.connect(self)
        plain = self.sock
        if not isinstance(plain, _DeadlineSocket):  # pragma: no cover - set by _open_socket
            raise TypeError("unexpected socket type")
        # CPython bounds the whole handshake by the socket's timeout, not each read of it.
        plain.sock.settimeout(_remaining(self.deadline))
        # Through a proxy's tunnel the certificate must name the JWKS host, not the proxy
        # (as http.client's own HTTPSConnection.connect does).
        tunnel_host: str | None = getattr(self, "_tunnel_host", None)
        server_hostname = tunnel_host or self.host
        tls_sock = self.tls.wrap_socket(plain.sock, server_hostname=server_hostname)
        self.sock = _DeadlineSocket(tls_sock, self.deadline)


class _DeadlineHTTPHandler(urllib.request.HTTPHandler):
    """Opens ``http`` URLs with :class:`_DeadlineHTTPConnection`."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        """Open ``req`` within the deadline."""
        connection = functools.partial(_DeadlineHTTPConnection, deadline=self.deadline)
        return self.do_open(connection, req)


class _DeadlineHTTPSHandler(urllib.request.HTTPSHandler):
    """Opens ``https`` URLs with :class:`_DeadlineHTTPSConnection` and the cache's context."""

    def __init__(self, deadline: float, tls: ssl.SSLContext) -> None:
        super().__init__(context=tls)
        self.deadline = deadline
        self.tls = tls

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        """Open ``req`` within the deadline, checking the server's certificate."""
        connection = functools.partial(
            _DeadlineHTTPSConnection, deadline=self.deadline, tls=self.tls
        )
        return self.do_open(connection, req)


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


class _NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: the 3xx itself becomes the ``HTTPError`` (``http_status``)."""

    def redirect_request(  # noqa: PLR0917 - the signature is urllib's
        self,
        req: urllib.request.Request,  # noqa: ARG002 - urllib's signature
        fp: Any,  # noqa: ANN401, ARG002 - urllib's untyped file object
        code: int,  # noqa: ARG002 - urllib's signature
        msg: str,  # noqa: ARG002 - urllib's signature
        headers: HTTPMessage,  # noqa: ARG002 - urllib's signature
        newurl: str,  # noqa: ARG002 - urllib's signature
    ) -> urllib.request.Request | None:
        """Refuse every redirect (urllib then raises the 3xx as an ``HTTPError``)."""
        return None


def _checked_tls(ssl_context: ssl.SSLContext | None) -> ssl.SSLContext:
    """The TLS context for ``https`` fetches: the given one if it checks certificates."""
    if ssl_context is None:
        # The system trust store; SSL_CERT_FILE and SSL_CERT_DIR are honoured here.
        return ssl.create_default_context()
    if not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError("ssl_context must be an ssl.SSLContext, e.g. ssl.create_default_context()")
    if ssl_context.verify_mode != ssl.CERT_REQUIRED or not ssl_context.check_hostname:
        raise ValueError(
            "ssl_context must check certificates and host names (verify_mode=CERT_REQUIRED,"
            " check_hostname=True): keys fetched without them can be replaced by anyone on"
            " the path. Trust a private CA with ssl.create_default_context(cafile=...)."
        )
    return ssl_context


class JWKSCache:
    """A thread-safe, bounded cache of the signing keys published at a JWKS URL.

    Construction validates the configuration and does no network I/O; the first
    :meth:`get_key` (or :meth:`refresh`) fetches. Call :meth:`get_key` from threads and
    :meth:`get_key_async` from an event loop; both share one cache, one cool-down and the
    one fetch in flight.

    Args:
        url: The JWKS endpoint, ``http`` or ``https`` with a host and no credentials.
        timeout: Seconds one fetch may take in all: connecting, the TLS handshake, the
            status line, headers and body, and redirects. No caller waits longer.
        cooldown: Minimum seconds between two fetch attempts, in ``(0, 10]``, but for
            the one early fetch per window that a newly published key may cause.
        min_interval: Minimum seconds between the end of a successful fetch and an
            early fetch inside the cool-down for a new ``kid`` (key rotation); at or
            above ``cooldown`` there are no early fetches.
        min_ttl: Lower bound for a response's ``max-age``.
        max_ttl: Upper bound for a response's ``max-age``: a key the issuer withdraws
            verifies no new token after at most this long.
        default_ttl: Lifetime of a response without ``max-age``, in ``[min_ttl, max_ttl]``.
        clock: Monotonic time source in seconds, for lifetimes and the cool-down.
        ssl_context: The TLS context for ``https`` URLs, e.g.
            ``ssl.create_default_context(cafile="internal-ca.pem")`` for an identity
            provider behind a private CA; it must check certificates and host names.
            ``None``: the system's trust store (``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
            are honoured).

    Raises:
        ValueError: If an argument is out of range; the message says which and why.
        TypeError: If ``clock`` is not callable or ``ssl_context`` not an SSL context.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        cooldown: float = 5.0,
        min_interval: float = 1.0,
        min_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        default_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Validate the configuration; see the class docstring for the arguments."""
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"url must be an http:// or https:// URL with a host, got {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("url must not carry credentials (user:password@); remove them")
        for name, value in (
            ("timeout", timeout),
            ("cooldown", cooldown),
            ("min_interval", min_interval),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number of seconds, got {value!r}")
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
        self._min_interval = float(min_interval)
        self._min_ttl = float(min_ttl)
        self._max_ttl = float(max_ttl)
        self._default_ttl = float(default_ttl)
        self._clock = clock
        self._tls = _checked_tls(ssl_context)
        # Guards the flight bookkeeping only; it is never held across network I/O.
        self._lock = threading.Lock()
        self._flight: _Flight | None = None
        self._fetch_count = 0
        # The early fetch's bookkeeping, under _lock: the kid the latest fetch looked
        # for, the first other kid refused since it started, and when the next early
        # fetch may start (one per cool-down window).
        self._looked_for: object = _NO_KID
        self._newcomer: object = _NO_KID
        self._next_early = -math.inf
        # Wall-clock time of the last successful fetch, for the key-set age metric.
        self._loaded_at: float | None = None
        _keyhealth.track("jwks", self)
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
        """The number of HTTP fetches started so far, successful or not."""
        return self._fetch_count

    @property
    def loaded_at(self) -> float | None:
        """Wall-clock time (``time.time()``) of the last successful fetch; ``None`` before."""
        return self._loaded_at

    @property
    def last_failure(self) -> str | None:
        """Why the latest fetch failed, in one sentence with its cause; ``None`` if it did not.

        Example: ``"not_a_key_set: the document has no 'keys' list"``.
        """
        failure = describe(self._snapshot.error)
        return None if failure is None else f"{failure.cause}: {failure.detail}"

    @property
    def version(self) -> int:
        """A number that changes whenever a refresh adds, withdraws or changes a key.

        Reading it starts the background refresh of a loaded set that is due, without
        waiting for it: a verifier answering remembered tokens reads it on every
        request, so the keys are refreshed on schedule even when no token needs a key.
        """
        seen = self._snapshot
        if seen.loaded and self._clock() >= seen.refresh_at:
            self._flight_for(seen)
        return seen.version

    def holds(self, key: VerifyingKey) -> bool:
        """Whether ``key`` (from :meth:`key_for`) is still published, unchanged."""
        return key in self._snapshot.current

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:
        """The key for ``kid``, prepared for ``alg``, fetching as :meth:`get_key` does.

        Raises:
            AuthFailure: As :meth:`get_key`, or ``algorithm_not_allowed`` when the key
                may not verify ``alg`` (its declared ``alg`` or its type says otherwise).
        """
        return _prepared(self._key(kid, alg), alg)

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:
        """:meth:`key_for` without ever blocking the event loop.

        Raises:
            AuthFailure: As :meth:`key_for`.
        """
        return _prepared(await self._key_async(kid, alg), alg)

    def get_key(self, kid: str | None, alg: str | None = None) -> jwt.PyJWK:
        """Return the signing key for ``kid``, waiting for a fetch only when it must.

        A ``None`` kid selects the key only when the set holds exactly one key. Of several
        keys sharing a ``kid``, the first that fits ``alg`` is chosen (its declared
        ``alg``, or else its key type), or the first of them when none fits. A ``kid``
        of the loaded set is answered at once (a due refresh runs in the background);
        otherwise this waits for the fetch in flight, or one the cool-down (or, for a
        newly published key, the early fetch of a rotation) allows, for
        at most ``timeout`` seconds. Do not call this from an event loop; use
        :meth:`get_key_async` there.

        Args:
            kid: The token's ``kid`` header, used only as a dictionary key.
            alg: The token's ``alg`` (already allowed by the verifier), to choose among
                keys sharing the ``kid``.

        Returns:
            The parsed key, with ``key``, ``key_id`` and ``algorithm_name``.

        Raises:
            AuthFailure: ``unknown_key`` if no key matches even after the allowed refresh;
                ``key_unavailable`` if no key set could ever be fetched.
        """
        return self._key(kid, alg).jwk

    def _key(self, kid: str | None, alg: str | None) -> _Key:
        key, flight = self._plan(kid, alg)
        if key is not None:
            return key
        if flight is not None and _wait(flight) is None:
            return self._select_after_timeout(kid, alg)
        return self._select(self._snapshot, kid, alg)

    async def get_key_async(self, kid: str | None, alg: str | None = None) -> jwt.PyJWK:
        """Return the signing key for ``kid`` without ever blocking the event loop.

        Behaves as :meth:`get_key`; the fetch runs in its own thread and this task
        awaits it, sharing it with every other waiting task and thread.

        Args:
            kid: The token's ``kid`` header, used only as a dictionary key.
            alg: The token's ``alg``, to choose among keys sharing the ``kid``.

        Returns:
            The parsed key, with ``key``, ``key_id`` and ``algorithm_name``.

        Raises:
            AuthFailure: As for :meth:`get_key`.
        """
        return (await self._key_async(kid, alg)).jwk

    async def _key_async(self, kid: str | None, alg: str | None) -> _Key:
        key, flight = self._plan(kid, alg)
        if key is not None:
            return key
        if flight is not None and await _wait_async(flight) is None:
            return self._select_after_timeout(kid, alg)
        return self._select(self._snapshot, kid, alg)

    def refresh(self) -> None:
        """Fetch the key set now, ignoring the cool-down (for start-up or a prefetch).

        A fetch already in flight is joined instead of starting a second one.

        Raises:
            AuthFailure: ``key_unavailable`` if the fetch failed or did not finish within
                ``timeout``; previously cached keys, if any, are kept and still served.
        """
        _raise_unless_loaded(_wait(self._join_or_launch()))

    async def refresh_async(self) -> None:
        """Like :meth:`refresh`, awaiting the fetch instead of blocking.

        Raises:
            AuthFailure: ``key_unavailable`` if the fetch failed or timed out.
        """
        _raise_unless_loaded(await _wait_async(self._join_or_launch()))

    def _plan(self, kid: str | None, alg: str | None) -> tuple[_Key | None, _Flight | None]:
        """The cached key to answer with at once, or else the fetch to wait for.

        A ``kid`` the loaded set holds is served from memory even once the set is due
        (past 80% of its lifetime) or past due (expired) for a refresh, which then starts
        in the background; no request waits for it. ``(None, None)``: nothing to wait
        for (the cool-down forbids a fetch and no early one is due, or a fetch just
        finished); select at once.
        """
        seen = self._snapshot
        key = _lookup(seen, kid, alg)
        if key is None:
            return None, self._flight_for(seen, kid)
        if self._clock() >= seen.refresh_at:
            self._flight_for(seen)
        return key, None

    def _flight_for(self, seen: _Snapshot, missing: object = _NO_KID) -> _Flight | None:
        """Join the fetch in flight, or start one if none finished and the rules allow.

        ``missing`` is the ``kid`` a caller did not find in ``seen`` (``_NO_KID`` for a
        refresh that is merely due): it may start the early fetch of a key rotation.
        """
        with self._lock:
            flight = self._in_flight()
            if flight is not None:
                return flight
            if self._snapshot is not seen:
                return None
            if self._may_fetch(seen):
                return self._launch(missing)
            if missing is not _NO_KID and self._may_fetch_early(seen, missing):
                self._next_early = self._clock() + self._cooldown
                return self._launch(missing)
            return None

    def _join_or_launch(self) -> _Flight:
        with self._lock:
            return self._in_flight() or self._launch(_NO_KID)

    def _in_flight(self) -> _Flight | None:
        """The fetch in progress, if any; the caller holds ``_lock``."""
        flight = self._flight
        return flight if flight is not None and not flight.done.done() else None

    def _launch(self, missing: object) -> _Flight:
        """Start the one fetch, in a thread of its own; the caller holds ``_lock``.

        ``missing`` is the ``kid`` the fetch looks for, if any: asking for it again
        does not count as a new ``kid`` (a client retrying the same unknown key).
        """
        self._looked_for = missing
        self._newcomer = _NO_KID
        done: Future[_Snapshot] = Future()
        # A running future cannot be cancelled by one waiter that gives up on it.
        done.set_running_or_notify_cancel()
        flight = _Flight(done, time.monotonic() + self._timeout + _WAIT_GRACE)
        self._fetch_count += 1
        threading.Thread(
            target=self._run, args=(done,), name="invalidtoken-mw-jwks-fetch", daemon=True
        ).start()
        self._flight = flight
        return flight

    def _run(self, done: Future[_Snapshot]) -> None:
        try:
            snapshot = self._fetch()
        except BaseException as exc:
            done.set_exception(exc)
            raise
        done.set_result(snapshot)

    def _may_fetch(self, snapshot: _Snapshot) -> bool:
        last = snapshot.attempted_at
        return last is None or self._clock() - last >= self._cooldown

    def _may_fetch_early(self, snapshot: _Snapshot, kid: object) -> bool:
        """Whether ``kid``, missing inside the cool-down, may start the window's early fetch.

        Only after a successful fetch (an outage keeps to the cool-down), for the first
        ``kid`` refused since it other than the one it looked for, once ``min_interval``
        has passed, and once per cool-down window. The caller holds ``_lock``.
        """
        if not snapshot.loaded or snapshot.error is not None or snapshot.attempted_at is None:
            return False
        if kid == self._looked_for:
            return False
        if self._newcomer is _NO_KID:
            # Claimed even when refused below: a flood's later kids are not this one.
            self._newcomer = kid
        elif kid != self._newcomer:
            return False
        now = self._clock()
        return now - snapshot.attempted_at >= self._min_interval and now >= self._next_early

    def _select(self, snapshot: _Snapshot, kid: str | None, alg: str | None) -> _Key:
        key = _lookup(snapshot, kid, alg)
        if key is not None:
            return key
        if not snapshot.loaded:
            raise AuthFailure(Reason.KEY_UNAVAILABLE) from snapshot.error
        raise AuthFailure(Reason.UNKNOWN_KEY)

    def _select_after_timeout(self, kid: str | None, alg: str | None) -> _Key:
        """Answer from what is cached when the fetch did not finish by its deadline."""
        try:
            return self._select(self._snapshot, kid, alg)
        except AuthFailure as failure:
            if failure.reason is not Reason.KEY_UNAVAILABLE:
                raise
            raise AuthFailure(Reason.KEY_UNAVAILABLE) from _fetch_timeout()

    def _fetch(self) -> _Snapshot:
        """Fetch, parse and publish a new snapshot; runs in the flight's own thread."""
        previous = self._snapshot
        try:
            body, headers = self._download()
            keys, sole, by_text = _parse_jwks(body, previous.by_text)
            ttl = self._ttl(headers)
        except _FETCH_ERRORS as exc:
            failure = describe(exc) or _keyhealth.FetchFailure("unexpected_error", str(exc))
            _keyhealth.fetched("jwks", failure)
            _log.warning(
                "jwks_refresh_failed",
                url=self._log_url,
                cause=failure.cause,
                detail=failure.detail,
                **failure.fields,
                error_type=type(exc).__name__,
                serving_stale=previous.loaded,
            )
            # Without its traceback the error does not pin this frame, and through `previous`
            # every earlier snapshot and response body, for the length of an outage.
            error = exc.with_traceback(None)
            snapshot = replace(previous, attempted_at=self._clock(), error=error)
        else:
            _keyhealth.fetched("jwks", None)
            self._loaded_at = time.time()
            now = self._clock()
            current = frozenset(v for key in by_text.values() for v in key.verifying.values())
            snapshot = _Snapshot(
                keys,
                sole,
                loaded=True,
                expires_at=now + ttl,
                attempted_at=now,
                refresh_at=now + ttl * _REFRESH_AHEAD,
                error=None,
                by_text=by_text,
                current=current,
                version=previous.version + (current != previous.current),
            )
        self._snapshot = snapshot
        return snapshot

    def _download(self) -> tuple[bytes, Message]:
        return _get(
            self._url, self._timeout, self._tls, "application/jwk-set+json, application/json"
        )

    def _ttl(self, headers: Message) -> float:
        match = _MAX_AGE.search(", ".join(headers.get_all("Cache-Control", [])))
        if match is None:
            return self._default_ttl
        age = _DIGITS.fullmatch(headers.get("Age", "").strip())
        lifetime = _seconds(match.group(1)) - (_seconds(age.group()) if age else 0.0)
        return min(max(lifetime, self._min_ttl), self._max_ttl)


def _get(url: str, timeout: float, tls: ssl.SSLContext, accept: str) -> tuple[bytes, Message]:
    """GET ``url`` within one deadline of ``timeout`` seconds: the body and the headers.

    Shared by the JWKS and the issuer metadata fetch (:mod:`invalidtoken_mw.discovery`).
    The body is capped at 1 MiB; redirects stay on http(s) and never leave https.

    Raises:
        OSError: The exchange failed or took too long (an ``HTTPError`` for a status
            other than 2xx, with ``code``).
        ValueError: The body is larger than 1 MiB.
    """
    body, headers, _ = _request(url, timeout, tls, accept)
    return body, headers


def _request(
    url: str,
    timeout: float,
    tls: ssl.SSLContext,
    accept: str,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = True,
) -> tuple[bytes, Message, int]:
    """:func:`_get`, or a POST of ``data`` (token introspection): body, headers, status.

    ``follow_redirects=False`` answers a 3xx as an ``HTTPError``: a POST that carries
    client credentials must not be replayed to wherever a redirect points.

    Raises:
        OSError: As :func:`_get`.
        ValueError: The body is larger than 1 MiB.
    """
    deadline = time.monotonic() + timeout
    # One opener per fetch: its handlers carry this fetch's deadline through redirects.
    opener = urllib.request.build_opener(
        _SafeRedirectHandler if follow_redirects else _NoRedirectHandler,
        _DeadlineHTTPHandler(deadline),
        _DeadlineHTTPSHandler(deadline, tls),
    )
    request = urllib.request.Request(  # noqa: S310 - callers check the scheme is http(s)
        url,
        data=data,
        headers={
            "Accept": accept,
            "User-Agent": f"invalidtoken-mw/{__version__}",
            **(headers or {}),
        },
    )
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise
    with response:
        chunks: list[bytes] = []
        size = 0
        # read1 returns after one socket read, and each read is bounded by the deadline.
        while chunk := response.read1(_READ_CHUNK):
            size += len(chunk)
            if size > _MAX_BODY_BYTES:
                raise _InvalidJWKSError(
                    "body_too_large", f"the response exceeds {_MAX_BODY_BYTES} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks), response.headers, response.status


def _fetch_timeout() -> TimeoutError:
    return TimeoutError("the JWKS fetch did not finish within the timeout")


def _wait(flight: _Flight) -> _Snapshot | None:
    """Wait for ``flight`` until its deadline; its snapshot, or ``None`` on timeout."""
    try:
        return flight.done.result(timeout=max(0.0, flight.deadline - time.monotonic()))
    except TimeoutError:
        return None


async def _wait_async(flight: _Flight) -> _Snapshot | None:
    """Await ``flight`` until its deadline without blocking the loop; ``None`` on timeout."""
    waiter = asyncio.wrap_future(flight.done)
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, flight.deadline - time.monotonic()))
        return waiter.result() if waiter.done() else None
    finally:
        # Detach from a fetch still running: it must not call back into this loop later.
        waiter.cancel()


def _raise_unless_loaded(snapshot: _Snapshot | None) -> None:
    """Raise ``key_unavailable`` unless ``snapshot`` is the result of a successful fetch."""
    if snapshot is None:
        raise AuthFailure(Reason.KEY_UNAVAILABLE) from _fetch_timeout()
    if snapshot.error is not None:
        raise AuthFailure(Reason.KEY_UNAVAILABLE) from snapshot.error


def _seconds(digits: str) -> float:
    """Read a delta-seconds value, capped at 2**31 as RFC 9111 §1.2.2 requires."""
    return min(float(digits), _DELTA_SECONDS_CAP)


def _prepared(key: _Key, alg: str) -> VerifyingKey:
    """``key`` prepared for ``alg``, or ``algorithm_not_allowed`` if it may not verify it."""
    verifying = key.verifying.get(alg)
    if verifying is None:
        raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED, Sentence.ALGORITHM_NOT_THE_KEYS)
    return verifying


def _lookup(snapshot: _Snapshot, kid: str | None, alg: str | None) -> _Key | None:
    if kid is None:
        return snapshot.sole
    candidates = snapshot.keys.get(kid)
    if not candidates:
        return None
    if alg is not None and len(candidates) > 1:
        for key in candidates:
            if alg in key.verifying:
                return key
    # None fits: the verifier refuses the first as not matching the token's algorithm.
    return candidates[0]


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


def _parse_jwks(
    body: bytes, known: Mapping[str, _Key]
) -> tuple[dict[str, tuple[_Key, ...]], _Key | None, dict[str, _Key]]:
    """Parse a JWK Set: keys by ``kid``, the sole key (if just one), keys by JWK text.

    Each key is parsed on its own, so one malformed, unsupported or too weak key is
    skipped instead of failing the set; at most ``_MAX_KEYS`` keys are kept. Keys sharing
    a ``kid`` are all kept, in the set's order (RFC 7517 §4.5). A key whose JWK text is
    in ``known`` (the previous set) is that same object again, so what it verified
    stays valid.

    Raises:
        ValueError: If the body is not JSON or holds no usable signing key.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _InvalidJWKSError("not_json", "the response is not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise _not_a_key_set(document)
    keys: list[_Key] = []
    by_text: dict[str, _Key] = {}
    for entry in filter(_is_signing_jwk, entries):
        text = json.dumps(entry, sort_keys=True)
        key = known.get(text) or _parse_key(entry)
        if key is None:
            continue
        keys.append(key)
        by_text[text] = key
        if len(keys) == _MAX_KEYS:
            break
    if not keys:
        raise _InvalidJWKSError(
            "no_usable_key",
            f"none of the {len(entries)} keys is a usable public signature key"
            " (RSA, EC or OKP with use 'sig', of sufficient length)",
            keys_listed=len(entries),
        )
    by_kid: dict[str, tuple[_Key, ...]] = {}
    for key in keys:
        kid = key.jwk.key_id
        if kid is not None:
            by_kid[kid] = (*by_kid.get(kid, ()), key)
    return by_kid, (keys[0] if len(keys) == 1 else None), by_text


def _not_a_key_set(document: object) -> _InvalidJWKSError:
    """Why a JSON document without a ``keys`` list is not a JWK Set, with a hint."""
    if isinstance(document, dict) and ("jwks_uri" in document or "issuer" in document):
        # The usual mistake: jwks_url set to the issuer's openid-configuration document.
        jwks_uri = document.get("jwks_uri")
        shown = (
            " " + "".join(c for c in jwks_uri[:_SHOWN_URI] if c.isprintable())
            if isinstance(jwks_uri, str)
            else ""
        )
        return _InvalidJWKSError(
            "discovery_document",
            "the URL serves an issuer's metadata (discovery) document, not a key set:"
            f" set jwks_url to its jwks_uri{shown}, or give issuer_url instead",
            hint="set jwks_url to the document's jwks_uri, or use issuer_url",
        )
    return _InvalidJWKSError("not_a_key_set", "the JSON document has no 'keys' list")


def _parse_key(entry: dict[str, Any]) -> _Key | None:
    """Parse one JWK; ``None`` if PyJWT cannot read it or it is too weak to trust."""
    declared: str | None = entry.get("alg")
    kty, crv = entry.get("kty"), entry.get("crv")  # kty is a string (_is_signing_jwk)
    algorithm = declared or (_ALG_BY_CURVE.get((kty, crv)) if isinstance(crv, str) else None)
    try:
        jwk = jwt.PyJWK.from_dict(entry, algorithm)
        weakness = jwk.Algorithm.check_key_length(jwk.key)
    except _KEY_ERRORS:
        return None
    if weakness:
        # Its tokens would be refused anyway (the verifier enforces PyJWT's minimum key
        # lengths); leaving it out makes them unknown_key and tells the operator why.
        _log.warning(
            "jwks_key_skipped",
            kid=entry.get("kid"),
            kty=entry.get("kty"),
            cause="key_too_weak",
        )
        return None
    fits = (declared,) if declared else _RSA_ALGORITHMS if kty == "RSA" else (jwk.algorithm_name,)
    prepared = {alg: _prepare(jwk, alg) for alg in fits}
    return _Key(jwk, declared, {alg: key for alg, key in prepared.items() if key is not None})


def _prepare(jwk: jwt.PyJWK, alg: str) -> VerifyingKey | None:
    """``jwk`` prepared for ``alg``; ``None`` for an algorithm PyJWT lacks or that does not fit."""
    try:
        return VerifyingKey.prepare(alg, jwk.key, jwk.key_id)
    except (jwt.InvalidKeyError, KeyError):
        return None
