"""The token-kind detector: one example per kind, near misses, and no false vendor keys.

Every example is built here from the vendor's documented prefix, length and alphabet
(or the JOSE structure), not taken from a real credential.
"""

from __future__ import annotations

import base64
import json
import string
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invalidtoken_mw import AuthFailure, JWTVerifier, Reason, TokenKind, detect_token_kind
from invalidtoken_mw._grammar import B64TOKEN_RE
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.explain import explain
from invalidtoken_mw.token_kind import describe_refusal, kind_sentence
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, mint

ALNUM = string.ascii_letters + string.digits
BASE64URL = ALNUM + "-_"


def b64url(value: dict[str, Any] | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{b64url(header)}.{b64url(claims)}.{b64url(b'not-a-real-signature-xxxxxxxx')}"


def filler(length: int, alphabet: str = ALNUM) -> str:
    """Deterministic text of ``length`` characters from ``alphabet`` (no real secret)."""
    return "".join(alphabet[(i * 7 + 3) % len(alphabet)] for i in range(length))


ACCESS = {"iss": "https://id.example", "sub": "u1", "aud": "https://api.example", "scope": "read"}
RS256 = {"alg": "RS256", "typ": "JWT", "kid": "k1"}
# A Discord user ID is a snowflake: 17 to 20 digits.
DISCORD = f"{b64url(b'123456789012345678')}.{filler(6)}.{filler(27, BASE64URL)}"

EXAMPLES: dict[TokenKind, list[str]] = {
    TokenKind.JWS: [jwt(RS256, ACCESS), jwt({"alg": "HS256"}, {"sub": "u1"})],
    TokenKind.JWT_ACCESS_TOKEN: [
        jwt({"alg": "RS256", "typ": "at+jwt"}, ACCESS),
        jwt({"alg": "ES256", "typ": "application/AT+JWT"}, {"nonce": "n"}),
    ],
    TokenKind.ID_TOKEN: [
        jwt(RS256, {"iss": "https://id.example", "aud": "client-1", "nonce": "n-0S6_WzA2Mj"}),
        jwt(RS256, {"aud": "client-1", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}),
        jwt(RS256, {"aud": "client-1", "c_hash": "LDktKdoQak3Pk0cnXxCltA"}),
        jwt(RS256, {"aud": "client-1", "azp": "client-1", "sub": "u1"}),
        jwt(RS256, {"aud": ["client-1"], "azp": "client-1", "sub": "u1"}),
        jwt(RS256, {"typ": "ID", "azp": "web", "aud": "web", "scope": "openid"}),
        jwt(RS256, {"token_use": "id", "aud": "abc"}),
    ],
    TokenKind.REFRESH_TOKEN: [
        jwt({"alg": "HS512", "typ": "JWT"}, {"typ": "Refresh", "azp": "web"}),
        jwt({"alg": "HS512"}, {"typ": "Offline", "scope": "offline_access"}),
    ],
    TokenKind.JWE: [f"{b64url({'alg': 'RSA-OAEP', 'enc': 'A256GCM'})}.a.b.c.d"],
    TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN: [
        "ghp_" + filler(36),
        "github_pat_" + filler(22) + "_" + filler(59),
    ],
    TokenKind.GITHUB_OAUTH_TOKEN: ["gho_" + filler(36)],
    TokenKind.GITHUB_APP_TOKEN: ["ghu_" + filler(36), "ghs_" + filler(36)],
    TokenKind.GITHUB_REFRESH_TOKEN: ["ghr_" + filler(76)],
    TokenKind.SLACK_BOT_TOKEN: ["xoxb-1234567890-1234567890123-" + filler(24)],
    TokenKind.SLACK_USER_TOKEN: [
        "xoxp-12345-67890-1928471-" + filler(32, "0123456789abcdef"),
        "xoxe.xoxp-1-" + filler(40),
    ],
    TokenKind.SLACK_REFRESH_TOKEN: ["xoxe-1-" + filler(40), "xoxr-1-" + filler(40)],
    TokenKind.SLACK_TOKEN: ["xoxa-2-" + filler(40), "xoxs-1234-" + filler(40)],
    TokenKind.STRIPE_SECRET_KEY: ["sk_test_" + filler(24), "sk_live_" + filler(99)],
    TokenKind.STRIPE_RESTRICTED_KEY: ["rk_live_" + filler(24)],
    TokenKind.STRIPE_PUBLISHABLE_KEY: ["pk_test_" + filler(24)],
    TokenKind.GOOGLE_ACCESS_TOKEN: ["ya29." + filler(120, BASE64URL)],
    TokenKind.AWS_ACCESS_KEY_ID: [
        "AKIA" + filler(16, string.ascii_uppercase + string.digits),
        "ASIA" + filler(16, string.ascii_uppercase + "234567"),
    ],
    TokenKind.DISCORD_BOT_TOKEN: [DISCORD],
    TokenKind.BASIC_CREDENTIALS: [
        base64.b64encode(b"alice:correct horse").decode(),
        base64.b64encode("josé:pässwörd".encode()).decode(),
    ],
    TokenKind.OPAQUE: ["", filler(43, BASE64URL), "2YotnFZFEjr1zCsicMWpAA"],
}

NEAR_MISSES: dict[str, str] = {
    "GitHub prefix, one character short": "ghp_" + filler(35),
    "GitHub prefix, a dash in the body": "ghp_" + filler(20) + "-" + filler(15),
    "unknown GitHub prefix": "ghx_" + filler(36),
    "fine-grained PAT without its separator": "github_pat_" + filler(82),
    "Slack prefix without the numeric part": "xoxb-" + filler(40),
    "unknown Slack type": "xoxz-1-" + filler(40),
    "Stripe prefix, secret too short": "sk_live_" + filler(9),
    "Stripe prefix, unknown mode": "sk_prod_" + filler(24),
    "Stripe prefix, a dash in the secret": "sk_test_" + filler(12) + "-" + filler(11),
    "Google prefix, too short": "ya29." + filler(10),
    "AWS prefix, lower-case": "AKIA" + filler(16).lower(),
    "AWS prefix, 17 characters": "AKIA" + filler(17, string.ascii_uppercase),
    "AWS role ID prefix": "AROA" + filler(16, string.ascii_uppercase),
    "Discord shape, first part not digits": (
        f"{b64url(b'abcdefghijklmnopqr')}.{filler(6)}.{filler(27)}"
    ),
    "Discord shape, too few digits": f"{b64url(b'1234567890')}.{filler(6)}.{filler(27)}",
    "Basic without a colon": base64.b64encode(b"alice-correct-horse").decode(),
    "Basic with an empty user": base64.b64encode(b":password1").decode(),
    "Basic unpadded": base64.b64encode(b"alice:pass1").decode().rstrip("="),
    "three parts, header not JSON": f"{filler(20)}.{filler(20)}.{filler(20)}",
    "five parts, header not JSON": "a.b.c.d.e",
}


@pytest.mark.parametrize(
    ("kind", "token"), [(kind, token) for kind, tokens in EXAMPLES.items() for token in tokens]
)
def test_each_kind_is_recognised(kind: TokenKind, token: str) -> None:
    assert detect_token_kind(token) is kind


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(TokenKind)


@pytest.mark.parametrize("token", NEAR_MISSES.values(), ids=list(NEAR_MISSES))
def test_near_misses_are_opaque(token: str) -> None:
    assert detect_token_kind(token) is TokenKind.OPAQUE


def test_access_tokens_with_client_claims_are_not_id_tokens() -> None:
    """azp, nonce or a Keycloak Bearer typ beside a scope: an access token, not an ID token."""
    keycloak = {"typ": "Bearer", "azp": "web", "aud": "web", "nonce": "n"}
    auth0 = {"azp": "client-1", "aud": ["https://api.example", "client-1"], "scope": "read"}
    assert detect_token_kind(jwt(RS256, keycloak)) is TokenKind.JWS
    assert detect_token_kind(jwt(RS256, auth0)) is TokenKind.JWS
    assert detect_token_kind(jwt(RS256, {**ACCESS, "nonce": "n"})) is TokenKind.JWS


def test_odd_jwts_are_still_jws() -> None:
    """Claims that are not a JSON object, or a typ of another type, say nothing more."""
    header = b64url(RS256)
    assert detect_token_kind(f"{header}.{b64url(b'[1]')}.sig") is TokenKind.JWS
    truncated = b64url(b'{"typ": ')
    assert detect_token_kind(f"{header}.{truncated}.sig") is TokenKind.JWS
    assert detect_token_kind(jwt({"alg": "RS256", "typ": 7}, {"typ": ["ID"]})) is TokenKind.JWS


def test_oversized_and_odd_input_is_opaque() -> None:
    assert detect_token_kind("ghp_" + filler(20000)) is TokenKind.OPAQUE
    assert detect_token_kind("é" * 40) is TokenKind.OPAQUE
    assert detect_token_kind("eé.eé.eé") is TokenKind.OPAQUE
    assert detect_token_kind("eyJ.eyJ.eyJ.eyJ.eyJ") is TokenKind.OPAQUE


# -- False positives: random tokens are opaque --------------------------------------------

base64url_tokens = st.text(alphabet=BASE64URL, min_size=20, max_size=200)
hex_tokens = st.text(alphabet="0123456789abcdef", min_size=20, max_size=200)


@settings(max_examples=2000, deadline=None)
@given(base64url_tokens)
def test_random_base64url_is_opaque(token: str) -> None:
    assert detect_token_kind(token) is TokenKind.OPAQUE


@settings(max_examples=1000, deadline=None)
@given(st.one_of(hex_tokens, hex_tokens.map(str.upper)))
def test_random_hex_is_opaque(token: str) -> None:
    assert detect_token_kind(token) is TokenKind.OPAQUE


@settings(max_examples=500, deadline=None)
@given(st.lists(st.text(alphabet=BASE64URL, min_size=6, max_size=60), min_size=3, max_size=5))
def test_random_dotted_base64url_is_never_a_vendor_key(parts: list[str]) -> None:
    """Random dot-separated parts may happen to be a JWS (a header starting "eyJ") only."""
    kind = detect_token_kind(".".join(parts))
    assert kind in {TokenKind.OPAQUE, TokenKind.JWS, TokenKind.JWE}


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=300))
def test_any_text_gets_a_kind_without_raising(token: str) -> None:
    assert isinstance(detect_token_kind(token), TokenKind)


# -- What a refusal says -----------------------------------------------------------------


def test_every_named_kind_has_a_safe_fixed_sentence() -> None:
    sentences = Sentence.__dict__.values()
    for kind in TokenKind:
        sentence = kind_sentence(kind)
        if kind in {TokenKind.JWS, TokenKind.JWT_ACCESS_TOKEN, TokenKind.OPAQUE}:
            assert sentence is None
            continue
        assert sentence is not None
        assert sentence in sentences
        if kind is TokenKind.JWE:
            assert sentence == Sentence.ENCRYPTED  # what the verifier has always said
        else:
            assert sentence.startswith("This looks like ")
        assert sentence.isascii()
        assert not set(sentence) & set('"\\\r\n')


def test_a_foreign_key_refused_as_malformed_is_named() -> None:
    token = EXAMPLES[TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN][0]
    failure = AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS)
    described = describe_refusal(failure, detect_token_kind(token))
    assert described.reason is Reason.MALFORMED_TOKEN
    assert described.description == (
        "This looks like a GitHub personal access token; this API accepts access tokens"
        " issued by its identity provider."
    )
    assert token[4:20] not in described.description


def test_an_id_token_refused_for_its_audience_is_named() -> None:
    failure = AuthFailure(Reason.WRONG_AUDIENCE, context={"why": "test"})
    failure.signature_verified = True
    described = describe_refusal(failure, TokenKind.ID_TOKEN)
    assert described.description == Sentence.KIND_ID_TOKEN
    assert described.signature_verified is True
    assert described.context == {"why": "test"}


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (TokenKind.ID_TOKEN, Reason.EXPIRED),  # expired says more: get a fresh token
        (TokenKind.ID_TOKEN, Reason.BAD_SIGNATURE),  # a forgery stays a forgery
        (TokenKind.ID_TOKEN, Reason.MALFORMED_TOKEN),  # the precise shape sentence
        (TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN, Reason.KEY_UNAVAILABLE),
        (TokenKind.BASIC_CREDENTIALS, Reason.REVOKED),
        (TokenKind.JWS, Reason.MALFORMED_TOKEN),
        (TokenKind.JWT_ACCESS_TOKEN, Reason.WRONG_AUDIENCE),
        (TokenKind.OPAQUE, Reason.MALFORMED_TOKEN),
    ],
)
def test_failures_the_kind_does_not_explain_are_kept(kind: TokenKind, reason: Reason) -> None:
    failure = AuthFailure(reason)
    assert describe_refusal(failure, kind) is failure


def test_every_vendor_example_passes_the_bearer_grammar() -> None:
    """The kinds the guard names reach the verifier: each is a valid b64token."""
    for kind, tokens in EXAMPLES.items():
        for token in tokens:
            if token and kind is not TokenKind.BASIC_CREDENTIALS:
                assert B64TOKEN_RE.fullmatch(token), kind


# -- explain, the library and the command line -------------------------------------------


def test_explain_names_the_kind_and_describes_as_the_middleware() -> None:
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    id_token = mint("HS256", claims(aud="web-client", azp="web-client"), key=SECRET)
    report = explain(verifier, id_token)
    assert report.token_kind is TokenKind.ID_TOKEN
    assert report.failure is not None
    assert (report.failure.reason, report.failure.description) == (
        Reason.WRONG_AUDIENCE,
        Sentence.KIND_ID_TOKEN,
    )
    assert report.to_dict()["token_kind"] == "id_token"
    assert explain(verifier, mint("HS256", claims(), key=SECRET)).token_kind is TokenKind.JWS


def _explain_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``invalidtoken-mw explain ARGS`` in a subprocess.

    In a subprocess, not through ``main()``: the command line configures structlog for
    its process, which in-process would bind every later test's logger to a closed
    capture stream.
    """
    command = [sys.executable, "-m", "invalidtoken_mw", "explain", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)  # noqa: S603


def test_the_cli_prints_the_kind() -> None:
    token = EXAMPLES[TokenKind.STRIPE_SECRET_KEY][0]
    plain = _explain_cli("--key", SECRET.decode(), token)
    assert plain.returncode == 1, plain.stderr
    out = plain.stdout
    assert "Token kind  stripe_secret_key" in out
    assert Sentence.KIND_STRIPE_SECRET_KEY in out
    assert token not in out
    as_json = _explain_cli("--json", "--key", SECRET.decode(), token)
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)
    assert (report["token_kind"], report["description"]) == (
        "stripe_secret_key",
        Sentence.KIND_STRIPE_SECRET_KEY,
    )
