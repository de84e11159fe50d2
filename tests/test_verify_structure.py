"""JWTVerifier: the valid baseline, token structure, and the catch-all for unexpected errors.

Tokens are minted with real keys (``support.tokens``); every check runs through the sync
and the async API.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest
import structlog

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    KIDS,
    SECRET,
    Case,
    b64url,
    claims,
    hs256_raw,
    mint,
    session_keys,
    static_cases,
)
from support.verifying import (
    APIS,
    CLAIMS_B64,
    HS256,
    ExplodingKeys,
    failure_of,
    jwks_verifier,
    signed_with_kid,
    static_verifier,
    verdict,
)

if TYPE_CHECKING:
    from support.jwks_server import JWKSServer

# -- the valid baseline ----------------------------------------------------------------


@APIS
@pytest.mark.parametrize("alg", ALGORITHMS)
def test_valid_token_returns_its_claims(alg: str, api: str) -> None:
    """A correctly signed token of each algorithm is accepted and its claims returned."""
    payload = claims(scope="read")
    token = mint(alg, payload)
    verifier = static_verifier(alg)
    sync = api == "sync"
    result = verifier.verify(token) if sync else asyncio.run(verifier.verify_async(token))
    assert payload == result


@pytest.mark.parametrize("case", static_cases(), ids=lambda case: case.name)
def test_verify_async_gives_the_same_verdicts_as_verify(case: Case) -> None:
    """For every defect class, verify_async on a fresh verifier agrees with verify."""
    expected = (case.expected, case.expected)
    assert expected == (
        verdict(case.verifier(), case.token),
        verdict(case.verifier(), case.token, "async"),
    )


# -- structure -------------------------------------------------------------------------

_HEADER_B64 = b64url(json.dumps(HS256).encode())
_JWE_HEADER = b64url(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')
_NOT_UTF8 = b64url(b"\xff\xfe{")

STRUCTURAL_DEFECTS = [
    pytest.param("abc", id="one-segment"),
    pytest.param(f"{_HEADER_B64}.{CLAIMS_B64}", id="two-segments"),
    pytest.param(f"{_HEADER_B64}.{CLAIMS_B64}.c2ln.ZXh0cmE", id="four-segments"),
    pytest.param("", id="empty"),
    pytest.param("..", id="empty-segments"),
    pytest.param(f"{_HEADER_B64}.{CLAIMS_B64}.sig!", id="bad-base64url-character"),
    pytest.param(f"{_HEADER_B64}+/.{CLAIMS_B64}.c2ln", id="standard-base64-alphabet"),
    pytest.param(f"{_HEADER_B64}.{CLAIMS_B64}=.c2ln", id="base64-padding"),
    pytest.param(f"abcde.{CLAIMS_B64}.c2ln", id="bad-base64url-length"),
    pytest.param(hs256_raw('{"alg": "HS256"', claims()), id="bad-json-header"),
    pytest.param(hs256_raw(HS256, '{"sub": "x",'), id="bad-json-claims"),
    pytest.param(f"{_NOT_UTF8}.{CLAIMS_B64}.c2ln", id="header-not-utf8"),
    pytest.param(hs256_raw('["HS256"]', claims()), id="header-array"),
    pytest.param(hs256_raw('"HS256"', claims()), id="header-string"),
    pytest.param(hs256_raw("null", claims()), id="header-null"),
    pytest.param(hs256_raw(HS256, "[]"), id="claims-array"),
    pytest.param(hs256_raw(HS256, '"sub"'), id="claims-string"),
    pytest.param(hs256_raw(HS256, "42"), id="claims-number"),
    pytest.param(hs256_raw(HS256, "[" * 5000 + "]" * 5000), id="claims-nested-too-deep"),
    pytest.param(hs256_raw({**HS256, "kid": 7}, claims()), id="kid-not-a-string"),
    pytest.param(f"{_JWE_HEADER}.ZW5j.aXY.Y2lwaGVy.dGFn", id="jwe-five-segments"),
    pytest.param(f"{_JWE_HEADER}..aXY.Y2lwaGVy.dGFn", id="jwe-direct-empty-key"),
    pytest.param(mint(payload=claims(pad="x" * 9000)), id="oversized"),
]


@APIS
@pytest.mark.parametrize("token", STRUCTURAL_DEFECTS)
def test_structural_defects_are_malformed(token: str, api: str) -> None:
    """Wrong segment count, bad base64url or JSON, non-object parts and JWEs are malformed."""
    expected = "malformed_token"
    assert expected == verdict(static_verifier(), token, api)


def test_jwe_description_says_encrypted_tokens_are_not_accepted() -> None:
    """A JWE is refused with a description that names JWE, so the client knows why."""
    failure = failure_of(static_verifier(), f"{_JWE_HEADER}.ZW5j.aXY.Y2lwaGVy.dGFn")
    assert Reason.MALFORMED_TOKEN == failure.reason
    assert "JWE" in failure.description


# -- the catch-all ---------------------------------------------------------------------


@APIS
def test_unexpected_error_is_malformed_token_and_logged(
    monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """A bug inside verification becomes malformed_token plus one error log, never a 500."""
    verifier = static_verifier()
    monkeypatch.setattr(verifier, "keys", ExplodingKeys(verifier.keys))
    token = mint()
    with structlog.testing.capture_logs() as logs:
        actual = verdict(verifier, token, api)
    expected_log = {
        "event": "verifier_unexpected_error",
        "log_level": "error",
        "error_type": "RuntimeError",
        "token_length": len(token),
    }
    assert ("malformed_token", [expected_log]) == (actual, logs)


def test_unexpected_error_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the fault is gone the same token verifies: a crash is not a lasting verdict."""
    verifier = static_verifier()
    token = mint()
    with monkeypatch.context() as patch:
        patch.setattr(verifier, "keys", ExplodingKeys(verifier.keys))
        with structlog.testing.capture_logs():
            expected = "malformed_token"
            assert expected == verdict(verifier, token)
    expected = "valid"
    assert expected == verdict(verifier, token)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_public_building_blocks_check_what_verify_checks(alg: str) -> None:
    """parse, signing_key and check_signature accept a good token and refuse a forgery."""
    verifier = static_verifier(alg)
    keys = session_keys()
    good = verifier.parse(mint(alg))
    forged = verifier.parse(mint(alg, key=keys.forging_key(alg)))
    verifier.check_signature(good, verifier.signing_key(good))
    with pytest.raises(AuthFailure) as refused:
        verifier.check_signature(forged, verifier.signing_key(forged))
    assert alg == good.alg
    assert good.kid is None
    assert "user-1" == good.claims["sub"]
    assert Reason.BAD_SIGNATURE == refused.value.reason
    assert good.signing_input + b"." == mint_parts(good.token)[0]


def mint_parts(token: str) -> tuple[bytes, str]:
    """The bytes before the signature (with the dot) and the signature segment."""
    head, _, signature = token.rpartition(".")
    return (head + ".").encode(), signature


def test_parse_refuses_what_verify_refuses_before_any_key() -> None:
    """parse gives verify's structure and algorithm verdicts, without a key."""
    verifier = static_verifier()
    verdicts = []
    for token in ("not-a-jwt", "a.b.c.d.e", mint("RS256")):
        with pytest.raises(AuthFailure) as refused:
            verifier.parse(token)
        verdicts.append(refused.value.reason)
    expected = [Reason.MALFORMED_TOKEN, Reason.MALFORMED_TOKEN, Reason.ALGORITHM_NOT_ALLOWED]
    assert expected == verdicts


def test_signing_key_async_finds_the_jwks_key(jwks: JWKSServer) -> None:
    """With a JWKS URL, signing_key_async fetches the key set and returns the key by kid."""
    verifier = jwks_verifier(jwks, algorithms=["ES256"])
    parsed = verifier.parse(signed_with_kid("ES256", KIDS["ES256"]))
    verifier.check_signature(parsed, asyncio.run(verifier.signing_key_async(parsed)))
    unknown = verifier.parse(signed_with_kid("ES256", "no-such-kid"))
    with pytest.raises(AuthFailure) as refused:
        asyncio.run(verifier.signing_key_async(unknown))
    assert Reason.UNKNOWN_KEY == refused.value.reason


def test_non_string_kid_is_malformed_with_a_true_description() -> None:
    """A kid that is not a string is malformed_token, and the description says so."""
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    token = hs256_raw({"alg": "HS256", "kid": 7}, claims())
    with pytest.raises(AuthFailure) as caught:
        verifier.verify(token)
    expected = (
        Reason.MALFORMED_TOKEN,
        "The access token is malformed: its kid header is not a string.",
    )
    assert expected == (caught.value.reason, caught.value.description)
