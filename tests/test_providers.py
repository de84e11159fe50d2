"""docs/providers.md, block by block, against issuers shaped like each provider.

Each test runs a configuration block of the page (read from the page itself) against a
:class:`~invalidtoken_mw.testing.LocalIssuer` serving that provider's discovery
document and key set shape (``x5c``/``x5t``, keys without ``alg``, an ``issuer``
member, a ``use: enc`` key), sends tokens with that provider's claims and header
through uvicorn, and checks the answer: the claims, or the exact reason.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from invalidtoken_mw.testing import LocalIssuer
from support.providers import (
    config_blocks,
    encryption_jwk,
    serve_provider,
    sign_with,
    unverified_header,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx


def answer(http: httpx.Client, token: str, path: str = "/claims") -> tuple[int, Any]:
    """The status and the reason (refused) or claims (accepted) for ``token`` on ``path``."""
    response = http.get(path, headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    return response.status_code, body.get("reason", body) if response.status_code >= 400 else body


def test_every_block_of_the_page_is_tested() -> None:
    """Each block of docs/providers.md is served by a test below, and each served name
    is a block: a new block without a test fails here."""
    served = set(re.findall(r'serve_provider\(\s*"([a-z0-9-]+)"', Path(__file__).read_text()))
    assert set(config_blocks()) == served


# -- Auth0 ---------------------------------------------------------------------------

AUTH0 = "https://dev-orders.eu.auth0.com"
AUTH0_API = "https://api.example.com/orders"


@pytest.fixture(scope="module")
def auth0() -> Iterator[tuple[LocalIssuer, httpx.Client]]:
    with (
        LocalIssuer(
            "RS256", audience=AUTH0_API, trailing_slash=True, token_type="JWT", x509=True
        ) as issuer,
        serve_provider("auth0", issuer, (AUTH0,), scope="read:orders") as http,
    ):
        yield issuer, http


def auth0_token(issuer: LocalIssuer, **claims: object) -> str:
    body: dict[str, Any] = {
        "sub": "auth0|64f1c0ffee",
        "aud": [AUTH0_API, f"{issuer.issuer}userinfo"],
        "azp": "Xq3orderswebclient",
        "scope": "openid profile",
        "permissions": ["read:orders"],
        **claims,
    }
    return issuer.token(**body)


def test_auth0_jwks_and_header_are_auth0_shaped(auth0: tuple[LocalIssuer, httpx.Client]) -> None:
    issuer, _ = auth0
    (key,) = issuer.jwks()["keys"]
    assert {"kty", "use", "n", "e", "kid", "alg", "x5c", "x5t"} <= set(key)
    assert unverified_header(auth0_token(issuer)) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": issuer.kid,
    }
    assert issuer.issuer.endswith("/")


def test_auth0_access_token_with_permissions(auth0: tuple[LocalIssuer, httpx.Client]) -> None:
    issuer, http = auth0
    status, claims = answer(http, auth0_token(issuer))
    assert (200, "auth0|64f1c0ffee") == (status, claims["sub"])
    # The scope comes from permissions alone: scope holds only openid and profile.
    assert (200, {"ok": True}) == answer(http, auth0_token(issuer), "/scoped")


def test_auth0_refusals(auth0: tuple[LocalIssuer, httpx.Client]) -> None:
    issuer, http = auth0
    assert (403, "insufficient_scope") == answer(
        http, auth0_token(issuer, permissions=["write:orders"]), "/scoped"
    )
    id_token = auth0_token(issuer, aud="Xq3orderswebclient", permissions=None, scope=None)
    assert (401, "wrong_audience") == answer(http, id_token)


# -- Okta ----------------------------------------------------------------------------

OKTA = "https://example.okta.com"
OKTA_CLIENT = "0oa8orderswebEXAMPLE"


def okta_claims(**claims: object) -> dict[str, Any]:
    return {
        "ver": 1,
        "jti": f"AT.{uuid.uuid4().hex}",
        "sub": "alice@example.com",
        "cid": OKTA_CLIENT,
        "uid": "00u1aliceEXAMPLE",
        "scp": ["orders.read", "openid"],
        "auth_time": int(time.time()) - 60,
        **claims,
    }


def test_okta_custom_authorization_server() -> None:
    with (
        LocalIssuer(
            "RS256", audience="api://default", path="/oauth2/default", token_type=None
        ) as issuer,
        serve_provider("okta", issuer, (OKTA,), scope="orders.read") as http,
    ):
        token = issuer.token(**okta_claims())
        assert set(unverified_header(token)) == {"alg", "kid"}
        status, claims = answer(http, token)
        assert (200, OKTA_CLIENT) == (status, claims["cid"])
        assert (200, {"ok": True}) == answer(http, token, "/scoped")
        assert (403, "insufficient_scope") == answer(
            http, issuer.token(**okta_claims(scp=["openid"])), "/scoped"
        )
        assert (401, "wrong_claim") == answer(
            http, issuer.token(**okta_claims(cid="0oa9someoneelse"))
        )


def test_okta_org_authorization_server_id_token() -> None:
    with (
        LocalIssuer("RS256", audience=OKTA_CLIENT, token_type=None) as issuer,
        serve_provider("okta-org", issuer, (OKTA,)) as http,
    ):
        id_token = issuer.token(
            sub="00u1aliceEXAMPLE", ver=1, amr=["pwd"], idp="00o1EXAMPLE", jti="ID.x"
        )
        assert (200, "00u1aliceEXAMPLE") == (
            answer(http, id_token)[0],
            answer(http, id_token)[1]["sub"],
        )
        # An org access token is for Okta's own APIs: its aud is the org.
        org_access = issuer.token(**okta_claims(aud=issuer.issuer))
        assert (401, "wrong_audience") == answer(http, org_access)


# -- Microsoft Entra ID ----------------------------------------------------------------

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ENTRA_API = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
ENTRA_ORIGINS = ("https://login.microsoftonline.com",)


def entra_issuer(**options: Any) -> LocalIssuer:
    """Keys as Entra ID publishes them: x5c, x5t, an issuer member, no alg."""
    return LocalIssuer(
        "RS256",
        token_type="JWT",
        x509=True,
        publish_alg=False,
        jwk_members={"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0"},
        **options,
    )


def entra_claims(**claims: object) -> dict[str, Any]:
    return {
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "oid": "00000000-0000-0000-66f3-3332eca7ea81",
        "tid": TENANT,
        "scp": "Orders.Read User.Read",
        "nbf": int(time.time()) - 5,
        "uti": "fqiBqXLPj0eQa82S-IYFAA",
        **claims,
    }


def test_entra_v2_tokens() -> None:
    with (
        entra_issuer(audience=ENTRA_API, path=f"/{TENANT}/v2.0") as issuer,
        serve_provider(
            "entra-v2", issuer, ENTRA_ORIGINS, scope="Orders.Read", role="Orders.Admin"
        ) as http,
    ):
        key = issuer.jwks()["keys"][0]
        assert "alg" not in key
        assert {"kid", "x5t", "x5c", "issuer"} <= set(key)
        delegated = issuer.token(
            **entra_claims(azp="c44b4083-3bb0-49c1-b47d-974e53cbdf3c", ver="2.0")
        )
        status, claims = answer(http, delegated)
        assert (200, TENANT, "2.0") == (status, claims["tid"], claims["ver"])
        assert (200, {"ok": True}) == answer(http, delegated, "/scoped")
        app_only = issuer.token(
            **entra_claims(scp=None, roles=["Orders.Admin"], azp="c44b", ver="2.0")
        )
        assert (200, {"ok": True}) == answer(http, app_only, "/role")
        assert (403, "insufficient_role") == answer(http, delegated, "/role")
        other_tenant = issuer.token(
            **entra_claims(
                iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",
                tid=OTHER_TENANT,
                ver="2.0",
            )
        )
        assert (401, "wrong_issuer") == answer(http, other_tenant)
        v1_here = issuer.token(**entra_claims(iss=f"https://sts.windows.net/{TENANT}/", ver="1.0"))
        assert (401, "wrong_issuer") == answer(http, v1_here)
        wrong_tid = issuer.token(**entra_claims(tid=OTHER_TENANT, ver="2.0"))
        assert (401, "wrong_claim") == answer(http, wrong_tid)


def test_entra_multi_tenant_tokens() -> None:
    """Two listed tenants accepted; another tenant, a tid naming another tenant and a
    token without tid refused; the key set is the common one."""
    third_tenant = "0e7d2a5c-64d3-4b8e-9a51-6f1f43c1b6a2"
    with (
        entra_issuer(audience=ENTRA_API, jwks_path="/common/discovery/v2.0/keys") as issuer,
        serve_provider(
            "entra-multi-tenant", issuer, ENTRA_ORIGINS, scope="Orders.Read", role="Orders.Admin"
        ) as http,
    ):

        def token(tenant: str, **claims: object) -> str:
            fields = {"iss": f"{issuer.origin}/{tenant}/v2.0", "tid": tenant, "ver": "2.0"}
            return issuer.token(**entra_claims(**{**fields, **claims}))

        status, claims = answer(http, token(TENANT))
        assert (200, TENANT) == (status, claims["tid"])
        status, claims = answer(http, token(OTHER_TENANT))
        assert (200, OTHER_TENANT) == (status, claims["tid"])
        assert (200, {"ok": True}) == answer(http, token(TENANT), "/scoped")
        assert (401, "wrong_issuer") == answer(http, token(third_tenant))
        assert (401, "wrong_issuer") == answer(http, token(TENANT, tid=OTHER_TENANT))
        assert (401, "missing_claim") == answer(http, token(TENANT, tid=None))
        assert (401, "wrong_claim") == answer(http, token(TENANT, ver="1.0"))


def test_entra_v1_tokens() -> None:
    with (
        entra_issuer(
            audience="api://orders",
            path=f"/{TENANT}",
            trailing_slash=True,
            jwks_path=f"/{TENANT}/discovery/keys",
        ) as issuer,
        serve_provider(
            "entra-v1",
            issuer,
            ("https://login.microsoftonline.com", "https://sts.windows.net"),
            scope="Orders.Read",
            role="Orders.Admin",
        ) as http,
    ):
        x5t = issuer.jwk()["x5t"]
        token = issuer.token(
            headers={"x5t": x5t},
            **entra_claims(appid="c44b4083-3bb0-49c1-b47d-974e53cbdf3c", ver="1.0"),
        )
        assert unverified_header(token) == {
            "typ": "JWT",
            "alg": "RS256",
            "kid": issuer.kid,
            "x5t": x5t,
        }
        status, claims = answer(http, token)
        assert (200, "1.0") == (status, claims["ver"])
        assert (200, {"ok": True}) == answer(http, token, "/scoped")
        assert (403, "insufficient_role") == answer(http, token, "/role")
        other_tenant = issuer.token(
            **entra_claims(
                iss=f"https://sts.windows.net/{OTHER_TENANT}/", tid=OTHER_TENANT, ver="1.0"
            )
        )
        assert (401, "wrong_issuer") == answer(http, other_tenant)
        v2_here = issuer.token(**entra_claims(ver="2.0", iss=f"{issuer.origin}/{TENANT}/v2.0"))
        assert (401, "wrong_issuer") == answer(http, v2_here)


# -- Keycloak --------------------------------------------------------------------------

KEYCLOAK = "https://sso.example.com"


def keycloak_issuer(audience: str) -> tuple[LocalIssuer, Any, str]:
    """A realm with its RS256 signing key (x5c) and an RSA-OAEP use:enc key, as Keycloak has."""
    private, enc = encryption_jwk()
    issuer = LocalIssuer(
        "RS256",
        audience=audience,
        path="/realms/orders",
        token_type="JWT",
        x509=True,
        extra_keys=[enc],
    )
    return issuer, private, enc["kid"]


def keycloak_claims(**claims: object) -> dict[str, Any]:
    return {
        "sub": "f0c5e2a4-5d9e-4a39-9a4e-3a1f6c0b2d11",
        "jti": str(uuid.uuid4()),
        "typ": "Bearer",
        "azp": "orders-web",
        "sid": "0a3f",
        "acr": "1",
        "realm_access": {"roles": ["default-roles-orders", "offline_access", "clerk"]},
        "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
        "scope": "openid profile email",
        "email_verified": True,
        "preferred_username": "alice",
        **claims,
    }


def test_keycloak_with_audience_mapper() -> None:
    issuer, enc_private, enc_kid = keycloak_issuer("orders-api")
    with issuer, serve_provider("keycloak", issuer, (KEYCLOAK,), role="clerk") as http:
        assert [key.get("use") for key in issuer.jwks()["keys"]] == ["sig", "enc"]
        token = issuer.token(**keycloak_claims(aud=["orders-api", "account"]))
        status, claims = answer(http, token)
        assert (200, "alice") == (status, claims["preferred_username"])
        assert (200, {"ok": True}) == answer(http, token, "/role")
        client_role = issuer.token(
            **keycloak_claims(
                aud="orders-api",
                realm_access={"roles": ["offline_access"]},
                resource_access={"orders-api": {"roles": ["clerk"]}},
            )
        )
        assert (200, {"ok": True}) == answer(http, client_role, "/role")
        no_role = issuer.token(
            **keycloak_claims(aud="orders-api", realm_access={"roles": ["offline_access"]})
        )
        assert (403, "insufficient_role") == answer(http, no_role, "/role")
        # Without the mapper the token only names "account".
        assert (401, "wrong_audience") == answer(
            http, issuer.token(**keycloak_claims(aud="account"))
        )
        id_token = issuer.token(**keycloak_claims(aud="orders-api", typ="ID"))
        assert (401, "wrong_claim") == answer(http, id_token)
        body = keycloak_claims(iss=issuer.issuer, aud="orders-api")
        assert (401, "unknown_key") == answer(http, sign_with(enc_private, enc_kid, body))


def test_keycloak_without_audience_mapper() -> None:
    issuer, _, _ = keycloak_issuer("account")
    with issuer, serve_provider("keycloak-azp", issuer, (KEYCLOAK,), role="clerk") as http:
        token = issuer.token(**keycloak_claims())
        assert (200, "orders-web") == (answer(http, token)[0], answer(http, token)[1]["azp"])
        assert (200, {"ok": True}) == answer(http, token, "/role")
        no_aud = issuer.token(**keycloak_claims(aud=None))
        assert answer(http, no_aud)[0] == 200
        assert (401, "wrong_claim") == answer(
            http, issuer.token(**keycloak_claims(azp="admin-cli"))
        )
        id_token = issuer.token(**keycloak_claims(aud="orders-web", typ="ID"))
        assert (401, "wrong_claim") == answer(http, id_token)


# -- Amazon Cognito ----------------------------------------------------------------------

COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com"
COGNITO_CLIENT = "1example23456789"


def cognito_access(**claims: object) -> dict[str, Any]:
    return {
        "aud": None,
        "sub": "aaaaaaaa-bbbb-cccc-dddd-example",
        "cognito:groups": ["clerks"],
        "version": 2,
        "client_id": COGNITO_CLIENT,
        "origin_jti": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "token_use": "access",
        "scope": "orders/read aws.cognito.signin.user.admin",
        "auth_time": int(time.time()) - 30,
        "jti": str(uuid.uuid4()),
        "username": "alice",
        **claims,
    }


def cognito_id(**claims: object) -> dict[str, Any]:
    return {
        "aud": COGNITO_CLIENT,
        "sub": "aaaaaaaa-bbbb-cccc-dddd-example",
        "cognito:groups": ["clerks"],
        "email_verified": True,
        "cognito:username": "alice",
        "origin_jti": str(uuid.uuid4()),
        "event_id": str(uuid.uuid4()),
        "token_use": "id",
        "auth_time": int(time.time()) - 30,
        "email": "alice@example.com",
        "jti": str(uuid.uuid4()),
        **claims,
    }


@pytest.fixture(scope="module")
def cognito_pool() -> Iterator[LocalIssuer]:
    with LocalIssuer(
        "RS256", audience=COGNITO_CLIENT, path="/eu-west-1_AbCdEf123", token_type=None
    ) as issuer:
        yield issuer


def test_cognito_access_tokens(cognito_pool: LocalIssuer) -> None:
    issuer = cognito_pool
    with serve_provider("cognito", issuer, (COGNITO,), scope="orders/read", role="clerks") as http:
        (key,) = issuer.jwks()["keys"]
        assert {"alg", "use"} <= set(key)
        assert "x5c" not in key
        token = issuer.token(**cognito_access())
        assert set(unverified_header(token)) == {"alg", "kid"}
        status, claims = answer(http, token)
        assert (200, COGNITO_CLIENT, "access") == (status, claims["client_id"], claims["token_use"])
        assert (200, {"ok": True}) == answer(http, token, "/scoped")
        assert (200, {"ok": True}) == answer(http, token, "/role")
        other_client = issuer.token(**cognito_access(client_id="7otherclient"))
        assert (401, "wrong_claim") == answer(http, other_client)
        id_without_aud = issuer.token(**cognito_access(token_use="id"))
        assert (401, "wrong_claim") == answer(http, id_without_aud)
        assert (401, "wrong_audience") == answer(http, issuer.token(**cognito_id()))


def test_cognito_id_tokens(cognito_pool: LocalIssuer) -> None:
    issuer = cognito_pool
    with serve_provider("cognito-id", issuer, (COGNITO,), role="clerks") as http:
        status, claims = answer(http, issuer.token(**cognito_id()))
        assert (200, "alice@example.com") == (status, claims["email"])
        assert (401, "missing_claim") == answer(http, issuer.token(**cognito_access()))
        access_with_aud = issuer.token(**cognito_access(aud=COGNITO_CLIENT))
        assert (401, "wrong_claim") == answer(http, access_with_aud)


# -- Google ------------------------------------------------------------------------------

GOOGLE = "https://accounts.google.com"
RUN_URL = "https://orders-abc123-ew.a.run.app"
CALLER = "billing@example-project.iam.gserviceaccount.com"


def test_google_service_to_service_id_tokens() -> None:
    with (
        LocalIssuer("RS256", audience=RUN_URL, token_type="JWT") as issuer,
        serve_provider("google", issuer, (GOOGLE,)) as http,
    ):

        def google(**claims: object) -> str:
            body: dict[str, Any] = {
                "azp": "112233445566778899000",
                "sub": "112233445566778899000",
                "email": CALLER,
                "email_verified": True,
                **claims,
            }
            return issuer.token(**body)

        status, claims = answer(http, google())
        assert (200, CALLER) == (status, claims["email"])
        assert (401, "wrong_audience") == answer(
            http, google(aud="https://other-service.a.run.app")
        )
        assert (401, "wrong_claim") == answer(
            http, google(email="intruder@evil-project.iam.gserviceaccount.com")
        )
        assert (401, "wrong_claim") == answer(http, google(email_verified=False))


# -- GitHub Actions ----------------------------------------------------------------------

GITHUB = "https://token.actions.githubusercontent.com"


def github_claims(
    repository: str = "octo-org/deploy-tools", ref: str = "refs/heads/main"
) -> dict[str, Any]:
    owner = repository.split("/", maxsplit=1)[0]
    return {
        "jti": str(uuid.uuid4()),
        "sub": f"repo:{repository}:ref:{ref}",
        "aud": f"https://github.com/{owner}",
        "ref": ref,
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "repository": repository,
        "repository_owner": owner,
        "repository_owner_id": "65432",
        "repository_id": "123456",
        "repository_visibility": "private",
        "run_id": "7000000001",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "deploy",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
        "runner_environment": "github-hosted",
        "nbf": int(time.time()) - 5,
    }


def test_github_actions_oidc_tokens() -> None:
    with (
        LocalIssuer(
            "RS256", audience="https://github.com/octo-org", token_type="JWT", x509=True
        ) as issuer,
        serve_provider("github-actions", issuer, (GITHUB,)) as http,
    ):

        def github(**options: Any) -> str:
            return issuer.token(headers={"x5t": issuer.jwk()["x5t"]}, **github_claims(**options))

        token = github()
        assert set(unverified_header(token)) == {"typ", "alg", "x5t", "kid"}
        status, claims = answer(http, token)
        assert (200, "repo:octo-org/deploy-tools:ref:refs/heads/main") == (status, claims["sub"])
        assert (401, "wrong_claim") == answer(http, github(repository="octo-org/other-repo"))
        assert (401, "wrong_claim") == answer(http, github(ref="refs/heads/feature"))
        assert (401, "wrong_claim") == answer(http, github(ref="refs/pull/7/merge"))
        # Another owner's workflow gets another default audience.
        assert (401, "wrong_audience") == answer(http, github(repository="evil-org/deploy-tools"))
