"""Against a real OpenID Connect provider: tokens from its token endpoint, keys from its JWKS.

Besides our own ``LocalIssuer``, these tests start NanoIDP (``nanoidp`` on PyPI, see
:mod:`support.real_provider`), a provider this project did not write, on loopback in
a process of its own. Every token comes from its token endpoint over HTTP; every
verifier finds its keys through ``issuer_url`` alone (discovery, then the JWKS the
document names), under uvicorn (Starlette, ``InvalidTokenMiddleware``) and waitress
(Flask, the ``InvalidToken`` extension), and through the ``invalidtoken-mw explain``
command. The provider's own key rotation is followed on the first request.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from flask import Flask, g

from invalidtoken_mw import DiscoveryKeys, JWTVerifier
from invalidtoken_mw import flask as flask_adapter
from support import dot_provider
from support.dot_provider import DOTProvider, running_dot
from support.real_provider import (
    AUDIENCE,
    CLIENT_ID,
    PASSWORD,
    USERNAME,
    RealProvider,
    running_provider,
)
from support.servers import claims_on_uvicorn, run_waitress

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable, Iterator


SERVERS = ["uvicorn", "waitress"]
ROLE = "ORDERS_ADMIN"  # the role support.real_provider gives its user


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealProvider]:
    """One provider for the module: it takes a few seconds to start."""
    with running_provider(tmp_path_factory.mktemp("oidc-provider")) as running:
        yield running


@pytest.fixture(scope="module")
def dot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DOTProvider]:
    """django-oauth-toolkit, once for the module."""
    with running_dot(tmp_path_factory.mktemp("dot-provider")) as running:
        yield running


@pytest.fixture(scope="module")
def dot_tokens(dot: DOTProvider) -> dict[str, Any]:
    """One token response of django-oauth-toolkit's code flow: an ID token and an opaque one."""
    return dot.tokens()


def verifier_for(provider: RealProvider | DOTProvider, **options: Any) -> JWTVerifier:
    """A verifier configured as a service would be: the issuer URL and its audience."""
    settings: dict[str, Any] = {"issuer_url": provider.issuer, "audience": AUDIENCE}
    return JWTVerifier(**(settings | options))


def _flask(verifier: JWTVerifier) -> contextlib.AbstractContextManager[str]:
    app = Flask("real-provider")
    flask_adapter.InvalidToken(app, verifier=verifier, realm="orders", role_claims=["roles"])

    @app.get("/me")
    def me() -> dict[str, Any]:
        claims: dict[str, Any] = g.token_claims
        return claims

    @app.get("/admin")
    @flask_adapter.require_roles(ROLE)
    def admin() -> dict[str, Any]:
        claims: dict[str, Any] = g.token_claims
        return claims

    @app.get("/audit")
    @flask_adapter.require_roles("AUDITOR")
    def audit() -> dict[str, bool]:
        return {"ok": True}

    return run_waitress(app)


SERVE: dict[str, Callable[[JWTVerifier], contextlib.AbstractContextManager[str]]] = {
    "uvicorn": claims_on_uvicorn,
    "waitress": _flask,
}


def get(base: str, path: str, token: str) -> httpx.Response:
    """GET ``path`` with ``token`` as the bearer token."""
    with httpx.Client(base_url=base, trust_env=False) as http:
        return http.get(path, headers={"Authorization": f"Bearer {token}"})


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its payload rewritten and the provider's signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = json.dumps(claims | changes, separators=(",", ":")).encode()
    return ".".join([header, base64.urlsafe_b64encode(forged).rstrip(b"=").decode(), signature])


def test_the_provider_is_an_openid_provider_of_its_own(provider: RealProvider) -> None:
    """Discovery names the issuer, a JWKS and a token endpoint; its tokens are RS256 JWTs."""
    document = provider.metadata()
    header = jwt.get_unverified_header(provider.token())
    assert provider.issuer == document["issuer"]
    assert document["jwks_uri"].startswith(provider.issuer)
    assert "client_credentials" in document["grant_types_supported"]
    assert ("RS256", True) == (header["alg"], bool(header["kid"]))


@pytest.mark.parametrize("server", SERVERS)
def test_a_client_credentials_access_token_is_accepted(provider: RealProvider, server: str) -> None:
    """The provider's access token, verified through issuer_url alone: 200 and its claims."""
    rules = {"token_use": "access", "client_id": [CLIENT_ID]}
    with SERVE[server](verifier_for(provider, claim_rules=rules)) as base:
        answer = get(base, "/me", provider.token())
    assert 200 == answer.status_code, answer.text
    claims = answer.json()
    assert (provider.issuer, AUDIENCE, CLIENT_ID, CLIENT_ID, "access") == (
        claims["iss"],
        claims["aud"],
        claims["sub"],
        claims["client_id"],
        claims["token_use"],
    )


def test_a_users_access_token_carries_the_roles_a_route_requires(provider: RealProvider) -> None:
    """The password grant's token names the user and the role; a role it lacks is a 403."""
    token = provider.token("password", username=USERNAME, password=PASSWORD)
    with _flask(verifier_for(provider)) as base:
        admin = get(base, "/admin", token)
        audit = get(base, "/audit", token)
        client_only = get(base, "/admin", provider.token())
    assert (200, USERNAME, [ROLE]) == (
        admin.status_code,
        admin.json()["sub"],
        admin.json()["roles"],
    )
    assert (403, "insufficient_role") == (audit.status_code, audit.json()["reason"])
    assert (403, "insufficient_role") == (client_only.status_code, client_only.json()["reason"])


@pytest.mark.parametrize("server", SERVERS)
def test_a_tampered_payload_is_a_bad_signature(provider: RealProvider, server: str) -> None:
    """The provider's signature over a payload it never signed: 401 bad_signature."""
    forged = tampered(provider.token(), sub="someone-else")
    with SERVE[server](verifier_for(provider)) as base:
        answer = get(base, "/me", forged)
    assert (401, "bad_signature") == (answer.status_code, answer.json()["reason"])
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize("server", SERVERS)
def test_a_token_for_another_audience_is_refused(provider: RealProvider, server: str) -> None:
    """A service that is not the provider's configured audience refuses its tokens."""
    with SERVE[server](verifier_for(provider, audience="billing-api")) as base:
        answer = get(base, "/me", provider.token())
    assert (401, "wrong_audience") == (answer.status_code, answer.json()["reason"])


def test_an_issuer_url_that_differs_from_the_providers_by_a_slash_is_unavailable(
    provider: RealProvider,
) -> None:
    """The discovery document's issuer must equal issuer_url exactly: 503, never a 500."""
    with claims_on_uvicorn(verifier_for(provider, issuer_url=provider.issuer + "/")) as base:
        answer = get(base, "/me", provider.token())
    assert (503, "key_unavailable") == (answer.status_code, answer.json()["reason"])


@pytest.mark.parametrize("server", SERVERS)
def test_the_first_token_after_the_providers_key_rotation_is_accepted(
    provider: RealProvider, server: str
) -> None:
    """The provider rotates its signing key; its next token is accepted on the first request."""
    with SERVE[server](verifier_for(provider, jwks_min_interval=0.25)) as base:
        before = provider.token()
        fetched = time.monotonic()
        assert 200 == get(base, "/me", before).status_code  # discovery and JWKS now cached
        # A rotation comes later than the JWKS cache's minimum interval (0.25 s here, 1 s
        # by default) after the last fetch; only then may an unknown kid fetch again.
        time.sleep(max(0.0, fetched + 0.3 - time.monotonic()))
        rotated = provider.rotate_keys()
        after = provider.token()
        first = get(base, "/me", after)
        still = get(base, "/me", before)
    assert rotated["new_kid"] != rotated["old_kid"]
    assert (
        f'"{rotated["new_kid"]}"' in base64.urlsafe_b64decode(after.split(".")[0] + "==").decode()
    )
    assert (200, 200) == (first.status_code, still.status_code), first.text


def explain(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``invalidtoken-mw explain`` command."""
    command = Path(sys.executable).with_name("invalidtoken-mw")
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(command), "explain", *arguments],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_explain_finds_the_providers_token_valid_through_its_issuer_url(
    provider: RealProvider,
) -> None:
    """The command line, given only the issuer URL and audience, says the token is valid."""
    options = ["--issuer-url", provider.issuer, "--audience", AUDIENCE]
    done = explain(provider.token(), "--json", *options)
    report = json.loads(done.stdout)
    assert (0, True, 200) == (done.returncode, report["valid"], report["status"]), done.stderr
    forged = explain(tampered(provider.token(), scope="admin"), "--json", *options)
    refused = json.loads(forged.stdout)
    assert (False, "bad_signature") == (refused["valid"], refused["reason"])
    assert 0 != forged.returncode


# -- django-oauth-toolkit: its ID tokens (its access tokens are opaque) -----------------


@pytest.mark.parametrize("server", SERVERS)
def test_django_oauth_toolkits_id_token_is_accepted_through_its_issuer_url(
    dot: DOTProvider, dot_tokens: dict[str, Any], server: str
) -> None:
    """Its ID token verifies through /o's discovery; its access token is not a JWT at all."""
    verifier = verifier_for(dot, audience=dot_provider.CLIENT_ID)
    with SERVE[server](verifier) as base:
        accepted = get(base, "/me", dot_tokens["id_token"])
        opaque = get(base, "/me", dot_tokens["access_token"])
    assert 200 == accepted.status_code, accepted.text
    claims = accepted.json()
    assert (dot.issuer, dot_provider.CLIENT_ID) == (claims["iss"], claims["aud"])
    assert (401, "malformed_token") == (opaque.status_code, opaque.json()["reason"])
    # The toolkit advertises HS256 beside RS256; an HMAC algorithm is never taken from it.
    assert "HS256" in dot.metadata()["id_token_signing_alg_values_supported"]
    assert isinstance(verifier.keys, DiscoveryKeys)
    assert verifier.keys.metadata is not None
    assert ("RS256",) == verifier.keys.metadata.algorithms


def test_django_oauth_toolkits_tampered_id_token_is_a_bad_signature(
    dot: DOTProvider, dot_tokens: dict[str, Any]
) -> None:
    """A rewritten payload under the toolkit's signature: 401 bad_signature."""
    forged = tampered(dot_tokens["id_token"], sub="2")
    with claims_on_uvicorn(verifier_for(dot, audience=dot_provider.CLIENT_ID)) as base:
        answer = get(base, "/me", forged)
    assert (401, "bad_signature") == (answer.status_code, answer.json()["reason"])


def test_explain_finds_django_oauth_toolkits_id_token_valid(
    dot: DOTProvider, dot_tokens: dict[str, Any]
) -> None:
    """The command line, given the toolkit's issuer URL, says its ID token is valid."""
    options = ["--issuer-url", dot.issuer, "--audience", dot_provider.CLIENT_ID]
    done = explain(dot_tokens["id_token"], "--json", *options)
    report = json.loads(done.stdout)
    assert (0, True, 200) == (done.returncode, report["valid"], report["status"]), done.stderr
