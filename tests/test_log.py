"""The ``auth_rejected`` event: schema, levels, fingerprint, request facts and sanitisation.

Events are captured with ``structlog.testing.capture_logs()``, first from
:class:`~invalidtoken_mw.AuthEventLog` directly, then through both middlewares (the
token never logged, one event per refusal). The real renderer pipelines are in
``test_log_pipeline.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import sys
import time
import unicodedata
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import structlog
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthEventLog,
    AuthFailure,
    InvalidTokenMiddleware,
    JWTVerifier,
    Reason,
    RequestFacts,
    otel_field_names,
)
from invalidtoken_mw.keys import StaticKeys
from invalidtoken_mw.log import OTEL_FIELD_NAMES, sanitize
from support.rejections import (
    EXPIRED_FOR_S,
    FINGERPRINT_KEY,
    NOT_BEFORE_IN_S,
    PEER,
    REQUEST_ID,
    REQUIRED_SCOPE,
    SCRIPTED_CONTEXT,
    USER_AGENT,
    Rejection,
    ScriptedVerifier,
    asgi_middleware,
    call_asgi,
    call_wsgi,
    doc_token,
    middleware_options,
    ok_asgi,
    rejections,
    wsgi_middleware,
)
from support.strategies import B64TOKEN_CHARS
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, hs256_raw, json_values, mint
from support.verifying import ExplodingKeys

if TYPE_CHECKING:
    from collections.abc import Callable

    from structlog.typing import EventDict

FACTS = RequestFacts("GET", "/orders", PEER[0], USER_AGENT, REQUEST_ID)
CASES = {case.reason: case for case in rejections()}
SERVER_FAULTS = {
    Reason.KEY_UNAVAILABLE,
    Reason.REVOCATION_UNAVAILABLE,
    Reason.INTROSPECTION_UNAVAILABLE,
    Reason.DPOP_REPLAY_UNAVAILABLE,
}
HEX16 = re.compile(r"[0-9a-f]{16}")


def rejected_events(logs: list[EventDict]) -> list[EventDict]:
    """The ``auth_rejected`` events among captured ones."""
    return [event for event in logs if event["event"] == "auth_rejected"]


def reject_directly(case: Rejection, log: AuthEventLog | None = None) -> EventDict:
    """Log ``case``'s failure through an AuthEventLog and return the one captured event."""
    log = log or AuthEventLog(fingerprint_key=FINGERPRINT_KEY)
    scopes = [REQUIRED_SCOPE] if case.reason is Reason.INSUFFICIENT_SCOPE else []
    with capture_logs() as logs:
        failure = AuthFailure(case.reason, scopes=scopes, context=SCRIPTED_CONTEXT.get(case.reason))
        log.rejected(failure, FACTS, case.token)
    [event] = logs
    return event


def check_event(event: EventDict, case: Rejection, *, guarded: bool = True) -> None:
    """Assert ``event`` is ``case``'s event: exact field names, level and reason facts."""
    reason = case.reason
    assert case.expected_fields(guarded=guarded) | {"log_level"} == set(event)
    assert "auth_rejected" == event["event"]
    assert ("error" if reason in SERVER_FAULTS else "warning") == event["log_level"]
    assert (reason.value, reason.error, reason.status) == (
        event["reason"],
        event["error"],
        event["status"],
    )
    expected_request = ("GET", "/orders", PEER[0], USER_AGENT, REQUEST_ID)
    assert expected_request == tuple(
        event[k] for k in ("method", "path", "client_ip", "user_agent", "request_id")
    )
    if case.token is not None:
        expected_fp = hmac.new(FINGERPRINT_KEY, case.token.encode(), hashlib.sha256).hexdigest()
        assert expected_fp[:16] == event["token_fingerprint"]


# -- schema, straight from AuthEventLog ----------------------------------------------------


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_rejected_event_has_exact_fields_for_every_reason(reason: Reason) -> None:
    """AuthEventLog.rejected emits one event per reason with exactly the documented fields."""
    check_event(reject_directly(CASES[reason]), CASES[reason], guarded=False)


def test_peeked_fields_are_read_from_the_token() -> None:
    """The untrusted header and claims of the token appear with their values."""
    event = reject_directly(CASES[Reason.BAD_SIGNATURE])
    expected = {
        "alg": "HS256",
        "kid": "2026-11",
        "typ": "JWT",
        "iss": "https://id.example.com/",
        "sub": "user-42",
        "aud": "api://orders",
        "jti": "a1b2",
    }
    assert expected == {k: event[k] for k in expected}
    assert isinstance(event["exp"], int)
    assert isinstance(event["iat"], int)


def test_missing_scopes_are_listed() -> None:
    """An insufficient_scope event names the scopes the request lacked."""
    event = reject_directly(CASES[Reason.INSUFFICIENT_SCOPE])
    assert [REQUIRED_SCOPE] == event["missing_scopes"]


def test_expired_for_s_says_how_stale_the_token_is() -> None:
    """An expired token's event carries the seconds since exp, and no not_before_in_s."""
    now = int(time.time())
    case = next(c for c in rejections(now) if c.reason is Reason.EXPIRED)
    event = reject_directly(case)
    assert EXPIRED_FOR_S <= event["expired_for_s"] <= EXPIRED_FOR_S + 2
    assert "not_before_in_s" not in event


def test_not_before_in_s_says_how_early_the_token_is() -> None:
    """A not-yet-valid token's event carries the seconds until nbf, and no expired_for_s."""
    now = int(time.time())
    case = next(c for c in rejections(now) if c.reason is Reason.NOT_YET_VALID)
    event = reject_directly(case)
    assert NOT_BEFORE_IN_S - 2 <= event["not_before_in_s"] <= NOT_BEFORE_IN_S
    assert "expired_for_s" not in event


def test_current_token_has_no_time_fields() -> None:
    """A token inside its validity window gets neither expired_for_s nor not_before_in_s."""
    event = reject_directly(CASES[Reason.REVOKED])
    assert set() == {"expired_for_s", "not_before_in_s"} & set(event)


def test_request_facts_without_user_agent_or_request_id_are_omitted() -> None:
    """user_agent and request_id are left out when not sent; client_ip is always present."""
    log = AuthEventLog(fingerprint_key=FINGERPRINT_KEY)
    with capture_logs() as logs:
        log.rejected(AuthFailure(Reason.MISSING_TOKEN), RequestFacts("POST", "/x"), None)
    expected = {
        "event": "auth_rejected",
        "log_level": "warning",
        "reason": "missing_token",
        "error": None,
        "status": 401,
        "method": "POST",
        "path": "/x",
        "client_ip": None,
    }
    assert [expected] == logs


def test_unexpected_error_context_is_logged_at_error() -> None:
    """A malformed_token carrying unexpected_error (a bug, not the client) is logged at error."""
    log = AuthEventLog(fingerprint_key=FINGERPRINT_KEY)
    failure = AuthFailure(Reason.MALFORMED_TOKEN, context={"unexpected_error": "TypeError"})
    with capture_logs() as logs:
        log.rejected(failure, FACTS, "not-a-jwt")
    [event] = logs
    assert ("error", "TypeError") == (event["log_level"], event["unexpected_error"])


def test_context_cannot_replace_the_event_fields() -> None:
    """Application context adds fields but cannot spoof reason or status, nor break the call."""
    log = AuthEventLog(fingerprint_key=FINGERPRINT_KEY)
    context = {"event": "spoof", "reason": "spoof", "status": 200, "tenant": "acme\n"}
    with capture_logs() as logs:
        log.rejected(AuthFailure(Reason.REVOKED, context=context), FACTS, None)
    [event] = logs
    expected = ("auth_rejected", "revoked", 401, "acme")
    assert expected == (event["event"], event["reason"], event["status"], event["tenant"])


# -- the fingerprint -------------------------------------------------------------------


def test_fingerprint_is_a_keyed_hmac_sha256_prefix() -> None:
    """token_fingerprint is the first 16 hex digits of HMAC-SHA256(key, token)."""
    token = mint()
    fingerprint = AuthEventLog(fingerprint_key=FINGERPRINT_KEY).fingerprint(token)
    expected = hmac.new(FINGERPRINT_KEY, token.encode(), hashlib.sha256).hexdigest()[:16]
    assert expected == fingerprint
    assert HEX16.fullmatch(fingerprint)


def test_fingerprint_correlates_across_instances_with_the_same_key() -> None:
    """Instances given the same key fingerprint a token alike; another key gives another value."""
    token = mint()
    first = AuthEventLog(fingerprint_key=FINGERPRINT_KEY).fingerprint(token)
    second = AuthEventLog(fingerprint_key=FINGERPRINT_KEY).fingerprint(token)
    other = AuthEventLog(fingerprint_key=b"another-key-of-at-least-16-bytes").fingerprint(token)
    assert first == second
    assert first != other


def test_default_fingerprint_key_is_per_process() -> None:
    """Without a key, instances in one process share a random key that is not guessable."""
    token = mint()
    first, second = AuthEventLog().fingerprint(token), AuthEventLog().fingerprint(token)
    assert first == second
    assert first != AuthEventLog(fingerprint_key=b"\0" * 32).fingerprint(token)
    assert HEX16.fullmatch(first)


def test_short_fingerprint_key_is_refused() -> None:
    """A fingerprint key under 16 bytes fails at construction, saying what is needed."""
    with pytest.raises(ValueError, match="at least 16 bytes"):
        AuthEventLog(fingerprint_key=b"short")


# -- through the middlewares -----------------------------------------------------------


def test_asgi_middleware_logs_one_event_per_rejected_request() -> None:
    """Through the ASGI middleware each reason yields its status and exactly its one event."""
    cases = rejections()
    app = asgi_middleware(cases)
    with capture_logs() as logs:
        responses = call_asgi(app, [("/orders", case.headers()) for case in cases])
    assert [c.reason.status for c in cases] == [r.status_code for r in responses]
    events = rejected_events(logs)
    assert [c.reason.value for c in cases] == [e["reason"] for e in events]
    for case, event in zip(cases, events, strict=True):
        check_event(event, case)


def test_wsgi_middleware_logs_one_event_per_rejected_request() -> None:
    """Through the WSGI middleware each reason yields its status and exactly its one event."""
    cases = rejections()
    app = wsgi_middleware(cases)
    with capture_logs() as logs:
        statuses = call_wsgi(app, [("/orders", case.headers()) for case in cases])
    assert [c.reason.status for c in cases] == statuses
    events = rejected_events(logs)
    assert [c.reason.value for c in cases] == [e["reason"] for e in events]
    for case, event in zip(cases, events, strict=True):
        check_event(event, case)


def test_accepted_request_is_silent_by_default() -> None:
    """A request that passes logs nothing unless log_accepted is on."""
    token = doc_token(Reason.REVOKED, int(time.time()), scope=REQUIRED_SCOPE)
    app = asgi_middleware([], valid=[token])
    with capture_logs() as logs:
        [response] = call_asgi(app, [("/orders", [("authorization", f"Bearer {token}")])])
    assert 200 == response.status_code
    assert [] == logs


def test_real_verifier_time_failure_reaches_the_log() -> None:
    """An expired token refused by the real JWTVerifier is logged with expired_for_s."""
    token = mint(payload=claims(exp=int(time.time()) - 3600))
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)
    app = InvalidTokenMiddleware(ok_asgi, verifier=verifier, **middleware_options())
    with capture_logs() as logs:
        call_asgi(app, [("/orders", [("authorization", f"Bearer {token}")])])
    [event] = rejected_events(logs)
    assert ("expired", "warning") == (event["reason"], event["log_level"])
    assert 3600 <= event["expired_for_s"] <= 3602


def test_unexpected_verifier_exception_is_logged_at_error() -> None:
    """A bug inside JWTVerifier answers 401 and logs one auth_rejected at error level."""

    keys = ExplodingKeys(StaticKeys(SECRET, algorithms=["HS256"]), TypeError)
    verifier = JWTVerifier(keys=keys, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)
    app = InvalidTokenMiddleware(ok_asgi, verifier=verifier, **middleware_options())
    with capture_logs() as logs:
        [response] = call_asgi(app, [("/orders", [("authorization", f"Bearer {mint()}")])])
    assert 401 == response.status_code
    [event] = rejected_events(logs)
    expected = ("malformed_token", "error", "TypeError")
    assert expected == (event["reason"], event["log_level"], event["unexpected_error"])


@pytest.mark.parametrize(
    ("options", "headers", "expected"),
    [
        ({}, [("x-request-id", "rid-1")], "rid-1"),
        ({"request_id_header": "X-Correlation-ID"}, [("x-correlation-id", "cid-2")], "cid-2"),
        ({"request_id_header": "X-Correlation-ID"}, [("x-request-id", "rid-1")], None),
        ({"request_id_header": None}, [("x-request-id", "rid-1")], None),
    ],
    ids=["default-x-request-id", "custom-header", "custom-ignores-default", "off"],
)
@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_request_id_comes_from_the_configured_header(
    adapter: str, options: dict[str, Any], headers: list[tuple[str, str]], expected: str | None
) -> None:
    """request_id is read from request_id_header (X-Request-ID by default), absent otherwise."""
    with capture_logs() as logs:
        if adapter == "asgi":
            call_asgi(asgi_middleware([], **options), [("/orders", headers)])
        else:
            call_wsgi(wsgi_middleware([], **options), [("/orders", headers)])
    [event] = rejected_events(logs)
    assert expected == event.get("request_id")
    assert (expected is not None) == ("request_id" in event)


FORWARDED = [("x-forwarded-for", "198.51.100.1, 192.0.2.9")]


@pytest.mark.parametrize(
    ("options", "headers", "expected"),
    [
        ({}, [], PEER[0]),
        ({}, FORWARDED, PEER[0]),
        ({"client_ip_header": "x-forwarded-for"}, FORWARDED, "192.0.2.9"),
        ({"client_ip_header": "X-Forwarded-For"}, FORWARDED, "192.0.2.9"),
        ({"client_ip_header": "x-forwarded-for"}, [], PEER[0]),
    ],
    ids=["peer", "untrusted-xff-ignored", "trusted-xff-rightmost", "header-name-case", "no-xff"],
)
@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_client_ip_is_the_peer_unless_a_proxy_header_is_trusted(
    adapter: str, options: dict[str, Any], headers: list[tuple[str, str]], expected: str
) -> None:
    """client_ip is the peer; only a configured client_ip_header's rightmost entry replaces it."""
    with capture_logs() as logs:
        if adapter == "asgi":
            call_asgi(asgi_middleware([], **options), [("/orders", headers)])
        else:
            call_wsgi(wsgi_middleware([], **options), [("/orders", headers)])
    [event] = rejected_events(logs)
    assert expected == event["client_ip"]


# -- sanitisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (42, 42),
        (2**53, 2**53),
        (-(2**53), -(2**53)),
        (2**53 + 1, str(2**53 + 1)),
        (10**30, "1" + "0" * 30),
        (1.5, 1.5),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        ("a\x00b\nc\r\td\x1b[31me\x7f\x85\u2028\u2029f", "abcd[31mef"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("user\u202eevil\u202c \u2066x\u2069\u200by\ufeffz\U000e0041", "userevil xyz"),
        (["a\u202eb", "c\u2028d"], ["ab", "cd"]),
        ("x" * 10_240, "x" * 197 + "..."),
        (["a", "b\n"], ["a", "b"]),
        (["x"] * 11, repr(["x"] * 11)),
        ([1, 2], "[1, 2]"),
        ({"a": {"b": [1, 2]}}, "{'a': {'b': [1, 2]}}"),
        (b"\x00raw", "b'\\x00raw'"),
        (10**5000, "<int>"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_sanitize_makes_values_safe(value: object, expected: object) -> None:
    """sanitize strips control characters, truncates, and stringifies huge ints and odd types."""
    assert expected == sanitize(value)


def test_sanitize_survives_a_failing_repr() -> None:
    """An object whose repr raises is logged by its type name instead of breaking the log."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "<Hostile>" == sanitize(Hostile())


# Control, format (bidirectional overrides, zero-width), line/paragraph separator, surrogate.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def test_sanitize_strips_every_unsafe_character_python_knows() -> None:
    """Every Cc, Cf, Zl, Zp and surrogate code point of this Python's Unicode database goes."""
    unsafe = "".join(
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in _UNSAFE_CATEGORIES
    )
    # In chunks below the 200-character truncation, which would hide survivors.
    survivors = "".join(str(sanitize(unsafe[i : i + 150])) for i in range(0, len(unsafe), 150))
    assert [] == [f"U+{ord(c):04X}" for c in survivors]


def check_safe_value(value: object) -> None:
    """Assert a sanitised value is a renderer-safe scalar or a short list of strings."""
    if isinstance(value, list):
        assert len(value) <= 10
        for item in value:
            check_safe_value(item)
    elif isinstance(value, str):
        assert len(value) <= 200
        assert [] == [c for c in value if unicodedata.category(c) in _UNSAFE_CATEGORIES]
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -(2**53) <= value <= 2**53
    else:
        assert value is None or isinstance(value, bool)


@settings(max_examples=300)
@given(json_values)
def test_sanitize_output_is_always_renderer_safe(value: object) -> None:
    """Whatever JSON value comes in, sanitize returns a bounded, finite, control-free value."""
    check_safe_value(sanitize(value))


def _reject_nan(constant: str) -> object:
    raise AssertionError(f"non-standard JSON constant {constant}")


def _strict_json(rendered: str | bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(rendered, parse_constant=_reject_nan)
    return parsed


RENDERERS: dict[str, Callable[[EventDict], str | bytes]] = {
    "json": lambda e: structlog.processors.JSONRenderer()(None, "warning", e),
    "orjson": lambda e: structlog.processors.JSONRenderer(serializer=orjson.dumps)(
        None, "warning", e
    ),
    "keyvalue": lambda e: structlog.processors.KeyValueRenderer()(None, "warning", e),
    "logfmt": lambda e: structlog.processors.LogfmtRenderer()(None, "warning", e),
    "console": lambda e: structlog.dev.ConsoleRenderer(colors=False)(None, "warning", e),
}


def render_everywhere(event: EventDict) -> list[str]:
    """Render ``event`` with every renderer (JSON ones strictly parsed back); return the lines."""
    lines = []
    for name, render in RENDERERS.items():
        rendered = render(dict(event))
        if name in {"json", "orjson"}:
            assert event == _strict_json(rendered)
        text = rendered.decode() if isinstance(rendered, bytes) else rendered
        text.encode("utf-8")  # a line a UTF-8 log file or socket accepts
        lines.append(text)
    return lines


HOSTILE_CLAIMS = (
    '{"iss": "' + "i" * 10_240 + '", "sub": "a\\u0000b\\nc\\u001b[2Jd\\u2028e\\ud800",'
    ' "aud": {"nested": {"deep": [1, 2, {"x": null}]}}, "jti": ["j"],'
    f' "exp": {10**30}, "iat": NaN, "nbf": -Infinity}}'
)
HOSTILE_HEADER = '{"alg": "HS256", "kid": 123456789012345678901234567890, "typ": 1e400}'


def test_hostile_claims_render_with_every_renderer() -> None:
    """Control characters, 10 KB strings, huge ints, nested objects and NaN render everywhere."""
    token = hs256_raw(HOSTILE_HEADER, HOSTILE_CLAIMS)
    hostile = RequestFacts("GET\x00", "/orders\x1b[31m" + "p" * 300, "::1", "ua\r\nX: y", "r\x07")
    log = AuthEventLog(fingerprint_key=FINGERPRINT_KEY)
    with capture_logs() as logs:
        log.rejected(AuthFailure(Reason.BAD_SIGNATURE, scopes=["s\n"]), hostile, token)
    [event] = logs
    for name, value in event.items():
        if name != "log_level":
            check_safe_value(value)
    expected = {
        "iss": "i" * 197 + "...",
        "sub": "abc[2Jde",
        "aud": "{'nested': {'deep': [1, 2, {'x': None}]}}",
        "jti": ["j"],
        "exp": "1" + "0" * 30,
        "iat": "nan",
        "nbf": "-inf",
        "kid": "123456789012345678901234567890",
        "typ": "inf",
        "method": "GET",
        "user_agent": "uaX: y",
        "request_id": "r",
    }
    assert expected == {k: event[k] for k in expected}
    assert "/orders[31m" + "p" * 186 + "..." == event["path"]
    for line in render_everywhere(event):
        assert "\n" not in line
        assert token not in line


def test_absurd_times_give_renderer_safe_time_fields() -> None:
    """An exp or nbf of 1e19 seconds away gives stringified, not 64-bit-overflowing, durations."""
    token = hs256_raw({"alg": "HS256"}, {"exp": -1e300, "nbf": 1.8446744075505484e19})
    with capture_logs() as logs:
        AuthEventLog().rejected(AuthFailure(Reason.EXPIRED), FACTS, token)
    [event] = logs
    assert (str, str) == (type(event["expired_for_s"]), type(event["not_before_in_s"]))
    render_everywhere(event)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["iss", "sub", "aud", "jti", "exp", "iat", "nbf", "other"]), json_values
    ),
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku"]), json_values),
)
def test_any_claims_render_with_every_renderer(
    payload: dict[str, Any], header: dict[str, Any]
) -> None:
    """Whatever JSON a token carries in its header and claims, every renderer renders the event."""
    token = hs256_raw(json.dumps(header), json.dumps(payload))
    with capture_logs() as logs:
        AuthEventLog(fingerprint_key=FINGERPRINT_KEY).rejected(
            AuthFailure(Reason.BAD_SIGNATURE), FACTS, token
        )
    [event] = logs
    for line in render_everywhere(event):
        assert token not in line


# -- the token never appears ---------------------------------------------------------------

_PREFIXES = ["Bearer ", "bearer ", "Bearer  ", 'Bearer "', "Bearer:", "Bearer=", "Basic ", ""]
_SUFFIXES = ["", '"', " trailing", ", Bearer other", "\t"]
# Header values a client can send (latin-1, no CR or LF).
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)


class AlwaysFails(ScriptedVerifier):
    """A verifier refusing every token for one reason."""

    def __init__(self, reason: Reason) -> None:
        """Remember the reason."""
        super().__init__({})
        self.reason = reason

    def verify(self, _token: str) -> dict[str, Any]:
        """Refuse the token."""
        raise AuthFailure(self.reason)


@st.composite
def presented_tokens(draw: st.DrawFn) -> str:
    """A random b64token-alphabet string of 20+ characters, or a JWT with random claims."""
    if draw(st.booleans()):
        return draw(st.text(B64TOKEN_CHARS, min_size=20, max_size=120))
    sub = draw(st.text(max_size=30))
    return hs256_raw({"alg": "HS256", "kid": draw(st.text(max_size=10))}, claims(sub=sub))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    token=presented_tokens(),
    reason=st.sampled_from(Reason),
    prefix=st.sampled_from(_PREFIXES),
    suffix=st.sampled_from(_SUFFIXES),
    user_agent=_HEADER_TEXT,
    request_id=_HEADER_TEXT,
    forwarded=_HEADER_TEXT,
)
def test_token_never_appears_in_a_rendered_line(  # noqa: PLR0917 - one argument per drawn part
    token: str,
    reason: Reason,
    prefix: str,
    suffix: str,
    user_agent: str,
    request_id: str,
    forwarded: str,
) -> None:
    """Random tokens, however presented, never show up in any rendered line, for any reason."""
    assume(all(token not in value for value in (user_agent, request_id, forwarded)))
    app = InvalidTokenMiddleware(
        ok_asgi,
        verifier=AlwaysFails(reason),
        **middleware_options(client_ip_header="x-forwarded-for"),
    )
    headers = [
        ("authorization", prefix + token + suffix),
        ("user-agent", user_agent),
        ("x-request-id", request_id),
        ("x-forwarded-for", forwarded),
        ("cookie", f"session={token}"),
    ]
    with capture_logs() as logs:
        call_asgi(app, [("/orders", [(k.encode(), v.encode("latin-1")) for k, v in headers])])
    assert 1 == len(rejected_events(logs))
    for event in logs:
        for line in render_everywhere(event):
            assert token not in line


# -- OpenTelemetry field names ---------------------------------------------------------


@pytest.mark.parametrize("event_name", ["auth_rejected", "auth_accepted"])
def test_otel_field_names_renames_the_library_events(event_name: str) -> None:
    """otel_field_names renames the request fields of auth_rejected and auth_accepted."""
    event = {"event": event_name, **dict.fromkeys(OTEL_FIELD_NAMES, "v"), "kid": "k"}
    expected = {"event": event_name, **dict.fromkeys(OTEL_FIELD_NAMES.values(), "v"), "kid": "k"}
    assert expected == otel_field_names(None, "warning", event)


def test_otel_field_names_leaves_other_events_alone() -> None:
    """Events other than the library's pass through otel_field_names untouched."""
    event = {"event": "order_created", "path": "/orders", "status": 201}
    assert {"event": "order_created", "path": "/orders", "status": 201} == otel_field_names(
        None, "info", event
    )


def test_otel_field_names_matches_the_semantic_conventions() -> None:
    """The renames are the OpenTelemetry semantic-convention (and ECS) attribute names."""
    expected = {
        "method": "http.request.method",
        "path": "url.path",
        "client_ip": "client.address",
        "user_agent": "user_agent.original",
        "status": "http.response.status_code",
        "reason": "error.type",
        "request_id": "http.request.id",
        # A string "error" beside error.type collides with ECS's error object.
        "error": "invalidtoken.error",
    }
    assert expected == OTEL_FIELD_NAMES


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_token_refused_at_extraction_is_still_fingerprinted(adapter: str) -> None:
    """A quoted token never reaches the verifier, yet its event carries a fingerprint."""
    presented = '"eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJlLXN0YW5kLWlu"'
    headers = [("Authorization", f"Bearer {presented}")]
    with capture_logs() as events:
        if adapter == "asgi":
            call_asgi(asgi_middleware([]), [("/orders", headers)])
        else:
            call_wsgi(wsgi_middleware([]), [("/orders", headers)])
    expected_fp = hmac.new(FINGERPRINT_KEY, presented.encode(), hashlib.sha256).hexdigest()[:16]
    [event] = [e for e in events if e["event"] == "auth_rejected"]
    assert ("malformed_token", expected_fp) == (event["reason"], event["token_fingerprint"])
    assert presented.strip('"') not in json.dumps(event)
