"""MultiIssuerVerifier and tenant templates, through real issuers and real servers.

Two :class:`LocalIssuer` instances (each with its own keys, one discovered through
``issuer_url``, one configured by ``jwks_url``) and a third serving a multi-tenant
template's keys stand behind one ``MultiIssuerVerifier``, served by uvicorn (Starlette,
``verify_async``) and by waitress (Flask, ``verify``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, g
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    JWTVerifier,
    MultiIssuerVerifier,
    Reason,
    verifier_from_env,
)
from invalidtoken_mw import flask as flask_adapter
from invalidtoken_mw import verify as verify_module
from invalidtoken_mw.explain import explain
from invalidtoken_mw.testing import FakeIssuer, LocalIssuer
from support.discovery_server import DiscoveryServer
from support.servers import client, run_uvicorn, run_waitress
from support.tokens import hs256_raw

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from starlette.requests import Request

T1 = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
T2 = "72f988bf-86f1-41af-91ab-2d7cd011db47"
UNKNOWN_ISSUER = "https://evil.example/"
SAME = "<the tenant in iss>"  # the tid a well-formed token carries


class Issuers:
    """Three local issuers and the one verifier that trusts them all."""

    def __init__(self) -> None:
        self.a = LocalIssuer(audience="api://a")  # discovered (issuer_url)
        self.b = LocalIssuer(audience="api://b")  # configured by jwks_url, same kid names
        self.entra = LocalIssuer(audience="api://t")  # keys of a multi-tenant template
        self.template = f"{self.entra.origin}/{{tenantid}}/v2.0"
        self.verifier = MultiIssuerVerifier(
            [
                self.a.verifier(jwks_timeout=1.0),
                JWTVerifier(
                    jwks_url=self.b.jwks_url,
                    algorithms=["ES256"],
                    issuer=self.b.issuer,
                    audience="api://b",
                    jwks_timeout=1.0,
                ),
                JWTVerifier(
                    jwks_url=self.entra.jwks_url,
                    algorithms=["ES256"],
                    issuer=self.template,
                    tenants=[T1],
                    audience="api://t",
                    jwks_timeout=1.0,
                ),
            ]
        )

    def tenant_token(self, tenant: str, tid: str | None = SAME) -> str:
        """A token from ``tenant``'s issuer; ``tid=None`` leaves the claim out."""
        tid = tenant if tid == SAME else tid
        return self.entra.token(iss=f"{self.entra.origin}/{tenant}/v2.0", tid=tid)

    @property
    def configured(self) -> list[str]:
        """Every configured issuer string, none of which may reach a client or the log."""
        return [self.a.issuer, self.b.issuer, self.template, self.entra.origin, T1]

    def close(self) -> None:
        for issuer in (self.a, self.b, self.entra):
            issuer.close()


@pytest.fixture
def issuers() -> Iterator[Issuers]:
    made = Issuers()
    yield made
    made.close()


def _starlette(verifier: MultiIssuerVerifier) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        claims = request.state.token_claims
        return JSONResponse({"iss": claims["iss"], "aud": claims["aud"]})

    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm="orders")
    return app


def _flask(verifier: MultiIssuerVerifier) -> Flask:
    app = Flask("multi")
    flask_adapter.InvalidToken(app, verifier=verifier, realm="orders")

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"iss": g.token_claims["iss"], "aud": g.token_claims["aud"]}

    return app


def _get(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/me", headers={"Authorization": f"Bearer {token}"})


def _reason(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json().get("reason", "ok")


def _refusals(issuers: Issuers) -> dict[str, tuple[str, str]]:
    """Tokens the composite refuses, with the reason and the exact description."""
    a, b = issuers.a, issuers.b
    return {
        "a-for-b": (a.token(aud="api://b"), "wrong_audience"),
        "b-for-a": (b.token(aud="api://a"), "wrong_audience"),
        "a-signed-by-b": (b.token(iss=a.issuer, aud="api://a"), "bad_signature"),
        "unknown-issuer": (a.token(iss=UNKNOWN_ISSUER), "wrong_issuer"),
        "no-iss": (a.token(iss=None), "wrong_issuer"),
        "other-tenant": (issuers.tenant_token(T2), "wrong_issuer"),
        "tid-mismatch": (issuers.tenant_token(T1, tid=T2), "wrong_issuer"),
        "no-tid": (issuers.tenant_token(T1, tid=None), "missing_claim"),
    }


DESCRIPTIONS = {
    "other-tenant": "The access token was issued by a tenant this service does not trust.",
    "tid-mismatch": "The access token's tid claim does not name the tenant in its iss claim.",
    "no-tid": "The access token lacks the required tid claim.",
    "unknown-issuer": "The access token was issued by an issuer this service does not trust.",
}


def test_under_uvicorn_each_issuer_is_verified_by_its_own_rules(issuers: Issuers) -> None:
    """Each issuer's tokens pass with its own audience; every cross-over is refused."""
    a, b = issuers.a, issuers.b
    refusals = _refusals(issuers)
    with run_uvicorn(_starlette(issuers.verifier)) as base, client(base) as http:
        accepted = [
            _get(http, a.token()).json(),
            _get(http, b.token()).json(),
            _get(http, issuers.tenant_token(T1)).json(),
        ]
        refused = {name: _get(http, token) for name, (token, _) in refusals.items()}
        with capture_logs() as logs:
            _get(http, refusals["unknown-issuer"][0])
    assert accepted == [
        {"iss": a.issuer, "aud": "api://a"},
        {"iss": b.issuer, "aud": "api://b"},
        {"iss": f"{issuers.entra.origin}/{T1}/v2.0", "aud": "api://t"},
    ]
    assert {name: _reason(answer) for name, answer in refused.items()} == {
        name: (401, reason) for name, (_, reason) in refusals.items()
    }
    for name, description in DESCRIPTIONS.items():
        assert refused[name].json()["error_description"] == description
        assert f'error_description="{description}"' in refused[name].headers["www-authenticate"]
    # Nothing configured is ever echoed: not in a body or a header, and the event of an
    # unknown issuer's token names only what the token said.
    [event] = logs
    assert ("wrong_issuer", UNKNOWN_ISSUER) == (event["reason"], event["iss"])
    exposed = [json.dumps([answer.json(), dict(answer.headers)]) for answer in refused.values()]
    for text in [*exposed, json.dumps(event, default=str)]:
        for configured in issuers.configured:
            assert configured not in text
    # Discovery for A, and each issuer's own key set fetched once.
    assert [1, 1, 1] == [i.requests["/jwks"] for i in (a, b, issuers.entra)]
    assert 1 == a.requests["/.well-known/openid-configuration"]


def test_under_waitress_flask_routes_each_issuer(issuers: Issuers) -> None:
    """The sync path (verify) through Flask: the same answers as the ASGI one."""
    a, b = issuers.a, issuers.b
    refusals = _refusals(issuers)
    with run_waitress(_flask(issuers.verifier)) as base, client(base) as http:
        accepted = [_get(http, a.token()).json(), _get(http, b.token()).json()]
        tenant = _get(http, issuers.tenant_token(T1))
        refused = {name: _reason(_get(http, token)) for name, (token, _) in refusals.items()}
        unknown = _get(http, refusals["unknown-issuer"][0])
    assert accepted == [{"iss": a.issuer, "aud": "api://a"}, {"iss": b.issuer, "aud": "api://b"}]
    assert 200 == tenant.status_code
    assert refused == {name: (401, reason) for name, (_, reason) in refusals.items()}
    text = json.dumps([unknown.json(), dict(unknown.headers)])
    assert not [c for c in issuers.configured if c in text]


def test_one_issuers_key_set_down_leaves_the_others_working(issuers: Issuers) -> None:
    """Each member fetches its own JWKS: B down is 503 for B's tokens only."""
    issuers.b.available = False
    with run_uvicorn(_starlette(issuers.verifier)) as base, client(base) as http:
        from_b = _get(http, issuers.b.token())
        from_a = _get(http, issuers.a.token())
        from_tenant = _get(http, issuers.tenant_token(T1))
        issuers.b.available = True
        issuers.verifier.refresh_keys()
        from_b_again = _get(http, issuers.b.token())
    assert (503, "key_unavailable") == _reason(from_b)
    assert from_b.headers["retry-after"]
    assert [200, 200, 200] == [r.status_code for r in (from_a, from_tenant, from_b_again)]


def test_a_template_issuer_is_discovered_from_a_common_document() -> None:
    """Entra's common document states the template as its issuer: discovery accepts it."""
    signer = FakeIssuer("ES256", kid="entra-1")
    idp = DiscoveryServer()
    try:
        template = f"{idp.origin}/{{tenantid}}/v2.0"
        idp.jwks = signer.jwks()
        idp.publish(
            "/common/v2.0/.well-known/openid-configuration",
            idp.metadata(template, id_token_signing_alg_values_supported=["ES256"]),
        )
        verifier = MultiIssuerVerifier(
            [
                JWTVerifier(
                    issuer_url=f"{idp.origin}/common/v2.0",
                    issuer=template,
                    tenants=[T1, T2],
                    audience="api://t",
                    jwks_timeout=1.0,
                )
            ]
        )

        def token(tenant: str, tid: str = SAME) -> str:
            tid = tenant if tid == SAME else tid
            return signer.token(iss=f"{idp.origin}/{tenant}/v2.0", aud="api://t", tid=tid)

        with run_uvicorn(_starlette(verifier)) as base, client(base) as http:
            answers = [
                _reason(_get(http, token(T1))),
                _reason(_get(http, token(T2))),
                _reason(_get(http, token("another-tenant"))),
                _reason(_get(http, token(T1, tid=T2))),
            ]
    finally:
        idp.stop()
    assert answers == [(200, "ok"), (200, "ok"), (401, "wrong_issuer"), (401, "wrong_issuer")]


def test_a_template_document_is_refused_without_a_template_issuer() -> None:
    """The exact-match rule still holds: a template is accepted only when configured."""
    signer = FakeIssuer("ES256", kid="entra-1")
    idp = DiscoveryServer()
    try:
        idp.jwks = signer.jwks()
        template = f"{idp.origin}/{{tenantid}}/v2.0"
        idp.publish("/common/v2.0/.well-known/openid-configuration", idp.metadata(template))
        verifier = JWTVerifier(issuer_url=f"{idp.origin}/common/v2.0", accept_any_audience=True)
        with pytest.raises(AuthFailure) as refused:
            verifier.verify(signer.token(iss=f"{idp.origin}/common/v2.0"))
    finally:
        idp.stop()
    assert Reason.KEY_UNAVAILABLE is refused.value.reason


# -- without a server: configuration, the one decoding pass, the hooks ----------------


def _fake(name: str, **options: object) -> JWTVerifier:
    return FakeIssuer(issuer=f"https://{name}.example/", audience=f"api://{name}").verifier(
        **options
    )


@pytest.mark.parametrize(
    ("members", "error", "message"),
    [
        ([], ValueError, "at least one"),
        ("https://a.example/", TypeError, "list of JWTVerifier"),
        ([object()], TypeError, r"verifiers\[0\] is a object"),
        ([_fake("a"), _fake("a")], ValueError, "expected by two verifiers"),
        (
            [_fake("a"), _fake("b", issuer=["https://b.example/", "https://a.example/"])],
            ValueError,
            "expected by two verifiers",
        ),
        ([_fake("a"), _fake("b", issuer=None)], ValueError, r"verifiers\[1\] expects no issuer"),
    ],
)
def test_construction_refuses_what_cannot_route(members: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        MultiIssuerVerifier(members)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tenants": [T1]}, "needs a multi-tenant issuer template"),
        ({"issuer": "https://x/{tenantid}/{tenantid}", "tenants": [T1]}, "once"),
        ({"issuer": "https://x/{tenantid}/v2.0", "tenants": []}, "non-empty"),
        ({"issuer": "https://x/{tenantid}/v2.0", "tenants": ["a/b"]}, "without '/'"),
    ],
)
def test_tenant_configuration_mistakes_fail_at_start_up(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        JWTVerifier(key="k" * 32, algorithms=["HS256"], **options)


def test_a_string_of_tenants_is_refused() -> None:
    with pytest.raises(TypeError, match="list of tenant ids"):
        JWTVerifier(key="k" * 32, algorithms=["HS256"], issuer="https://x/{tenantid}", tenants=T1)


def test_the_claims_are_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routing reads iss in the pass that decodes the claims; the member never decodes again."""
    a, b = FakeIssuer("ES256", issuer="https://a.example/"), FakeIssuer("ES256", kid="b")
    verifier = MultiIssuerVerifier([a.verifier(), b.verifier(issuer="https://b.example/")])
    decoded: list[bytes] = []
    real = verify_module._load_object  # noqa: SLF001 - what the pass decodes with

    def counting(segment: bytes, description: str) -> tuple[dict[str, Any], bool]:
        decoded.append(segment)
        return real(segment, description)

    monkeypatch.setattr(verify_module, "_load_object", counting)
    verifier.verify(a.token(sub="first"))
    assert 2 == len(decoded)  # the claims, then the header (new to this member)
    del decoded[:]
    second = a.token(sub="second")
    verifier.verify(second)
    assert 1 == len(decoded)  # the claims only: the header is remembered
    verifier.verify(second)
    assert 1 == len(decoded)  # a resent token: its route and its verdict are remembered


def test_non_string_iss_is_wrong_issuer_and_verdicts_stay_per_member() -> None:
    secret = b"s" * 32
    member = JWTVerifier(key=secret, algorithms=["HS256"], issuer="https://a.example/")
    verifier = MultiIssuerVerifier([member])
    for iss in (7, ["https://a.example/"], None, {"x": 1}):
        token = hs256_raw({"alg": "HS256"}, {"iss": iss, "exp": 2**40}, secret)
        with pytest.raises(AuthFailure) as refused:
            verifier.verify(token)
        assert (Reason.WRONG_ISSUER, Reason.WRONG_ISSUER.description) == (
            refused.value.reason,
            refused.value.description,
        )
    good = hs256_raw({"alg": "HS256"}, {"iss": "https://a.example/", "exp": 2**40}, secret)
    assert verifier.verify(good) == member.verify(good)


def test_refresh_keys_refreshes_every_member_even_when_one_fails() -> None:
    with LocalIssuer() as up, LocalIssuer() as down:
        verifier = MultiIssuerVerifier(
            [up.verifier(jwks_timeout=1.0), down.verifier(jwks_timeout=1.0)]
        )
        down.available = False
        with pytest.raises(AuthFailure) as refused:
            verifier.refresh_keys()
        with pytest.raises(AuthFailure) as refused_async:
            asyncio.run(verifier.refresh_keys_async())
        fetched = up.requests["/jwks"]
    assert Reason.KEY_UNAVAILABLE is refused.value.reason is refused_async.value.reason
    assert 2 == fetched


def test_explain_routes_through_the_composite() -> None:
    a = FakeIssuer(issuer="https://a.example/")
    verifier = MultiIssuerVerifier([a.verifier()])
    assert explain(verifier, a.token()).valid
    unknown = explain(verifier, a.token(iss=UNKNOWN_ISSUER))
    assert (Reason.WRONG_ISSUER, "iss") == (unknown.failure.reason, unknown.checks[0].name)  # type: ignore[union-attr]
    tenant = FakeIssuer(issuer="https://t.example/{tenantid}/v2.0")
    report = explain(tenant.verifier(), tenant.token(iss="https://t.example/x/v2.0", tid="y"))
    [iss] = [check for check in report.checks if check.name == "iss"]
    assert iss.passed is False
    assert "does not name the tenant" in iss.detail


def test_repr_names_no_issuer() -> None:
    assert "example" not in repr(MultiIssuerVerifier([_fake("a"), _fake("b")]))


def test_issuer_url_from_the_environment() -> None:
    verifier = verifier_from_env({"INVALIDTOKEN_ISSUER_URL": "https://id.example.com/"})
    assert ("https://id.example.com/",) == verifier.issuer


def test_structure_is_judged_before_the_issuer() -> None:
    """A broken header with an unknown iss is malformed_token, as a lone verifier says."""
    verifier = MultiIssuerVerifier([_fake("a")])
    token = hs256_raw('["not", "an", "object"]', {"iss": UNKNOWN_ISSUER}, b"s" * 32)
    with pytest.raises(AuthFailure) as refused:
        verifier.verify(token)
    assert (
        Reason.MALFORMED_TOKEN,
        "The access token is malformed: its header is not a JSON object.",
    ) == (
        refused.value.reason,
        refused.value.description,
    )
