"""JWTVerifier: the registered claims: expiry, not-before, issuer, audience, token type,
required claims and claims of the wrong type (with property tests over any JSON value).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from invalidtoken_mw.reasons import Reason
from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    AUDIENCE,
    ISSUER,
    SECRET,
    claims,
    hs256_raw,
    json_values,
    mint,
)
from support.verifying import (
    APIS,
    HS256,
    failure_of,
    static_verifier,
    verdict,
)

# -- expiry ----------------------------------------------------------------------------


@APIS
@pytest.mark.parametrize(
    ("age", "leeway", "expected"),
    [
        pytest.param(120, 60, "expired", id="beyond-leeway"),
        pytest.param(3 * 3600, 60, "expired", id="hours-ago"),
        pytest.param(30, 60, "valid", id="within-leeway"),
        pytest.param(5, 0, "expired", id="no-leeway"),
        pytest.param(-5, 0, "valid", id="not-yet-expired-no-leeway"),
    ],
)
def test_exp_against_the_leeway(age: int, leeway: int, expected: str, api: str) -> None:
    """exp in the past is expired only once the leeway is used up."""
    token = mint(payload=claims(exp=int(time.time()) - age, iat=int(time.time()) - 4 * 3600))
    assert expected == verdict(static_verifier(leeway=leeway), token, api)


# -- not yet valid ---------------------------------------------------------------------


@APIS
@pytest.mark.parametrize(
    ("claim", "ahead", "expected"),
    [
        pytest.param("nbf", 600, "not_yet_valid", id="nbf-beyond-leeway"),
        pytest.param("iat", 600, "not_yet_valid", id="iat-beyond-leeway"),
        pytest.param("nbf", 30, "valid", id="nbf-within-leeway"),
        pytest.param("iat", 30, "valid", id="iat-within-leeway"),
    ],
)
def test_future_nbf_or_iat(claim: str, ahead: int, expected: str, api: str) -> None:
    """nbf or iat in the future is not_yet_valid only beyond the leeway."""
    token = mint(payload=claims(**{claim: int(time.time()) + ahead}))
    assert expected == verdict(static_verifier(leeway=60), token, api)


def test_description_hints_at_clock_skew() -> None:
    """The not_yet_valid description tells the client that clocks may disagree."""
    failure = failure_of(static_verifier(), mint(payload=claims(nbf=int(time.time()) + 600)))
    assert Reason.NOT_YET_VALID == failure.reason
    assert "clocks" in failure.description


# -- issuer and audience ---------------------------------------------------------------


@APIS
@pytest.mark.parametrize(
    ("overrides", "options", "expected"),
    [
        pytest.param({"iss": ISSUER}, {}, "valid", id="iss-exact"),
        pytest.param({"iss": ISSUER + "/"}, {}, "wrong_issuer", id="iss-trailing-slash"),
        pytest.param({"iss": ISSUER.upper()}, {}, "wrong_issuer", id="iss-case"),
        pytest.param({"iss": "https://evil.example"}, {}, "wrong_issuer", id="iss-other"),
        pytest.param({"iss": ISSUER + ".evil"}, {}, "wrong_issuer", id="iss-prefix"),
        pytest.param({"aud": "other"}, {}, "wrong_audience", id="aud-string-other"),
        pytest.param({"aud": AUDIENCE + "/"}, {}, "wrong_audience", id="aud-trailing-slash"),
        pytest.param({"aud": ["a", "b"]}, {}, "wrong_audience", id="aud-array-without"),
        pytest.param({"aud": ["a", AUDIENCE]}, {}, "valid", id="aud-array-with"),
        pytest.param(
            {"iss": "https://second.example"},
            {"issuer": [ISSUER, "https://second.example"]},
            "valid",
            id="several-issuers-second",
        ),
        pytest.param(
            {"iss": "https://third.example"},
            {"issuer": [ISSUER, "https://second.example"]},
            "wrong_issuer",
            id="several-issuers-none",
        ),
        pytest.param(
            {"aud": "https://other-api.example"},
            {"audience": [AUDIENCE, "https://other-api.example"]},
            "valid",
            id="several-audiences-string",
        ),
        pytest.param(
            {"aud": ["x", "https://other-api.example"]},
            {"audience": [AUDIENCE, "https://other-api.example"]},
            "valid",
            id="several-audiences-array",
        ),
        pytest.param(
            {"aud": ["x", "y"]},
            {"audience": [AUDIENCE, "https://other-api.example"]},
            "wrong_audience",
            id="several-audiences-none",
        ),
        pytest.param(
            {"iss": "anyone", "aud": "anything"},
            {"issuer": None, "audience": None},
            "wrong_audience",
            id="rfc7519-4.1.3-no-audience-configured-token-names-one",
        ),
        pytest.param(
            {"iss": "anyone", "aud": "anything"},
            {"issuer": None, "audience": None, "accept_any_audience": True},
            "valid",
            id="unconfigured-opted-out-not-checked",
        ),
        pytest.param(
            {"iss": "anyone", "aud": None},
            {"issuer": None, "audience": None},
            "valid",
            id="no-audience-configured-token-names-none",
        ),
    ],
)
def test_issuer_and_audience(
    overrides: dict[str, Any], options: dict[str, Any], expected: str, api: str
) -> None:
    """iss matches exactly one configured issuer; aud must contain a configured audience."""
    token = mint(payload=claims(**overrides))
    assert expected == verdict(static_verifier(**options), token, api)


@pytest.mark.parametrize("claim", ["iss", "aud"])
def test_absent_iss_or_aud_is_a_missing_claim_named(claim: str) -> None:
    """A configured iss or aud that the token lacks is missing_claim naming it."""
    failure = failure_of(static_verifier(), mint(payload=claims(**{claim: None})))
    expected = (Reason.MISSING_CLAIM, f"The access token lacks the required {claim} claim.")
    assert expected == (failure.reason, failure.description)


# -- token type and required claims ----------------------------------------------------


@APIS
@pytest.mark.parametrize(
    ("configured", "typ", "expected"),
    [
        pytest.param("at+jwt", "JWT", "wrong_token_type", id="typ-jwt"),
        pytest.param("at+jwt", None, "wrong_token_type", id="typ-absent"),
        pytest.param("at+jwt", "jwt", "wrong_token_type", id="typ-jwt-lower"),
        pytest.param("at+jwt", "application/jwt", "wrong_token_type", id="typ-app-jwt"),
        pytest.param("at+jwt", "at+jwt", "valid", id="typ-at-jwt"),
        pytest.param("at+jwt", "AT+JWT", "valid", id="typ-upper"),
        pytest.param("at+jwt", "application/at+jwt", "valid", id="typ-media-type"),
        pytest.param("at+jwt", "Application/AT+JWT", "valid", id="typ-media-type-case"),
        pytest.param("application/at+jwt", "at+jwt", "valid", id="configured-media-type"),
        pytest.param(None, "anything", "valid", id="typ-not-required"),
    ],
)
def test_token_type(configured: str | None, typ: str | None, expected: str, api: str) -> None:
    """typ is compared case-insensitively with an optional application/ prefix."""
    headers = {"typ": typ} if typ is not None else {}
    token = jwt.encode(claims(), SECRET, algorithm="HS256", headers=headers)
    if typ is None:
        token = hs256_raw({"alg": "HS256"}, claims())
    assert expected == verdict(static_verifier(token_type=configured), token, api)


def test_wrong_token_type_names_the_required_type() -> None:
    """The wrong_token_type description names the type this service requires."""
    verifier = static_verifier(token_type="at+jwt")
    failure = failure_of(verifier, mint(headers={"typ": "JWT"}))
    expected = "The token is not an access token of the type this service requires (at+jwt)."
    assert expected == failure.description


@APIS
@pytest.mark.parametrize(
    ("payload", "required", "missing"),
    [
        pytest.param(claims(exp=None), ("exp",), "exp", id="exp-absent-by-default"),
        pytest.param(claims(jti=None), ("exp", "jti"), "jti", id="jti-absent"),
        pytest.param(claims(sub=None), ("sub",), "sub", id="sub-absent"),
        pytest.param({**claims(), "jti": None}, ("jti",), "jti", id="jti-null"),
    ],
)
def test_absent_required_claim_is_named(
    payload: dict[str, Any], required: tuple[str, ...], missing: str, api: str
) -> None:
    """A required claim that is absent (or null) is missing_claim, naming the claim."""
    verifier = static_verifier(required_claims=required)
    token = hs256_raw({"alg": "HS256"}, payload)
    expected = "missing_claim"
    assert expected == verdict(verifier, token, api)
    expected = f"The access token lacks the required {missing} claim."
    assert expected == failure_of(static_verifier(required_claims=required), token).description


def test_no_required_claims_accepts_a_token_without_exp() -> None:
    """With required_claims=() a token without exp is accepted."""
    verifier = static_verifier(required_claims=())
    expected = "valid"
    assert expected == verdict(verifier, mint(payload=claims(exp=None)))


# -- claims of the wrong type ----------------------------------------------------------

_NOW = int(time.time())
_HUGE = "1" + "0" * 400
_OVER_DIGIT_LIMIT = "1" + "0" * 5000


def _claims_json(**raw: str) -> str:
    """Valid claims as JSON text, with some values replaced by raw JSON text."""
    base = {k: json.dumps(v) for k, v in claims().items()}
    base.update(raw)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in base.items()) + "}"


WRONG_TYPED_CLAIMS = [
    pytest.param({"exp": '"soon"'}, "malformed_token", id="exp-string"),
    pytest.param({"exp": "[1]"}, "malformed_token", id="exp-list"),
    pytest.param({"exp": '{"at": 1}'}, "malformed_token", id="exp-object"),
    pytest.param({"exp": "null"}, "malformed_token", id="exp-null"),
    pytest.param({"exp": _HUGE}, "valid", id="exp-10e400"),
    pytest.param({"exp": "-" + _HUGE}, "expired", id="exp-minus-10e400"),
    pytest.param({"exp": _OVER_DIGIT_LIMIT}, "malformed_token", id="exp-over-digit-limit"),
    pytest.param({"exp": "1e400"}, "malformed_token", id="exp-infinity"),
    pytest.param({"exp": "NaN"}, "malformed_token", id="exp-nan"),
    pytest.param({"nbf": '{"a": 1}'}, "malformed_token", id="nbf-object"),
    pytest.param({"nbf": '"later"'}, "malformed_token", id="nbf-string"),
    pytest.param({"nbf": _HUGE}, "not_yet_valid", id="nbf-10e400"),
    pytest.param({"iat": "[]"}, "malformed_token", id="iat-list"),
    pytest.param({"iat": '"today"'}, "malformed_token", id="iat-string"),
    pytest.param({"iat": "-Infinity"}, "malformed_token", id="iat-minus-infinity"),
    pytest.param({"aud": json.dumps({"aud": AUDIENCE})}, "wrong_audience", id="aud-object"),
    pytest.param({"aud": "[1, 2]"}, "wrong_audience", id="aud-numbers"),
    pytest.param({"aud": json.dumps([AUDIENCE, 5])}, "wrong_audience", id="aud-mixed"),
    pytest.param({"aud": json.dumps([[AUDIENCE]])}, "wrong_audience", id="aud-nested"),
    pytest.param({"sub": '["a", "b"]'}, "malformed_token", id="sub-list"),
    pytest.param({"sub": '{"id": 1}'}, "malformed_token", id="sub-object"),
    pytest.param({"sub": "42"}, "malformed_token", id="sub-number"),
    pytest.param({"iss": "42"}, "wrong_issuer", id="iss-number"),
    pytest.param({"iss": json.dumps([ISSUER])}, "wrong_issuer", id="iss-list"),
    pytest.param(
        {"iss": json.dumps({"a": {"b": [ISSUER, {"c": None}]}})},
        "wrong_issuer",
        id="iss-nested-object",
    ),
    pytest.param({"jti": "5"}, "malformed_token", id="jti-number"),
    pytest.param({"scope": '{"deep": [[[[]]]]}'}, "valid", id="unknown-claim-nested"),
]


@APIS
@pytest.mark.parametrize(("raw", "expected"), WRONG_TYPED_CLAIMS)
def test_claims_of_the_wrong_type(raw: dict[str, str], expected: str, api: str) -> None:
    """Wrong-typed claims give a precise AuthFailure (or a verdict), never another exception."""
    token = hs256_raw({"alg": "HS256"}, _claims_json(**raw))
    verifier = static_verifier()
    with structlog.testing.capture_logs() as logs:
        actual = verdict(verifier, token, api)
        again = verdict(verifier, token, api)
    assert (expected, expected, []) == (actual, again, logs)


@APIS
def test_wrong_typed_header_values(api: str) -> None:
    """A typ or kid of the wrong type is refused, never an exception."""
    verifier = static_verifier(token_type="at+jwt")
    tokens = [
        hs256_raw({**HS256, "typ": {"at": "jwt"}}, claims()),
        hs256_raw({**HS256, "kid": []}, claims()),
    ]
    expected = ["wrong_token_type", "malformed_token"]
    assert expected == [verdict(verifier, t, api) for t in tokens]


_PROPERTY_VERIFIER = JWTVerifier(
    key=SECRET,
    algorithms=["HS256"],
    issuer=ISSUER,
    audience=AUDIENCE,
    token_type="at+jwt",
    required_claims=("exp", "sub"),
    cache_size=0,
)
_CLAIM_NAMES = st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "jti", "scope", "cnf"])
_HEADER_NAMES = st.sampled_from(["kid", "typ", "crit", "b64", "jku", "x5u", "jwk", "x5c", "cty"])


def _judge(token: str) -> tuple[str, str, list[Any]]:
    """Sync and async verdicts of the property verifier, and any log events."""
    with structlog.testing.capture_logs() as logs:
        sync = verdict(_PROPERTY_VERIFIER, token)
        asynchronous = verdict(_PROPERTY_VERIFIER, token, "async")
    return sync, asynchronous, logs


@settings(max_examples=150, deadline=None)
@given(replaced=st.dictionaries(_CLAIM_NAMES, json_values, min_size=1, max_size=3))
def test_any_json_claim_values_only_ever_give_an_auth_failure(
    replaced: dict[str, Any],
) -> None:
    """Any JSON in registered claims gives one verdict from both APIs and no error log."""
    token = hs256_raw({**HS256, "typ": "at+jwt"}, {**claims(), **replaced})
    sync, asynchronous, logs = _judge(token)
    assert (sync, []) == (asynchronous, logs)
    assert sync in {"valid", *(r.value for r in Reason)}


@settings(max_examples=150, deadline=None)
@given(replaced=st.dictionaries(_HEADER_NAMES, json_values, min_size=1, max_size=3))
def test_any_json_header_values_only_ever_give_an_auth_failure(
    replaced: dict[str, Any],
) -> None:
    """Arbitrary JSON in header parameters yields a verdict from both APIs and no error log."""
    token = hs256_raw({**HS256, "typ": "at+jwt", **replaced}, claims())
    sync, asynchronous, logs = _judge(token)
    assert (sync, []) == (asynchronous, logs)
