"""Issuer discovery: the key set, the issuer and the algorithms from the issuer's metadata.

:class:`DiscoveryKeys` is a :class:`~invalidtoken_mw.keys.KeySource` configured with the
issuer's URL alone, as Spring Security's ``issuer-uri`` or ASP.NET's ``Authority`` are.
On first use it fetches the issuer's metadata document, trying in turn:

1. OpenID Connect Discovery 1.0 §4: ``{issuer}/.well-known/openid-configuration``
   (the well-known path appended to the issuer, its trailing ``/`` removed);
2. for an issuer with a path, the RFC 8414 §5 form of the same document:
   ``https://host/.well-known/openid-configuration/{path}``;
3. RFC 8414 §3.1: ``https://host/.well-known/oauth-authorization-server{/path}`` (the
   well-known segment inserted between the host and the issuer's path).

A document answered with a 4xx status moves on to the next location; any other failure
stops there. The document must be a JSON object whose ``issuer`` equals the configured
issuer URL exactly (OpenID Connect Discovery §4.3, RFC 8414 §3.3: no trailing ``/`` added
or removed) and whose ``jwks_uri`` is an ``http(s)`` URL (``https`` for an ``https``
issuer). The keys then come from a :class:`~invalidtoken_mw.JWKSCache` for that
``jwks_uri``, created once, with its own lifetimes, cool-down and stale-while-error.

Fetching the metadata follows the JWKS rules: at most one fetch in flight (threads and
asyncio tasks share it; the event loop never blocks), one deadline of ``timeout``
seconds for all locations tried, no new attempt sooner than ``cooldown`` seconds after
the last failed one, and a ``discovery_failed`` warning naming the cause (``http_status``,
``timeout``, ``not_json``, ``issuer_mismatch``, ``no_jwks_uri``, ...) with a ``detail``
sentence; until a document loads,
tokens are refused ``key_unavailable`` (503). Once loaded, the metadata is kept for the
life of the key source (an issuer's ``jwks_uri`` does not change; its keys do, and the
JWKS cache refreshes them), so a metadata endpoint that fails later changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.error
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import structlog
from jwt.algorithms import get_default_algorithms

from invalidtoken_mw import _keyhealth
from invalidtoken_mw._keyhealth import FetchProblem, describe
from invalidtoken_mw.jwks import _FETCH_ERRORS, JWKSCache, _checked_tls, _get, _remaining
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from invalidtoken_mw.keys import VerifyingKey

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DiscoveryKeys",
    "IssuerMetadata",
    "download_metadata",
    "metadata_urls",
]

_log = structlog.get_logger("invalidtoken_mw")

_OIDC = "/.well-known/openid-configuration"
_RFC8414 = "/.well-known/oauth-authorization-server"
_ACCEPT = "application/json"
_HTTP_CLIENT_ERRORS = range(400, 500)
_SHOWN = 200  # characters of a document's issuer repeated in the log
# Waiters give the fetch this much longer than its deadline, as for the JWKS.
_WAIT_GRACE = 0.1

#: Every asymmetric JWS algorithm PyJWT implements: what a verifier configured with
#: ``issuer_url`` and no ``algorithms`` may accept, and only those of them the issuer
#: advertises. Never ``none``, never HMAC (a secret an issuer cannot publish).
ASYMMETRIC_ALGORITHMS: tuple[str, ...] = tuple(
    name for name in get_default_algorithms() if name != "none" and not name.startswith("HS")
)
# OpenID Connect Discovery §3: RS256 MUST be among id_token_signing_alg_values_supported;
# RFC 9068 §4 makes it the one access-token algorithm every issuer supports.
_WHEN_NOT_ADVERTISED = ("RS256",)


@dataclass(frozen=True, slots=True)
class IssuerMetadata:
    """What a verifier takes from an issuer's metadata document.

    Attributes:
        issuer: The ``issuer``, equal to the configured issuer URL (or to the
            configured multi-tenant issuer template, see ``issuer_template``).
        jwks_uri: Where the issuer publishes its signing keys.
        algorithms: The asymmetric algorithms advertised in
            ``id_token_signing_alg_values_supported`` (``("RS256",)`` when the document
            advertises none, as RFC 8414 documents may not).
        url: The location the document was read from.
        introspection_endpoint: The RFC 7662 introspection endpoint the document names
            (RFC 8414 §2), if any: what :class:`~invalidtoken_mw.IntrospectionVerifier`
            posts opaque tokens to when given ``issuer_url``.
    """

    issuer: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    url: str
    introspection_endpoint: str | None = None


_DETAILS = {
    "not_json": "the metadata document is not JSON",
    "not_json_object": "the metadata document is not a JSON object",
    "issuer_mismatch": "the document's issuer is not the configured issuer_url (compare"
    " them character for character, trailing '/' included)",
    "no_jwks_uri": "the metadata document has no jwks_uri",
    "jwks_uri_not_https": "the document's jwks_uri is not https for an https issuer",
    "no_asymmetric_algorithm": "the issuer advertises no asymmetric signing algorithm",
    "bad_jwks_uri": "the document's jwks_uri is not a usable http(s) URL",
    "no_introspection_endpoint": "the metadata document has no usable"
    " introspection_endpoint (an http(s) URL, https for an https issuer)",
}


class _MetadataError(FetchProblem):
    """The metadata document is unusable; ``cause`` names why, ``facts`` go to the log."""

    def __init__(self, cause: str, detail: str | None = None, **facts: Any) -> None:  # noqa: ANN401 - log fields
        super().__init__(cause, detail or _DETAILS.get(cause, cause), **facts)
        self.facts = self.fields


def metadata_urls(issuer_url: str) -> tuple[str, ...]:
    """The locations of ``issuer_url``'s metadata document, in the order they are tried.

    Example::

        >>> metadata_urls("https://id.example.com/realms/acme")
        ('https://id.example.com/realms/acme/.well-known/openid-configuration',
         'https://id.example.com/.well-known/openid-configuration/realms/acme',
         'https://id.example.com/.well-known/oauth-authorization-server/realms/acme')
    """
    parts = urlsplit(issuer_url)
    path = parts.path.rstrip("/")
    origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
    if not path:
        return (f"{origin}{_OIDC}", f"{origin}{_RFC8414}")
    return (f"{origin}{path}{_OIDC}", f"{origin}{_OIDC}{path}", f"{origin}{_RFC8414}{path}")


def _check_issuer_url(issuer_url: str) -> None:
    if not isinstance(issuer_url, str):
        raise TypeError("issuer_url must be a string such as 'https://id.example.com/'.")
    parts = urlsplit(issuer_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"issuer_url must be an https:// URL with a host, e.g. 'https://id.example.com/',"
            f" got {issuer_url!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("issuer_url must not carry credentials (user:password@); remove them")
    if parts.query or parts.fragment or issuer_url.endswith(("?", "#")):
        # RFC 8414 §2: an issuer identifier has no query or fragment.
        raise ValueError("issuer_url must have no query or fragment (RFC 8414 §2)")


def _shown(value: object) -> str:
    """A document's value, for the log: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _algorithms(document: dict[str, Any], *, needed: bool) -> tuple[str, ...]:
    """The asymmetric algorithms advertised; with ``needed``, at least one or an error."""
    advertised = document.get("id_token_signing_alg_values_supported")
    if not isinstance(advertised, list):
        return _WHEN_NOT_ADVERTISED
    usable = tuple(dict.fromkeys(a for a in advertised if a in ASYMMETRIC_ALGORITHMS))
    if not usable and needed:
        raise _MetadataError("no_asymmetric_algorithm", advertised=_shown(advertised))
    return usable


def _read_metadata(
    body: bytes,
    issuer_url: str,
    url: str,
    *,
    algorithms_needed: bool = True,
    template: str | None = None,
    introspection_needed: bool = False,
) -> IssuerMetadata:
    """Check one metadata document (OIDC Discovery §4.3, RFC 8414 §3.3).

    ``template``: a multi-tenant issuer template the document may state instead of
    ``issuer_url`` (Microsoft Entra ID's ``common`` and ``organizations`` documents).
    ``introspection_needed``: the document must name an ``introspection_endpoint``
    (under the ``jwks_uri`` rules) and needs no ``jwks_uri``: an authorization server
    that issues only opaque tokens may publish no keys (RFC 8414 §2).

    Raises:
        _MetadataError: The document is unusable; its ``cause`` says why.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _MetadataError("not_json") from None
    if not isinstance(document, dict):
        raise _MetadataError("not_json_object")
    issuer = document.get("issuer")
    if issuer != issuer_url and (template is None or issuer != template):
        # The usual mistake is a trailing slash: the log shows both to compare.
        raise _MetadataError(
            "issuer_mismatch",
            f"the document's issuer {_shown(issuer)} is not the configured issuer_url"
            f" {issuer_url!r} (compare them character for character, trailing '/' included)",
            document_issuer=_shown(issuer),
        )
    if introspection_needed:
        endpoint = document.get("introspection_endpoint")
        if not isinstance(endpoint, str) or not _usable_url(endpoint, issuer_url):
            # Credentials posted over plain http for an https issuer could be read on the path.
            raise _MetadataError("no_introspection_endpoint", endpoint=_shown(endpoint))
        jwks_uri = document.get("jwks_uri")
        return IssuerMetadata(
            issuer,
            jwks_uri if isinstance(jwks_uri, str) else "",
            _algorithms(document, needed=False),
            url,
            endpoint,
        )
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise _MetadataError("no_jwks_uri")
    if not _usable_url(jwks_uri, issuer_url, host_needed=False):
        # Keys fetched over plain http for an https issuer could be replaced on the path.
        # (A jwks_uri without a host is the JWKS cache's to refuse: bad_jwks_uri.)
        raise _MetadataError("jwks_uri_not_https", jwks_uri=_shown(jwks_uri))
    algorithms = _algorithms(document, needed=algorithms_needed)
    endpoint = document.get("introspection_endpoint")
    return IssuerMetadata(
        issuer, jwks_uri, algorithms, url, endpoint if isinstance(endpoint, str) else None
    )


def _usable_url(url: str, issuer_url: str, *, host_needed: bool = True) -> bool:
    """An http(s) URL (with a host, if ``host_needed``), and https when the issuer is."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return (
        scheme in {"http", "https"}
        and (bool(parts.hostname) or not host_needed)
        and (urlsplit(issuer_url).scheme != "https" or scheme == "https")
    )


class DiscoveryKeys:
    """The keys of the issuer at ``issuer_url``, found through its metadata: a ``KeySource``.

    Construction validates the configuration and does no network I/O; the first
    :meth:`key_for` (or :meth:`refresh`) fetches the metadata, then the key set.

    Args:
        issuer_url: The issuer identifier, exactly as the tokens' ``iss`` and the
            metadata's ``issuer`` spell it (trailing ``/`` included or not).
        timeout: Seconds the metadata fetch may take in all, every location tried
            included; each JWKS fetch then has as long again.
        cooldown: Minimum seconds between two metadata attempts, and the JWKS cool-down.
        min_interval: The JWKS cache's ``min_interval`` (the early fetch for a new ``kid``).
        min_ttl: The JWKS cache's lower bound for ``max-age``.
        max_ttl: The JWKS cache's upper bound for ``max-age``.
        default_ttl: The JWKS lifetime without ``max-age``.
        ssl_context: The TLS context for ``https``, for the metadata and the key set.
        algorithms_from_metadata: Refuse ``algorithm_not_allowed`` every algorithm the
            issuer does not advertise (see :attr:`IssuerMetadata.algorithms`); for a
            verifier given no ``algorithms`` of its own.
        issuer_template: A multi-tenant issuer template (holding ``{tenantid}``) the
            document's ``issuer`` may equal instead of ``issuer_url``: Microsoft Entra
            ID's ``.../common/v2.0`` document states
            ``https://login.microsoftonline.com/{tenantid}/v2.0``. Still an exact
            comparison, with one of two configured strings.
        clock: Monotonic time source in seconds, for the cool-downs.

    Raises:
        ValueError: An argument is unusable; the message says which and why.
        TypeError: ``issuer_url`` is not a string or ``ssl_context`` not an SSL context.
    """

    def __init__(
        self,
        issuer_url: str,
        *,
        timeout: float = 3.0,
        cooldown: float = 5.0,
        min_interval: float = 1.0,
        min_ttl: float = 60.0,
        max_ttl: float = 3600.0,
        default_ttl: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
        algorithms_from_metadata: bool = True,
        issuer_template: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Validate the configuration; see the class docstring for the arguments."""
        _check_issuer_url(issuer_url)
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "cooldown": cooldown,
            "min_interval": min_interval,
            "min_ttl": min_ttl,
            "max_ttl": max_ttl,
            "default_ttl": default_ttl,
            "clock": clock,
            "ssl_context": ssl_context,
        }
        # The JWKS cache checks these numbers with its own messages; it does no I/O yet.
        JWKSCache(issuer_url, **self._options)
        self.issuer_url = issuer_url
        self._urls = metadata_urls(issuer_url)
        self._timeout = float(timeout)
        self._cooldown = float(cooldown)
        self._clock = clock
        self._tls = _checked_tls(ssl_context)
        self._restrict = bool(algorithms_from_metadata)
        self._template = issuer_template
        # Guards the flight bookkeeping only; never held across network I/O.
        self._lock = threading.Lock()
        self._flight: tuple[Future[None], float] | None = None
        self._attempted_at: float | None = None
        self._error: Exception | None = None
        self._fetch_count = 0
        self._metadata: IssuerMetadata | None = None
        self._jwks: JWKSCache | None = None
        # Wall-clock time the metadata loaded, for the last-success metric.
        self._loaded_at: float | None = None
        _keyhealth.track("discovery", self)

    @property
    def metadata(self) -> IssuerMetadata | None:
        """The issuer's metadata once loaded, else ``None``."""
        return self._metadata

    @property
    def algorithms(self) -> tuple[str, ...] | None:
        """The algorithms this source restricts tokens to, once the metadata loaded.

        ``None`` before that, and always when the verifier was given ``algorithms``.
        """
        metadata = self._metadata
        return metadata.algorithms if self._restrict and metadata is not None else None

    @property
    def jwks(self) -> JWKSCache | None:
        """The key set's cache, created once the metadata named its ``jwks_uri``."""
        return self._jwks

    @property
    def fetch_count(self) -> int:
        """The number of metadata fetches started so far (each may try several locations)."""
        return self._fetch_count

    @property
    def loaded_at(self) -> float | None:
        """Wall-clock time (``time.time()``) the metadata loaded; ``None`` before."""
        return self._loaded_at

    @property
    def last_failure(self) -> str | None:
        """Why the metadata, or else the key set, failed to load last, with its cause.

        ``None`` when nothing failed. Example: ``"issuer_mismatch: the document's issuer
        'https://id.example.com/' is not the configured issuer_url ..."``.
        """
        jwks = self._jwks
        if jwks is not None:
            return jwks.last_failure
        failure = describe(self._error)
        return None if failure is None else f"{failure.cause}: {failure.detail}"

    @property
    def version(self) -> int:
        """The JWKS cache's version (0 until the metadata loaded)."""
        jwks = self._jwks
        return 0 if jwks is None else jwks.version

    def holds(self, key: VerifyingKey) -> bool:
        """Whether ``key`` (from :meth:`key_for`) is still published, unchanged."""
        jwks = self._jwks
        return jwks is not None and jwks.holds(key)

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:
        """The key for ``kid`` and ``alg``; may wait for the metadata, then the key set.

        Raises:
            AuthFailure: ``key_unavailable`` while no metadata document could be loaded;
                ``algorithm_not_allowed`` for an algorithm the issuer does not
                advertise; otherwise as :meth:`JWKSCache.key_for`.
        """
        jwks = self._jwks or self._discovered()
        self._check_alg(alg)
        return jwks.key_for(kid, alg)

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:
        """:meth:`key_for` without ever blocking the event loop (the fetch runs in a thread).

        Raises:
            AuthFailure: As :meth:`key_for`.
        """
        jwks = self._jwks or await self._discovered_async()
        self._check_alg(alg)
        return await jwks.key_for_async(kid, alg)

    def refresh(self) -> None:
        """Load the metadata (if not yet loaded, ignoring the cool-down), then the key set.

        Raises:
            AuthFailure: ``key_unavailable`` if either could not be fetched.
        """
        jwks = self._jwks
        if jwks is None:
            _wait(self._join_or_launch())
            jwks = self._loaded()
        jwks.refresh()

    async def refresh_async(self) -> None:
        """:meth:`refresh` without blocking the event loop.

        Raises:
            AuthFailure: ``key_unavailable`` if either could not be fetched.
        """
        jwks = self._jwks
        if jwks is None:
            await _wait_async(self._join_or_launch())
            jwks = self._loaded()
        await jwks.refresh_async()

    # -- the one metadata fetch ---------------------------------------------------

    def _check_alg(self, alg: str) -> None:
        metadata = self._metadata
        if self._restrict and metadata is not None and alg not in metadata.algorithms:
            raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED)

    def _discovered(self) -> JWKSCache:
        flight = self._flight_to_wait_for()
        if flight is not None:
            _wait(flight)
        return self._loaded()

    async def _discovered_async(self) -> JWKSCache:
        flight = self._flight_to_wait_for()
        if flight is not None:
            await _wait_async(flight)
        return self._loaded()

    def _loaded(self) -> JWKSCache:
        """The JWKS cache, or ``key_unavailable`` with the last failure as its cause."""
        jwks = self._jwks
        if jwks is not None:
            return jwks
        with self._lock:
            running = self._flight is not None and not self._flight[0].done()
        cause = TimeoutError("the issuer metadata fetch did not finish within the timeout")
        raise AuthFailure(Reason.KEY_UNAVAILABLE) from (cause if running else self._error)

    def _flight_to_wait_for(self) -> tuple[Future[None], float] | None:
        """Join the fetch in flight, or start one unless the cool-down forbids it."""
        with self._lock:
            if self._jwks is not None:
                return None
            flight = self._in_flight()
            if flight is not None:
                return flight
            last = self._attempted_at
            if last is not None and self._clock() - last < self._cooldown:
                return None
            return self._launch()

    def _join_or_launch(self) -> tuple[Future[None], float]:
        with self._lock:
            return self._in_flight() or self._launch()

    def _in_flight(self) -> tuple[Future[None], float] | None:
        """The fetch in progress, if any; the caller holds ``_lock``."""
        flight = self._flight
        return flight if flight is not None and not flight[0].done() else None

    def _launch(self) -> tuple[Future[None], float]:
        """Start the one fetch in a thread of its own; the caller holds ``_lock``."""
        done: Future[None] = Future()
        # A running future cannot be cancelled by one waiter that gives up on it.
        done.set_running_or_notify_cancel()
        start = time.monotonic()
        flight = (done, start + self._timeout + _WAIT_GRACE)
        self._fetch_count += 1
        threading.Thread(
            target=self._run,
            args=(done, start + self._timeout),
            name="invalidtoken-mw-discovery-fetch",
            daemon=True,
        ).start()
        self._flight = flight
        return flight

    def _run(self, done: Future[None], deadline: float) -> None:
        try:
            self._fetch(deadline)
        except Exception as exc:  # noqa: BLE001 - a bug must not leave waiters hanging
            self._error = exc.with_traceback(None)
            _keyhealth.fetched("discovery", describe(exc))
            _log.error(
                "discovery_failed",
                issuer=self.issuer_url,
                cause="unexpected_error",
                error_type=type(exc).__name__,
            )
        finally:
            self._attempted_at = self._clock()
            done.set_result(None)

    def _fetch(self, deadline: float) -> None:
        """Try each location in turn; publish the JWKS cache, or log why not."""
        url = self._urls[0]
        try:
            metadata = self._download(deadline)
            jwks = self._new_jwks(metadata)
        except _MetadataError as exc:
            _keyhealth.fetched("discovery", describe(exc))
            _log.warning(
                "discovery_failed",
                issuer=self.issuer_url,
                url=exc.facts.pop("url", url),
                cause=exc.cause,
                detail=exc.detail,
                **exc.facts,
            )
            self._error = exc.with_traceback(None)
            return
        _keyhealth.fetched("discovery", None)
        self._loaded_at = time.time()
        self._metadata = metadata
        self._error = None
        self._jwks = jwks
        _log.info(
            "discovery_loaded",
            issuer=self.issuer_url,
            url=metadata.url,
            jwks_uri=metadata.jwks_uri,
            algorithms=list(metadata.algorithms),
        )

    def _download(self, deadline: float) -> IssuerMetadata:
        return download_metadata(
            self.issuer_url,
            deadline,
            self._tls,
            algorithms_needed=self._restrict,
            template=self._template,
        )

    def _new_jwks(self, metadata: IssuerMetadata) -> JWKSCache:
        try:
            return JWKSCache(metadata.jwks_uri, **self._options)
        except ValueError:
            raise _MetadataError(
                "bad_jwks_uri", url=metadata.url, jwks_uri=_shown(metadata.jwks_uri)
            ) from None


def download_metadata(
    issuer_url: str,
    deadline: float,
    tls: ssl.SSLContext,
    *,
    algorithms_needed: bool = True,
    template: str | None = None,
    introspection_needed: bool = False,
) -> IssuerMetadata:
    """Fetch and check ``issuer_url``'s metadata, trying each of :func:`metadata_urls`.

    Blocking: for a fetch thread. ``deadline`` (``time.monotonic()``) bounds every
    location tried. A 4xx moves on to the next location; any other failure stops.

    Raises:
        FetchProblem: The document could not be fetched or is unusable; its ``cause``
            names why and its ``fields`` (``url`` among them) go to the log.
    """
    urls = metadata_urls(issuer_url)
    last = len(urls) - 1
    for i, url in enumerate(urls):
        try:
            body, _ = _get(url, _remaining(deadline), tls, _ACCEPT)
        except urllib.error.HTTPError as exc:
            if exc.code in _HTTP_CLIENT_ERRORS and i < last:
                continue  # not published here: try the next location
            failure = describe(exc)
            if failure is None:  # pragma: no cover - describe answers every HTTPError
                raise
            raise _MetadataError(failure.cause, failure.detail, url=url, **failure.fields) from None
        except _FETCH_ERRORS as exc:
            failure = describe(exc)
            if failure is None:  # pragma: no cover - describe answers every exception
                raise
            raise _MetadataError(
                failure.cause,
                failure.detail,
                url=url,
                **failure.fields,
                error_type=type(exc).__name__,
            ) from None
        try:
            return _read_metadata(
                body,
                issuer_url,
                url,
                algorithms_needed=algorithms_needed,
                template=template,
                introspection_needed=introspection_needed,
            )
        except _MetadataError as exc:
            exc.facts["url"] = url
            raise
    raise AssertionError("unreachable")  # pragma: no cover - the last location raises


def _wait(flight: tuple[Future[None], float]) -> None:
    """Wait for the fetch until its deadline (then give up on it, not stop it)."""
    done, deadline = flight
    with contextlib.suppress(TimeoutError):
        done.result(timeout=max(0.0, deadline - time.monotonic()))


async def _wait_async(flight: tuple[Future[None], float]) -> None:
    """Await the fetch until its deadline without blocking the loop."""
    done, deadline = flight
    waiter = asyncio.wrap_future(done)
    try:
        await asyncio.wait({waiter}, timeout=max(0.0, deadline - time.monotonic()))
    finally:
        # Detach from a fetch still running: it must not call back into this loop later.
        waiter.cancel()
