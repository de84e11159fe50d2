"""Key-set health: why a JWKS or issuer-metadata fetch failed, and what fetched when.

:func:`describe` turns whatever a fetch raised into a stable ``cause`` (for logs, alerts
and metric labels), one sentence for a person, and the fields worth logging (such as
``status_code``): never an exception class name alone. :func:`fetched` and :func:`track`
keep process-wide tallies that the metrics read when scraped, so a fetch costs one
dictionary update under a lock and a request costs nothing.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

SOURCES = ("jwks", "discovery")
"""What was fetched: a JWK Set, or the issuer's metadata document."""

CAUSES = (
    "http_status",
    "timeout",
    "connection_refused",
    "dns_failure",
    "tls_error",
    "connection_failed",
    "invalid_response",
    "body_too_large",
    "unsafe_redirect",
    "not_json",
    "not_a_key_set",
    "discovery_document",
    "no_usable_key",
    "not_json_object",
    "issuer_mismatch",
    "no_jwks_uri",
    "jwks_uri_not_https",
    "no_asymmetric_algorithm",
    "bad_jwks_uri",
    "unexpected_error",
)
"""Every ``cause`` a failed fetch can have (a metric label, present at zero from start-up)."""

_MAX_DETAIL = 200


class FetchProblem(Exception):  # noqa: N818 - a problem report, raised and caught internally
    """A response that arrived but cannot be used; ``cause`` names why."""

    def __init__(self, cause: str, detail: str, **fields: Any) -> None:  # noqa: ANN401 - log fields
        super().__init__(detail)
        self.cause = cause
        self.detail = detail
        self.fields = fields


@dataclass(frozen=True, slots=True)
class FetchFailure:
    """Why a fetch failed: a stable ``cause``, a sentence, and extra log fields."""

    cause: str
    detail: str
    fields: dict[str, Any] = field(default_factory=dict)


def describe(exc: BaseException | None) -> FetchFailure | None:  # noqa: PLR0911 - one answer per kind
    """Why ``exc`` (raised by a fetch, or the cause of ``key_unavailable``) happened."""
    if exc is None:
        return None
    if isinstance(exc, FetchProblem):
        return FetchFailure(exc.cause, exc.detail, dict(exc.fields))
    if isinstance(exc, urllib.error.HTTPError):
        if exc.msg == "unsafe JWKS redirect":
            return FetchFailure(
                "unsafe_redirect",
                f"a redirect (HTTP {exc.code}) away from http(s), or from https to http, was"
                " refused",
                {"status_code": exc.code},
            )
        return FetchFailure(
            "http_status", f"the server answered HTTP {exc.code}", {"status_code": exc.code}
        )
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, BaseException):
            return describe(reason)
        return FetchFailure("connection_failed", _short(f"the request failed: {reason}"))
    return _describe_os_level(exc)


def _describe_os_level(exc: BaseException) -> FetchFailure:  # noqa: PLR0911 - one answer per kind
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or exc.reason or "unknown reason"
        return FetchFailure(
            "tls_error", _short(f"the server's TLS certificate was refused: {message}")
        )
    if isinstance(exc, ssl.SSLError):
        return FetchFailure(
            "tls_error", _short(f"the TLS handshake failed: {exc.reason or 'unknown reason'}")
        )
    if isinstance(exc, TimeoutError):
        return FetchFailure("timeout", "no complete answer within the timeout")
    if isinstance(exc, socket.gaierror):
        return FetchFailure("dns_failure", "the host name could not be resolved (DNS)")
    if isinstance(exc, ConnectionRefusedError):
        return FetchFailure("connection_refused", "the connection was refused (nothing listens)")
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, OSError):
        return FetchFailure("invalid_response", "the server's answer was not valid HTTP")
    if isinstance(exc, OSError):
        detail = exc.strerror or "the connection failed"
        return FetchFailure("connection_failed", _short(f"the connection failed: {detail}"))
    if isinstance(exc, (ValueError, RecursionError)):
        return FetchFailure("not_json", "the response is not JSON")
    return FetchFailure(
        "unexpected_error",
        f"an unexpected error ({type(exc).__name__}) stopped the fetch",
        {"error_type": type(exc).__name__},
    )


def _short(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."


class Tracked(Protocol):
    """A key source whose last successful fetch the metrics can read."""

    @property
    def loaded_at(self) -> float | None:
        """Wall-clock time (``time.time()``) of the last successful fetch, if any."""
        ...  # pragma: no cover - protocol


@dataclass(slots=True)
class _Tallies:
    lock: threading.Lock = field(default_factory=threading.Lock)
    fetches: dict[tuple[str, str], int] = field(
        default_factory=lambda: {(s, o): 0 for s in SOURCES for o in ("success", "failure")}
    )
    failures: dict[tuple[str, str], int] = field(
        default_factory=lambda: {(s, c): 0 for s in SOURCES for c in CAUSES}
    )
    sources: dict[str, weakref.WeakSet[Any]] = field(
        default_factory=lambda: {s: weakref.WeakSet() for s in SOURCES}
    )


_TALLIES = _Tallies()


def track(source: str, instance: Tracked) -> None:
    """Let the metrics read ``instance.loaded_at`` for as long as ``instance`` lives."""
    with _TALLIES.lock:
        _TALLIES.sources[source].add(instance)


def fetched(source: str, failure: FetchFailure | None) -> None:
    """Count one finished fetch of ``source``: successful, or failed for ``failure.cause``."""
    with _TALLIES.lock:
        key = (source, "failure" if failure else "success")
        _TALLIES.fetches[key] += 1
        if failure is not None:
            cause = (source, failure.cause)
            _TALLIES.failures[cause] = _TALLIES.failures.get(cause, 0) + 1


@dataclass(frozen=True, slots=True)
class Health:
    """What the metrics show, read at scrape time."""

    fetches: dict[tuple[str, str], int]
    failures: dict[tuple[str, str], int]
    last_success: dict[str, float]
    """Per source, the oldest last-success time among the live key sources that loaded."""
    key_set_age: float | None
    """Seconds since the oldest JWK Set in use was fetched; ``None`` before any loaded."""


def health() -> Health:
    """A snapshot of the tallies and of the live key sources (cheap: no I/O)."""
    with _TALLIES.lock:
        fetches = dict(_TALLIES.fetches)
        failures = dict(_TALLIES.failures)
        live = {s: list(instances) for s, instances in _TALLIES.sources.items()}
    last_success: dict[str, float] = {}
    for source, instances in live.items():
        loaded = [t for t in (i.loaded_at for i in instances) if t is not None]
        if loaded:
            last_success[source] = min(loaded)
    jwks = last_success.get("jwks")
    age = None if jwks is None else max(0.0, time.time() - jwks)
    return Health(fetches, failures, last_success, age)
