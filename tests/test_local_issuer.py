"""LocalIssuer and the pytest plugin: discovery, JWKS, rotation and defects over real HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from invalidtoken_mw import AuthFailure, JWKSCache, JWTVerifier
from invalidtoken_mw.testing import LOCAL_DEFECTS, LocalIssuer
from support.expected import DEFECT_REASONS

pytest_plugins = ["pytester"]

EXPECTED = {**DEFECT_REASONS, "unknown-key": "unknown_key"}


def fetch(url: str) -> tuple[int, dict[str, Any]]:
    """GET ``url`` over loopback: its status and JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback http
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def verdict(verifier: JWTVerifier, token: str) -> str:
    """``"valid"`` or the reason value ``verifier`` answers."""
    try:
        verifier.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


@pytest.mark.parametrize(
    ("path", "trailing_slash"), [("", False), ("", True), ("/realms/orders", False)]
)
def test_both_discovery_documents_name_the_issuer_and_its_jwks(
    path: str, *, trailing_slash: bool
) -> None:
    """OIDC discovery at {issuer}/.well-known/..., RFC 8414 with the path after it."""
    with LocalIssuer(path=path, trailing_slash=trailing_slash) as issuer:
        base = issuer.issuer.rstrip("/")
        openid = fetch(f"{base}/.well-known/openid-configuration")
        oauth = fetch(f"{issuer.origin}/.well-known/oauth-authorization-server{path}")
        missing = fetch(f"{issuer.origin}/.well-known/openid-configuration/elsewhere")
        status, jwks = fetch(openid[1]["jwks_uri"])
    assert (200, 200, 404, 200) == (openid[0], oauth[0], missing[0], status)
    assert openid[1] == oauth[1] == issuer.metadata()
    assert (issuer.issuer, ["ES256"]) == (
        openid[1]["issuer"],
        openid[1]["id_token_signing_alg_values_supported"],
    )
    assert issuer.issuer.endswith("/") is trailing_slash
    [jwk] = jwks["keys"]
    assert (issuer.kid, "EC", "ES256", "sig", False) == (
        jwk["kid"],
        jwk["kty"],
        jwk["alg"],
        jwk["use"],
        "d" in jwk,
    )


def test_jwks_cache_fetches_the_published_key_and_the_verifier_accepts_its_tokens() -> None:
    """The library's own JWKSCache loads the key; the handed-out verifier accepts tokens."""
    with LocalIssuer("RS256", audience="api://orders") as issuer:
        cache = JWKSCache(issuer.jwks_url)
        key = cache.get_key(issuer.kid, "RS256")
        claims = issuer.verifier().verify(issuer.token(sub="alice", scope="orders:read"))
        fetched = issuer.requests["/jwks"]
    assert (issuer.kid, "alice", "orders:read", "api://orders") == (
        key.key_id,
        claims["sub"],
        claims["scope"],
        claims["aud"],
    )
    assert 2 == fetched  # one fetch by the cache, one by the verifier


def test_a_rotated_key_is_accepted_after_refresh_keys_and_a_withdrawn_one_refused() -> None:
    """rotate() keeps the old key published; rotate(keep_old=False) withdraws it."""
    with LocalIssuer() as issuer:
        verifier = issuer.verifier(cache_size=0)
        first_kid, first = issuer.kid, issuer.token()
        assert "valid" == verdict(verifier, first)
        second_kid = issuer.rotate()
        second = issuer.token()
        verifier.refresh_keys()
        overlap = (verdict(verifier, first), verdict(verifier, second))
        third_kid = issuer.rotate(keep_old=False)
        verifier.refresh_keys()
        after = (verdict(verifier, first), verdict(verifier, second))
        third = verdict(verifier, issuer.token())
        published = issuer.kids
    assert ("key-1", "key-2", "key-3") == (first_kid, second_kid, third_kid)
    assert (("valid", "valid"), ("unknown_key", "unknown_key"), "valid") == (overlap, after, third)
    assert ["key-3"] == published


def test_withdraw_removes_one_old_key_and_never_the_current_one() -> None:
    """withdraw() stops publishing an old kid; the signing key cannot be withdrawn."""
    with LocalIssuer() as issuer:
        issuer.rotate()
        issuer.rotate()
        issuer.withdraw("key-2")
        with pytest.raises(ValueError, match="current key"):
            issuer.withdraw("key-3")
        with pytest.raises(ValueError, match="no published key"):
            issuer.withdraw("key-2")
        _, jwks = fetch(issuer.jwks_url)
    assert ["key-1", "key-3"] == [jwk["kid"] for jwk in jwks["keys"]]


@pytest.mark.parametrize("defect", LOCAL_DEFECTS)
def test_every_defect_is_refused_for_its_reason_by_the_issuers_verifier(defect: str) -> None:
    """Each defect, verified through the key set served over HTTP, gets its own reason."""
    with LocalIssuer() as issuer:
        assert EXPECTED[defect] == verdict(issuer.verifier(), issuer.token(defect))


@pytest.mark.parametrize("algorithm", ["ES256", "RS256", "PS256", "EdDSA"])
def test_each_algorithm_verifies_and_no_other_issuer_accepts_it(algorithm: str) -> None:
    """A token verifies with its own issuer's verifier; another LocalIssuer refuses it."""
    with LocalIssuer(algorithm) as issuer, LocalIssuer(algorithm) as other:
        token = issuer.token()
        mine = verdict(issuer.verifier(), token)
        theirs = verdict(other.verifier(issuer=issuer.issuer), token)
    assert ("valid", "bad_signature") == (mine, theirs)


def test_an_outage_answers_503_and_the_verifier_key_unavailable() -> None:
    """available=False: every path answers 503; the verifier says key_unavailable."""
    with LocalIssuer() as issuer:
        issuer.available = False
        status, _ = fetch(issuer.jwks_url)
        down = verdict(issuer.verifier(), issuer.token())
        issuer.available = True
        up = verdict(issuer.verifier(), issuer.token())
    assert (503, "key_unavailable", "valid") == (status, down, up)


def test_headers_and_token_type() -> None:
    """headers() is a bearer Authorization header; token_type=None drops typ everywhere."""
    with LocalIssuer(token_type=None) as issuer:
        [scheme, token] = issuer.headers(sub="bob")["Authorization"].split(" ")
        verifier = issuer.verifier()
        verified = verdict(verifier, token)
    assert ("Bearer", "valid", None) == (scheme, verified, verifier.token_type)


def test_close_frees_the_port_joins_the_thread_and_is_idempotent() -> None:
    """After close nothing listens and no thread runs; closing twice is harmless."""
    issuer = LocalIssuer()
    port = int(issuer.origin.rsplit(":", 1)[1])
    thread = issuer._thread  # noqa: SLF001 - the test checks the thread ends
    issuer.close()
    issuer.close()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass
    assert not thread.is_alive()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"algorithm": "HS256"}, "never published|publishes its keys"),
        ({"path": "realms/x"}, "path must look like"),
        ({"path": "/realms/x/"}, "path must look like"),
    ],
)
def test_unusable_options_are_refused(options: dict[str, Any], message: str) -> None:
    """An HMAC algorithm or a malformed path is refused with a message saying why."""
    with pytest.raises(ValueError, match=message):
        LocalIssuer(**options)


def test_an_unknown_defect_is_refused_with_the_choices() -> None:
    """token() names the defects it knows."""
    with LocalIssuer() as issuer, pytest.raises(ValueError, match="unknown-key"):
        issuer.token("no-such-defect")


# -- the pytest plugin, as a user's test suite sees it ---------------------------------

USER_TESTS = """
import pytest

from invalidtoken_mw import AuthFailure


@pytest.mark.local_issuer(audience="api://orders", path="/realms/shop")
def test_tokens_from_the_fixture_verify(local_issuer):
    verifier = local_issuer.verifier()
    assert verifier.verify(local_issuer.token(sub="alice"))["sub"] == "alice"
    assert local_issuer.issuer.endswith("/realms/shop")
    with pytest.raises(AuthFailure) as refused:
        verifier.verify(local_issuer.token("expired"))
    assert refused.value.reason.value == "expired"


@pytest.mark.local_issuer("RS256")
def test_rotation(local_issuer):
    verifier = local_issuer.verifier()
    local_issuer.rotate(keep_old=False)
    verifier.refresh_keys()
    assert verifier.verify(local_issuer.token())["aud"] == "api://test"


ports = set()


@pytest.mark.parametrize("n", [1, 2])
def test_each_test_gets_its_own_issuer(local_issuer, n):
    ports.add(local_issuer.origin)
    assert local_issuer.kid == "key-1"
    assert len(ports) == n
"""


def test_the_fixture_in_a_users_test_module(pytester: pytest.Pytester) -> None:
    """A throwaway test module uses local_issuer and its marker under --strict-markers."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--strict-markers", "-W", "error"
    )
    result.assert_outcomes(passed=4)


def test_a_suite_without_the_fixture_loads_neither_the_kit_nor_a_framework(
    pytester: pytest.Pytester,
) -> None:
    """The plugin is registered, yet imports nothing beyond itself until used."""
    pytester.makepyfile(
        test_plain="""
        import sys

        def test_nothing_imported(pytestconfig):
            assert pytestconfig.pluginmanager.has_plugin("invalidtoken_mw")
            loaded = {name.split(".")[0] for name in sys.modules}
            frameworks = {"flask", "fastapi", "django", "litestar", "quart", "werkzeug"}
            assert "invalidtoken_mw.testing" not in sys.modules
            assert loaded & frameworks == set()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_plugin_module_alone_imports_no_framework() -> None:
    """Importing the plugin (as pytest does at start-up) loads no web framework."""
    code = (
        "import sys, invalidtoken_mw.pytest_plugin;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'fastapi', 'django',"
        " 'litestar', 'quart', 'werkzeug', 'starlette', 'httpx'}), "
        "'invalidtoken_mw.testing' in sys.modules)"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert (0, "[] False") == (done.returncode, done.stdout.strip()), done.stderr
