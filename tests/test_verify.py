"""JWTVerifier: conformance rows 9-18 and 23, configuration errors and the verdict caches.

Tokens are minted with real keys (tests/tokens.py); JWKS-backed tests run against the
real local server of tests/jwks_server.py. Test ids carry the conformance row number.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.verify import JWTVerifier
from support.jwks_server import JWKSServer
from support.tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    KIDS,
    OTHER_SECRET,
    SECRET,
    Case,
    Keys,
    b64url,
    claims,
    hs256_raw,
    json_values,
    mint,
    session_keys,
    static_cases,
    tamper_claims,
    tamper_signature,
)

if TYPE_CHECKING:
    from collections.abc import Callable

APIS = pytest.mark.parametrize("api", ["sync", "async"])
ASYMMETRIC = ("RS256", "PS256", "ES256", "EdDSA")
COOLDOWN = 0.05
HS256 = {"alg": "HS256", "typ": "JWT"}


def verdict(verifier: JWTVerifier, token: str, api: str = "sync") -> str:
    """Return ``"valid"`` or the reason value, through the sync or the async API."""
    try:
        if api == "async":
            asyncio.run(verifier.verify_async(token))
        else:
            verifier.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


def failure_of(verifier: JWTVerifier, token: str) -> AuthFailure:
    """Return the failure ``verify`` raises (the test fails if it accepts the token)."""
    with pytest.raises(AuthFailure) as info:
        verifier.verify(token)
    return info.value


def static_verifier(alg: str = "HS256", **options: Any) -> JWTVerifier:
    """A verifier holding the session's key for ``alg``, expecting ISSUER and AUDIENCE."""
    options.setdefault("issuer", ISSUER)
    options.setdefault("audience", AUDIENCE)
    return JWTVerifier(key=session_keys().verifying_key(alg), algorithms=[alg], **options)


class CountingDecoder:
    """Wraps the verifier's PyJWT decoder and counts the decodes it really performs."""

    def __init__(self, inner: jwt.PyJWT) -> None:
        self.inner = inner
        self.calls = 0

    def decode(self, *args: Any, **kwargs: Any) -> Any:
        """Count, then decode for real."""
        self.calls += 1
        return self.inner.decode(*args, **kwargs)


def count_decodes(verifier: JWTVerifier, monkeypatch: pytest.MonkeyPatch) -> CountingDecoder:
    """Make ``verifier`` count its decodes for the rest of the test."""
    counter = CountingDecoder(verifier._decoder)  # noqa: SLF001 - the seam the brief allows
    monkeypatch.setattr(verifier, "_decoder", counter)
    return counter


def jwks_verifier(server: JWKSServer, **options: Any) -> JWTVerifier:
    """A verifier using ``server``'s JWKS with a short cool-down."""
    options.setdefault("algorithms", list(ASYMMETRIC))
    options.setdefault("jwks_cooldown", COOLDOWN)
    return JWTVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE, **options)


def signed_with_kid(alg: str, kid: str, payload: dict[str, Any] | None = None) -> str:
    """A token signed with the session key for ``alg``, naming ``kid``."""
    return mint(alg, payload, headers={"kid": kid})


# -- the valid baseline ---------------------------------------------------------------


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


# -- row 9: structure ---------------------------------------------------------------

_CLAIMS_B64 = b64url(json.dumps(claims()).encode())
_HEADER_B64 = b64url(json.dumps(HS256).encode())
_JWE_HEADER = b64url(b'{"alg":"RSA-OAEP","enc":"A256GCM"}')
_NOT_UTF8 = b64url(b"\xff\xfe{")

ROW9 = [
    pytest.param("abc", id="one-segment"),
    pytest.param(f"{_HEADER_B64}.{_CLAIMS_B64}", id="two-segments"),
    pytest.param(f"{_HEADER_B64}.{_CLAIMS_B64}.c2ln.ZXh0cmE", id="four-segments"),
    pytest.param("", id="empty"),
    pytest.param("..", id="empty-segments"),
    pytest.param(f"{_HEADER_B64}.{_CLAIMS_B64}.sig!", id="bad-base64url-character"),
    pytest.param(f"{_HEADER_B64}+/.{_CLAIMS_B64}.c2ln", id="standard-base64-alphabet"),
    pytest.param(f"{_HEADER_B64}.{_CLAIMS_B64}=.c2ln", id="base64-padding"),
    pytest.param(f"abcde.{_CLAIMS_B64}.c2ln", id="bad-base64url-length"),
    pytest.param(hs256_raw('{"alg": "HS256"', claims()), id="bad-json-header"),
    pytest.param(hs256_raw(HS256, '{"sub": "x",'), id="bad-json-claims"),
    pytest.param(f"{_NOT_UTF8}.{_CLAIMS_B64}.c2ln", id="header-not-utf8"),
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
@pytest.mark.parametrize("token", ROW9)
def test_structural_defects_are_malformed(token: str, api: str) -> None:
    """Wrong segment count, bad base64url or JSON, non-object parts and JWEs are malformed."""
    expected = "malformed_token"
    assert expected == verdict(static_verifier(), token, api)


def test_jwe_description_says_encrypted_tokens_are_not_accepted() -> None:
    """A JWE is refused with a description that names JWE, so the client knows why."""
    failure = failure_of(static_verifier(), f"{_JWE_HEADER}.ZW5j.aXY.Y2lwaGVy.dGFn")
    expected = (Reason.MALFORMED_TOKEN, True)
    assert expected == (failure.reason, "JWE" in failure.description)


# -- row 10: algorithms ---------------------------------------------------------------


@APIS
@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2ln"], ids=["unsigned", "junk-sig"])
def test_alg_none_in_any_spelling_is_not_allowed(spelling: str, signature: str, api: str) -> None:
    """alg none, whatever its case, is refused before any key is touched."""
    header = b64url(json.dumps({"alg": spelling, "typ": "JWT"}).encode())
    token = f"{header}.{_CLAIMS_B64}.{signature}"
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(), token, api)


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_description_says_the_token_is_unsigned(spelling: str) -> None:
    """The alg-none refusal, in any spelling, tells the client a signature is required."""
    header = b64url(json.dumps({"alg": spelling}).encode())
    failure = failure_of(static_verifier(), f"{header}.{_CLAIMS_B64}.")
    expected = "The access token is not signed (alg none); this service requires a signature."
    assert expected == failure.description


@APIS
@pytest.mark.parametrize(
    ("verifier_alg", "token_alg"),
    [
        pytest.param("HS256", "RS256", id="rs256-to-hs256"),
        pytest.param("RS256", "PS256", id="ps256-same-rsa-key-to-rs256"),
        pytest.param("RS256", "ES256", id="es256-to-rs256"),
        pytest.param("EdDSA", "ES256", id="es256-to-eddsa"),
        pytest.param("ES256", "EdDSA", id="eddsa-to-es256"),
    ],
)
def test_algorithm_outside_the_allowlist(verifier_alg: str, token_alg: str, api: str) -> None:
    """A validly signed token whose alg is not in the configured allowlist is refused."""
    token = mint(token_alg)
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(verifier_alg), token, api)


@APIS
@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"typ": "JWT"}, id="alg-missing"),
        pytest.param({"alg": 256}, id="alg-number"),
        pytest.param({"alg": ["HS256"]}, id="alg-list"),
        pytest.param({"alg": "hs256"}, id="alg-wrong-case"),
        pytest.param({"alg": "HS384"}, id="alg-other-hmac"),
    ],
)
def test_alg_header_must_name_an_allowed_algorithm(header: dict[str, Any], api: str) -> None:
    """A missing, non-string, miscased or unlisted alg is refused even with a good HMAC."""
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(), hs256_raw(header, claims()), api)


def _key_forms(keys: Keys) -> dict[str, Any]:
    """The RSA public key in every form a verifier accepts."""
    pem = keys.rsa_public_pem()
    return {
        "pem-bytes": pem,
        "pem-str": pem.decode(),
        "key-object": keys.rsa.public_key(),
        "jwk": {k: v for k, v in keys.jwk("RS256", "rsa-1").items() if k != "kid"},
    }


@APIS
@pytest.mark.parametrize("form", ["pem-bytes", "pem-str", "key-object", "jwk"])
def test_hs256_signed_with_the_rsa_public_key_is_refused(keys: Keys, form: str, api: str) -> None:
    """RFC 8725 §2.1 key confusion: HS256 keyed with the public PEM or JWK never verifies."""
    key = _key_forms(keys)[form]
    verifier = JWTVerifier(key=key, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE)
    secrets = [keys.rsa_public_pem(), json.dumps(keys.jwk("RS256", "rsa-1")).encode()]
    verdicts = [verdict(verifier, hs256_raw(HS256, claims(), secret), api) for secret in secrets]
    expected = ["algorithm_not_allowed", "algorithm_not_allowed"]
    assert expected == verdicts


# -- row 11: signatures ---------------------------------------------------------------


def _forgeries(alg: str) -> dict[str, str]:
    """Tokens for ``alg`` whose signature does not verify, by defect."""
    keys = session_keys()
    now = int(time.time())
    forger = keys.forging_key(alg)
    good = mint(alg)
    return {
        "foreign-key": mint(alg, key=forger),
        "tampered-signature": tamper_signature(good),
        "tampered-claims": tamper_claims(good, sub="admin"),
        "tampered-exp": tamper_claims(mint(alg, claims(exp=now - 10)), exp=now + 3600),
        "expired-and-forged": mint(alg, claims(exp=now - 7200), key=forger),
        "every-claim-wrong-and-forged": mint(
            alg,
            claims(exp=now - 7200, nbf=now + 7200, iss="evil", aud="evil"),
            key=forger,
        ),
        "signature-stripped": good.rsplit(".", 1)[0] + ".",
    }


@APIS
@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("defect", list(_forgeries("HS256")))
def test_forged_or_tampered_tokens_are_bad_signature(alg: str, defect: str, api: str) -> None:
    """Any signature that does not verify is bad_signature, never expired or a claim error."""
    token = _forgeries(alg)[defect]
    expected = "bad_signature"
    assert expected == verdict(static_verifier(alg), token, api)


# -- row 13: expiry -------------------------------------------------------------------


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


# -- row 14: not yet valid ------------------------------------------------------------


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
    expected = (Reason.NOT_YET_VALID, True)
    assert expected == (failure.reason, "clocks" in failure.description)


# -- row 15: issuer and audience ------------------------------------------------------


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
            "valid",
            id="unconfigured-not-checked",
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


# -- row 16: token type and required claims -------------------------------------------


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


# -- row 17: claims of the wrong type -------------------------------------------------

_NOW = int(time.time())
_HUGE = "1" + "0" * 400
_OVER_DIGIT_LIMIT = "1" + "0" * 5000


def _claims_json(**raw: str) -> str:
    """Valid claims as JSON text, with some values replaced by raw JSON text."""
    base = {k: json.dumps(v) for k, v in claims().items()}
    base.update(raw)
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in base.items()) + "}"


ROW17 = [
    pytest.param({"exp": '"soon"'}, "malformed_token", id="exp-string"),
    pytest.param({"exp": "[1]"}, "malformed_token", id="exp-list"),
    pytest.param({"exp": '{"at": 1}'}, "malformed_token", id="exp-object"),
    pytest.param({"exp": "null"}, "missing_claim", id="exp-null"),
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
@pytest.mark.parametrize(("raw", "expected"), ROW17)
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


# -- rows 12, 18 and 23: JWKS ----------------------------------------------------------


@APIS
@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_jwks_key_chosen_by_kid_verifies(jwks: JWKSServer, alg: str, api: str) -> None:
    """A token whose kid names a published key of its algorithm is accepted via JWKS."""
    token = signed_with_kid(alg, KIDS[alg])
    expected = ("valid", 1)
    assert expected == (verdict(jwks_verifier(jwks), token, api), jwks.requests)


@APIS
def test_unknown_kid_is_unknown_key_after_one_refresh(jwks: JWKSServer, api: str) -> None:
    """An unknown kid causes one refresh (after the cool-down), then unknown_key, no more."""
    # A cool-down long enough that the second unknown kid surely falls inside it.
    verifier = jwks_verifier(jwks, jwks_cooldown=0.3)
    expected_first = "valid"
    assert expected_first == verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    time.sleep(0.35)
    first = verdict(verifier, signed_with_kid("ES256", "no-such-kid"), api)
    requests_after_first = jwks.requests
    second = verdict(verifier, signed_with_kid("ES256", "another-unknown-kid"), api)
    expected = ("unknown_key", 2, "unknown_key", 2)
    assert expected == (first, requests_after_first, second, jwks.requests)


@APIS
def test_rotated_key_is_accepted_without_a_restart(jwks: JWKSServer, api: str) -> None:
    """A key published after start-up verifies once the cool-down allows a refresh."""
    verifier = jwks_verifier(jwks)
    expected = "valid"
    assert expected == verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    rotated = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(rotated.public_key(), as_dict=True), "kid": "ec-2", "alg": "ES256"}
    jwks.add_key(jwk)
    time.sleep(COOLDOWN * 1.5)
    token = mint("ES256", key=rotated, headers={"kid": "ec-2"})
    expected_after_rotation = ("valid", 2)
    assert expected_after_rotation == (verdict(verifier, token, api), jwks.requests)


def test_unknown_key_verdict_is_not_cached(jwks: JWKSServer) -> None:
    """A token refused as unknown_key is accepted once its key is published."""
    verifier = jwks_verifier(jwks)
    rotated = ec.generate_private_key(ec.SECP256R1())
    token = mint("ES256", key=rotated, headers={"kid": "ec-new"})
    expected = "unknown_key"
    assert expected == verdict(verifier, token)
    jwks.add_key({**ECAlgorithm.to_jwk(rotated.public_key(), as_dict=True), "kid": "ec-new"})
    time.sleep(COOLDOWN * 1.5)
    expected = "valid"
    assert expected == verdict(verifier, token)


def test_concurrent_unknown_kids_share_one_fetch(jwks: JWKSServer) -> None:
    """64 threads verifying unknown kids at once cause a single JWKS fetch."""
    verifier = jwks_verifier(jwks, jwks_cooldown=5.0)
    tokens = [signed_with_kid("ES256", f"unknown-{i}") for i in range(64)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        verdicts = list(pool.map(lambda t: verdict(verifier, t), tokens))
    expected = (["unknown_key"] * 64, 1)
    assert expected == (verdicts, jwks.requests)


@APIS
@pytest.mark.parametrize(
    ("token_alg", "kid"),
    [
        pytest.param("RS256", "ec-1", id="rsa-token-names-ec-key"),
        pytest.param("PS256", "rsa-1", id="ps256-names-jwk-declaring-rs256"),
        pytest.param("ES256", "ed-1", id="es256-names-okp-key"),
    ],
)
def test_jwks_key_must_fit_the_token_algorithm(
    jwks: JWKSServer, token_alg: str, kid: str, api: str
) -> None:
    """A kid naming a key of another algorithm is algorithm_not_allowed (RFC 8725 §3.1)."""
    token = signed_with_kid(token_alg, kid)
    expected = "algorithm_not_allowed"
    assert expected == verdict(jwks_verifier(jwks), token, api)


@APIS
@pytest.mark.parametrize("jwk_alg", ["RS256", None], ids=["jwk-with-alg", "jwk-no-alg"])
def test_jwks_key_confusion_with_hs256_allowed(
    jwks: JWKSServer, keys: Keys, jwk_alg: str | None, api: str
) -> None:
    """Even with HS256 allowlisted, an HMAC keyed with a published RSA key never verifies."""
    jwk = keys.jwk("RS256", "rsa-1")
    if jwk_alg is None:
        del jwk["alg"]
    jwks.jwks = {"keys": [jwk]}
    verifier = jwks_verifier(jwks, algorithms=["RS256", "HS256"])
    forged = hs256_raw({**HS256, "kid": "rsa-1"}, claims(), keys.rsa_public_pem())
    expected = "algorithm_not_allowed"
    assert expected == verdict(verifier, forged, api)


def _attacker_headers(attacker: JWKSServer, keys: Keys, kid: str) -> dict[str, Any]:
    """jku, x5u and jwk headers pointing at the attacker's server and key."""
    return {"kid": kid, "jku": attacker.url, "x5u": attacker.url, "jwk": keys.rsa_other_jwk()}


@APIS
def test_jku_x5u_jwk_headers_are_never_fetched_static_key(
    attacker: JWKSServer, keys: Keys, api: str
) -> None:
    """A forged token pointing at the attacker's keys is bad_signature and nothing is fetched."""
    headers = _attacker_headers(attacker, keys, "attacker")
    forged = mint("RS256", key=keys.rsa_other, headers=headers)
    honest = mint("RS256", headers=headers)
    verifier = static_verifier("RS256")
    verdicts = (verdict(verifier, forged, api), verdict(verifier, honest, api))
    expected = (("bad_signature", "valid"), 0)
    assert expected == (verdicts, attacker.requests)


@APIS
def test_jku_x5u_jwk_headers_are_never_fetched_jwks(
    jwks: JWKSServer, attacker: JWKSServer, keys: Keys, api: str
) -> None:
    """Via JWKS, only the configured URL is asked; the attacker's kid is unknown_key."""
    verifier = jwks_verifier(jwks)
    forged = mint(
        "RS256", key=keys.rsa_other, headers=_attacker_headers(attacker, keys, "attacker")
    )
    honest = mint("RS256", headers=_attacker_headers(attacker, keys, "rsa-1"))
    verdicts = (verdict(verifier, forged, api), verdict(verifier, honest, api))
    expected = (("unknown_key", "valid"), 0, 1)
    assert expected == (verdicts, attacker.requests, jwks.requests)


HOSTILE_KIDS = [
    pytest.param("../../../etc/passwd", id="kid-path-traversal"),
    pytest.param("1' OR '1'='1'; DROP TABLE keys; --", id="kid-sql"),
    pytest.param("rsa-1\r\nX-Injected: yes", id="kid-crlf"),
    pytest.param("rsa-1\x00", id="kid-nul"),
    pytest.param("", id="kid-empty"),
    pytest.param("https://attacker.example/jwks.json", id="kid-url"),
    pytest.param("__class__", id="kid-dunder"),
    pytest.param("RSA-1", id="kid-case"),
]


@APIS
@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_hostile_kid_is_only_a_dictionary_key_jwks(jwks: JWKSServer, kid: str, api: str) -> None:
    """With JWKS, a kid that looks like a path, SQL or a header is just not found: unknown_key."""
    token = signed_with_kid("RS256", kid)
    expected = ("unknown_key", 1)
    assert expected == (verdict(jwks_verifier(jwks), token, api), jwks.requests)


@APIS
@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_hostile_kid_is_ignored_with_a_static_key(kid: str, api: str) -> None:
    """With a static key the kid plays no part: a correctly signed token is accepted."""
    token = signed_with_kid("RS256", kid)
    expected = "valid"
    assert expected == verdict(static_verifier("RS256"), token, api)


@APIS
def test_jwks_down_without_cached_keys_is_key_unavailable(api: str) -> None:
    """JWKS unreachable before any key was cached: key_unavailable, a 503, never a 401."""
    server = JWKSServer()
    server.stop()
    verifier = jwks_verifier(server)
    token = signed_with_kid("RS256", "rsa-1")
    call = verifier.verify if api == "sync" else (lambda t: asyncio.run(verifier.verify_async(t)))
    with pytest.raises(AuthFailure) as info:
        call(token)
    expected = (Reason.KEY_UNAVAILABLE, 503, None)
    assert expected == (info.value.reason, info.value.status, info.value.error)


@APIS
@pytest.mark.parametrize("mode", ["status_500", "garbage", "not_object", "empty"])
def test_jwks_broken_without_cached_keys_is_key_unavailable(
    jwks: JWKSServer, mode: Any, api: str
) -> None:
    """A JWKS answering errors or junk before any key was cached gives key_unavailable."""
    jwks.mode = mode
    verdicts = verdict(jwks_verifier(jwks), signed_with_kid("RS256", "rsa-1"), api)
    expected = "key_unavailable"
    assert expected == verdicts


def test_key_unavailable_is_not_cached(jwks: JWKSServer) -> None:
    """A token refused while the JWKS was broken is accepted once it recovers."""
    verifier = jwks_verifier(jwks)
    token = signed_with_kid("RS256", "rsa-1")
    jwks.mode = "status_500"
    expected = "key_unavailable"
    assert expected == verdict(verifier, token)
    jwks.mode = "ok"
    time.sleep(COOLDOWN * 1.5)
    expected = "valid"
    assert expected == verdict(verifier, token)


@APIS
def test_cached_keys_keep_serving_while_jwks_is_down(jwks: JWKSServer, api: str) -> None:
    """After the JWKS goes down, cached keys still verify new tokens and a failed refresh warns."""
    verifier = jwks_verifier(jwks)
    expected = "valid"
    assert expected == verdict(verifier, signed_with_kid("RS256", "rsa-1"), api)
    jwks.stop()
    time.sleep(COOLDOWN * 1.5)
    with structlog.testing.capture_logs() as logs:
        unknown = verdict(verifier, signed_with_kid("RS256", "rotated-away"), api)
        known = verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    events = [(e["event"], e["log_level"], e["serving_stale"]) for e in logs]
    expected_outcome = ("unknown_key", "valid", [("jwks_refresh_failed", "warning", True)])
    assert expected_outcome == (unknown, known, events)


# -- configuration errors ---------------------------------------------------------------


@functools.cache
def _rsa_1024() -> rsa.RSAPrivateKey:
    """A too-weak RSA key, made once."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the point


CONFIG_ERRORS: list[Any] = [
    pytest.param(
        lambda _k: {"key": SECRET, "jwks_url": "https://x.example/jwks", "algorithms": ["HS256"]},
        ValueError,
        "exactly one of key",
        id="key-and-jwks-url",
    ),
    pytest.param(
        lambda _k: {"algorithms": ["HS256"]}, ValueError, "exactly one of key", id="neither"
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": []}, ValueError, "at least one", id="empty"
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS256", "none"]},
        ValueError,
        "'none' is not allowed",
        id="none-in-list",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["NONE"]},
        ValueError,
        "'NONE' is not allowed",
        id="none-uppercase",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS257"]},
        ValueError,
        "unknown algorithm 'HS257'; choose from",
        id="unknown-algorithm",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": "HS256"},
        TypeError,
        "algorithms must be a list, e.g. algorithms=['HS256']",
        id="string-not-list",
    ),
    pytest.param(
        lambda k: {"key": k.rsa_public_pem(), "algorithms": ["HS256", "RS256"]},
        ValueError,
        "key cannot verify HS256",
        id="hs256-and-rs256-one-pem",
    ),
    pytest.param(
        lambda _k: {"key": b"x" * 31, "algorithms": ["HS256"]},
        ValueError,
        "key cannot verify HS256: The HMAC key is 31 bytes long",
        id="short-hmac-secret",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS512"]},
        ValueError,
        "key cannot verify HS512",
        id="hmac-secret-short-for-hs512",
    ),
    pytest.param(
        lambda _k: {"key": _rsa_1024().public_key(), "algorithms": ["RS256"]},
        ValueError,
        "1024 bits",
        id="rsa-1024",
    ),
    pytest.param(
        lambda k: {"key": k.ec.public_key(), "algorithms": ["ES384"]},
        ValueError,
        "key cannot verify ES384",
        id="es384-with-p256-key",
    ),
    pytest.param(
        lambda k: {"key": k.jwk("RS256", "rsa-1"), "algorithms": ["PS256"]},
        ValueError,
        "the JWK declares alg 'RS256' but algorithms allows 'PS256'; use algorithms=['RS256']",
        id="jwk-alg-mismatch",
    ),
    pytest.param(
        lambda _k: {"key": {"kty": "RSA", "n": "AQAB"}, "algorithms": ["RS256"]},
        ValueError,
        "key is not a usable JWK",
        id="broken-jwk",
    ),
    pytest.param(
        lambda k: {"key": k.ed.public_key(), "algorithms": ["RS256"]},
        ValueError,
        "key cannot verify RS256",
        id="ed25519-key-for-rs256",
    ),
    pytest.param(
        lambda _k: {"key": b"", "algorithms": ["HS256"]}, ValueError, "empty", id="empty-key"
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS256"], "leeway": -1},
        ValueError,
        "leeway must be a number of seconds >= 0",
        id="negative-leeway",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS256"], "issuer": []},
        ValueError,
        "issuer must be a non-empty string",
        id="empty-issuer-list",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS256"], "audience": ""},
        ValueError,
        "audience must be a non-empty string",
        id="empty-audience",
    ),
    pytest.param(
        lambda _k: {"key": SECRET, "algorithms": ["HS256"], "token_type": " "},
        ValueError,
        "token_type must be a media type",
        id="blank-token-type",
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), CONFIG_ERRORS)
def test_configuration_errors_fail_at_construction(
    keys: Keys, options: Callable[[Keys], dict[str, Any]], error: type[Exception], message: str
) -> None:
    """An unusable configuration raises at construction with a message saying how to fix it."""
    with pytest.raises(error) as info:
        JWTVerifier(**options(keys))
    assert (type(info.value), True) == (error, message in str(info.value))


def test_configuration_error_never_quotes_the_secret() -> None:
    """A rejected HMAC secret is not repeated in the error message."""
    secret = "short-but-secret-value"
    with pytest.raises(ValueError, match="HS256") as info:
        JWTVerifier(key=secret, algorithms=["HS256"])
    assert False is (secret in str(info.value))


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_private_key_is_accepted_and_reduced_to_its_public_half(keys: Keys, alg: str) -> None:
    """A private key (or secret) configured by mistake still verifies its own tokens."""
    verifier = JWTVerifier(
        key=keys.signing_key(alg), algorithms=[alg], issuer=ISSUER, audience=AUDIENCE
    )
    expected = "valid"
    assert expected == verdict(verifier, mint(alg))


# -- the verdict cache ----------------------------------------------------------------


def test_verified_token_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second verify of the same token answers from the cache without decoding."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    first, second = verifier.verify(token), verifier.verify(token)
    assert (first, 1) == (second, counter.calls)


def test_cached_token_with_async_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify_async shares the cache with verify."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    first = verifier.verify(token)
    second = asyncio.run(verifier.verify_async(token))
    assert (first, 1) == (second, counter.calls)


def _freeze_time(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """Make invalidtoken_mw.verify read ``moment`` as the current time."""
    monkeypatch.setattr("invalidtoken_mw.verify.time.time", lambda: moment)


@APIS
@pytest.mark.parametrize(
    ("leeway", "later", "expected"),
    [
        pytest.param(0, 99, "valid", id="before-exp"),
        pytest.param(0, 100, "expired", id="at-exp"),
        pytest.param(0, 101, "expired", id="after-exp"),
        pytest.param(30, 129, "valid", id="within-leeway"),
        pytest.param(30, 131, "expired", id="beyond-leeway"),
    ],
)
def test_cached_token_still_expires_at_exp_plus_leeway(
    monkeypatch: pytest.MonkeyPatch, leeway: int, later: int, expected: str, api: str
) -> None:
    """A cached verdict ends at exp + leeway, answered from the cache without a decode."""
    now = int(time.time())
    verifier = static_verifier(leeway=leeway)
    counter = count_decodes(verifier, monkeypatch)
    token = mint(payload=claims(exp=now + 100, iat=now))
    verifier.verify(token)
    _freeze_time(monkeypatch, now + later)
    assert (expected, 1) == (verdict(verifier, token, api), counter.calls)


def test_cached_numeric_string_exp_still_bounds_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exp PyJWT reads as a number (a numeric string) still ends the cached verdict."""
    now = int(time.time())
    verifier = static_verifier(leeway=0)
    token = hs256_raw(HS256, claims(exp=str(now + 100)))
    verifier.verify(token)
    _freeze_time(monkeypatch, now + 101)
    expected = "expired"
    assert expected == verdict(verifier, token)


def test_cache_ttl_bounds_a_cached_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past cache_ttl a token is decoded again even though it has not expired."""
    verifier = static_verifier(cache_ttl=0.05)
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    verifier.verify(token)
    time.sleep(0.1)
    verifier.verify(token)
    expected = 2
    assert expected == counter.calls


def test_cache_size_zero_disables_both_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With cache_size=0 every verify decodes, valid and forged tokens alike."""
    verifier = static_verifier(cache_size=0)
    counter = count_decodes(verifier, monkeypatch)
    good, forged = mint(), mint(key=OTHER_SECRET)
    verdicts = [verdict(verifier, t) for t in (good, good, forged, forged)]
    expected = (["valid", "valid", "bad_signature", "bad_signature"], 4)
    assert expected == (verdicts, counter.calls)


def test_returned_claims_are_copies() -> None:
    """Mutating a returned dict, even a nested list or object, never changes the next result."""
    payload = claims(scp=["read"], cnf={"jkt": "abc"})
    verifier = static_verifier()
    token = mint(payload=payload)
    first = verifier.verify(token)
    first["sub"] = "admin"
    first["scp"].append("admin")
    first["cnf"]["jkt"] = "evil"
    second = verifier.verify(token)
    second["scp"].append("write")
    assert payload == verifier.verify(token)


def test_negative_cache_decodes_a_forged_token_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same forged token twice costs one decode and gets the same verdict."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    forged = mint(key=OTHER_SECRET)
    first, second = failure_of(verifier, forged), failure_of(verifier, forged)
    expected = (Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE, 1)
    assert expected == (first.reason, second.reason, counter.calls)


def test_negative_cache_hits_do_not_share_or_grow_one_exception() -> None:
    """Each cached refusal is a fresh AuthFailure, so tracebacks do not pile up on one object."""
    verifier = static_verifier()
    forged = mint(key=OTHER_SECRET)
    failures = [failure_of(verifier, forged) for _ in range(3)]
    expected = 3
    assert expected == len({id(f) for f in failures})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint(payload=claims(exp=int(time.time()) - 7200)), id="expired"),
        pytest.param(mint(payload=claims(aud="other")), id="wrong-audience"),
        pytest.param("a.b", id="malformed"),
    ],
)
def test_negative_cache_covers_lasting_verdicts(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """Expired, wrong-audience and malformed verdicts are remembered: at most one decode."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    assert verdict(verifier, token) == verdict(verifier, token)
    assert counter.calls <= 1


def test_negative_cache_ttl_zero_disables_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With negative_cache_ttl=0 a forged token is decoded every time."""
    verifier = static_verifier(negative_cache_ttl=0)
    counter = count_decodes(verifier, monkeypatch)
    forged = mint(key=OTHER_SECRET)
    verdict(verifier, forged)
    verdict(verifier, forged)
    expected = 2
    assert expected == counter.calls


def test_not_yet_valid_verdict_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """A not_yet_valid token is decoded again each time, since it will become valid."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint(payload=claims(nbf=int(time.time()) + 600))
    verdicts = [verdict(verifier, token), verdict(verifier, token)]
    expected = (["not_yet_valid", "not_yet_valid"], 2)
    assert expected == (verdicts, counter.calls)


def test_cache_is_thread_safe_under_a_mix_of_tokens() -> None:
    """16 threads x 500 verifies of mixed tokens always get a cacheless verifier's verdict."""
    now = int(time.time())
    tokens = [
        *(mint(payload=claims(sub=f"user-{i}")) for i in range(6)),
        mint(key=OTHER_SECRET),
        mint(payload=claims(exp=now - 7200)),
        mint(payload=claims(aud="other")),
        mint(payload=claims(nbf=now + 600)),
        "not.a.jwt",
        tamper_claims(mint(), sub="admin"),
    ]
    reference = static_verifier(cache_size=0)
    expected = [verdict(reference, t) for t in tokens]
    shared = static_verifier(cache_size=8)

    def run(offset: int) -> list[tuple[int, str]]:
        picks = [(offset + i) % len(tokens) for i in range(500)]
        return [(i, verdict(shared, tokens[i])) for i in picks]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [pair for batch in pool.map(run, range(16)) for pair in batch]
    wrong = [(i, got) for i, got in results if got != expected[i]]
    expected_shape: tuple[list[tuple[int, str]], int] = ([], 16 * 500)
    assert expected_shape == (wrong, len(results))


# -- the catch-all ----------------------------------------------------------------------


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


def test_single_issuer_and_audience_strings_are_tuples() -> None:
    """String issuer and audience are stored as one-element tuples; the allowlist as given."""
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)
    expected = ((ISSUER,), (AUDIENCE,), ("HS256",))
    assert expected == (verifier.issuer, verifier.audience, verifier.algorithms)


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
