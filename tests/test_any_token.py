"""AnyTokenVerifier: JWS-shaped tokens to the JWT verifier, everything else to the opaque one.

The JWT member is a real :class:`JWTVerifier` (keys from a ``LocalIssuer``'s JWKS over
HTTP). The opaque member is :class:`StandInOpaque`, a test double written here for
routing only: it knows a fixed table of opaque strings and records which method was
called, so a test can see which member verified a token and whether the async or the
sync path was taken. Served by uvicorn (Starlette, ``verify_async``) and waitress
(Flask, ``verify``).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

import pytest

from invalidtoken_mw import (
    AnyTokenVerifier,
    AuthFailure,
    JWTVerifier,
    MultiIssuerVerifier,
    Reason,
)
from invalidtoken_mw.explain import explain
from invalidtoken_mw.testing import LocalIssuer
from support.servers import claims_on_uvicorn, claims_on_waitress, client

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Iterator

    Serve = Callable[[AnyTokenVerifier], contextlib.AbstractContextManager[str]]

OPAQUE = "Wq3vJ9xTnR2bLk7pZcYh0sDfGmUe5aKo"  # the one the stand-in knows; fixed: a test id
OPAQUE_CLAIMS = {"sub": "service-a", "scope": "orders.read", "client_id": "svc"}


class StandInOpaque:
    """A test double of an opaque-token verifier (for routing only, no introspection).

    Accepts :data:`OPAQUE` with :data:`OPAQUE_CLAIMS`; refuses every other token
    ``revoked``, a reason the JWT verifier never gives an unrevoked token, so a test
    can tell which member refused it. ``calls`` records ``("verify" | "verify_async",
    token)`` in order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refreshed = 0

    def _answer(self, token: str) -> dict[str, Any]:
        if token != OPAQUE:
            raise AuthFailure(Reason.REVOKED)
        return dict(OPAQUE_CLAIMS)

    def verify(self, token: str) -> dict[str, Any]:
        self.calls.append(("verify", token))
        return self._answer(token)

    async def verify_async(self, token: str) -> dict[str, Any]:
        self.calls.append(("verify_async", token))
        await asyncio.sleep(0)
        return self._answer(token)

    def refresh_keys(self) -> None:
        self.refreshed += 1


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(audience="api://orders") as running:
        yield running


@pytest.fixture
def opaque() -> StandInOpaque:
    return StandInOpaque()


@pytest.fixture
def verifier(issuer: LocalIssuer, opaque: StandInOpaque) -> AnyTokenVerifier:
    return AnyTokenVerifier(jwt=issuer.verifier(), opaque=opaque)


# -- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "route"),
    [
        ("eyJh.eyJz.c2ln", "jwt"),
        ("eyJh.eyJz.", "jwt"),  # an empty signature is the JWT verifier's to refuse
        ("a.b", "opaque"),
        ("a.b.c.d.e", "opaque"),  # a JWE (five parts) is not a JWS
        ("a..c", "opaque"),
        (".b.c", "opaque"),
        ("a.b.c/", "opaque"),  # b64token characters outside base64url
        ("ya29.a0AfB_byC", "opaque"),
        (OPAQUE, "opaque"),
    ],
)
def test_a_token_goes_to_the_member_its_shape_picks(
    verifier: AnyTokenVerifier, token: str, route: str
) -> None:
    """Three non-empty base64url segments (the last may be empty) are a JWT; nothing else is."""
    assert getattr(verifier, route) is verifier.verifier_for(token)
    assert getattr(verifier, route) is verifier.verifier_for(token)  # from the memo


def test_both_kinds_are_verified_by_their_member_sync_and_async(
    issuer: LocalIssuer, verifier: AnyTokenVerifier, opaque: StandInOpaque
) -> None:
    """A JWT never reaches the opaque member; an opaque token never reaches the JWT one."""
    token = issuer.token(sub="alice")
    assert "alice" == verifier.verify(token)["sub"]
    assert "alice" == asyncio.run(verifier.verify_async(token))["sub"]
    assert [] == opaque.calls
    assert OPAQUE_CLAIMS == verifier.verify(OPAQUE)
    assert OPAQUE_CLAIMS == asyncio.run(verifier.verify_async(OPAQUE))
    assert [("verify", OPAQUE), ("verify_async", OPAQUE)] == opaque.calls


def test_each_member_refuses_with_its_own_reason(
    issuer: LocalIssuer, verifier: AnyTokenVerifier, opaque: StandInOpaque
) -> None:
    """A forged JWT is the JWT verifier's bad_signature; an unknown string the opaque one's."""
    header, payload, signature = issuer.token().split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    with pytest.raises(AuthFailure) as jwt_refusal:
        verifier.verify(forged)
    with pytest.raises(AuthFailure) as opaque_refusal:
        asyncio.run(verifier.verify_async("not-a-known-token"))
    assert Reason.BAD_SIGNATURE is jwt_refusal.value.reason
    assert Reason.REVOKED is opaque_refusal.value.reason
    assert [("verify_async", "not-a-known-token")] == opaque.calls


def test_the_route_memo_is_bounded(verifier: AnyTokenVerifier) -> None:
    """Many distinct tokens never grow the remembered routes past their bound."""
    for _ in range(600):
        verifier.verifier_for(secrets.token_urlsafe(24))
    assert 0 < len(verifier._routes) <= 256  # noqa: SLF001 - the bound is the point
    verifier.verifier_for("x" * 5000)  # too long to remember: routed, not stored
    assert "x" * 5000 not in verifier._routes  # noqa: SLF001


# -- construction -------------------------------------------------------------------------


def test_members_must_be_token_verifiers(issuer: LocalIssuer, opaque: StandInOpaque) -> None:
    """A member without verify() and verify_async() is a TypeError naming the argument."""
    jwt = issuer.verifier()
    with pytest.raises(TypeError, match=r"^opaque must be a TokenVerifier .* Got str\.$"):
        AnyTokenVerifier(jwt=jwt, opaque="https://id.example/introspect")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^jwt must be a TokenVerifier .*JWTVerifier"):
        AnyTokenVerifier(jwt=object(), opaque=opaque)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="same verifier"):
        AnyTokenVerifier(jwt=jwt, opaque=jwt)
    with pytest.raises(TypeError):
        AnyTokenVerifier(jwt, opaque)  # type: ignore[call-arg] # keyword-only: no order to mix up


def test_repr_names_the_member_types_only(verifier: AnyTokenVerifier) -> None:
    assert "AnyTokenVerifier(jwt=JWTVerifier, opaque=StandInOpaque)" == repr(verifier)


# -- refresh_keys and explain ---------------------------------------------------------------


def test_refresh_keys_reaches_each_member_that_has_it(
    issuer: LocalIssuer, verifier: AnyTokenVerifier, opaque: StandInOpaque
) -> None:
    """The JWT member fetches its JWKS again; the opaque member's own refresh is called."""
    before = issuer.requests["/jwks"]
    verifier.refresh_keys()
    asyncio.run(verifier.refresh_keys_async())  # the stand-in has no async refresh: skipped
    assert (before + 2, 1) == (issuer.requests["/jwks"], opaque.refreshed)


def test_refresh_keys_raises_a_members_failure_after_trying_both(
    issuer: LocalIssuer, verifier: AnyTokenVerifier, opaque: StandInOpaque
) -> None:
    issuer.available = False
    with pytest.raises(AuthFailure) as refused:
        verifier.refresh_keys()
    assert (Reason.KEY_UNAVAILABLE, 1) == (refused.value.reason, opaque.refreshed)
    with pytest.raises(AuthFailure):
        asyncio.run(verifier.refresh_keys_async())


def test_explain_takes_a_jwt_apart_and_gives_an_opaque_tokens_verdict(
    issuer: LocalIssuer, verifier: AnyTokenVerifier
) -> None:
    """A JWT gets the JWT verifier's checks; an opaque token its member's verdict."""
    jwt_report = explain(verifier, issuer.token(sub="alice"))
    accepted = explain(verifier, OPAQUE)
    refused = explain(verifier, "not-a-known-token")
    assert jwt_report.valid
    assert "signature" in [check.name for check in jwt_report.checks]
    assert (True, OPAQUE_CLAIMS, ["kind", "verify"]) == (
        accepted.valid,
        accepted.claims,
        [check.name for check in accepted.checks],
    )
    assert "verified by StandInOpaque" in accepted.checks[0].detail
    assert refused.failure is not None
    assert (Reason.REVOKED, False) == (refused.failure.reason, refused.checks[1].passed)


def test_explain_follows_a_multi_issuer_jwt_member(
    issuer: LocalIssuer, opaque: StandInOpaque
) -> None:
    both = AnyTokenVerifier(jwt=MultiIssuerVerifier([issuer.verifier()]), opaque=opaque)
    report = explain(both, issuer.token())
    assert report.valid
    assert "iss" in [check.name for check in report.checks]


# -- through real servers ---------------------------------------------------------------------


SERVE: dict[
    str, tuple[Callable[[AnyTokenVerifier], contextlib.AbstractContextManager[str]], str]
] = {
    "uvicorn": (claims_on_uvicorn, "verify_async"),
    "waitress": (claims_on_waitress, "verify"),
}


@pytest.mark.parametrize("server", sorted(SERVE))
def test_one_middleware_serves_both_kinds(
    issuer: LocalIssuer, verifier: AnyTokenVerifier, opaque: StandInOpaque, server: str
) -> None:
    """JWT and opaque token each 200 with their claims; each member's refusal its own 401."""
    serve, method = SERVE[server]
    jwt_token = issuer.token(sub="alice")
    with serve(verifier) as base, client(base) as http:
        answers = {
            name: http.get("/me", headers={"Authorization": f"Bearer {token}"})
            for name, token in {
                "jwt": jwt_token,
                "opaque": OPAQUE,
                "unknown": "an-unknown-opaque-token",
                "broken-jwt": "eyJh.eyJz.c2ln",
            }.items()
        }
    assert (200, "alice") == (answers["jwt"].status_code, answers["jwt"].json()["sub"])
    assert (200, OPAQUE_CLAIMS) == (answers["opaque"].status_code, answers["opaque"].json())
    assert (401, "revoked") == (answers["unknown"].status_code, answers["unknown"].json()["reason"])
    assert (401, "malformed_token") == (
        answers["broken-jwt"].status_code,
        answers["broken-jwt"].json()["reason"],
    )
    assert 'error="invalid_token"' in answers["unknown"].headers["www-authenticate"]
    # Only the two opaque tokens reached the stand-in, by the server's own path.
    assert [(method, OPAQUE), (method, "an-unknown-opaque-token")] == opaque.calls


def test_a_jwt_verifier_alone_is_unchanged(issuer: LocalIssuer) -> None:
    """Without AnyTokenVerifier an opaque token stays malformed_token (what it was before)."""
    plain: JWTVerifier = issuer.verifier()
    with pytest.raises(AuthFailure) as refused:
        plain.verify(OPAQUE)
    assert Reason.MALFORMED_TOKEN is refused.value.reason
