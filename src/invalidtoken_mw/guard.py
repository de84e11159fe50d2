"""Guard: the sans-IO request policy every adapter calls.

A :class:`Guard` is built once from :class:`~invalidtoken_mw.settings.GuardSettings`
and owns the whole sequence of a request: public paths, CORS preflights, finding the
token, verifying it, the required scopes, counting, fingerprinting, the one log event
and the metrics, and the answer to send. An adapter (ASGI, WSGI, Flask, FastAPI) only
describes its request through a :class:`RequestView` and translates the outcome:

* :meth:`Guard.authenticate` (and :meth:`Guard.authenticate_async`) returns
  :class:`Accepted` (the claims, or ``None`` for a public or anonymous request) or
  :class:`Rejected` (the answer to send, already logged);
* :meth:`Guard.reject` answers a failure the application raised;
* :meth:`Guard.finish_headers` finishes the application's own response: the challenge
  on a bare 401 (exposed under CORS), ``Cache-Control: private`` for a query token.

Facts about the request for the log (client address, request id, user agent) are read
from the view only when an event is emitted.

A CORS preflight never reaches a protected handler: by default the guard answers it
with a bare ``204`` (no CORS headers, so a browser refuses the cross-origin request
unless a CORS layer *outside* the middleware answered first); ``preflight_passthrough``
hands real preflights to a CORS layer inside the application instead. A request counts
as a preflight only when it is one by the Fetch standard and nothing more: see
:func:`is_cors_preflight`.
"""

from __future__ import annotations

import dataclasses
import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import unquote_plus

import jwt

from invalidtoken_mw._grammar import QUERY_SEPARATORS_RE
from invalidtoken_mw.challenge import ChallengeSettings, build_challenge, build_dpop_challenges
from invalidtoken_mw.classify import failure_from_pyjwt
from invalidtoken_mw.dpop import DPoPVerifier
from invalidtoken_mw.extract import ExtractedToken, TokenExtractor, TokenSource
from invalidtoken_mw.log import AuthEventLog, AuthOutcome, RequestFacts
from invalidtoken_mw.ratelimit import EventRateLimiter
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.render import RenderedFailure, Renderer
from invalidtoken_mw.resource import (
    MetadataAnswers,
    ProtectedResource,
    audience_plan,
    wrong_resource,
)
from invalidtoken_mw.scopes import check_roles, check_scopes
from invalidtoken_mw.settings import GuardSettings, TokenVerifier, step_up_of
from invalidtoken_mw.stepup import DEFAULT_LEEWAY, StepUp, check_step_up
from invalidtoken_mw.token_kind import describe_refusal, detect_token_kind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence

    from invalidtoken_mw.token_kind import TokenKind

__all__ = [
    "ENVIRON_CLIENT_ID",
    "ENVIRON_REASON",
    "ENVIRON_STATUS",
    "ENVIRON_SUB",
    "MAX_FORM_BYTES",
    "PREFLIGHT_STATUS",
    "STATE_KEY",
    "Accepted",
    "AsyncRequestView",
    "AuthOutcome",
    "Guard",
    "Rejected",
    "RequestHead",
    "RequestView",
    "TokenVerifier",
    "expose_challenge",
    "failure_from_exception",
    "is_cors_preflight",
    "note_environ",
    "note_scope",
]

_EXPOSE = "access-control-expose-headers"
_CHALLENGE = "www-authenticate"
PREFLIGHT_STATUS = 204
"""The status of the guard's own answer to a CORS preflight (no headers, no body)."""
MAX_FORM_BYTES = 1 << 20
"""A form body larger than this is not searched for a token (adapters stop reading)."""
# Headers and query parameters with which common frameworks let a request choose the
# method the application sees (Flask's HTTPMethodOverrideMiddleware, Rails, Laravel,
# Symfony, Express's method-override): an OPTIONS carrying one may become a DELETE.
_METHOD_OVERRIDES = ("x-http-method-override", "x-http-method", "x-method-override")
_METHOD_OVERRIDE_NAMES = frozenset({*_METHOD_OVERRIDES, "_method"})


def _is_preflight(method: str, header: Callable[[str], str | None], query_string: str) -> bool:
    if (
        method != "OPTIONS"
        or header("origin") is None
        or header("access-control-request-method") is None
        or header("authorization") is not None
        or header("transfer-encoding") is not None
        or (header("content-length") or "0").strip() not in {"0", ""}
        or any(header(name) is not None for name in _METHOD_OVERRIDES)
    ):
        return False
    return not any(
        unquote_plus(field.partition("=")[0]).strip().lower() in _METHOD_OVERRIDE_NAMES
        for field in QUERY_SEPARATORS_RE.split(query_string)
        if field
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
    return _is_preflight(method, headers.get, query_string)


class RequestHead(Protocol):
    """A request as the guard reads it, all but the body.

    Adapters implement :class:`RequestView` or :class:`AsyncRequestView` over their own
    request.

    Only what the decision needs is read eagerly (method, path, ``Authorization``);
    everything else is read when the guard asks.
    """

    @property
    def method(self) -> str:
        """The request method (``GET`` for a websocket handshake)."""
        ...  # pragma: no cover - protocol

    @property
    def path(self) -> str:
        """The path below the mount point, matched against the public paths."""
        ...  # pragma: no cover - protocol

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (lower-case), or ``None``."""
        ...  # pragma: no cover - protocol

    def field_lines(self, name: str) -> Sequence[str]:
        """Every value of header ``name`` (lower-case), in the order received."""
        ...  # pragma: no cover - protocol

    def query_string(self) -> str:
        """The raw query string, without ``?``."""
        ...  # pragma: no cover - protocol

    def full_path(self) -> str:
        """The path to log: the mount point and the path."""
        ...  # pragma: no cover - protocol

    def peer(self) -> str | None:
        """The address of the connection's other end, if known."""
        ...  # pragma: no cover - protocol


class RequestView(RequestHead, Protocol):
    """A request whose form body is read synchronously (WSGI, Flask)."""

    def read_form(self) -> str | None:
        """The form body (latin-1), up to :data:`MAX_FORM_BYTES`; ``None`` if larger.

        Called only when the guard looks for a body token, and then the application
        must still be able to read the body.
        """
        ...  # pragma: no cover - protocol


class AsyncRequestView(RequestHead, Protocol):
    """A request whose form body is read without blocking the event loop (ASGI)."""

    async def read_form(self) -> str | None:
        """As for :meth:`RequestView.read_form`."""
        ...  # pragma: no cover - protocol


class Accepted(NamedTuple):
    """The request may reach the application.

    Attributes:
        claims: The verified claims; ``None`` for a public path, a passed-through
            preflight or an anonymous request (``optional``).
        token: The token, to fingerprint a failure the application raises later.
        private: The token came in the query string: the response must get
            ``Cache-Control: private`` (:meth:`Guard.finish_headers`).
    """

    claims: dict[str, Any] | None
    token: str | None = None
    private: bool = False


class Rejected(NamedTuple):
    """The guard answers the request itself; send :attr:`answer` and nothing else.

    Attributes:
        answer: Status, headers and body to send.
        failure: Why (already counted and logged); ``None`` for the bare 204 to a
            CORS preflight.
    """

    answer: RenderedFailure
    failure: AuthFailure | None = None


_PUBLIC = Accepted(None)
_ANONYMOUS: Mapping[str, Any] = MappingProxyType({})
_QUERY = TokenSource.QUERY

_PREFLIGHT = Rejected(RenderedFailure(PREFLIGHT_STATUS, (), b""))

_OUTCOME_MEMO_SIZE = 256  # distinct tokens whose acceptance outcome is remembered
_DPOP_MEMO_SIZE = 256  # distinct `Authorization: DPoP` values whose token is remembered
_DPOP_MEMO_MAX_CHARS = 8192  # longer values are read every time (and refused as too large)
_OUTCOME_MEMO_TOKEN = 2048  # longer tokens are not kept (as the extractor's memo)

STATE_KEY = "invalidtoken"
"""The key of the :class:`AuthOutcome` in the ASGI ``scope["state"]``."""
ENVIRON_REASON = "invalidtoken.reason"
"""WSGI environ key: the reason of a refusal (``"expired"``), a string."""
ENVIRON_STATUS = "invalidtoken.status"
"""WSGI environ key: the status of a refusal (``"401"``), a string."""
ENVIRON_SUB = "invalidtoken.sub"
"""WSGI environ key: the ``sub`` of an accepted token, as ``log_claims`` allows it."""
ENVIRON_CLIENT_ID = "invalidtoken.client_id"
"""WSGI environ key: the client of an accepted token, as ``log_claims`` allows it."""


def note_scope(scope: MutableMapping[str, Any], outcome: AuthOutcome) -> None:
    """Put ``outcome`` in an ASGI scope's ``state`` under :data:`STATE_KEY`.

    A refusal of a request accepted before (a failure the application raised) keeps
    the accepted ``sub`` and ``client_id``, as the WSGI environ keeps their keys.
    """
    state = scope.setdefault("state", {})
    previous = state.get(STATE_KEY)
    if outcome.reason is not None and isinstance(previous, AuthOutcome):
        outcome = previous._replace(reason=outcome.reason, status=outcome.status)
    state[STATE_KEY] = outcome


def note_environ(environ: MutableMapping[str, Any], outcome: AuthOutcome) -> None:
    """Put ``outcome`` in a WSGI environ as strings (what a server's access log reads)."""
    if outcome.reason is not None:
        environ[ENVIRON_REASON] = outcome.reason
        environ[ENVIRON_STATUS] = str(outcome.status)
    if outcome.sub is not None:
        environ[ENVIRON_SUB] = outcome.sub
    if outcome.client_id is not None:
        environ[ENVIRON_CLIENT_ID] = outcome.client_id


def _path_prefixes(paths: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Configured paths without a trailing slash, and the prefixes of what lies below them."""
    normal = tuple(p.rstrip("/") or "/" for p in paths)
    return normal, tuple(p if p == "/" else p + "/" for p in normal)


def _under(path: str, paths: tuple[str, ...], prefixes: tuple[str, ...]) -> bool:
    """Whether ``path`` is one of ``paths`` or below one (at a segment boundary)."""
    return bool(paths) and (path in paths or path.startswith(prefixes))


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


class Guard:
    """The request policy of one protected application; see :class:`GuardSettings`.

    ``Guard(settings)`` or ``Guard(verifier=..., realm=..., ...)`` with the settings'
    fields as keywords. Everything a request needs is computed here, once.

    Raises:
        ValueError: The configuration is unusable; the message says how to fix it.
        TypeError: An unknown option, or a verifier without ``verify()``.
    """

    def __init__(self, settings: GuardSettings | None = None, /, **options: Any) -> None:  # noqa: ANN401 - GuardSettings fields
        """Check the configuration and precompute what requests need."""
        if settings is None:
            settings = GuardSettings.from_options(**options)
        elif options:
            raise TypeError("pass either a GuardSettings or keyword options, not both.")
        self.settings = settings
        self.verifier: TokenVerifier = settings.verifier
        self.exclude_paths, self._exclude_prefixes = _path_prefixes(settings.exclude_paths)
        self.exclude_exact_paths = frozenset(settings.exclude_exact_paths)
        self._has_public_paths = bool(self.exclude_paths or self.exclude_exact_paths)
        self.optional_paths, self._optional_prefixes = _path_prefixes(settings.optional_paths)
        self.preflight_passthrough = settings.preflight_passthrough
        self.optional = settings.optional
        self.scopes: tuple[str, ...] = tuple(settings.scopes)
        self._required_scopes = frozenset(self.scopes)
        self.scope_claims: tuple[str, ...] = tuple(settings.scope_claims)
        self.role_claims: tuple[str, ...] = tuple(settings.role_claims)
        # The quick yes reads the scope string claim: only when it is a scope claim.
        self._quick_scopes = "scope" in self.scope_claims
        self.extractor = TokenExtractor(
            allow_query=settings.allow_query_token,
            allow_body=settings.allow_body_token,
            max_token_bytes=settings.max_token_bytes,
        )
        self._allow_query = settings.allow_query_token
        self._allow_body = settings.allow_body_token
        self._header_only = not (self._allow_query or self._allow_body)
        self.renderer = Renderer(
            ChallengeSettings(settings.realm, settings.error_uri, settings.resource_metadata),
            problem_json=settings.problem_json,
            problem_type_base=settings.problem_type_base,
            retry_after=settings.retry_after,
            error_body=settings.error_body,
        )
        self.add_missing_challenge = settings.add_missing_challenge
        #: The challenge of a request without credentials, from the one builder.
        self.bare_challenge: str = str(
            build_challenge(AuthFailure(Reason.MISSING_TOKEN), self.renderer.challenge)
        )
        self.request_id_header = settings.request_id_header
        self.client_ip_header = settings.client_ip_header
        rate = settings.log_rate_limit
        self.events = AuthEventLog(
            fingerprint_key=settings.fingerprint_key,
            rate_limit=None if rate is None else EventRateLimiter(*rate),
            metrics=settings.metrics,
            log_accepted=settings.log_accepted,
            log_claims=settings.log_claims,
            hash_claims=settings.hash_claims,
        )
        self._log_accepted = settings.log_accepted
        # The outcome of an accepted token, by token: a pure function of its claims, so a
        # resent token (the extractor's memo hands back the same string, its hash cached)
        # costs one dict lookup instead of reading and checking the claims again.
        self._outcomes: dict[str, AuthOutcome] = {}
        #: The app-wide step-up requirement (``acr_values``, ``max_age``), or ``None``.
        self.step_up: StepUp | None = step_up_of(settings)
        self.step_up_leeway: float = _step_up_leeway(self.verifier)
        self._init_dpop(settings)
        self._init_resource(settings)
        # One attribute test on the hot path when no check on verified claims is configured.
        self._checks_grants = bool(self._resource is not None or self.scopes or self.step_up)
        self._checks_claims = self._checks_grants or self._dpop is not None

    def _init_resource(self, settings: GuardSettings) -> None:
        """RFC 9728 metadata answers and the RFC 8707 audience check, built once."""
        #: The ``resource`` option (``None``: no metadata served, no audience check).
        self.protected_resource = resource = ProtectedResource.of(settings.resource)
        self._metadata: MetadataAnswers | None = None
        #: The identifier ``aud`` must name, when the verifier does not already check it.
        self._resource: str | None = None
        if resource is None:
            return
        if self._dpop is not None and resource.dpop_signing_alg_values_supported is None:
            # RFC 9728 §2: a resource accepting DPoP names the proof algorithms it takes.
            resource = dataclasses.replace(
                resource,
                dpop_signing_alg_values_supported=self.dpop_algorithms,
                dpop_bound_access_tokens_required=(
                    self._dpop_only or resource.dpop_bound_access_tokens_required
                ),
            )
            self.protected_resource = resource
        document = resource.document(
            verifier=self.verifier,
            scopes=self.scopes,
            allow_body=self._allow_body,
            allow_query=self._allow_query,
        )
        self._metadata = MetadataAnswers.build(resource, document)
        self._has_public_paths = True  # the metadata path is answered before any token
        if resource.check_audience and audience_plan(self.verifier, resource.resource):
            self._resource = resource.resource

    def serve_metadata(self, method: str, path: str) -> Rejected | None:
        """The answer on the metadata path (RFC 9728 §3), or ``None`` for another path.

        For adapters whose framework routes before the guard runs (Django, Litestar,
        Flask's exempt views): the middlewares answer it in :meth:`authenticate`.
        """
        metadata = self._metadata
        if metadata is None or path != metadata.path:
            return None
        return Rejected(metadata.answer(method))

    def _public(self, request: RequestHead) -> Accepted | Rejected | None:
        """The metadata document, or ``_PUBLIC`` on a public path; ``None`` otherwise."""
        path = request.path
        if self._metadata is not None and path == self._metadata.path:
            return Rejected(self._metadata.answer(request.method))
        return _PUBLIC if self.is_public(path) else None

    @classmethod
    def for_adapter(
        cls,
        guard: Guard | None,
        settings: GuardSettings | None,
        options: dict[str, Any],
    ) -> Guard:
        """The guard a middleware was given, or one built from ``settings`` or ``options``.

        Raises:
            TypeError: ``guard`` together with ``settings`` or options.
        """
        if guard is None:
            return cls(settings, **options)
        if settings is not None or options:
            raise TypeError("pass guard= alone: its settings are already decided.")
        return guard

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (a cheap snapshot)."""
        return self.events.stats()

    # -- the decision ------------------------------------------------------------------

    def is_public(self, path: str) -> bool:
        """Whether ``path`` is excluded from authentication."""
        return path in self.exclude_exact_paths or _under(
            path, self.exclude_paths, self._exclude_prefixes
        )

    def is_optional(self, path: str) -> bool:
        """Whether a token is optional on ``path`` (``optional`` or ``optional_paths``)."""
        return self.optional or _under(path, self.optional_paths, self._optional_prefixes)

    def _is_preflight(self, request: RequestHead) -> bool:
        """A CORS preflight (:func:`is_cors_preflight`) goes no further without a token.

        Nothing protected may run for it: a CORS layer outside has already answered,
        or the browser gets no CORS headers; with ``preflight_passthrough`` it goes to
        a CORS layer inside the application.
        """
        return _is_preflight("OPTIONS", request.header, request.query_string())

    def _wants_form(self, request: RequestHead) -> bool:
        return self.extractor.wants_body(request.method, request.header("content-type"))

    def _unextracted(
        self,
        failure: AuthFailure,
        request: RequestHead,
        authorization: Sequence[str],
        *,
        optional: bool,
    ) -> AuthFailure | None:
        """The failure to answer when no token was found; ``None``: anonymous (optional)."""
        if failure.reason is Reason.MISSING_TOKEN and (optional or self.is_optional(request.path)):
            return None
        if failure.reason is Reason.MALFORMED_TOKEN and authorization:
            # A token was presented, mangled: fingerprint it so the log can still
            # correlate a client that keeps sending the same broken value.
            presented = authorization[0].strip().partition(" ")[2].strip()
            context = {**failure.context, "token_fingerprint": self.events.fingerprint(presented)}
            return AuthFailure(
                failure.reason, failure.description, scopes=failure.scopes, context=context
            )
        return failure

    def _refused(
        self,
        failure: AuthFailure,
        request: RequestHead,
        found: ExtractedToken | None,
        authorization: Sequence[str],
        *,
        optional: bool,
    ) -> Accepted | Rejected:
        """Answer a failure of the sequence (or let an anonymous request through)."""
        if (
            failure.reason is Reason.WRONG_AUDIENCE
            and self.protected_resource is not None
            and failure.description is Reason.WRONG_AUDIENCE.description
        ):
            # The verifier's own audience check, said in terms of the resource.
            failure = AuthFailure(
                failure.reason, wrong_resource().description, context=failure.context
            )
        if found is not None:
            # The one place every adapter's refused token passes: what kind of credential
            # it is goes to the log and, where the kind explains the failure (an ID token,
            # a GitHub key), into the description. Only here: acceptance costs nothing.
            kind = detect_token_kind(found.token)
            failure = describe_refusal(failure, kind)
            return Rejected(self._answer(failure, request, found.token, kind=kind), failure)
        answered = self._unextracted(failure, request, authorization, optional=optional)
        if answered is None:
            return self._anonymous(request)
        return Rejected(self._answer(answered, request, None), answered)

    def _grants_scopes(self, claims: Mapping[str, Any]) -> bool:
        """The quick yes of :func:`check_scopes`, for a ``scope`` string claim.

        The required scopes are valid scope-tokens, so finding each among the
        space-separated parts is the full check; anything else takes the long way.
        """
        granted = claims.get("scope")
        return (
            self._quick_scopes
            and isinstance(granted, str)
            and self._required_scopes.issubset(granted.split(" "))
        )

    def _anonymous(self, request: RequestHead) -> Accepted:
        """An anonymous request (``optional``): counted, and logged when asked."""
        if self._log_accepted:
            self.events.accepted(lambda: self.facts(request), None)
        else:
            self.events.count_accepted()
        return _PUBLIC

    def authenticate(self, request: RequestView, *, optional: bool = False) -> Accepted | Rejected:
        """Decide a request: let it through (with its claims) or answer it here.

        The whole sequence: public path, CORS preflight, the token (reading the form
        body only when a body token is allowed and the request has a form), the
        verifier, the required scopes; then the count, the log event and the metrics.

        Args:
            request: The adapter's view of the request.
            optional: The token is optional for this request (an adapter that knows
                the route, e.g. a view marked optional): without one the request goes
                through anonymously; a token that is sent is verified all the same.
                ``optional`` and ``optional_paths`` in the settings do this by
                configuration.
        """
        if self._has_public_paths and (public := self._public(request)) is not None:
            return public
        if request.method == "OPTIONS" and self._is_preflight(request):
            return _PUBLIC if self.preflight_passthrough else _PREFLIGHT
        found = claims = None
        authorization = request.field_lines("authorization")
        if self._dpop is not None and (self._dpop_only or _dpop_scheme(authorization)):
            return self._authenticate_dpop(request, authorization, optional=optional)
        try:
            if self._header_only:
                found = self.extractor.extract(authorization)
            else:
                form = (
                    request.read_form() if self._allow_body and self._wants_form(request) else None
                )
                query = request.query_string() if self._allow_query else ""
                found = self.extractor.extract(authorization, query_string=query, form_body=form)
            claims = self.verifier.verify(found.token)
            if self._checks_claims:
                self._check_bearer_claims(claims)
        except AuthFailure as failure:
            if claims is not None:  # decided on claims the verifier vouched for
                failure.signature_verified = True
            return self._refused(failure, request, found, authorization, optional=optional)
        if self._log_accepted:
            self.events.accepted(lambda: self.facts(request), found.token, claims)
        else:
            self.events.count_accepted()
        note = getattr(request, "note", None)
        if note is not None:
            note(self._accepted_outcome(found.token, claims))
        # tuple.__new__ skips the generated __new__ of the NamedTuple: the hot path.
        return tuple.__new__(Accepted, (claims, found.token, found.source is _QUERY))

    async def authenticate_async(
        self, request: AsyncRequestView, *, optional: bool = False
    ) -> Accepted | Rejected:
        """:meth:`authenticate` without blocking the event loop (ASGI)."""
        if self._has_public_paths and (public := self._public(request)) is not None:
            return public
        if request.method == "OPTIONS" and self._is_preflight(request):
            return _PUBLIC if self.preflight_passthrough else _PREFLIGHT
        found = claims = None
        authorization = request.field_lines("authorization")
        if self._dpop is not None and (self._dpop_only or _dpop_scheme(authorization)):
            return await self._authenticate_dpop_async(request, authorization, optional=optional)
        try:
            if self._header_only:
                found = self.extractor.extract(authorization)
            else:
                form = (
                    await request.read_form()
                    if self._allow_body and self._wants_form(request)
                    else None
                )
                query = request.query_string() if self._allow_query else ""
                found = self.extractor.extract(authorization, query_string=query, form_body=form)
            claims = await self.verifier.verify_async(found.token)
            if self._checks_claims:
                self._check_bearer_claims(claims)
        except AuthFailure as failure:
            if claims is not None:  # decided on claims the verifier vouched for
                failure.signature_verified = True
            return self._refused(failure, request, found, authorization, optional=optional)
        if self._log_accepted:
            self.events.accepted(lambda: self.facts(request), found.token, claims)
        else:
            self.events.count_accepted()
        note = getattr(request, "note", None)
        if note is not None:
            note(self._accepted_outcome(found.token, claims))
        # tuple.__new__ skips the generated __new__ of the NamedTuple: the hot path.
        return tuple.__new__(Accepted, (claims, found.token, found.source is _QUERY))

    def check_scopes(
        self, claims: Mapping[str, Any] | None, scopes: Iterable[str], *, any_of: bool = False
    ) -> None:
        """The scope check of one route: the app-wide ``scopes`` and the route's own.

        Every app-wide scope is needed; of ``scopes``, every one, or with ``any_of``
        at least one. A failure's challenge names the scopes that were not satisfied
        (with all of the route's alternatives for ``any_of``). An anonymous request
        (``claims`` is ``None``) fails like a token without the scopes.

        Raises:
            AuthFailure: ``insufficient_scope``.
        """
        granted = _ANONYMOUS if claims is None else claims
        names = self.scope_claims
        if any_of:
            if self.scopes:
                check_scopes(granted, self.scopes, claim_names=names)
            check_scopes(granted, scopes, any_of=True, claim_names=names)
        else:
            check_scopes(granted, (*self.scopes, *scopes), claim_names=names)

    def check_roles(
        self, claims: Mapping[str, Any] | None, roles: Iterable[str], *, any_of: bool = False
    ) -> None:
        """The role check of one route, reading the ``role_claims``.

        Every one of ``roles`` is needed, or with ``any_of`` at least one. An anonymous
        request (``claims`` is ``None``) fails like a token without the roles.

        Raises:
            AuthFailure: ``insufficient_role`` (403, ``error="insufficient_scope"``).
        """
        granted = _ANONYMOUS if claims is None else claims
        check_roles(granted, roles, any_of=any_of, claim_names=self.role_claims)

    def _check_bearer_claims(self, claims: Mapping[str, Any]) -> None:
        """The checks on a bearer token's verified claims: no DPoP downgrade, then grants."""
        if self._dpop is not None and "cnf" in claims:
            _no_downgrade(claims)
        if self._checks_grants:
            self._check_granted(claims)

    def _check_granted(self, claims: Mapping[str, Any]) -> None:
        """What the configuration requires of verified claims, in order.

        The resource identifier in ``aud`` (RFC 8707), the app-wide scopes, step-up.

        Raises:
            AuthFailure: ``wrong_audience``, ``insufficient_scope`` or
                ``insufficient_user_authentication``.
        """
        if self._resource is not None and not _names(claims.get("aud"), self._resource):
            raise wrong_resource()
        if self.scopes and not self._grants_scopes(claims):
            check_scopes(claims, self.scopes, claim_names=self.scope_claims)
        if self.step_up is not None:
            self.check_step_up(claims, self.step_up)

    def check_step_up(self, claims: Mapping[str, Any] | None, requirement: StepUp) -> None:
        """The step-up check of one route (RFC 9470): ``acr`` and/or ``auth_time``.

        Build ``requirement`` once (``StepUp(acr_values=[...], max_age=300)``); it adds
        to the app-wide ``acr_values`` / ``max_age``, which the guard checked already.
        ``auth_time`` is judged with the verifier's ``leeway``. An anonymous request
        (``claims`` is ``None``) fails like a token without ``acr`` or ``auth_time``.

        Raises:
            AuthFailure: ``insufficient_user_authentication`` (401), whose challenge
                carries ``acr_values`` and/or ``max_age``.
        """
        granted = _ANONYMOUS if claims is None else claims
        check_step_up(granted, requirement, now=time.time(), leeway=self.step_up_leeway)

    def reject(
        self, exc: BaseException, request: RequestHead, *, token: str | None = None
    ) -> Rejected | None:
        """The answer to a failure the application raised, logged; ``None`` if it is none.

        ``exc`` is an :class:`AuthFailure` or a PyJWT ``InvalidTokenError`` (see
        :func:`failure_from_exception`); anything else gives ``None``: re-raise it.
        ``token`` is :attr:`Accepted.token`, for the fingerprint.
        """
        failure = failure_from_exception(exc)
        if failure is None:
            return None
        # The middleware accepted this token: its signature was checked and good.
        verified = token is not None
        return Rejected(self._answer(failure, request, token, verified=verified), failure)

    def _accepted_outcome(self, token: str, claims: Mapping[str, Any]) -> AuthOutcome:
        outcome = self._outcomes.get(token)
        if outcome is None:
            outcome = self.events.accepted_outcome(claims)
            if len(token) > _OUTCOME_MEMO_TOKEN:
                return outcome
            if len(self._outcomes) >= _OUTCOME_MEMO_SIZE:
                self._outcomes.clear()  # bounded; a race here only costs a recomputation
            self._outcomes[token] = outcome
        return outcome

    def accepted_outcome(self, claims: Mapping[str, Any]) -> AuthOutcome:
        """The :class:`AuthOutcome` of verified ``claims``, as ``log_claims`` allows."""
        return self.events.accepted_outcome(claims)

    def _answer(
        self,
        failure: AuthFailure,
        request: RequestHead,
        token: str | None,
        *,
        verified: bool | None = None,
        kind: TokenKind | None = None,
    ) -> RenderedFailure:
        """Count and log the one ``auth_rejected`` event; return the answer to send.

        The outcome goes to the adapter's view (``note``), for outer middleware and the
        server's access log; ``kind`` (what the refused token looked like) to the log.
        """
        self.events.rejected(
            failure,
            lambda: self.facts(request),
            token,
            signature_verified=verified,
            token_kind=None if kind is None else kind.value,
        )
        note = getattr(request, "note", None)
        if note is not None:
            note(AuthOutcome(failure.reason.value, failure.reason.status))
        answer = self.renderer.render(
            failure, method=request.method, accept=request.header("accept")
        )
        if self._dpop is not None:
            answer = self._dpop_answer(answer, failure, request)
        if request.header("origin") is not None:
            answer = RenderedFailure(answer.status, expose_challenge(answer.headers), answer.body)
        return answer

    def finish_headers(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        request: RequestHead,
        *,
        private: bool,
    ) -> list[tuple[str, str]]:
        """Finish the headers of a response from the application.

        A 401 without a challenge gets the bare one (and, under CORS, exposes it);
        with ``private`` (:attr:`Accepted.private`: a query token) the response gets
        ``Cache-Control: private`` (RFC 6750 §2.3). Adapters call this only for a 401
        or a private response; other headers pass untouched.
        """
        result = list(headers)
        if (
            status == 401  # noqa: PLR2004
            and self.add_missing_challenge
            and all(name.lower() != _CHALLENGE for name, _ in result)
        ):
            result.append((_CHALLENGE, self.bare_challenge))
            if request.header("origin") is not None:
                result = list(expose_challenge(result))
        if private:
            result = _private(result)
        return result

    # -- DPoP (RFC 9449) ---------------------------------------------------------------

    def _init_dpop(self, settings: GuardSettings) -> None:
        """The DPoP verifier (``None`` when off: one attribute test per request)."""
        mode = settings.dpop
        self._dpop: DPoPVerifier | None = None
        self._dpop_only = mode == "required"
        #: The DPoP algorithms announced (``algs``; RFC 9728 ``dpop_signing_alg_values_supported``).
        self.dpop_algorithms: tuple[str, ...] = tuple(settings.dpop_algorithms)
        #: ``Authorization: DPoP`` header value -> its token, for resent tokens (bounded).
        self._dpop_tokens: dict[str, ExtractedToken] = {}
        if mode == "off":
            return
        self._dpop = DPoPVerifier(
            algorithms=self.dpop_algorithms,
            iat_window=settings.dpop_iat_window,
            leeway=settings.dpop_leeway,
            replay_cache=settings.dpop_replay_cache,
            nonce_secret=settings.dpop_nonce_secret,
            nonce_lifetime=settings.dpop_nonce_lifetime,
            trust_forwarded=settings.dpop_trust_forwarded,
        )
        self.bare_challenge = ", ".join(
            self._dpop_challenges(AuthFailure(Reason.MISSING_TOKEN), dpop_scheme=False)
        )

    def _dpop_challenges(self, failure: AuthFailure, *, dpop_scheme: bool) -> tuple[str, ...]:
        return build_dpop_challenges(
            failure,
            self.renderer.challenge,
            self.dpop_algorithms,
            bearer=not self._dpop_only,
            dpop_scheme=dpop_scheme,
        )

    def _dpop_url(self, request: RequestHead) -> str:
        """The request URI for ``htu``: the adapter's scheme and raw path, the Host."""
        assert self._dpop is not None  # noqa: S101 - DPoP is on
        target = getattr(request, "target", None)
        scheme, path = target() if target is not None else ("http", request.full_path())
        return self._dpop.url(scheme, request.header("host"), path, request.field_lines)

    def _dpop_found(self, request: RequestHead, authorization: Sequence[str]) -> ExtractedToken:
        """The token of ``Authorization: DPoP``; a bearer one where only DPoP is accepted fails."""
        value = authorization[0] if len(authorization) == 1 else None
        found = self._dpop_tokens.get(value) if value is not None else None
        if found is not None:
            # A client resends its token with each new proof: the same string as last
            # time, its hash cached, so every cache keyed by the token below hashes nothing.
            # (Only `DPoP` values are remembered.)
            return found
        if not DPoPVerifier.is_dpop(authorization):
            # dpop="required": whatever bearer token there is, it is the wrong method.
            query = request.query_string() if self._allow_query else ""
            self.extractor.extract(authorization, query_string=query)
            raise AuthFailure(Reason.DPOP_REQUIRED)
        token = DPoPVerifier.token_from(authorization, self.extractor.max_token_bytes)
        found = ExtractedToken(token, TokenSource.HEADER)
        if value is not None and len(value) <= _DPOP_MEMO_MAX_CHARS:
            memo = self._dpop_tokens
            if len(memo) >= _DPOP_MEMO_SIZE:
                memo.clear()  # bounded; the next requests refill it
            memo[value] = found
        return found

    def _authenticate_dpop(
        self, request: RequestView, authorization: Sequence[str], *, optional: bool
    ) -> Accepted | Rejected:
        """:meth:`authenticate` for ``Authorization: DPoP`` (or any request when required)."""
        dpop = self._dpop
        assert dpop is not None  # noqa: S101 - DPoP is on
        found = claims = None
        try:
            found = self._dpop_found(request, authorization)
            proof = dpop.check(
                request.field_lines("dpop"), request.method, self._dpop_url(request), found.token
            )
            claims = self.verifier.verify(found.token)
            dpop.bind(proof, claims)
            if self._checks_grants:
                self._check_granted(claims)
            dpop.check_replay(proof)  # last: a refused proof takes no slot
        except AuthFailure as failure:
            if claims is not None:  # decided on claims the verifier vouched for
                failure.signature_verified = True
            return self._refused(failure, request, found, authorization, optional=optional)
        return self._dpop_accepted(request, found, claims)

    async def _authenticate_dpop_async(
        self, request: AsyncRequestView, authorization: Sequence[str], *, optional: bool
    ) -> Accepted | Rejected:
        """:meth:`authenticate_async` for ``Authorization: DPoP``."""
        dpop = self._dpop
        assert dpop is not None  # noqa: S101 - DPoP is on
        found = claims = None
        try:
            found = self._dpop_found(request, authorization)
            proof = dpop.check(
                request.field_lines("dpop"), request.method, self._dpop_url(request), found.token
            )
            claims = await self.verifier.verify_async(found.token)
            dpop.bind(proof, claims)
            if self._checks_grants:
                self._check_granted(claims)
            if dpop.local_replay_cache:
                dpop.check_replay(proof)  # in memory: no I/O, no await (last: see above)
            else:
                await dpop.check_replay_async(proof)  # last: a refused proof takes no slot
        except AuthFailure as failure:
            if claims is not None:  # decided on claims the verifier vouched for
                failure.signature_verified = True
            return self._refused(failure, request, found, authorization, optional=optional)
        return self._dpop_accepted(request, found, claims)

    def _dpop_accepted(
        self, request: RequestHead, found: ExtractedToken, claims: dict[str, Any]
    ) -> Accepted:
        if self._log_accepted:
            self.events.accepted(lambda: self.facts(request), found.token, claims)
        else:
            self.events.count_accepted()
        note = getattr(request, "note", None)
        if note is not None:
            note(self._accepted_outcome(found.token, claims))
        return tuple.__new__(Accepted, (claims, found.token, False))  # as the bearer path

    def _dpop_answer(
        self, answer: RenderedFailure, failure: AuthFailure, request: RequestHead
    ) -> RenderedFailure:
        """The challenges of RFC 9449 §7.1 in place of the bearer one, and a nonce."""
        assert self._dpop is not None  # noqa: S101 - DPoP is on
        challenges = self._dpop_challenges(
            failure, dpop_scheme=DPoPVerifier.is_dpop(request.field_lines("authorization"))
        )
        headers = [(k, v) for k, v in answer.headers if k != _CHALLENGE]
        if challenges:
            headers.append((_CHALLENGE, ", ".join(challenges)))
        nonce = self._dpop.nonce()
        if nonce is not None and answer.status == 401:  # noqa: PLR2004
            headers.append(("dpop-nonce", nonce))
            if request.header("origin") is not None:
                headers.append((_EXPOSE, "dpop-nonce"))
        return RenderedFailure(answer.status, tuple(headers), answer.body)

    # -- facts for the log -------------------------------------------------------------

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

    def facts(self, request: RequestHead) -> RequestFacts:
        """What the log event says about ``request`` (read only when an event is emitted)."""
        forwarded = self.client_ip_header
        request_id = self.request_id_header
        # An adapter whose framework has routed the request knows its route template.
        route = getattr(request, "route", None)
        return RequestFacts(
            method=request.method,
            path=request.full_path(),
            client_ip=self.client_ip(
                request.peer(), request.field_lines(forwarded) if forwarded else None
            ),
            user_agent=request.header("user-agent"),
            request_id=request.header(request_id) if request_id else None,
            route=route() if route is not None else None,
        )


def _step_up_leeway(verifier: object) -> float:
    """The verifier's clock-skew leeway, for ``auth_time`` as for ``exp``; else 60 s."""
    for name in ("leeway", "_leeway"):
        value = getattr(verifier, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return DEFAULT_LEEWAY


_D = frozenset("dD")


def _dpop_scheme(authorization: Sequence[str]) -> bool:
    """``Authorization: DPoP``: the first letter rules out ``Bearer`` at once (hot path)."""
    return (
        bool(authorization) and authorization[0][:1] in _D and DPoPVerifier.is_dpop(authorization)
    )


def _no_downgrade(claims: Mapping[str, Any]) -> None:
    """RFC 9449 §7.2: a DPoP-bound token (``cnf.jkt``) is never accepted as a bearer token."""
    if DPoPVerifier.is_bound(claims):
        raise AuthFailure(Reason.DPOP_BOUND_BEARER)


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


def _names(aud: object, resource: str) -> bool:
    """Whether an ``aud`` claim (a string or a list) names ``resource`` (RFC 7519 §4.1.3)."""
    if aud == resource:
        return True
    return isinstance(aud, list) and resource in aud


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
