"""Guard: the sans-IO request policy both middlewares share.

A :class:`Guard` holds everything decided at construction (extractor, verifier,
renderer, event log, public paths, required scopes) and answers the questions an
adapter asks per request: is this path public, is this a CORS preflight, what is the
token, is it good, what do we send when it is not. Adapters only translate ASGI or WSGI
into these calls, so both send the same bytes and log the same event for the same failure.

A CORS preflight never reaches a protected handler: by default the middleware answers
it with a bare ``204`` (no CORS headers, so a browser refuses the cross-origin request
unless a CORS layer *outside* the middleware answered first); ``preflight_passthrough``
hands real preflights to a CORS layer inside the application instead. A request counts
as a preflight only when it is one by the Fetch standard and nothing more: see
:func:`is_cors_preflight`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import unquote_plus

import jwt

from invalidtoken_mw._grammar import QUERY_SEPARATORS_RE
from invalidtoken_mw.challenge import ChallengeSettings, build_challenge
from invalidtoken_mw.classify import failure_from_pyjwt
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES, ExtractedToken, TokenExtractor
from invalidtoken_mw.log import AuthEventLog, RequestFacts
from invalidtoken_mw.ratelimit import EventRateLimiter
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.render import RenderedFailure, Renderer
from invalidtoken_mw.scopes import check_scopes, validate_scopes

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from invalidtoken_mw.metrics import RejectionRecorder

__all__ = [
    "PREFLIGHT_STATUS",
    "Guard",
    "TokenVerifier",
    "failure_from_exception",
    "is_cors_preflight",
]

AppT = TypeVar("AppT")
_EXPOSE = "access-control-expose-headers"
_CHALLENGE = "www-authenticate"
#: The status of the middleware's own answer to a CORS preflight (no headers, no body).
PREFLIGHT_STATUS = 204
# Headers and query parameters with which common frameworks let a request choose the
# method the application sees (Flask's HTTPMethodOverrideMiddleware, Rails, Laravel,
# Symfony, Express's method-override): an OPTIONS carrying one may become a DELETE.
_METHOD_OVERRIDES = frozenset(
    {"x-http-method-override", "x-http-method", "x-method-override", "_method"}
)


def is_cors_preflight(method: str, headers: Mapping[str, str], query_string: str) -> bool:
    """Whether a request is a CORS preflight and can be nothing else.

    A browser's preflight (Fetch standard, "CORS-preflight request") is an ``OPTIONS``
    request with ``Origin`` and ``Access-Control-Request-Method``, without credentials
    and without a body. Anything more makes it an ordinary ``OPTIONS`` request, which is
    authenticated: an ``Authorization`` header, a body (``Content-Length`` other than 0,
    or ``Transfer-Encoding``), or a method override (an ``X-HTTP-Method-Override``,
    ``X-HTTP-Method`` or ``X-Method-Override`` header, or a ``_method`` query
    parameter, percent-encoded or not), which a layer below could turn into another
    method.

    Args:
        method: The request method, as received.
        headers: The request's header fields by lower-case name (any one value each).
        query_string: The raw query string (without ``?``).
    """
    if (
        method != "OPTIONS"
        or "origin" not in headers
        or "access-control-request-method" not in headers
        or "authorization" in headers
        or "transfer-encoding" in headers
        or headers.get("content-length", "0").strip() not in {"0", ""}
        or not _METHOD_OVERRIDES.isdisjoint(headers)
    ):
        return False
    return not any(
        unquote_plus(field.partition("=")[0]).strip().lower() in _METHOD_OVERRIDES
        for field in QUERY_SEPARATORS_RE.split(query_string)
        if field
    )


class TokenVerifier(Protocol):
    """What the middlewares need from a verifier (:class:`JWTVerifier` is one)."""

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token or raise :class:`AuthFailure`."""
        ...  # pragma: no cover - protocol

    async def verify_async(self, token: str) -> dict[str, Any]:
        """Same as :meth:`verify`, without blocking the event loop."""
        ...  # pragma: no cover - protocol


def failure_from_exception(exc: BaseException) -> AuthFailure | None:
    """The failure an exception from the application stands for, or ``None``.

    An :class:`AuthFailure` stands for itself; a PyJWT ``InvalidTokenError`` (raised by
    application code that decodes tokens itself) is classified like the middleware's
    own failures. Anything else is not an authentication failure.
    """
    if isinstance(exc, AuthFailure):
        return exc
    if isinstance(exc, jwt.InvalidTokenError):
        return failure_from_pyjwt(exc)
    return None


def _checked_paths(paths: Iterable[str], option: str) -> list[str]:
    if isinstance(paths, str):
        raise TypeError(f"{option} must be a list, e.g. [{paths!r}].")
    result = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"{option} entries must start with '/', got {path!r}.")
        result.append(path)
    return result


def _normalise_paths(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(path.rstrip("/") or "/" for path in _checked_paths(paths, "exclude_paths"))


class Guard(Generic[AppT]):
    """Configuration and per-request decisions shared by the ASGI and WSGI middlewares.

    Args:
        app: The application to protect.
        verifier: Verifies tokens (usually a :class:`~invalidtoken_mw.JWTVerifier`).
        realm: The challenge's realm.
        exclude_paths: Public paths; each matches itself and everything below it
            (``"/health"`` matches ``/health`` and ``/health/live``, not ``/healthz``).
        exclude_exact_paths: Public paths matched exactly (``"/docs"`` matches
            ``/docs`` only: not ``/docs/``, not ``/docs/123``).
        preflight_passthrough: Pass CORS preflights (see :func:`is_cors_preflight`)
            to the application, without a token, for a CORS layer inside it. Off by
            default: the middleware answers them itself with a bare 204, so put the
            CORS layer outside the middleware.
        optional: Let requests without any token through anonymously (a bad token
            is still refused).
        scopes: Scopes every protected request needs.
        error_uri: RFC 6750 ``error_uri`` for every challenge with an error.
        resource_metadata: RFC 9728 protected-resource metadata URL for challenges.
        problem_json: Answer ``application/problem+json`` when the client asks for it.
        allow_query_token: Accept ``?access_token=`` (RFC 6750 §2.3); off by default.
        allow_body_token: Accept a form-body ``access_token`` (RFC 6750 §2.2); off by default.
        max_token_bytes: Larger ``Authorization`` values are refused before parsing.
        add_missing_challenge: Add a bare challenge to a 401 from the application
            that has none.
        retry_after: Seconds in ``Retry-After`` of 503 answers.
        request_id_header: Header whose value is logged as ``request_id``.
        client_ip_header: Header set by a trusted reverse proxy (e.g.
            ``"x-forwarded-for"``) whose rightmost entry is logged as ``client_ip``;
            by default the peer address from the server is logged, since clients can
            send any header.
        fingerprint_key: Key for token fingerprints in logs (default: per process).
        log_rate_limit: ``(burst, per_second)`` of ``auth_rejected`` events per
            reason; ``None`` logs every rejection.
        metrics: Rejection counters, e.g. ``[PrometheusMetrics()]``.
        log_accepted: Emit an ``auth_accepted`` debug event for accepted requests.

    Raises:
        ValueError: The configuration is unusable; the message says how to fix it.
    """

    def __init__(
        self,
        app: AppT,
        *,
        verifier: TokenVerifier,
        realm: str = "api",
        exclude_paths: Iterable[str] = (),
        exclude_exact_paths: Iterable[str] = (),
        preflight_passthrough: bool = False,
        optional: bool = False,
        scopes: Iterable[str] = (),
        error_uri: str | None = None,
        resource_metadata: str | None = None,
        problem_json: bool = True,
        allow_query_token: bool = False,
        allow_body_token: bool = False,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        add_missing_challenge: bool = True,
        retry_after: int = 5,
        request_id_header: str | None = "x-request-id",
        client_ip_header: str | None = None,
        fingerprint_key: bytes | None = None,
        log_rate_limit: tuple[int, float] | None = (50, 10.0),
        metrics: Iterable[RejectionRecorder] = (),
        log_accepted: bool = False,
    ) -> None:
        """Check the configuration and precompute what requests need."""
        if not callable(getattr(verifier, "verify", None)):
            raise TypeError("verifier must have verify() and verify_async(), e.g. a JWTVerifier.")
        self.app = app
        self.verifier = verifier
        self.exclude_paths = _normalise_paths(exclude_paths)
        self._exclude_prefixes = tuple(p if p == "/" else p + "/" for p in self.exclude_paths)
        self.exclude_exact_paths = frozenset(
            _checked_paths(exclude_exact_paths, "exclude_exact_paths")
        )
        # Whether is_public can ever be true: adapters skip the call when it cannot.
        self.has_public_paths = bool(self.exclude_paths or self.exclude_exact_paths)
        self.preflight_passthrough = preflight_passthrough
        self.optional = optional
        self.scopes = validate_scopes(scopes)
        self.extractor = TokenExtractor(
            allow_query=allow_query_token,
            allow_body=allow_body_token,
            max_token_bytes=max_token_bytes,
        )
        self.renderer = Renderer(
            ChallengeSettings(realm, error_uri, resource_metadata),
            problem_json=problem_json,
            retry_after=retry_after,
        )
        self.add_missing_challenge = add_missing_challenge
        # The challenge of a request without credentials, from the one builder.
        self.bare_challenge = str(
            build_challenge(AuthFailure(Reason.MISSING_TOKEN), self.renderer.challenge)
        )
        self.request_id_header = request_id_header.lower() if request_id_header else None
        self.client_ip_header = client_ip_header.lower() if client_ip_header else None
        self.events = AuthEventLog(
            fingerprint_key=fingerprint_key,
            rate_limit=None if log_rate_limit is None else EventRateLimiter(*log_rate_limit),
            metrics=metrics,
            log_accepted=log_accepted,
        )

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (a cheap snapshot)."""
        return self.events.stats()

    def client_ip(self, peer: str | None, forwarded: str | Sequence[str] | None) -> str | None:
        """The client address to log: the trusted proxy's entry, else the peer.

        ``forwarded`` is the value of ``client_ip_header``, or all of its field lines
        in order: a proxy may append its own line after the ones the client sent
        (HAProxy's ``option forwardfor``), so the lines are combined as one list
        (RFC 9110 §5.3) before the rightmost entry is taken.
        """
        if not self.client_ip_header or not forwarded:
            return peer
        combined = forwarded if isinstance(forwarded, str) else ", ".join(forwarded)
        return combined.rsplit(",", 1)[-1].strip() or peer

    def is_public(self, path: str) -> bool:
        """Whether ``path`` is excluded from authentication."""
        return path in self.exclude_exact_paths or (
            bool(self.exclude_paths)
            and (path in self.exclude_paths or path.startswith(self._exclude_prefixes))
        )

    def extract(
        self,
        authorization: Sequence[str],
        query_string: str,
        form_body: str | None,
    ) -> ExtractedToken | None:
        """The request's token; ``None`` for an anonymous request when ``optional``.

        Raises:
            AuthFailure: No usable token.
        """
        try:
            return self.extractor.extract(
                authorization, query_string=query_string, form_body=form_body
            )
        except AuthFailure as failure:
            if self.optional and failure.reason is Reason.MISSING_TOKEN:
                return None
            if failure.reason is Reason.MALFORMED_TOKEN and authorization:
                # A token was presented, mangled: fingerprint it so the log can still
                # correlate a client that keeps sending the same broken value.
                presented = authorization[0].strip().partition(" ")[2].strip()
                context = {
                    **failure.context,
                    "token_fingerprint": self.events.fingerprint(presented),
                }
                raise AuthFailure(
                    failure.reason, failure.description, scopes=failure.scopes, context=context
                ) from None
            raise

    def authorize(self, claims: dict[str, Any]) -> dict[str, Any]:
        """Apply the required scopes to verified claims and return them."""
        if self.scopes:
            check_scopes(claims, self.scopes)
        return claims

    def patch_app_headers(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        *,
        cors: bool,
        private: bool,
    ) -> list[tuple[str, str]]:
        """Fix up the headers of a response from the application.

        A 401 without a challenge gets the bare one (and, under CORS, exposes it); a
        response to a query-token request gets ``Cache-Control: private``
        (RFC 6750 §2.3).
        """
        result = list(headers)
        if (
            status == 401  # noqa: PLR2004
            and self.add_missing_challenge
            and all(name.lower() != _CHALLENGE for name, _ in result)
        ):
            result.append((_CHALLENGE, self.bare_challenge))
            if cors:
                result = list(expose_challenge(result))
        if private:
            result = _private(result)
        return result

    def reject(
        self,
        failure: AuthFailure,
        request: RequestFacts,
        *,
        token: str | None,
        accept: str | None,
        origin: str | None,
    ) -> RenderedFailure:
        """Log the one ``auth_rejected`` event and return the answer to send."""
        self.events.rejected(failure, request, token)
        answer = self.renderer.render(failure, method=request.method, accept=accept)
        if origin is not None:
            answer = RenderedFailure(answer.status, expose_challenge(answer.headers), answer.body)
        return answer


def expose_challenge(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Add ``WWW-Authenticate`` to ``Access-Control-Expose-Headers`` (CORS), once."""
    result: list[tuple[str, str]] = []
    exposed = False
    for name, value in headers:
        if name.lower() == _EXPOSE:
            names = [v.strip().lower() for v in value.split(",")]
            if _CHALLENGE not in names and "*" not in names:
                value = f"{value}, {_CHALLENGE}" if value.strip() else _CHALLENGE  # noqa: PLW2901
            exposed = True
        result.append((name, value))
    if not exposed:
        result.append((_EXPOSE, _CHALLENGE))
    return tuple(result)


def _private(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    for index, (name, value) in enumerate(headers):
        if name.lower() == "cache-control":
            lowered = value.lower()
            if "no-store" in lowered or "private" in lowered:
                return headers
            kept = [d.strip() for d in lowered.split(",") if d.strip() and d.strip() != "public"]
            headers[index] = (name, ", ".join(["private", *kept]))
            return headers
    headers.append(("cache-control", "private"))
    return headers
