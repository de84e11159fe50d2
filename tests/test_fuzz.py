"""Fuzzing the core and both middlewares with Hypothesis: bad input never crashes, leaks or lies.

Every drawn request (raw ``Authorization`` bytes, query strings and form bodies, JWTs
built from hostile JOSE headers and claims; strategies in :mod:`support.strategies`) goes
through the sans-IO core, the ASGI middleware (called directly with raw header bytes)
and the WSGI middleware (called with a raw environ). Each answer must be:

- never a 5xx and never an exception escaping;
- for a refusal, a status matching its reason, a challenge that parses under RFC 9110
  and the RFC 9457 body;
- the verdict of the core for the same input, and byte for byte the same from both
  middlewares;
- free of the token, with exactly one ``auth_rejected`` event and no other event,
  counted exactly once in ``stats()``.

The number of examples comes from the Hypothesis profile: 100 per test by default,
many more with ``INVALIDTOKEN_FUZZ_PROFILE=long`` (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from invalidtoken_mw import (
    Accepted,
    Guard,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
    Rejected,
)
from invalidtoken_mw._sentences import Sentence
from support import direct
from support.direct import Request, folded
from support.rejections import ok_asgi, ok_wsgi
from support.strategies import (
    FUZZ_REVOKED_JTI,
    FUZZ_SCOPE,
    SECRET_MARKER,
    check_challenge,
    fuzz_tokens,
    query_strings,
    raw_authorizations,
)
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, hs256_raw

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

REALM = "orders"
FORM = "application/x-www-form-urlencoded"
BODY_MEMBERS = {"type", "title", "status", "detail", "error", "error_description", "reason"}
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _store() -> MemoryRevocationStore:
    store = MemoryRevocationStore()
    store.revoke(jti=FUZZ_REVOKED_JTI, issuer=ISSUER, expires_at=2**40)
    return store


STORE = _store()


def _verifier(**options: Any) -> JWTVerifier:
    return JWTVerifier(
        key=SECRET,
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        revocation=STORE,
        **options,
    )


@dataclass(frozen=True)
class Stack:
    """One middleware configuration: its ASGI and WSGI middlewares and the core they share.

    The core oracle's verifier has no caches, so its verdict is always computed afresh.
    """

    name: str
    asgi: InvalidTokenMiddleware
    wsgi: InvalidTokenWSGIMiddleware
    core: Guard


def _stack(name: str, **options: Any) -> Stack:
    common: dict[str, Any] = {"realm": REALM, "log_rate_limit": None, **options}
    return Stack(
        name,
        InvalidTokenMiddleware(ok_asgi, verifier=_verifier(), **common),
        InvalidTokenWSGIMiddleware(ok_wsgi, verifier=_verifier(), **common),
        Guard(verifier=_verifier(cache_size=0), **common),
    )


STRICT = _stack("strict", scopes=[FUZZ_SCOPE])
RELAXED = _stack("relaxed", optional=True, allow_query_token=True, allow_body_token=True)
STACKS = st.sampled_from([STRICT, RELAXED])


@dataclass(frozen=True)
class Answer:
    """What a middleware sent back, and what it logged."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    events: list[dict[str, Any]]


def call_asgi(app: InvalidTokenMiddleware, request: Request) -> Answer:
    """Call the ASGI middleware directly with the request's raw header bytes."""
    with capture_logs() as events:
        answer = direct.call_asgi(app, request)
    return Answer(answer.status, answer.headers, answer.body, [dict(e) for e in events])


def call_wsgi(app: InvalidTokenWSGIMiddleware, request: Request) -> Answer:
    """Call the WSGI middleware with a raw PEP 3333 environ (latin-1 strings)."""
    with capture_logs() as events:
        answer = direct.call_wsgi(app, request)
    return Answer(answer.status, answer.headers, answer.body, [dict(e) for e in events])


@dataclass(frozen=True)
class View:
    """The guard's view of a drawn request (a ``RequestView``), with no adapter in between."""

    authorization: Sequence[str]
    request: Request

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def path(self) -> str:
        return self.request.path

    def header(self, name: str) -> str | None:
        lines = self.field_lines(name)
        return lines[0] if lines else None

    def field_lines(self, name: str) -> list[str]:
        if name == "authorization":
            return list(self.authorization)
        value = {"content-type": self.request.content_type, "accept": self.request.accept}.get(name)
        return [] if value is None else [value]

    def query_string(self) -> str:
        return self.request.query.decode("latin-1")

    def full_path(self) -> str:
        return self.request.path

    def peer(self) -> str | None:
        return None

    def read_form(self) -> str | None:
        return self.request.body.decode("latin-1")


class AsyncView(View):
    """:class:`View` for ``authenticate_async``."""

    async def read_form(self) -> str | None:  # type: ignore[override]
        return self.request.body.decode("latin-1")


def decide(guard: Guard, view: View, *, use_async: bool = False) -> Accepted | Rejected:
    """The guard's own decision, its log events captured (and dropped)."""
    with capture_logs():
        if use_async:
            return asyncio.run(
                guard.authenticate_async(AsyncView(view.authorization, view.request))
            )
        return guard.authenticate(view)


def core_verdict(stack: Stack, authorization: Sequence[str], request: Request) -> str:
    """What the sans-IO core alone decides: ``"ok"``, ``"anonymous"`` or a reason value."""
    outcome = decide(stack.core, View(authorization, request))
    if isinstance(outcome, Rejected):
        assert outcome.failure is not None
        return outcome.failure.reason.value
    return "anonymous" if outcome.claims is None else "ok"


# -- the oracle ----------------------------------------------------------------------------


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The counters that changed, and by how much."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def fixed_vocabulary(answer: Answer) -> list[str]:
    """Text an answer carries whatever the token: names of headers, members and log fields,
    and every fixed sentence and title."""
    names = [name for name, _ in answer.headers]
    # Header values the middleware sets whatever the token ("application/json", "no-store").
    names += [value for name, value in answer.headers if name.lower() != "www-authenticate"]
    names += [key for event in answer.events for key in event]
    with contextlib.suppress(ValueError):
        body = json.loads(answer.body or b"{}")
        names += list(body) if isinstance(body, dict) else []
    fixed = [r.description for r in Reason] + [r.problem_title for r in Reason]
    fixed += [r.value for r in Reason]
    fixed += [v for k, v in vars(Sentence).items() if not k.startswith("_") and isinstance(v, str)]
    return names + fixed


def check_answer(answer: Answer, request: Request, secrets: Sequence[str]) -> str:
    """Assert ``answer`` is a correct, leak-free answer; return ``"ok"`` or the reason value."""
    assert answer.status in {200, 400, 401, 403}, answer
    written = repr(answer.headers) + answer.body.decode("latin-1") + repr(answer.events)
    vocabulary = fixed_vocabulary(answer)
    # A fragment that is part of what the middleware writes whatever the token (a token
    # spelled "error_descriptio" is in every body's "error_description") is not a leak.
    leaked = [s for s in secrets if s in written and not any(s in v for v in vocabulary)]
    assert [] == leaked
    for event in answer.events:
        json.dumps(event)  # renderable by any JSON renderer
    if answer.status == 200:
        assert (b"ok", []) == (answer.body, answer.events)
        return "ok"
    [event] = answer.events
    reason = Reason(event["reason"])
    assert ("auth_rejected", reason.status, reason.status) == (
        event["event"],
        event["status"],
        answer.status,
    )
    headers: dict[str, str] = {}
    for name, value in answer.headers:
        assert name not in headers, answer.headers
        headers[name] = value
    assert "no-store" == headers["cache-control"]
    params = check_challenge(headers["www-authenticate"])
    expected_params = {"realm"} if reason.error is None else {"realm", "error", "error_description"}
    assert (expected_params, reason.error) == (set(params) - {"scope"}, params.get("error"))
    if request.method == "HEAD":  # the headers of the GET answer, Content-Length too
        assert b"" == answer.body
    else:
        assert str(len(answer.body)) == headers["content-length"]
        document = json.loads(answer.body)
        assert (BODY_MEMBERS, reason.value, answer.status) == (
            set(document),
            document["reason"],
            document["status"],
        )
    return reason.value


def token_fragments(token: str) -> list[str]:
    """What must never be echoed: the token and each of its parts, of 16 or more characters."""
    return [part for part in {token, *token.split(".")} if len(part) >= 16]


def checked(
    app: InvalidTokenMiddleware | InvalidTokenWSGIMiddleware,
    answer_of: Callable[[], Answer],
    expected: str,
    request: Request,
    secrets: Sequence[str],
) -> tuple[str, Answer]:
    """Get one middleware's answer; check it, its count in ``stats()`` and the core's verdict."""
    before = app.stats()
    answer = answer_of()
    outcome = check_answer(answer, request, secrets)
    counted = "accepted" if outcome == "ok" else outcome
    assert ({counted: 1}, "ok" if expected == "anonymous" else expected) == (
        stats_delta(before, app.stats()),
        outcome,
    )
    return outcome, answer


def run_both(
    stack: Stack, request: Request, secrets: Sequence[str]
) -> tuple[tuple[str, Answer], tuple[str, Answer]]:
    """Send ``request`` through both middlewares: ``(outcome, answer)`` of ASGI, then WSGI."""
    lines = [v.decode("latin-1") for v in request.authorization]
    one_line = folded(request.authorization)
    asgi = checked(
        stack.asgi,
        lambda: call_asgi(stack.asgi, request),
        core_verdict(stack, lines, request),
        request,
        secrets,
    )
    wsgi = checked(
        stack.wsgi,
        lambda: call_wsgi(stack.wsgi, request),
        core_verdict(stack, [] if one_line is None else [one_line], request),
        request,
        secrets,
    )
    return asgi, wsgi


def assert_same_bytes(asgi: Answer, wsgi: Answer) -> None:
    """Both middlewares answered a refusal with the same status, headers and body."""
    if asgi.status != 200 or wsgi.status != 200:
        assert (asgi.status, asgi.headers, asgi.body) == (wsgi.status, wsgi.headers, wsgi.body)


# -- the properties -----------------------------------------------------------------------


def core_outcome(guard: Guard, authorization: str, *, use_async: bool) -> str:
    """Decide with the core alone; check the answer to any failure."""
    outcome = decide(guard, View([authorization], Request()), use_async=use_async)
    if isinstance(outcome, Rejected):
        assert outcome.failure is not None
        check_challenge(dict(outcome.answer.headers)["www-authenticate"])
        assert SECRET_MARKER not in outcome.answer.body.decode()
        return outcome.failure.reason.value
    return "ok"


@FUZZ
@given(raw=raw_authorizations(), tokens=st.lists(fuzz_tokens(), max_size=2))
def test_core_only_ever_raises_auth_failure(raw: bytes, tokens: list[str]) -> None:
    """The guard decides any value, sync and async alike, the same way, and never raises."""
    for value in [raw.decode("latin-1"), *(f"Bearer {t}" for t in tokens)]:
        sync = core_outcome(STRICT.core, value, use_async=False)
        assert sync == core_outcome(STRICT.core, value, use_async=True)


@FUZZ
@given(
    stack=STACKS,
    values=st.lists(raw_authorizations(), min_size=1, max_size=3),
    method=st.sampled_from(["GET", "GET", "POST", "HEAD"]),
    accept=st.sampled_from([None, "application/problem+json", "*/*", "application/json;q=0"]),
)
def test_raw_authorization_bytes_through_both_middlewares(
    stack: Stack, values: list[bytes], method: str, accept: str | None
) -> None:
    """Any Authorization bytes, one to three lines, get a correct leak-free answer from both."""
    request = Request(tuple(values), method=method, accept=accept)
    (_, asgi), (_, wsgi) = run_both(stack, request, [SECRET_MARKER])
    if len(values) == 1:
        assert_same_bytes(asgi, wsgi)


PARAMETER_REQUESTS = st.builds(
    Request,
    authorization=st.sampled_from([(), (b"Bearer " + SECRET_MARKER.encode() + b"abc",)]),
    query=query_strings(),
    body=query_strings(),
    method=st.sampled_from(["GET", "POST", "PUT"]),
    content_type=st.sampled_from([None, FORM, f"{FORM}; charset=utf-8", "text/plain"]),
)


@FUZZ
@given(stack=STACKS, request=PARAMETER_REQUESTS)
def test_query_strings_and_form_bodies_through_both_middlewares(
    stack: Stack, request: Request
) -> None:
    """Any query string and form body, with or without a header token, are answered correctly."""
    (_, asgi), (_, wsgi) = run_both(stack, request, [SECRET_MARKER])
    assert_same_bytes(asgi, wsgi)


def _deeply_nested_claims(depth: int) -> str:
    """A validly signed token whose extra claim nests ``depth`` lists deep."""
    payload = json.dumps(claims(scope=FUZZ_SCOPE))[:-1] + f', "deep": {"[" * depth}{"]" * depth}}}'
    return hs256_raw({"alg": "HS256"}, payload)


@FUZZ
@given(stack=STACKS, token=fuzz_tokens(), scheme=st.sampled_from(["Bearer ", "bearer  "]))
@example(stack=STRICT, token=_deeply_nested_claims(480), scheme="Bearer ")
@example(stack=RELAXED, token=_deeply_nested_claims(900), scheme="Bearer ")
# Found by the long run: a "token" that is part of a fixed member name is not a leak.
@example(stack=STRICT, token="error_descriptio", scheme="Bearer ")
@example(stack=STRICT, token="application/json", scheme="Bearer ")
def test_jwt_tokens_through_both_middlewares(stack: Stack, token: str, scheme: str) -> None:
    """JWTs from hostile JOSE headers and claims get the core's verdict from both, never echoed."""
    request = Request(((scheme + token).encode("latin-1"),))
    (asgi_outcome, asgi), (wsgi_outcome, wsgi) = run_both(stack, request, token_fragments(token))
    assert asgi_outcome == wsgi_outcome
    assert_same_bytes(asgi, wsgi)


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (10, "ok"),
        (63, "ok"),
        (64, "malformed_token"),
        (480, "malformed_token"),
        (2000, "malformed_token"),
    ],
)
def test_deeply_nested_claims_are_refused_past_64_levels(depth: int, expected: str) -> None:
    """Claims nested past 64 levels are malformed_token in both middlewares, never a 500."""
    token = _deeply_nested_claims(depth)
    request = Request((f"Bearer {token}".encode(),))
    for _ in range(2):  # the second request is answered from the verifier's caches
        (asgi_outcome, _), (wsgi_outcome, _) = run_both(STRICT, request, token_fragments(token))
        assert (expected, expected) == (asgi_outcome, wsgi_outcome)
