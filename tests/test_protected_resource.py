"""Protected-resource metadata (RFC 9728) and the audience it implies (RFC 8707).

Through real servers: every adapter of ``support.frameworks`` serves the same metadata
bytes for the same configuration; the document's members follow the configuration;
the well-known URL is derived as RFC 9728 §3.1 says (path-suffixed for a resource with
a path); every refusal's challenge names it; CORS preflights on it are answered; and a
token whose ``aud`` does not name the resource is ``wrong_audience``.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import support.frameworks
from invalidtoken_mw import (
    AnyTokenVerifier,
    AuthFailure,
    Guard,
    GuardSettings,
    IntrospectionVerifier,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    MultiIssuerVerifier,
    Reason,
)
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.resource import WELL_KNOWN_PATH, ProtectedResource, metadata_url
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    import httpx
    from starlette.requests import Request

FRAMEWORKS = [
    importlib.import_module(f"support.frameworks.{module.name}")
    for module in sorted(pkgutil.iter_modules(support.frameworks.__path__), key=lambda m: m.name)
    # DRF is an authentication class under Django's middleware: nothing more to serve.
    if module.name != "drf"
]
RESOURCE = AUDIENCE  # "https://api.example": the support verifier's audience
METADATA_PATH = WELL_KNOWN_PATH
SUFFIXED = "https://api.example/orders"
EXPECTED = {
    "resource": RESOURCE,
    "authorization_servers": [ISSUER],
    "bearer_methods_supported": ["header"],
    "resource_documentation": "https://docs.example/orders",
}
PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


def _resource() -> ProtectedResource:
    return ProtectedResource(
        resource=RESOURCE, resource_documentation="https://docs.example/orders"
    )


def _serve(module: ModuleType, **options: Any) -> Any:
    app = module.build(make_verifier(), **options)
    return run_uvicorn(app) if module.SERVER == "asgi" else run_waitress(app)


@pytest.fixture(scope="module")
def answers() -> dict[str, dict[str, httpx.Response]]:
    """GET, HEAD and a CORS preflight on the metadata path of every adapter."""
    seen: dict[str, dict[str, httpx.Response]] = {}
    for module in FRAMEWORKS:
        with _serve(module, resource=_resource()) as base, client(base) as http:
            seen[module.NAME] = {
                "GET": http.get(METADATA_PATH, headers={"Authorization": "Bearer not-a-jwt"}),
                "HEAD": http.head(METADATA_PATH),
                "OPTIONS": http.options(METADATA_PATH, headers=PREFLIGHT),
                "missing": http.get("/protected"),
            }
    return seen


LIBRARY_HEADERS = (
    "content-type",
    "cache-control",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "content-length",
)


def _sent(response: httpx.Response) -> tuple[object, ...]:
    headers = tuple((name, response.headers.get(name)) for name in LIBRARY_HEADERS)
    return response.status_code, headers, response.content


def test_every_adapter_serves_the_same_metadata_bytes(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    """RFC 9728 §3.2: 200, application/json, the document; the same bytes everywhere."""
    reference = answers["Starlette"]
    get = reference["GET"]
    assert get.status_code == 200
    assert get.headers["content-type"] == "application/json"
    assert get.headers["cache-control"] == "public, max-age=3600"
    assert get.headers["access-control-allow-origin"] == "*"
    assert get.json() == EXPECTED
    for name, seen in answers.items():
        for method in ("GET", "HEAD", "OPTIONS"):
            assert _sent(seen[method]) == _sent(reference[method]), (name, method)


def test_metadata_is_served_without_authentication(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    """The document needs no token, and a bad one sent along does not matter."""
    for name, seen in answers.items():
        assert seen["GET"].status_code == 200, name
        assert "www-authenticate" not in seen["GET"].headers, name


def test_head_has_the_get_headers_and_no_body(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    """HEAD answers GET's headers (Content-Length included) without the body."""
    for name, seen in answers.items():
        head, get = seen["HEAD"], seen["GET"]
        assert head.status_code == 200, name
        assert head.content == b"", name
        assert head.headers["content-length"] == str(len(get.content)), name


def test_cors_preflight_on_the_metadata_url(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    """A browser client (an MCP client in a web page) may fetch the document cross-origin."""
    for name, seen in answers.items():
        preflight = seen["OPTIONS"]
        assert preflight.status_code == 204, name
        assert preflight.headers["access-control-allow-origin"] == "*", name
        assert "GET" in preflight.headers["access-control-allow-methods"], name
        assert preflight.headers["access-control-allow-headers"] == "*", name


def test_every_adapter_challenge_names_the_metadata(
    answers: dict[str, dict[str, httpx.Response]],
) -> None:
    """RFC 9728 §5.1: the 401 of each adapter points at the document it serves."""
    url = f"{RESOURCE}{METADATA_PATH}"
    for name, seen in answers.items():
        challenge = seen["missing"].headers["www-authenticate"]
        assert challenge == f'Bearer realm="orders", resource_metadata="{url}"', name


# -- the well-known URL (RFC 9728 §3.1) ------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        ("https://api.example", "https://api.example/.well-known/oauth-protected-resource"),
        ("https://api.example/", "https://api.example/.well-known/oauth-protected-resource"),
        (
            "https://api.example/orders",
            "https://api.example/.well-known/oauth-protected-resource/orders",
        ),
        (
            "https://api.example:8443/v1/mcp",
            "https://api.example:8443/.well-known/oauth-protected-resource/v1/mcp",
        ),
    ],
)
def test_metadata_url_inserts_the_well_known_segment(resource: str, url: str) -> None:
    """§3.1: /.well-known/oauth-protected-resource goes between the host and the path."""
    assert metadata_url(resource) == url


def _orders(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def _suffixed_app(**options: Any) -> InvalidTokenMiddleware:
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=SUFFIXED, issuer=ISSUER)
    app = Starlette(routes=[Route("/orders", _orders)])
    return InvalidTokenMiddleware(app, verifier=verifier, resource=SUFFIXED, **options)


def test_path_suffixed_metadata_through_uvicorn() -> None:
    """A resource with a path is described at the path-suffixed URL, and only there."""
    with run_uvicorn(_suffixed_app()) as base, client(base) as http:
        served = http.get(f"{WELL_KNOWN_PATH}/orders")
        root = http.get(WELL_KNOWN_PATH)
        refused = http.get("/orders")
        token = mint(payload=claims(aud=SUFFIXED))
        accepted = http.get("/orders", headers={"Authorization": f"Bearer {token}"})
    assert served.status_code == 200
    assert served.json()["resource"] == SUFFIXED
    # §3.3: a client checks that "resource" is the identifier it built the URL from, so
    # the root URL (the identifier https://api.example) is not this document.
    assert root.status_code == 401
    assert f'resource_metadata="{metadata_url(SUFFIXED)}"' in refused.headers["www-authenticate"]
    assert accepted.status_code == 200


def test_path_suffixed_metadata_through_waitress() -> None:
    """The WSGI middleware serves the same bytes at the same path."""

    def app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=SUFFIXED, issuer=ISSUER)
    wsgi = InvalidTokenWSGIMiddleware(app, verifier=verifier, resource=SUFFIXED)
    with run_waitress(wsgi) as base, client(base) as http:
        wsgi_answer = http.get(f"{WELL_KNOWN_PATH}/orders")
    with run_uvicorn(_suffixed_app()) as base, client(base) as http:
        asgi_answer = http.get(f"{WELL_KNOWN_PATH}/orders")
    assert wsgi_answer.status_code == 200
    assert wsgi_answer.content == asgi_answer.content
    assert wsgi_answer.headers["content-type"] == asgi_answer.headers["content-type"]


def test_other_methods_on_the_metadata_url_are_405() -> None:
    """The document is read-only: POST gets 405 with Allow, never the application."""
    with run_uvicorn(_suffixed_app()) as base, client(base) as http:
        answer = http.post(f"{WELL_KNOWN_PATH}/orders", content=b"x")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, OPTIONS"


# -- the members (RFC 9728 §2) ----------------------------------------------------------


def _document(**options: Any) -> dict[str, Any]:
    guard = Guard(**{"verifier": make_verifier(), **options})
    assert guard.protected_resource is not None
    answer = guard.serve_metadata("GET", guard.protected_resource.path)
    assert answer is not None
    document: dict[str, Any] = json.loads(answer.answer.body)
    return document


def test_members_follow_the_configuration() -> None:
    """scopes_supported from scopes, bearer_methods_supported from the token locations."""
    document = _document(
        resource=RESOURCE, scopes=["orders:read"], allow_query_token=True, allow_body_token=True
    )
    assert document == {
        "resource": RESOURCE,
        "authorization_servers": [ISSUER],
        "scopes_supported": ["orders:read"],
        "bearer_methods_supported": ["header", "body", "query"],
    }


def test_members_given_explicitly_win() -> None:
    """Every member can be given; DPoP members appear only when given."""
    resource = ProtectedResource(
        resource=RESOURCE,
        authorization_servers=["https://login.example"],
        scopes_supported=["a", "b"],
        resource_name="Orders API",
        resource_policy_uri="https://docs.example/policy",
        resource_tos_uri="https://docs.example/tos",
        dpop_signing_alg_values_supported=["ES256"],
        dpop_bound_access_tokens_required=True,
    )
    document = _document(resource=resource, scopes=["orders:read"])
    assert document == {
        "resource": RESOURCE,
        "authorization_servers": ["https://login.example"],
        "scopes_supported": ["a", "b"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Orders API",
        "resource_policy_uri": "https://docs.example/policy",
        "resource_tos_uri": "https://docs.example/tos",
        "dpop_signing_alg_values_supported": ["ES256"],
        "dpop_bound_access_tokens_required": True,
    }
    assert "dpop_signing_alg_values_supported" not in _document(resource=RESOURCE)


def test_authorization_servers_from_every_kind_of_verifier() -> None:
    """JWTVerifier, MultiIssuerVerifier, IntrospectionVerifier and AnyTokenVerifier."""
    one = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=RESOURCE, issuer=ISSUER)
    two = JWTVerifier(
        key=SECRET, algorithms=["HS256"], audience=RESOURCE, issuer="https://other.example"
    )
    multi = MultiIssuerVerifier([one, two])
    introspection = IntrospectionVerifier(
        introspection_url="https://login.example/introspect",
        issuer="https://login.example",
        client_id="api",
        client_secret="secret-of-the-api",
    )
    any_token = AnyTokenVerifier(jwt=multi, opaque=introspection)
    assert _document(verifier=multi, resource=RESOURCE)["authorization_servers"] == [
        ISSUER,
        "https://other.example",
    ]
    assert _document(verifier=any_token, resource=RESOURCE)["authorization_servers"] == [
        ISSUER,
        "https://other.example",
        "https://login.example",
    ]


# -- the configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ("http://api.example", "requires https"),
        ("https://api.example/x#frag", "fragment"),
        ("https://api.example/x?a=1", "query"),
        ("/orders", "relative"),
    ],
)
def test_resource_must_be_an_https_url(resource: str, message: str) -> None:
    """RFC 9728 §2: an https URL without a fragment (and here, without a query)."""
    with pytest.raises(ValueError, match=message):
        GuardSettings(verifier=make_verifier(), resource=resource)


def test_contradicting_resource_metadata_is_refused() -> None:
    """resource_metadata follows resource; another URL next to it is a mistake."""
    with pytest.raises(ValueError, match="contradicts resource"):
        GuardSettings(
            verifier=make_verifier(),
            resource=RESOURCE,
            resource_metadata="https://elsewhere.example/.well-known/oauth-protected-resource",
        )
    same = GuardSettings(
        verifier=make_verifier(), resource=RESOURCE, resource_metadata=metadata_url(RESOURCE)
    )
    assert same.resource_metadata == metadata_url(RESOURCE)


def test_verifier_audience_that_contradicts_the_resource_is_refused() -> None:
    """A verifier requiring another audience (or none) could never accept a token for it."""
    with pytest.raises(ValueError, match="contradicts the JWTVerifier's audience"):
        GuardSettings(verifier=make_verifier(), resource=SUFFIXED)
    without = JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER)
    with pytest.raises(ValueError, match="has no audience"):
        GuardSettings(verifier=without, resource=RESOURCE)
    introspection = IntrospectionVerifier(
        introspection_url="https://login.example/introspect",
        client_id="api",
        client_secret="secret-of-the-api",
        audience="https://another.example",
    )
    with pytest.raises(ValueError, match="IntrospectionVerifier"):
        GuardSettings(verifier=introspection, resource=RESOURCE)


def test_resource_from_config_strings() -> None:
    """From Flask config or the environment the option is the identifier, a string."""
    settings = GuardSettings.from_mapping(
        {"INVALIDTOKEN_RESOURCE": RESOURCE}, verifier=make_verifier()
    )
    assert isinstance(settings.resource, ProtectedResource)
    assert settings.resource_metadata == metadata_url(RESOURCE)


# -- the challenge of every refusal and the audience (RFC 8707) ---------------------------


def _any_audience_app() -> Starlette:
    verifier = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, accept_any_audience=True
    )

    async def raising(_request: Request) -> JSONResponse:
        raise AuthFailure(Reason.REVOKED)

    app = Starlette(routes=[Route("/orders", _orders), Route("/raise", raising)])
    # Inside Starlette's error middleware, so a raised failure reaches the middleware.
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=verifier,
        resource=RESOURCE,
        scopes=["orders:read"],
        realm="orders",
    )
    return app


@pytest.fixture(scope="module")
def any_audience() -> Iterator[httpx.Client]:
    """The guard checks aud itself: the verifier accepts any."""
    with run_uvicorn(_any_audience_app()) as base, client(base) as http:
        yield http


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_refusal_names_resource_metadata(any_audience: httpx.Client) -> None:
    """RFC 9728 §5.1 on every 401 and 403: missing, invalid, scope, app-raised, audience."""
    good = claims(scope="orders:read")
    requests = {
        "missing": {},
        "malformed": _bearer("not-a-jwt"),
        "expired": _bearer(mint(payload={**good, "exp": 1})),
        "bad_signature": _bearer(mint(payload=good, key=b"another-secret-32-bytes-long-xyz")),
        "scope": _bearer(mint(payload=claims())),
        "audience": _bearer(mint(payload={**good, "aud": "https://another.example"})),
    }
    expected = f'resource_metadata="{metadata_url(RESOURCE)}"'
    for name, headers in requests.items():
        answer = any_audience.get("/orders", headers=headers)
        assert answer.status_code in {401, 403}, name
        assert answer.headers["www-authenticate"].endswith(expected), name
    raised = any_audience.get("/raise", headers=_bearer(mint(payload=good)))
    assert raised.status_code == 401
    assert raised.headers["www-authenticate"].endswith(expected)


def test_token_for_another_resource_is_wrong_audience(any_audience: httpx.Client) -> None:
    """RFC 8707: aud must name this resource; the answer says so without echoing aud."""
    other = "https://another.example/secret-audience-name"
    answer = any_audience.get(
        "/orders", headers=_bearer(mint(payload=claims(aud=other, scope="orders:read")))
    )
    assert answer.status_code == 401
    assert answer.json()["reason"] == "wrong_audience"
    assert answer.json()["error_description"] == Sentence.ANOTHER_RESOURCE
    assert other not in answer.text
    assert other not in answer.headers["www-authenticate"]
    listed = any_audience.get(
        "/orders",
        headers=_bearer(mint(payload=claims(aud=[other, RESOURCE], scope="orders:read"))),
    )
    assert listed.status_code == 200


def test_verifier_wrong_audience_speaks_of_the_resource() -> None:
    """The verifier's own aud refusal gets the resource sentence when a resource is set."""
    app = Starlette(routes=[Route("/orders", _orders)])
    guarded = InvalidTokenMiddleware(app, verifier=make_verifier(), resource=RESOURCE)
    with run_uvicorn(guarded) as base, client(base) as http:
        answer = http.get("/orders", headers=_bearer(mint(payload=claims(aud="https://x.example"))))
    assert answer.status_code == 401
    assert answer.json()["error_description"] == Sentence.ANOTHER_RESOURCE


def test_without_resource_nothing_is_served() -> None:
    """Off by default: the well-known path is an ordinary protected path."""
    guard = Guard(verifier=make_verifier())
    assert guard.serve_metadata("GET", WELL_KNOWN_PATH) is None
    assert guard.protected_resource is None
