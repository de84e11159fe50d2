"""The ``auth_rejected`` event: one structured log event per refused request.

Emitted through ``structlog.get_logger("invalidtoken_mw")``; the library never calls
``structlog.configure()``, so the application's configuration decides how it renders.
Every value is sanitised (control, format and line-separator characters removed, so
neither line breaks nor bidirectional overrides from a claim reach a log viewer; strings
truncated; odd types and huge integers stringified) so no renderer can fail and no
viewer be fooled, and the token itself never appears:
only a keyed fingerprint of it and, read without trusting them, a few header fields
and claims.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import math
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

import structlog

from invalidtoken_mw._jose import JWS_SHAPE, decode_object
from invalidtoken_mw.claims import CLIENT_ID_CLAIMS, client_id
from invalidtoken_mw.reasons import Reason
from invalidtoken_mw.tracing import annotate_current_span

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from structlog.typing import EventDict

    from invalidtoken_mw.metrics import RejectionRecorder
    from invalidtoken_mw.ratelimit import EventRateLimiter
    from invalidtoken_mw.reasons import AuthFailure

__all__ = [
    "CLIENT_ID_CLAIMS",
    "DATADOG_FIELD_NAMES",
    "DEFAULT_LOG_CLAIMS",
    "ECS_FIELD_NAMES",
    "EVENT",
    "OTEL_FIELD_NAMES",
    "AuthEventLog",
    "AuthOutcome",
    "RequestFacts",
    "claim_names",
    "datadog_field_names",
    "ecs_field_names",
    "otel_field_names",
    "sanitize",
]

EVENT = "auth_rejected"
"""The name of the one event logged per refused request."""
_MAX_STRING = 200
_MAX_SAFE_INT = 2**53  # beyond this JSON consumers (and orjson) lose precision or fail
# Removed from every logged string, one character class compiled once:
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f"  # C0 controls, DEL, C1 controls
    r"\u2028\u2029"  # line and paragraph separators (Zl, Zp): line breaks to many viewers
    # Lone surrogates (from "\ud800" escapes in claims) are not UTF-8: orjson and files
    # refuse them.
    r"\ud800-\udfff"
    # Format characters (Cf, as of Unicode 15.1): bidirectional overrides and isolates
    # (U+202A-202E, U+2066-2069) reorder what a log viewer shows, zero-width ones
    # (U+200B-200D, U+2060, U+FEFF) hide text, tag characters (U+E0000 block) smuggle
    # invisible ASCII. tests/test_log.py checks this against unicodedata.
    r"\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    r"\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_HEADER_FIELDS = ("alg", "kid", "typ")
_CLAIM_FIELDS = ("iss", "sub", "aud", "jti", "exp", "iat", "nbf")
DEFAULT_LOG_CLAIMS = (*_CLAIM_FIELDS, "client_id", "scopes")
"""The claim fields an event carries by default (``log_claims``): ``client_id`` is
read from :data:`CLIENT_ID_CLAIMS`, ``scopes`` from ``scope`` (a space-separated
string) or ``scp`` (a list)."""
_TIME_CLAIMS = frozenset({"exp", "iat", "nbf"})
# Fields of the events themselves: a logged claim may not take one of their names.
_RESERVED = frozenset({
    "event", "reason", "error", "status", "method", "path", "client_ip", "user_agent",
    "request_id", "route", "missing_scopes", "suppressed", "token_fingerprint",
    "signature_verified", "alg", "kid", "typ", "expired_for_s", "not_before_in_s",
    "token_kind",
    "level", "timestamp", "logger",
    *(f"{name}_at" for name in _TIME_CLAIMS),
})  # fmt: skip
_CLAIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
_HASH_PREFIX = "hmac:"
_FINGERPRINT_HEX = 16
_PROCESS_KEY = secrets.token_bytes(32)


def sanitize(value: object) -> str | int | float | bool | list[Any] | None:
    """Make an untrusted value safe for any log renderer.

    Strings lose control and format characters (Unicode Cc, Cf, Zl, Zp, lone
    surrogates) and are truncated; integers beyond 2**53 and any
    other type become (truncated) strings; short lists of scalars are kept.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _truncate(_CONTROL.sub("", value))
    if isinstance(value, list) and len(value) <= 10 and all(isinstance(v, str) for v in value):  # noqa: PLR2004
        return [_truncate(_CONTROL.sub("", v)) for v in value]
    try:
        text = str(value) if isinstance(value, int) else repr(value)
    except Exception:  # noqa: BLE001 - e.g. ints past sys.get_int_max_str_digits(), odd __repr__
        text = f"<{type(value).__name__}>"
    return _truncate(_CONTROL.sub("", text))


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_STRING else text[: _MAX_STRING - 3] + "..."


class RequestFacts(NamedTuple):
    """What the log event says about the request, gathered by the adapter."""

    method: str
    path: str
    client_ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    route: str | None = None


def claim_names(
    log_claims: Iterable[str] | None, hash_claims: Iterable[str] | None
) -> tuple[tuple[str, ...], frozenset[str]]:
    """Check ``log_claims`` and ``hash_claims`` once; their normal form.

    Raises:
        TypeError: Not a list of strings.
        ValueError: A name that is not a claim name, one an event field already has,
            a hashed name that is not logged, or a hashed time claim.
    """
    logged = DEFAULT_LOG_CLAIMS if log_claims is None else _names("log_claims", log_claims)
    hashed = frozenset(() if hash_claims is None else _names("hash_claims", hash_claims))
    for name in logged:
        if name in _RESERVED or not _CLAIM_NAME.fullmatch(name):
            raise ValueError(
                f"log_claims: {name!r} cannot be logged as a claim: use a claim name such"
                f" as 'sub' or 'tid' that is not an event field; the default is"
                f" {list(DEFAULT_LOG_CLAIMS)!r}."
            )
    if not hashed <= set(logged):
        unknown = sorted(hashed - set(logged))
        raise ValueError(
            f"hash_claims: {unknown!r} are not in log_claims; a hashed claim must be logged,"
            " e.g. log_claims=[..., 'sub'], hash_claims=['sub']."
        )
    if hashed & _TIME_CLAIMS:
        raise ValueError(
            "hash_claims: exp, iat and nbf are times, not identities: log or drop them."
        )
    return logged, hashed


def _names(option: str, value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{option} must be a list of claim names, e.g. {option}=['iss', 'sub'].")
    return tuple(dict.fromkeys(value))


def _printable(value: object) -> str | None:
    """``value`` as a safe string: as it is when short and printable (no Cc, Cf, Zl, Zp)."""
    if value is None:
        return None
    if type(value) is str and len(value) <= _MAX_STRING and value.isprintable():
        return value
    safe = sanitize(value)
    return safe if isinstance(safe, str) else str(safe)


def _scopes(claims: Mapping[str, Any]) -> object:
    scope = claims.get("scope")
    if isinstance(scope, str):
        return scope.split()
    return claims.get("scp")


class AuthOutcome(NamedTuple):
    """What the guard decided, for outer middleware and access logs.

    In the ASGI ``scope["state"]["invalidtoken"]``; in the WSGI environ as strings
    under ``invalidtoken.reason``, ``invalidtoken.status``, ``invalidtoken.sub`` and
    ``invalidtoken.client_id``, each absent when ``None`` (the constants are in
    :mod:`invalidtoken_mw.guard`).

    Attributes:
        reason: The reason of a refusal (its string value), ``None`` when accepted.
        status: The status of a refusal, ``None`` when accepted.
        sub: The accepted token's ``sub``: ``None`` when absent or left out of
            ``log_claims``, its keyed fingerprint when in ``hash_claims``.
        client_id: The accepted token's client (as the ``client_id`` log field), on the
            same terms.
    """

    reason: str | None = None
    status: int | None = None
    sub: str | None = None
    client_id: str | None = None


class AuthEventLog:
    """Emit ``auth_rejected`` events (and count rejections) for one middleware instance.

    Args:
        fingerprint_key: Key of the HMAC-SHA256 token fingerprint. Give every
            instance the same key to correlate a token across processes; by default
            a random per-process key (fingerprints then only correlate within one
            process, and cannot be brute-forced from the logs).
        rate_limit: Per-reason flood protection for the log; ``None`` logs every
            rejection. Suppressed events are counted into the next one's
            ``suppressed`` field.
        metrics: Counters told about every rejection, logged or not.
        log_accepted: Also emit an ``auth_accepted`` event at debug level.
        log_claims: The claim fields events carry (:data:`DEFAULT_LOG_CLAIMS` by
            default); ``client_id`` and ``scopes`` are derived, any other name is a
            claim logged as it is.
        hash_claims: Of ``log_claims``, those logged as a keyed fingerprint
            (``"hmac:"`` and 16 hex digits, keyed like the token fingerprint) instead
            of their value.
    """

    __slots__ = (
        "_accepted",
        "_client_logged",
        "_counts",
        "_counts_lock",
        "_fingerprint_key",
        "_hashed",
        "_logged",
        "_logger",
        "_metrics",
        "_sub_logged",
        "log_accepted",
        "rate_limit",
    )

    def __init__(
        self,
        *,
        fingerprint_key: bytes | None = None,
        rate_limit: EventRateLimiter | None = None,
        metrics: Iterable[RejectionRecorder] = (),
        log_accepted: bool = False,
        log_claims: Iterable[str] | None = None,
        hash_claims: Iterable[str] | None = None,
    ) -> None:
        """Prepare the logger and the fingerprint key."""
        self._logged, self._hashed = claim_names(log_claims, hash_claims)
        self._sub_logged = "sub" in self._logged
        self._client_logged = "client_id" in self._logged
        if fingerprint_key is not None and len(fingerprint_key) < 16:  # noqa: PLR2004
            raise ValueError("fingerprint_key must be at least 16 bytes of secret material.")
        self._fingerprint_key = fingerprint_key or _PROCESS_KEY
        self._logger = structlog.get_logger("invalidtoken_mw")
        self.rate_limit = rate_limit
        self._metrics = tuple(metrics)
        for recorder in self._metrics:
            if not callable(getattr(recorder, "record", None)):
                raise TypeError("each metrics entry needs a record(reason) method.")
        self.log_accepted = log_accepted
        self._counts: dict[str, int] = {}
        # The hot path counts with one C call, atomic under the GIL, instead of a lock.
        self._accepted = itertools.count()
        self._counts_lock = threading.Lock()
        self._watch_accepted()

    def _watch_accepted(self) -> None:
        """Hand metrics with ``watch_accepted`` a reader of the acceptance count.

        They read it when scraped, so counting an accepted request stays one C call.
        The reader holds the count, not this object.
        """
        count = functools.partial(_count_value, self._accepted)
        for recorder in self._metrics:
            watch = getattr(recorder, "watch_accepted", None)
            if callable(watch):
                watch(count)

    def fingerprint(self, token: str) -> str:
        """A short keyed hash identifying ``token`` without revealing it."""
        digest = hmac.new(self._fingerprint_key, token.encode("utf-8", "replace"), hashlib.sha256)
        return digest.hexdigest()[:_FINGERPRINT_HEX]

    def claim_fields(self, claims: Mapping[str, Any]) -> dict[str, Any]:
        """The claim fields of an event (``log_claims``), sanitised or hashed."""
        fields: dict[str, Any] = {}
        for name in self._logged:
            if name == "client_id":
                value: object = client_id(claims)
            elif name == "scopes":
                value = _scopes(claims)
            else:
                value = claims.get(name)
            if value is None:
                continue
            fields[name] = self.hashed(value) if name in self._hashed else sanitize(value)
        return fields

    def hashed(self, value: object) -> str:
        """A keyed fingerprint of a claim value (``hash_claims``): ``hmac:`` and 16 hex."""
        text = value if isinstance(value, str) else repr(value)
        return _HASH_PREFIX + self.fingerprint(text)

    def identity(self, claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
        """``sub`` and ``client_id`` of verified claims as ``log_claims`` allows them.

        A name left out of ``log_claims`` gives ``None``; a hashed one its fingerprint.
        """
        outcome = self.accepted_outcome(claims)
        return outcome.sub, outcome.client_id

    def accepted_outcome(self, claims: Mapping[str, Any]) -> AuthOutcome:
        """The :class:`AuthOutcome` of an accepted request with verified ``claims``.

        Runs for every accepted request, so one call does it all: plain printable
        strings take no regex, and the tuple skips the NamedTuple's generated __new__.
        """
        sub = claims.get("sub") if self._sub_logged else None
        client = None
        if self._client_logged:
            client = claims.get("azp")
            if type(client) is not str:
                client = client_id(claims)
        if self._hashed:
            sub, client = self._shown("sub", sub), self._shown("client_id", client)
        else:
            if sub is not None and not (
                type(sub) is str and len(sub) <= _MAX_STRING and sub.isprintable()
            ):
                sub = _printable(sub)
            if client is not None and not (len(client) <= _MAX_STRING and client.isprintable()):
                client = _printable(client)
        return tuple.__new__(AuthOutcome, (None, None, sub, client))

    def _shown(self, name: str, value: object) -> str | None:
        if value is None:
            return None
        if name in self._hashed:
            return self.hashed(value)
        return _printable(value)

    def _peek(self, token: str) -> dict[str, Any]:
        """Read, without trusting them, the header and claim fields worth logging."""
        if len(token) > 16384 or not JWS_SHAPE.fullmatch(token):  # noqa: PLR2004 - log budget
            return {}
        header_b64, claims_b64, _ = token.split(".")
        header = decode_object(header_b64) or {}
        claims = decode_object(claims_b64) or {}
        fields = {name: sanitize(header[name]) for name in _HEADER_FIELDS if name in header}
        fields.update(self.claim_fields(claims))
        return fields

    def stats(self) -> dict[str, int]:
        """A snapshot of rejections (by reason value) and acceptances since start-up."""
        with self._counts_lock:
            counts = dict(self._counts)
        counts["accepted"] = _count_value(self._accepted)
        return counts

    def _count(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def count_accepted(self) -> None:
        """Count an accepted request (the cheap path when ``log_accepted`` is off)."""
        next(self._accepted)

    def accepted(
        self,
        request: RequestFacts | Callable[[], RequestFacts],
        token: str | None,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        """Count an accepted request; log ``auth_accepted`` at debug when enabled.

        ``request`` may be a function giving the facts: it is called only to log.
        ``claims`` (verified) add their ``log_claims`` fields, for an audit trail.
        """
        self.count_accepted()
        if self.log_accepted:
            fields = _request_fields(request)
            if token:
                fields["token_fingerprint"] = self.fingerprint(token)
            if claims:
                fields.update(self.claim_fields(claims))
                _time_fields(fields, expiry=False)
            self._logger.debug("auth_accepted", **fields)

    def rejected(
        self,
        failure: AuthFailure,
        request: RequestFacts | Callable[[], RequestFacts],
        token: str | None,
        *,
        signature_verified: bool | None = None,
        token_kind: str | None = None,
    ) -> None:
        """Count a refused request and emit its one ``auth_rejected`` event (unless flooded).

        ``request`` may be a function giving the facts: it is called only when the
        event is emitted, not for a rejection the rate limit suppresses.
        ``signature_verified`` (default: the failure's own) says whether the logged
        claims were vouched for by a good signature. ``token_kind`` (a
        :class:`~invalidtoken_mw.token_kind.TokenKind` value) says what the token looked
        like, logged as the ``token_kind`` field.
        """
        reason = failure.reason
        self._count(reason.value)
        for recorder in self._metrics:
            recorder.record(reason)
        # Before the flood limit: a sampled trace shows its refusal even when the log
        # skipped it. Without a recording span this costs a lookup or two.
        annotate_current_span(failure, token)
        suppressed = 0
        if self.rate_limit is not None:
            allowed = self.rate_limit.acquire(reason)
            if allowed is None:
                return
            suppressed = allowed
        fields: dict[str, Any] = {
            "reason": reason.value,
            "error": reason.error,
            "status": reason.status,
            **_request_fields(request),
        }
        if failure.scopes:
            # The challenge lists every scope the request requires; the log says which
            # of them the token lacked (all of them when the raiser did not say).
            missing = failure.context.get("missing_scopes", failure.scopes)
            fields["missing_scopes"] = sanitize(
                list(missing) if isinstance(missing, (list, tuple)) else missing
            )
        if failure.context:
            # Context from application code adds fields; it cannot replace ours or "event".
            reserved = {"event", *fields}
            fields.update({k: sanitize(v) for k, v in failure.context.items() if k not in reserved})
        if suppressed:
            fields["suppressed"] = suppressed
        if token:
            fields["token_fingerprint"] = self.fingerprint(token)
            if token_kind is not None:
                fields["token_kind"] = token_kind
            fields.update(self._peek(token))
            fields["signature_verified"] = (
                failure.signature_verified if signature_verified is None else signature_verified
            )
            _time_fields(fields)
        if reason.is_server_fault or "unexpected_error" in fields:
            self._logger.error(EVENT, **fields)
        else:
            self._logger.warning(EVENT, **fields)


def _count_value(counter: itertools.count[int]) -> int:
    """How many values ``counter`` has given: its repr is "count(N)", N the next one."""
    return int(repr(counter)[6:-1])


def _request_fields(request: RequestFacts | Callable[[], RequestFacts]) -> dict[str, Any]:
    if not isinstance(request, RequestFacts):
        request = request()
    fields: dict[str, Any] = {
        "method": sanitize(request.method),
        "path": sanitize(request.path),
        "client_ip": sanitize(request.client_ip),
    }
    if request.user_agent is not None:
        fields["user_agent"] = sanitize(request.user_agent)
    if request.request_id is not None:
        fields["request_id"] = sanitize(request.request_id)
    if request.route is not None:
        fields["route"] = sanitize(request.route)
    return fields


def _iso(value: float) -> str | None:
    """An epoch time as ISO 8601 UTC to the second (``2026-12-01T14:38:11Z``)."""
    try:
        moment = datetime.fromtimestamp(int(value), timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None  # beyond what a datetime holds: the epoch value is logged alone
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time_fields(fields: dict[str, Any], *, expiry: bool = True) -> None:
    for name in ("exp", "iat", "nbf"):
        value = fields.get(name)
        if _is_number(value) and math.isfinite(value):
            iso = _iso(value)
            if iso is not None:
                fields[f"{name}_at"] = iso
    if not expiry:
        return
    now = time.time()
    exp = fields.get("exp")
    # A future nbf, or failing that a future iat, is what makes a token not yet valid.
    start = max(
        (v for v in (fields.get("nbf"), fields.get("iat")) if _is_number(v)),
        default=None,
    )
    if _is_number(exp) and exp <= now:
        fields["expired_for_s"] = sanitize(int(now - exp))
    if start is not None and start > now:
        fields["not_before_in_s"] = sanitize(int(start - now))


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_MAPPED_EVENTS = frozenset({EVENT, "auth_accepted"})

# OpenTelemetry semantic-convention names for the event's fields.
OTEL_FIELD_NAMES: dict[str, str] = {
    "method": "http.request.method",
    "path": "url.path",
    "client_ip": "client.address",
    "user_agent": "user_agent.original",
    "status": "http.response.status_code",
    "reason": "error.type",
    "request_id": "http.request.id",
    # Not left as "error": a name must not also be a namespace (error.type), and
    # Elasticsearch maps "error" as an object, so the string would be refused.
    "error": "invalidtoken.error",
}
"""The OpenTelemetry semantic-convention name of each renamed event field.

``error`` (the RFC 6750 code) has no convention and becomes ``invalidtoken.error``.
"""


def otel_field_names(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor renaming ``auth_rejected`` fields to OpenTelemetry names.

    Add it to the application's processor chain before the renderer::

        structlog.configure(processors=[..., otel_field_names, structlog.processors.JSONRenderer()])

    See :data:`OTEL_FIELD_NAMES`. Other events pass through unchanged.
    """
    if event_dict.get("event") not in _MAPPED_EVENTS:
        return event_dict
    return _renamed(event_dict, OTEL_FIELD_NAMES)


ECS_FIELD_NAMES: dict[str, str] = {
    "method": "http.request.method",
    "path": "url.path",
    "client_ip": "client.ip",
    "user_agent": "user_agent.original",
    "status": "http.response.status_code",
    "request_id": "http.request.id",
    "reason": "event.reason",
    "error": "error.code",
}
"""The Elastic Common Schema name of each event field :func:`ecs_field_names` renames."""


def ecs_field_names(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor giving ``auth_rejected``/``auth_accepted`` ECS field names.

    Renames per :data:`ECS_FIELD_NAMES` (``sub`` of ``auth_accepted`` becomes
    ``user.id``; a refused token's ``sub`` is unverified and keeps its name) and adds
    ``event.action`` (the event's name), ``event.category: ["authentication"]``,
    ``event.outcome`` (``failure`` or ``success``) and, for a refusal, ``error.type``
    (the reason) and ``error.message`` (its description). No field named ``error``
    or ``event.*`` remains beside them. ``event`` itself is left for the renderer:
    Elastic's ``ecs_logging.StructlogFormatter`` makes it ``message``; with another
    renderer add ``structlog.processors.EventRenamer("message")`` after this one.
    Other events pass through unchanged.
    """
    event = event_dict.get("event")
    if event not in _MAPPED_EVENTS:
        return event_dict
    rejected = event == EVENT
    renamed = _renamed(event_dict, ECS_FIELD_NAMES if rejected else _ECS_ACCEPTED)
    renamed["event.action"] = event
    renamed["event.category"] = ["authentication"]
    renamed["event.outcome"] = "failure" if rejected else "success"
    if renamed.get("error.code", "") is None:
        del renamed["error.code"]  # missing_token and 503s answer without an error code
    _describe(renamed, event_dict.get("reason"), "error.type", "error.message")
    return renamed


DATADOG_FIELD_NAMES: dict[str, str] = {
    "method": "http.method",
    "path": "http.url_details.path",
    "client_ip": "network.client.ip",
    "user_agent": "http.useragent",
    # Datadog reserves "status" for the log's severity: the HTTP one must move.
    "status": "http.status_code",
    "request_id": "http.request_id",
    "reason": "error.kind",
    "error": "error.code",
}
"""The Datadog standard attribute of each event field :func:`datadog_field_names` renames."""


def datadog_field_names(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor giving ``auth_rejected``/``auth_accepted`` Datadog attributes.

    Renames per :data:`DATADOG_FIELD_NAMES` (``sub`` of ``auth_accepted`` becomes
    ``usr.id``; a refused token's ``sub`` is unverified and keeps its name) and adds
    ``error.message`` (the reason's description) to a refusal. No ``status`` (Datadog's
    severity) or ``error`` string remains. Other events pass through unchanged.
    """
    event = event_dict.get("event")
    if event not in _MAPPED_EVENTS:
        return event_dict
    renamed = _renamed(event_dict, DATADOG_FIELD_NAMES if event == EVENT else _DATADOG_ACCEPTED)
    if renamed.get("error.code", "") is None:
        del renamed["error.code"]
    _describe(renamed, event_dict.get("reason"), None, "error.message")
    return renamed


_ECS_ACCEPTED = {**ECS_FIELD_NAMES, "sub": "user.id"}
_DATADOG_ACCEPTED = {**DATADOG_FIELD_NAMES, "sub": "usr.id"}


def _renamed(event_dict: EventDict, names: dict[str, str]) -> EventDict:
    return {names.get(key, key): value for key, value in event_dict.items()}


def _describe(fields: EventDict, reason: object, type_key: str | None, message_key: str) -> None:
    """Add the reason's type and description under the mapping's error keys."""
    try:
        known = Reason(reason)
    except ValueError:
        return
    if type_key is not None:
        fields[type_key] = known.value
    fields[message_key] = known.description
