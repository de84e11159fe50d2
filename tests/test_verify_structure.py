"""JWTVerifier: the valid baseline, token structure, and the catch-all for unexpected errors.

Tokens are minted with real keys (``support.tokens``); every check runs through the sync
and the async API.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import structlog

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    SECRET,
    Case,
    b64url,
    claims,
    hs256_raw,
    mint,
    static_cases,
)
from support.verifying import (
    APIS,
    CLAIMS_B64,
    HS256,
    failure_of,
    static_verifier,
    verdict,
)

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


class ExplodingDecoder:
    """A decoder that fails the way a library bug would."""

    def decode(self, *_args: Any, **_kwargs: Any) -> Any:
        """Fail unexpectedly."""
        raise RuntimeError("boom")


@APIS
def test_unexpected_error_is_malformed_token_and_logged(
    monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """A bug inside verification becomes malformed_token plus one error log, never a 500."""
    verifier = static_verifier()
    monkeypatch.setattr(verifier, "_decoder", ExplodingDecoder())
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
        patch.setattr(verifier, "_decoder", ExplodingDecoder())
        with structlog.testing.capture_logs():
            expected = "malformed_token"
            assert expected == verdict(verifier, token)
    expected = "valid"
    assert expected == verdict(verifier, token)


def test_explain_method_matches_verify() -> None:
    """JWTVerifier.explain reports the verdict verify gives."""
    verifier = static_verifier()
    report = verifier.explain(mint(payload=claims(aud="other")))
    expected = Reason.WRONG_AUDIENCE
    assert expected == (report.failure.reason if report.failure else None)


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
