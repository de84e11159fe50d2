"""Opaque tokens introspected through real authorization servers (RFC 7662, RFC 7009).

django-oauth-toolkit (:mod:`support.dot_provider`) issues opaque access tokens by the
client_credentials grant, answers RFC 7662 introspection at ``/o/introspect/`` to the
resource server's own confidential client and revokes tokens through RFC 7009
revocation at ``/o/revoke_token/``. NanoIDP (:mod:`support.real_provider`) names its
introspection endpoint in its discovery document. Neither was written by this
project; every token, introspection and revocation goes over HTTP on loopback.

The first tests call the servers' endpoints with httpx alone: they prove the set-up
(active for a fresh token, inactive after the server revoked it) without any of our
verifiers. The rest serve an application under uvicorn (Starlette,
``verify_async``) and waitress (Flask, ``verify``) with ``IntrospectionVerifier``,
alone and behind ``AnyTokenVerifier`` beside a ``JWTVerifier``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from invalidtoken_mw import (
    AnyTokenVerifier,
    IntrospectionVerifier,
    JWTVerifier,
)
from invalidtoken_mw._jose import JWS_SHAPE
from support import dot_provider, real_provider
from support.dot_provider import DOTProvider, running_dot
from support.real_provider import RealProvider, running_provider
from support.servers import CLAIMS_SERVERS, claims_on_uvicorn, client

if TYPE_CHECKING:
    from collections.abc import Iterator

    from invalidtoken_mw import TokenVerifier

SERVERS = ["uvicorn", "waitress"]
CACHE_TTL = 2.0
"""Seconds an active introspection answer is reused in the revocation tests."""


@pytest.fixture(scope="module")
def dot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DOTProvider]:
    """django-oauth-toolkit, once for the module."""
    with running_dot(tmp_path_factory.mktemp("dot-introspection")) as running:
        yield running


@pytest.fixture(scope="module")
def nanoidp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealProvider]:
    """NanoIDP, once for the module."""
    with running_provider(tmp_path_factory.mktemp("nanoidp-introspection")) as running:
        yield running


def dot_introspection(dot: DOTProvider, **options: Any) -> TokenVerifier:
    """The resource server's verifier for the toolkit's opaque tokens."""
    settings: dict[str, Any] = {
        "introspection_url": dot.introspection_url,
        "client_id": dot_provider.RESOURCE_ID,
        "client_secret": dot_provider.RESOURCE_SECRET,
    }
    return IntrospectionVerifier(**(settings | options))


SERVE = CLAIMS_SERVERS


def get(base: str, token: str) -> httpx.Response:
    """GET /me with ``token`` as the bearer token."""
    with client(base) as http:
        return http.get("/me", headers={"Authorization": f"Bearer {token}"})


# -- the servers on their own: no verifier of ours ----------------------------------------


def test_django_oauth_toolkit_introspects_its_opaque_token_until_it_is_revoked(
    dot: DOTProvider,
) -> None:
    """client_credentials gives an opaque token; introspection: active, then inactive."""
    issued = dot.service_token()
    token = issued["access_token"]
    assert JWS_SHAPE.fullmatch(token) is None  # opaque: not a JWT
    assert ("Bearer", dot_provider.SCOPE) == (issued["token_type"], issued["scope"])
    active = dot.introspect(token)
    assert (True, dot_provider.SCOPE, dot_provider.SERVICE_ID) == (
        active["active"],
        active["scope"],
        active["client_id"],
    )
    assert active["exp"] > time.time()
    dot.revoke(token)
    assert {"active": False} == dot.introspect(token)
    assert {"active": False} == dot.introspect("never-issued")


def test_django_oauth_toolkit_introspects_only_for_an_authenticated_client(
    dot: DOTProvider,
) -> None:
    """A wrong secret is refused by the server itself, not answered active or inactive."""
    token = dot.service_token()["access_token"]
    with httpx.Client(trust_env=False) as http:
        refused = http.post(
            dot.introspection_url, data={"token": token}, auth=(dot_provider.RESOURCE_ID, "x")
        )
        posted = http.post(
            dot.introspection_url,
            data={
                "token": token,
                "client_id": dot_provider.RESOURCE_ID,
                "client_secret": dot_provider.RESOURCE_SECRET,
            },
        )
    assert 403 == refused.status_code
    assert (200, True) == (posted.status_code, posted.json()["active"])  # client_secret_post


def test_nanoidp_advertises_introspection_and_revocation(nanoidp: RealProvider) -> None:
    """NanoIDP names both endpoints in discovery and serves them (its tokens are JWTs)."""
    document = nanoidp.metadata()
    token = nanoidp.token()
    auth = (real_provider.CLIENT_ID, real_provider.CLIENT_SECRET)
    with httpx.Client(trust_env=False) as http:
        active = http.post(document["introspection_endpoint"], data={"token": token}, auth=auth)
        revoked = http.post(document["revocation_endpoint"], data={"token": token}, auth=auth)
        after = http.post(document["introspection_endpoint"], data={"token": token}, auth=auth)
    assert {"client_secret_basic", "client_secret_post"} <= set(
        document["introspection_endpoint_auth_methods_supported"]
    )
    assert (200, True) == (active.status_code, active.json()["active"]), active.text
    assert 200 == revoked.status_code, revoked.text
    assert (200, False) == (after.status_code, after.json()["active"]), after.text


# -- IntrospectionVerifier through real servers ----------------------


@pytest.mark.parametrize("server", SERVERS)
def test_an_opaque_token_is_accepted_then_refused_inactive_after_revocation(
    dot: DOTProvider, server: str
) -> None:
    """200 with the introspected claims; after the server revokes it, 401 inactive_token.

    The same middleware serves both requests. An active answer is reused for
    ``cache_ttl`` seconds (the price of not asking the server on every request), so
    right after the revocation the token is still accepted; once that has passed the
    server is asked again and says inactive.
    """
    token = dot.service_token()["access_token"]
    with SERVE[server](dot_introspection(dot, cache_ttl=CACHE_TTL)) as base:
        accepted = get(base, token)
        introspected = time.monotonic()
        dot.revoke(token)
        cached = get(base, token)
        time.sleep(max(0.0, introspected + CACHE_TTL + 0.2 - time.monotonic()))
        refused = get(base, token)
    assert 200 == accepted.status_code, accepted.text
    claims = accepted.json()
    assert (dot_provider.SCOPE, dot_provider.SERVICE_ID) == (claims["scope"], claims["client_id"])
    assert 200 == cached.status_code, cached.text
    assert (401, "inactive_token") == (refused.status_code, refused.json()["reason"])
    challenge = refused.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert token not in challenge
    assert token not in refused.text


@pytest.mark.parametrize("server", SERVERS)
def test_a_revoked_token_is_inactive_to_a_fresh_verifier(dot: DOTProvider, server: str) -> None:
    """Revoked before the first request: nothing cached, 401 inactive_token at once."""
    token = dot.service_token()["access_token"]
    dot.revoke(token)
    with SERVE[server](dot_introspection(dot)) as base:
        refused = get(base, token)
        unknown = get(base, "never-issued-by-this-server")
    assert (401, "inactive_token") == (refused.status_code, refused.json()["reason"])
    assert (401, "inactive_token") == (unknown.status_code, unknown.json()["reason"])


@pytest.mark.parametrize("server", SERVERS)
def test_a_pasted_vendor_key_is_inactive_and_named(dot: DOTProvider, server: str) -> None:
    """A GitHub-shaped key the toolkit calls inactive: 401 inactive_token naming the kind.

    The key is made here in GitHub's documented shape (not a real secret); the toolkit
    never issued it, so it answers ``active: false`` and the description says what the
    client sent instead of a bare "not active".
    """
    pasted = "ghp_" + "Zx8" * 12
    with SERVE[server](dot_introspection(dot)) as base:
        refused = get(base, pasted)
    assert (401, "inactive_token") == (refused.status_code, refused.json()["reason"])
    assert refused.json()["error_description"] == (
        "This looks like a GitHub personal access token; this API accepts access tokens"
        " issued by its identity provider."
    )
    assert pasted[4:20] not in refused.headers["www-authenticate"] + refused.text


def test_client_secret_post_authenticates_the_resource_server(dot: DOTProvider) -> None:
    """The toolkit accepts the resource server's credentials in the form body too."""
    token = dot.service_token()["access_token"]
    with claims_on_uvicorn(dot_introspection(dot, auth_method="client_secret_post")) as base:
        answer = get(base, token)
    assert (200, dot_provider.SERVICE_ID) == (answer.status_code, answer.json()["client_id"])


@pytest.mark.parametrize("server", SERVERS)
def test_a_refused_introspection_call_is_unavailable_never_an_acceptance(
    dot: DOTProvider, server: str
) -> None:
    """A wrong resource-server secret: the toolkit answers 403, the API 503, never 200."""
    token = dot.service_token()["access_token"]
    with SERVE[server](dot_introspection(dot, client_secret="not-the-secret")) as base:
        answer = get(base, token)
    assert 503 == answer.status_code, answer.text
    assert token not in answer.text


@pytest.mark.parametrize("server", SERVERS)
def test_one_middleware_accepts_the_toolkits_id_token_and_its_opaque_tokens(
    dot: DOTProvider, server: str
) -> None:
    """AnyTokenVerifier: the ID token (a JWT) by its JWKS, opaque tokens by introspection."""
    code_flow = dot.tokens()  # an ID token and the user's opaque access token
    service = dot.service_token()["access_token"]
    verifier = AnyTokenVerifier(
        jwt=JWTVerifier(issuer_url=dot.issuer, audience=dot_provider.CLIENT_ID),
        opaque=dot_introspection(dot),
    )
    with SERVE[server](verifier) as base:
        id_token = get(base, code_flow["id_token"])
        users = get(base, code_flow["access_token"])
        services = get(base, service)
        forged = get(base, code_flow["id_token"][:-4] + "AAAA")
    assert 200 == id_token.status_code, id_token.text
    assert (dot.issuer, dot_provider.CLIENT_ID) == (id_token.json()["iss"], id_token.json()["aud"])
    assert 200 == users.status_code, users.text
    assert (dot_provider.USERNAME, dot_provider.CLIENT_ID) == (
        users.json()["username"],
        users.json()["client_id"],
    )
    assert (200, dot_provider.SERVICE_ID) == (services.status_code, services.json()["client_id"])
    assert (401, "bad_signature") == (forged.status_code, forged.json()["reason"])


def test_nanoidps_introspection_endpoint_is_found_through_its_issuer_url(
    nanoidp: RealProvider,
) -> None:
    """issuer_url alone: discovery names the endpoint; active 200, revoked 401 inactive_token."""
    token = nanoidp.token()
    revoked = nanoidp.token()
    verifier = IntrospectionVerifier(
        issuer_url=nanoidp.issuer,
        client_id=real_provider.CLIENT_ID,
        client_secret=real_provider.CLIENT_SECRET,
    )
    with httpx.Client(trust_env=False) as http:
        http.post(
            nanoidp.metadata()["revocation_endpoint"],
            data={"token": revoked},
            auth=(real_provider.CLIENT_ID, real_provider.CLIENT_SECRET),
        ).raise_for_status()
    with claims_on_uvicorn(verifier) as base:
        accepted = get(base, token)
        refused = get(base, revoked)
    assert 200 == accepted.status_code, accepted.text
    assert real_provider.CLIENT_ID == accepted.json()["client_id"]
    assert (401, "inactive_token") == (refused.status_code, refused.json()["reason"])
