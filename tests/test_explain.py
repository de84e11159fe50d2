"""explain: every check in plain English, with the verdict verify gives."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime, timezone
from typing import Any

import pytest
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st

from invalidtoken_mw.explain import Check, Explanation, explain, human_duration
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.verify import JWTVerifier
from support.jwks_server import JWKSServer
from support.tokens import (
    AUDIENCE,
    ISSUER,
    OTHER_SECRET,
    SECRET,
    Case,
    claims,
    hs256_raw,
    json_values,
    mint,
    session_keys,
    static_cases,
)

# A fixed "now" for the reports: 2026-05-01T12:00:00Z.
NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600


def verifier(**options: Any) -> JWTVerifier:
    """An HS256 verifier for ISSUER and AUDIENCE with a 60 s leeway."""
    return JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, **options
    )


def verdict_of(judge: JWTVerifier, token: str) -> str:
    """``"valid"`` or the reason value verify answers."""
    try:
        judge.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


def report_verdict(report: Explanation) -> str:
    """``"valid"`` or the reason value of the report's failure."""
    return "valid" if report.failure is None else report.failure.reason.value


def failed(report: Explanation) -> list[str]:
    """The names of the checks that failed, in report order."""
    return [check.name for check in report.checks if check.passed is False]


def detail(report: Explanation, name: str) -> str:
    """The detail of the check called ``name``."""
    return next(check.detail for check in report.checks if check.name == name)


def fixed_claims(**overrides: Any) -> dict[str, Any]:
    """Claims timed around NOW (issued an hour before it), with overrides."""
    return claims(**{"iat": int(NOW) - HOUR, "exp": int(NOW) + HOUR, **overrides})


# -- the verdict is verify's ----------------------------------------------------------


@pytest.mark.parametrize("case", static_cases(), ids=lambda case: case.name)
def test_report_failure_is_verifys_verdict_and_names_the_check(case: Case) -> None:
    """For every defect class the report's failure is verify's verdict and its check failed."""
    report = explain(case.verifier(), case.token)
    expected_failed = [] if case.check is None else [case.check]
    assert (case.expected, case.expected, expected_failed) == (
        report_verdict(report),
        verdict_of(case.verifier(), case.token),
        failed(report),
    )


@pytest.mark.parametrize("case", static_cases(), ids=lambda case: case.name)
def test_report_failure_description_is_verifys(case: Case) -> None:
    """The report carries verify's exact description, not a paraphrase."""
    report = explain(case.verifier(), case.token)
    try:
        case.verifier().verify(case.token)
    except AuthFailure as failure:
        expected: str | None = failure.description
    else:
        expected = None
    assert expected == (None if report.failure is None else report.failure.description)


def test_valid_token_lists_every_check_passed() -> None:
    """A valid token reports each check, in order, and all of them passed."""
    report = explain(verifier(token_type="at+jwt"), mint(headers={"typ": "at+jwt"}))
    expected = [
        ("structure", True),
        ("alg", True),
        ("signature", True),
        ("exp", True),
        ("iat", True),
        ("iss", True),
        ("aud", True),
        ("typ", True),
        ("required_claims", True),
    ]
    assert expected == [(c.name, c.passed) for c in report.checks]
    assert report.valid


def test_several_defects_all_show() -> None:
    """An expired token for another audience fails both checks; the verdict is expired."""
    token = mint(payload=claims(exp=int(time.time()) - 2 * HOUR, aud="https://other.example"))
    report = explain(verifier(), token)
    assert (["exp", "aud"], "expired") == (failed(report), report_verdict(report))


def test_forged_and_expired_fails_signature_and_exp_but_is_bad_signature() -> None:
    """A forged expired token shows both failures; the verdict is bad_signature."""
    token = mint(payload=claims(exp=int(time.time()) - 2 * HOUR), key=OTHER_SECRET)
    report = explain(verifier(), token)
    expected = (["signature", "exp"], "bad_signature", "the signature does not match the key")
    assert expected == (failed(report), report_verdict(report), detail(report, "signature"))


def test_malformed_token_reports_only_structure() -> None:
    """A token that cannot be parsed reports the structure check and nothing it cannot know."""
    report = explain(verifier(), "abc.def")
    expected = (
        None,
        None,
        (
            Check.fail(
                "structure",
                "The access token is malformed: a JWT has 3 dot-separated parts of base64url text.",
            ),
        ),
    )
    assert expected == (report.header, report.claims, report.checks)


def test_header_and_claims_are_shown_even_when_refused() -> None:
    """A refused but readable token still shows its (untrusted) header and claims."""
    payload = claims(aud="https://other.example")
    report = explain(verifier(), mint(payload=payload, headers={"kid": "k1"}))
    expected = ({"alg": "HS256", "typ": "JWT", "kid": "k1"}, payload)
    assert expected == (report.header, report.claims)


def test_explain_uses_only_the_verifiers_public_api() -> None:
    """explain reaches no private verifier member, and verify knows nothing of explain."""
    import ast  # noqa: PLC0415 - only this test reads source
    import inspect  # noqa: PLC0415

    import invalidtoken_mw.explain as module  # noqa: PLC0415
    import invalidtoken_mw.verify as verify_module  # noqa: PLC0415

    tree = ast.parse(inspect.getsource(module))
    private = sorted(
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "verifier"
        and node.attr.startswith("_")
    )
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse(inspect.getsource(verify_module)))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert ([], False) == (private, "invalidtoken_mw.explain" in imported)


# -- the wording ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "name", "expected"),
    [
        pytest.param(
            {"exp": int(NOW) - (3 * HOUR + 12 * 60 + 5)},
            "exp",
            "expired 3 h 12 min ago at 2026-05-01T08:47:55Z",
            id="expired-hours-ago",
        ),
        pytest.param(
            {"exp": int(NOW) - 2 * 86400 - 5 * HOUR},
            "exp",
            "expired 2 d 5 h ago at 2026-04-29T07:00:00Z",
            id="expired-days-ago",
        ),
        pytest.param(
            {"exp": int(NOW) - 60},
            "exp",
            "expired 1 min ago at 2026-05-01T11:59:00Z",
            id="leeway-used-up-exactly",
        ),
        pytest.param(
            {"exp": int(NOW) - 30},
            "exp",
            "expired 30 s ago, accepted within the 60 s leeway",
            id="within-leeway",
        ),
        pytest.param(
            {"exp": int(NOW) + 45 * 60},
            "exp",
            "valid for another 45 min (until 2026-05-01T12:45:00Z)",
            id="valid-for",
        ),
        pytest.param(
            {"nbf": int(NOW) + 2 * 86400 + 3 * HOUR},
            "nbf",
            "not valid before 2026-05-03T15:00:00Z, 2 d 3 h in the future: the issuer's clock"
            " or this machine's is probably wrong",
            id="nbf-future",
        ),
        pytest.param(
            {"iat": int(NOW) + 10 * 60},
            "iat",
            "issued at 2026-05-01T12:10:00Z, 10 min in the future: the issuer's clock"
            " or this machine's is probably wrong",
            id="iat-future",
        ),
        pytest.param(
            {"iat": int(NOW) - HOUR}, "iat", "issued at 2026-05-01T11:00:00Z", id="iat-past"
        ),
        pytest.param(
            {"nbf": int(NOW) + 60},
            "nbf",
            "not valid before 2026-05-01T12:01:00Z",
            id="nbf-at-the-edge-of-the-leeway",
        ),
        pytest.param({"exp": "soon"}, "exp", "exp is not a number", id="exp-string"),
        pytest.param({"nbf": {"a": 1}}, "nbf", "nbf is not a number", id="nbf-object"),
        pytest.param(
            {"iss": "https://evil.example"},
            "iss",
            "issuer is 'https://evil.example', this service expects https://issuer.example",
            id="wrong-issuer",
        ),
        pytest.param(
            {"aud": ["a", "b"]},
            "aud",
            "audience is a, b, this service expects https://api.example",
            id="wrong-audience",
        ),
        pytest.param(
            {"aud": None},
            "aud",
            "audience is absent, this service expects https://api.example",
            id="absent-audience",
        ),
    ],
)
def test_check_details_read_like_a_person_wrote_them(
    overrides: dict[str, Any], name: str, expected: str
) -> None:
    """Each check explains itself with durations and UTC dates relative to ``now``."""
    token = hs256_raw({"alg": "HS256"}, fixed_claims(**overrides))
    assert expected == detail(explain(verifier(leeway=60), token, now=NOW), name)


def test_audience_with_a_non_string_member_fails_the_aud_check() -> None:
    """An aud array holding a non-string fails the aud check, as verify refuses it."""
    token = hs256_raw({"alg": "HS256"}, claims(aud=[AUDIENCE, 5]))
    report = explain(verifier(), token)
    aud_check = next(c for c in report.checks if c.name == "aud")
    expected = (
        Check.fail(
            "aud", "audience is https://api.example, 5, this service expects https://api.example"
        ),
        "wrong_audience",
    )
    assert expected == (aud_check, report_verdict(report))


def test_a_token_naming_an_audience_fails_when_none_is_configured() -> None:
    """RFC 7519 4.1.3: with no audience configured, explain says why aud fails and how to fix it."""
    judge = JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER)
    report = explain(judge, mint(payload=claims(aud="api://billing")))
    aud_check = next(c for c in report.checks if c.name == "aud")
    assert (False, "wrong_audience") == (aud_check.passed, report_verdict(report))
    assert "configured with no audience" in aud_check.detail
    opted_out = JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, accept_any_audience=True
    )
    assert "valid" == report_verdict(explain(opted_out, mint(payload=claims(aud="api://billing"))))


def test_exp_absent_is_skipped_not_failed() -> None:
    """Without an exp claim the exp check does not apply; the required_claims check fails."""
    report = explain(verifier(), mint(payload=fixed_claims(exp=None)), now=NOW)
    exp_check = next(c for c in report.checks if c.name == "exp")
    expected = (
        Check("exp", None, "no exp claim: the token never expires"),
        ["required_claims"],
        "missing_claim",
    )
    assert expected == (exp_check, failed(report), report_verdict(report))


def test_type_and_required_claim_details() -> None:
    """The typ and required_claims checks say what was found and what is needed."""
    judge = verifier(token_type="at+jwt", required_claims=("exp", "jti"))
    report = explain(judge, mint(headers={"typ": "JWT"}), now=NOW)
    expected = ("typ is 'JWT', this service expects 'at+jwt'", "missing: jti")
    assert expected == (detail(report, "typ"), detail(report, "required_claims"))


def test_claim_rules_check() -> None:
    """A failed claim rule is its own check, and the verdict is verify's wrong_claim."""
    judge = verifier(claim_rules={"client_id": ["app-1"]})
    refused = explain(judge, mint(payload=claims(client_id="app-2")), now=NOW)
    assert detail(refused, "claim_rules") == (
        "The access token's client_id claim has a value this service does not accept."
    )
    assert refused.failure is not None
    assert refused.failure.reason is Reason.WRONG_CLAIM
    accepted = explain(judge, mint(payload=claims(client_id="app-1")), now=NOW)
    assert detail(accepted, "claim_rules") == "client_id accepted"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0 s"),
        (1, "1 s"),
        (45, "45 s"),
        (59.9, "59 s"),
        (60, "1 min"),
        (61, "1 min 1 s"),
        (3599, "59 min 59 s"),
        (3600, "1 h"),
        (3 * 3600 + 12 * 60 + 5, "3 h 12 min"),
        (86399, "23 h 59 min"),
        (86400, "1 d"),
        (86400 + 3600 + 60 + 1, "1 d 1 h"),
        (86400 + 60, "1 d 1 min"),
        (400 * 86400, "400 d"),
        (-45, "45 s"),
        (-(3 * 3600 + 12 * 60), "3 h 12 min"),
        (float("inf"), "forever"),
        (float("-inf"), "forever"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    """Durations render as their two largest units; the sign and fractions are dropped."""
    assert expected == human_duration(seconds)


# -- to_dict --------------------------------------------------------------------------


def test_to_dict_of_a_refused_token() -> None:
    """to_dict carries the verdict, status, description, header, claims and checks."""
    payload = claims(aud="https://other.example")
    report = explain(verifier(), mint(payload=payload))
    as_dict = report.to_dict()
    expected = {
        "valid": False,
        "reason": "wrong_audience",
        "status": 401,
        "description": "The access token was issued for another audience.",
        "token_kind": "jws",
        "header": {"alg": "HS256", "typ": "JWT"},
        "claims": payload,
    }
    assert expected == {k: v for k, v in as_dict.items() if k != "checks"}
    assert as_dict == json.loads(json.dumps(as_dict))


def test_to_dict_of_a_valid_token() -> None:
    """A valid token's to_dict says valid, status 200 and no reason."""
    as_dict = explain(verifier(), mint()).to_dict()
    assert as_dict["valid"]
    assert None is as_dict["reason"]
    assert 200 == as_dict["status"]
    assert None is as_dict["description"]


def test_to_dict_of_key_unavailable_says_503() -> None:
    """With the JWKS down the report says key_unavailable and 503."""
    server = JWKSServer()
    server.stop()
    judge = JWTVerifier(jwks_url=server.url, algorithms=["RS256"], jwks_cooldown=0.05)
    with structlog.testing.capture_logs():
        as_dict = explain(judge, mint("RS256", headers={"kid": "rsa-1"})).to_dict()
    assert ("key_unavailable", 503) == (as_dict["reason"], as_dict["status"])


# -- JWKS and the network -------------------------------------------------------------


def test_unknown_kid_fails_the_signature_check(jwks: JWKSServer) -> None:
    """With JWKS, an unknown kid fails the signature check and the verdict is unknown_key."""
    judge = JWTVerifier(jwks_url=jwks.url, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE)
    report = explain(judge, mint("RS256", headers={"kid": "nope"}))
    expected = (
        "unknown_key",
        ["signature"],
        Reason.UNKNOWN_KEY.description,
    )
    assert expected == (report_verdict(report), failed(report), detail(report, "signature"))


def test_known_kid_names_the_key(jwks: JWKSServer) -> None:
    """A good JWKS-signed token's signature check names the algorithm and the kid."""
    judge = JWTVerifier(jwks_url=jwks.url, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE)
    report = explain(judge, mint("RS256", headers={"kid": "rsa-1"}))
    assert ("valid", "signed with RS256, key rsa-1") == (
        report_verdict(report),
        detail(report, "signature"),
    )


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every attempt to resolve or connect."""
    attempts: list[object] = []

    def refuse(*args: object, **_kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access in a test that must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_explain_with_a_static_key_uses_no_network(no_network: list[object]) -> None:
    """explain with a static key touches no socket, even for tokens naming remote keys."""
    judge = JWTVerifier(
        key=session_keys().rsa.public_key(),
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    remote = {"kid": "x", "jku": "https://keys.example/jwks", "x5u": "https://keys.example/c"}
    tokens = [
        mint("RS256"),
        mint("RS256", headers=remote),
        mint("RS256", headers=remote, key=session_keys().rsa_other),
        "garbage",
    ]
    verdicts = [report_verdict(explain(judge, token)) for token in tokens]
    expected: tuple[list[str], list[object]] = (
        ["valid", "valid", "bad_signature", "malformed_token"],
        [],
    )
    assert expected == (verdicts, no_network)


# -- whatever the claims --------------------------------------------------------------

_PROPERTY_OPTIONS: dict[str, Any] = {
    "token_type": "at+jwt",
    "required_claims": ("exp", "sub"),
    "cache_size": 0,
}
_CLAIM_NAMES = st.sampled_from(["exp", "nbf", "iat", "iss", "aud", "sub", "jti"])


# The checks that can name each verdict; malformed_token may come from a claim no check
# covers (a non-string sub), so it is not listed.
_CHECKS_FOR = {
    "expired": {"exp"},
    "not_yet_valid": {"nbf", "iat"},
    "wrong_issuer": {"iss"},
    "wrong_audience": {"aud"},
    "wrong_token_type": {"typ"},
    "missing_claim": {"required_claims", "iss", "aud"},
}


@settings(max_examples=200, deadline=None)
@given(replaced=st.dictionaries(_CLAIM_NAMES, json_values, min_size=1, max_size=3))
@example(replaced={"exp": float("nan")})
@example(replaced={"aud": [AUDIENCE, 5]})
@example(replaced={"iss": None})
@example(replaced={"exp": True})
def test_explain_never_raises_and_agrees_with_verify(replaced: dict[str, Any]) -> None:
    """For any JSON claims explain gives verify's verdict, a failed check naming it, valid JSON."""
    token = hs256_raw({"alg": "HS256", "typ": "at+jwt"}, {**claims(), **replaced})
    report = explain(verifier(**_PROPERTY_OPTIONS), token)
    expected = verdict_of(verifier(**_PROPERTY_OPTIONS), token)
    naming = _CHECKS_FOR.get(expected)
    named = naming is None or bool(naming & set(failed(report)))
    serialised = json.dumps(report.to_dict())
    assert expected == report_verdict(report)
    assert named
    assert serialised == json.dumps(json.loads(serialised))


def _with_raw_exp(raw_exp: str) -> str:
    """A valid HS256 token whose exp is the JSON text ``raw_exp``, written by hand."""
    base = json.dumps(claims(exp=None))[:-1]
    return hs256_raw({"alg": "HS256"}, f'{base}, "exp": {raw_exp}}}')


@pytest.mark.parametrize(
    ("raw_exp", "expected"),
    [
        pytest.param("1" + "0" * 400, ("valid", True, "valid for another forever"), id="10e400"),
        pytest.param("-1" + "0" * 400, ("expired", False, "expired forever ago"), id="-10e400"),
        pytest.param("1e400", ("malformed_token", False, "exp is not a number"), id="infinity"),
        pytest.param("-1e400", ("malformed_token", False, "exp is not a number"), id="-infinity"),
        pytest.param("NaN", ("malformed_token", False, "exp is not a number"), id="nan"),
        pytest.param("true", ("malformed_token", False, "exp is not a number"), id="true"),
    ],
)
def test_explain_reads_odd_exp_values_as_verify_does(
    raw_exp: str, expected: tuple[str, bool, str]
) -> None:
    """Huge, infinite, NaN and boolean exp values are explained, never raised, as verify judges."""
    report = explain(verifier(), _with_raw_exp(raw_exp))
    exp_check = next(c for c in report.checks if c.name == "exp")
    prefix = expected[2]
    assert expected == (report_verdict(report), exp_check.passed, exp_check.detail[: len(prefix)])


def test_explain_reads_a_numeric_string_exp_as_verify_does() -> None:
    """A numeric-string exp (PyJWT reads it as a number; RFC 7519 does not) is refused."""
    report = explain(verifier(), _with_raw_exp(json.dumps(str(int(NOW) + HOUR))), now=NOW)
    assert "exp is not a number" == detail(report, "exp")
    assert "malformed_token" == report_verdict(report)


def test_reason_values_are_what_the_report_carries() -> None:
    """The report's reason strings are Reason values, so logs and the CLI agree."""
    report = explain(verifier(), mint(key=OTHER_SECRET))
    assert Reason.BAD_SIGNATURE.value == report.to_dict()["reason"]
