"""invalidtoken_mw.testing: the helpers users' own tests rely on, judged by the real verifier."""

from __future__ import annotations

import subprocess
import sys

import jwt
import pytest

from invalidtoken_mw import AuthFailure, JWTVerifier, Reason
from invalidtoken_mw.testing import DEFECTS, FakeIssuer, mint_token
from support.expected import DEFECT_REASONS
from support.jwks_server import JWKSServer

EXPECTED = DEFECT_REASONS


def verdict(verifier: JWTVerifier, token: str) -> str:
    """``"valid"`` or the reason value ``verifier`` answers."""
    try:
        verifier.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


@pytest.mark.parametrize("algorithm", ["HS256", "ES256", "RS256", "PS256", "EdDSA"])
def test_fake_issuer_tokens_pass_its_own_verifier_and_no_other(algorithm: str) -> None:
    """Each algorithm: a fresh key, tokens its verifier accepts, another issuer's refuses."""
    issuer = FakeIssuer(algorithm)
    stranger = FakeIssuer(algorithm)
    token = issuer.token(sub="alice", scope="orders:read")
    claims = issuer.verifier().verify(token)
    header = jwt.get_unverified_header(token)
    assert ("alice", "orders:read", algorithm, "test-key") == (
        claims["sub"],
        claims["scope"],
        header["alg"],
        header["kid"],
    )
    assert "bad_signature" == verdict(stranger.verifier(), token)


@pytest.mark.parametrize("defect", DEFECTS)
def test_every_defect_gets_its_reason_from_a_fake_issuers_verifier(defect: str) -> None:
    """The documented defect table holds: each defect is refused for its own reason."""
    issuer = FakeIssuer()
    token = issuer.token(defect, headers={"typ": "at+jwt"})
    assert EXPECTED[defect] == verdict(issuer.verifier(token_type="at+jwt"), token)


def test_a_claim_given_as_none_is_left_out() -> None:
    """``exp=None`` makes a token without exp (missing_claim), not one with a null exp."""
    token = mint_token(FakeIssuer().key, algorithm="HS256", claims={"exp": None, "sub": None})
    assert {"iat"} == set(jwt.decode(token, options={"verify_signature": False}))


def test_fake_issuer_jwks_serves_a_jwks_verifier() -> None:
    """The issuer's JWK Set, served over HTTP, verifies its tokens by kid; it holds no secret."""
    issuer = FakeIssuer("ES256", kid="2026-01")
    server = JWKSServer()
    try:
        server.jwks = issuer.jwks()
        verifier = JWTVerifier(
            jwks_url=server.url,
            algorithms=["ES256"],
            issuer=issuer.issuer,
            audience=issuer.audience,
        )
        claims = verifier.verify(issuer.token())
    finally:
        server.stop()
    [jwk] = issuer.jwks()["keys"]
    assert ("user-1", False) == (claims["sub"], "d" in jwk)


def test_an_hmac_issuer_publishes_no_jwks() -> None:
    """A secret is never put in a key set."""
    with pytest.raises(ValueError, match="never published"):
        FakeIssuer().jwks()


def test_an_unknown_algorithm_is_refused_with_the_choices() -> None:
    """FakeIssuer names the algorithms it can make keys for."""
    with pytest.raises(ValueError, match="choose HS256, ES256"):
        FakeIssuer("HS999")


def test_the_library_never_imports_testing_or_the_command_line() -> None:
    """Importing the library and every adapter loads neither invalidtoken_mw.testing nor .cli."""
    code = (
        "import sys, invalidtoken_mw, invalidtoken_mw.asgi, invalidtoken_mw.wsgi,"
        " invalidtoken_mw.flask, invalidtoken_mw.fastapi, invalidtoken_mw.explain;"
        "print(sorted(m for m in sys.modules"
        " if m.startswith(('invalidtoken_mw.testing', 'invalidtoken_mw.cli'))))"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert (0, "[]") == (done.returncode, done.stdout.strip()), done.stderr


def test_reason_enum_is_what_the_table_names() -> None:
    """The defect table only names real reasons."""
    assert set(EXPECTED.values()) <= {reason.value for reason in Reason}
