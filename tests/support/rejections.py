"""One rejected request per reason, and the small apps the log and metrics tests send them to.

:func:`rejections` builds, for every :class:`~invalidtoken_mw.Reason`, the request that
makes the middleware refuse for that reason. Tokens look like the samples in
``docs/logging.md`` (header ``alg``/``kid``/``typ``; claims ``iss``, ``sub``, ``aud``,
``jti``, ``exp``, ``iat``); a :class:`ScriptedVerifier` gives each one its verdict, so
every reason is reached without a JWKS server or a revocation store. Insufficient scope
comes from the middleware's own ``scopes`` check, extraction failures from the extractor.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from werkzeug.test import Client

from invalidtoken_mw import AuthFailure, InvalidTokenMiddleware, InvalidTokenWSGIMiddleware, Reason
from support.tokens import hs256_raw

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from invalidtoken_mw.asgi import Receive, Scope, Send

PEER = ("203.0.113.7", 50123)
USER_AGENT = "curl/8.5.0"
REQUEST_ID = "9f1c2e"
FINGERPRINT_KEY = b"fingerprint-key-for-the-log-tests"
REQUIRED_SCOPE = "orders:write"
EXPIRED_FOR_S = 754
# Far enough ahead that module-level cases built at collection stay not yet valid for
# the whole run (the suite takes minutes; 300 s ran out once it passed five).
NOT_BEFORE_IN_S = 86_400
DOC_HEADER = {"alg": "HS256", "kid": "2026-11", "typ": "JWT"}

BASE_FIELDS = frozenset({"event", "reason", "error", "status", "method", "path", "client_ip"})
"""Fields every ``auth_rejected`` event carries (``log_level`` is added by capture_logs)."""
PEEKED_FIELDS = frozenset({"alg", "kid", "typ", "iss", "sub", "aud", "jti", "exp", "iat"})
"""The untrusted header fields and claims read from the documentation-like tokens."""

Headers = list[tuple[str, str]]


DOC_LIFETIME_S = 660  # the documentation samples' tokens: eleven minutes
LIVE_LIFETIME_S = 86_400  # tokens built when a test module is collected: the whole run


def doc_claims(now: int, lifetime: int = DOC_LIFETIME_S, **overrides: Any) -> dict[str, Any]:
    """Claims like those of the documentation samples, valid for ``lifetime`` from ``now``."""
    claims: dict[str, Any] = {
        "iss": "https://id.example.com/",
        "sub": "user-42",
        "aud": "api://orders",
        "jti": "a1b2",
        "exp": now + lifetime,
        "iat": now,
    }
    claims.update(overrides)
    return claims


def doc_token(reason: Reason, now: int, lifetime: int = DOC_LIFETIME_S, **overrides: Any) -> str:
    """A documentation-like token; the signing secret differs per reason, so tokens differ."""
    secret = reason.value.encode().ljust(32, b"-")
    return hs256_raw(DOC_HEADER, doc_claims(now, lifetime, **overrides), secret)


@dataclass(frozen=True)
class Rejection:
    """A request refused for ``reason``: the Authorization values it sends, the token seen.

    ``verdict`` is what the scripted verifier answers for ``token``: a reason to raise,
    or ``None`` for valid claims (then the middleware's scope check refuses it).
    """

    reason: Reason
    authorization: tuple[str, ...]
    token: str | None
    verdict: Reason | None = None
    extra_fields: frozenset[str] = frozenset()

    def headers(self, *more: tuple[str, str]) -> Headers:
        """The request headers: user agent, request id, each Authorization value, ``more``."""
        result = [("user-agent", USER_AGENT), ("x-request-id", REQUEST_ID)]
        result += [("authorization", value) for value in self.authorization]
        return result + list(more)

    def expected_fields(self, *, guarded: bool = True) -> frozenset[str]:
        """The exact field names of this rejection's event (without ``log_level``).

        ``guarded``: logged by the guard (a middleware), which adds the ``token_kind``
        of a token it found; an :class:`AuthEventLog` called directly has none.
        """
        fields = BASE_FIELDS | {"user_agent", "request_id"} | self.extra_fields
        if self.token is not None:
            fields |= {"token_fingerprint", "signature_verified"}
            if guarded:
                fields |= {"token_kind"}
        # Each logged epoch time has its ISO 8601 twin.
        return fields | {f"{name}_at" for name in ("exp", "iat", "nbf") if name in fields}


# Fields the failure's context adds to the event, for reasons added later (one entry each).
_MORE_FIELDS: dict[Reason, frozenset[str]] = {
    Reason.INSUFFICIENT_USER_AUTHENTICATION: frozenset({"required_acr_values", "token_acr"}),
    **{
        reason: frozenset({"dpop_jkt"})
        for reason in (
            Reason.INVALID_DPOP_PROOF,
            Reason.DPOP_REPLAYED,
            Reason.DPOP_NONCE_REQUIRED,
            Reason.DPOP_KEY_MISMATCH,
            Reason.DPOP_REPLAY_UNAVAILABLE,
        )
    },
}


def rejections(now: int | None = None) -> list[Rejection]:
    """One rejection per reason, in ``Reason`` order, with times relative to ``now``.

    Without ``now`` the cases are for live tests, often built when a module is collected:
    their tokens stay valid for a day, not the samples' eleven minutes, so a slow run
    (two suites side by side on a loaded machine) never sees them expire mid-way.
    """
    lifetime = DOC_LIFETIME_S if now is not None else LIVE_LIFETIME_S
    now = int(time.time()) if now is None else now
    cases: list[Rejection] = []
    for reason in Reason:
        if reason is Reason.MISSING_TOKEN:
            cases.append(Rejection(reason, (), None))
        elif reason is Reason.INVALID_REQUEST:
            cases.append(Rejection(reason, ("Bearer abc", "Bearer def"), None))
        elif reason is Reason.MALFORMED_TOKEN:
            cases.append(Rejection(reason, ("Bearer not-a-jwt",), "not-a-jwt", reason))
        else:
            overrides: dict[str, Any] = {}
            extra = set(PEEKED_FIELDS)
            if reason is Reason.EXPIRED:
                overrides = {"exp": now - EXPIRED_FOR_S, "iat": now - EXPIRED_FOR_S - 3600}
                extra.add("expired_for_s")
            elif reason is Reason.NOT_YET_VALID:
                overrides = {"nbf": now + NOT_BEFORE_IN_S, "iat": now + NOT_BEFORE_IN_S}
                extra |= {"nbf", "not_before_in_s"}
            elif reason is Reason.INSUFFICIENT_SCOPE:
                extra.add("missing_scopes")
            elif reason is Reason.WRONG_CLAIM:
                extra.add("claim")
            elif reason is Reason.INSUFFICIENT_ROLE:
                extra.add("missing_roles")
            extra |= _MORE_FIELDS.get(reason, frozenset())
            token = doc_token(reason, now, lifetime, **overrides)
            verdict = None if reason is Reason.INSUFFICIENT_SCOPE else reason
            cases.append(Rejection(reason, (f"Bearer {token}",), token, verdict, frozenset(extra)))
    return cases


# What the verifier (a claim rule) and a route's role check log with these reasons.
SCRIPTED_CONTEXT: dict[Reason, dict[str, object]] = {
    Reason.WRONG_CLAIM: {"claim": "client_id"},
    Reason.INSUFFICIENT_ROLE: {"missing_roles": ["orders-admin"]},
    # A route's step-up check (RFC 9470) refusing a password-only authentication.
    Reason.INSUFFICIENT_USER_AUTHENTICATION: {
        "required_acr_values": ["urn:example:mfa"],
        "token_acr": "urn:example:pwd",
    },
    # The DPoP checks name the proof key's RFC 7638 thumbprint (never the proof).
    **{
        reason: {"dpop_jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
        for reason in (
            Reason.INVALID_DPOP_PROOF,
            Reason.DPOP_REPLAYED,
            Reason.DPOP_NONCE_REQUIRED,
            Reason.DPOP_KEY_MISMATCH,
            Reason.DPOP_REPLAY_UNAVAILABLE,
        )
    },
}


class ScriptedVerifier:
    """A verifier answering each known token with its scripted verdict.

    An unknown token is ``malformed_token``; a ``None`` verdict returns the token's
    claims (read without verification: the verdict is the script's, not the signature's).
    """

    def __init__(self, verdicts: Mapping[str, Reason | None]) -> None:
        """Remember the verdicts."""
        self.verdicts = dict(verdicts)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a token scripted as valid; raise its failure otherwise."""
        verdict = self.verdicts.get(token, Reason.MALFORMED_TOKEN)
        if verdict is not None:
            raise AuthFailure(verdict, context=SCRIPTED_CONTEXT.get(verdict))
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return claims

    async def verify_async(self, token: str) -> dict[str, Any]:
        """Same as :meth:`verify`."""
        return self.verify(token)


def scripted_verifier(cases: Iterable[Rejection], valid: Iterable[str] = ()) -> ScriptedVerifier:
    """A verifier with the verdicts of ``cases``, plus tokens in ``valid`` accepted."""
    verdicts: dict[str, Reason | None] = {c.token: c.verdict for c in cases if c.token}
    verdicts.update(dict.fromkeys(valid))
    return ScriptedVerifier(verdicts)


def middleware_options(**overrides: Any) -> dict[str, Any]:
    """The options the log tests run the middlewares with: a scope, a fixed key, no flood limit."""
    options: dict[str, Any] = {
        "scopes": [REQUIRED_SCOPE],
        "fingerprint_key": FINGERPRINT_KEY,
        "log_rate_limit": None,
    }
    options.update(overrides)
    return options


async def ok_asgi(scope: Scope, _receive: Receive, send: Send) -> None:
    """The protected ASGI application: answers 200 ``ok`` to every http request."""
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def ok_wsgi(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The protected WSGI application: answers 200 ``ok``."""
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]


def asgi_middleware(
    cases: Iterable[Rejection], valid: Iterable[str] = (), **overrides: Any
) -> InvalidTokenMiddleware:
    """The ASGI middleware around :func:`ok_asgi`, scripted for ``cases``."""
    cases = list(cases)
    return InvalidTokenMiddleware(
        ok_asgi, verifier=scripted_verifier(cases, valid), **middleware_options(**overrides)
    )


def wsgi_middleware(
    cases: Iterable[Rejection], valid: Iterable[str] = (), **overrides: Any
) -> InvalidTokenWSGIMiddleware:
    """The WSGI middleware around :func:`ok_wsgi`, scripted for ``cases``."""
    cases = list(cases)
    return InvalidTokenWSGIMiddleware(
        ok_wsgi, verifier=scripted_verifier(cases, valid), **middleware_options(**overrides)
    )


def call_asgi(
    app: Any,
    requests: Sequence[tuple[str, Sequence[tuple[str, str]] | Sequence[tuple[bytes, bytes]]]],
    *,
    client: tuple[str, int] = PEER,
) -> list[httpx.Response]:
    """Send ``(path, headers)`` GET requests to ``app`` in order, from ``client``."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return [await http.get(path, headers=headers) for path, headers in requests]

    return asyncio.run(main())


def call_wsgi(
    app: Any,
    requests: Sequence[tuple[str, Headers]],
    *,
    remote_addr: str = PEER[0],
) -> list[int]:
    """Send ``(path, headers)`` GET requests to ``app`` with werkzeug; return the statuses."""
    client = Client(app)
    statuses = []
    for path, headers in requests:
        response = client.get(path, headers=headers, environ_base={"REMOTE_ADDR": remote_addr})
        statuses.append(response.status_code)
        response.close()
    return statuses
