"""Claim rules (``JWTVerifier(claim_rules=...)``) and configurable scope and role claims."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from invalidtoken_mw import AuthFailure, Guard, JWTVerifier, Reason
from invalidtoken_mw.claims import ClaimPath, ClaimRules
from invalidtoken_mw.scopes import check_roles, granted_roles, granted_scopes
from support.tokens import SECRET

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example"


def cognito_verifier() -> JWTVerifier:
    """A Cognito access-token verifier: no aud, client_id in an allowlist, token_use."""
    return JWTVerifier(
        key=SECRET,
        algorithms=["HS256"],
        issuer=COGNITO_ISSUER,
        claim_rules={"token_use": "access", "client_id": ["app-1", "app-2"]},
    )


def cognito(**overrides: Any) -> str:
    """A token shaped like a Cognito access token (signed with the test secret)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": "user-1",
        "iss": COGNITO_ISSUER,
        "client_id": "app-1",
        "token_use": "access",
        "scope": "orders/read",
        "exp": now + 300,
        "iat": now,
    }
    payload.update(overrides)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET)


def test_cognito_access_token_is_accepted_without_aud() -> None:
    assert cognito_verifier().verify(cognito())["client_id"] == "app-1"


@pytest.mark.parametrize(
    ("overrides", "reason", "description"),
    [
        pytest.param(
            {"client_id": "app-3"},
            "wrong_claim",
            "The access token's client_id claim has a value this service does not accept.",
            id="client-not-allowed",
        ),
        pytest.param(
            {"token_use": "id"},
            "wrong_claim",
            "The access token's token_use claim has a value this service does not accept.",
            id="id-token",
        ),
        pytest.param(
            {"client_id": None},
            "missing_claim",
            "The access token lacks the required client_id claim.",
            id="no-client-id",
        ),
        pytest.param(
            {"client_id": ["app-1"]},
            "wrong_claim",
            "The access token's client_id claim has a value this service does not accept.",
            id="list-is-not-a-member",
        ),
        # An ID token names the client in aud: refused even though audience is None.
        pytest.param({"aud": "app-1"}, "wrong_audience", None, id="aud-still-checked"),
    ],
)
def test_cognito_refusals(overrides: dict[str, Any], reason: str, description: str | None) -> None:
    with pytest.raises(AuthFailure) as caught:
        cognito_verifier().verify(cognito(**overrides))
    assert caught.value.reason.value == reason
    if description is not None:
        assert caught.value.description == description
        # The log names the claim, never its value.
        assert "app-3" not in str(caught.value.context)


def test_rules_run_after_the_registered_claims() -> None:
    """An expired token with a wrong claim is expired; wrong_token_type comes first too."""
    with pytest.raises(AuthFailure) as caught:
        cognito_verifier().verify(cognito(client_id="nope", exp=int(time.time()) - 3600))
    assert caught.value.reason is Reason.EXPIRED


@pytest.mark.parametrize(
    ("rule", "value", "accepted"),
    [
        ("access", "access", True),
        ("access", "Access", False),
        (1, 1, True),
        (1, "1", False),
        (1, True, False),
        (True, True, True),
        (True, 1, False),
        (["a", "b"], "b", True),
        (["a", "b"], "c", False),
        (frozenset({2, 3}), 3, True),
        (lambda v: isinstance(v, list) and "mfa" in v, ["pwd", "mfa"], True),
        (lambda v: isinstance(v, list) and "mfa" in v, ["pwd"], False),
        (lambda v: v.startswith("x"), 5, False),  # a predicate that raises refuses
        (lambda _v: 1, "x", False),  # only True accepts
    ],
)
def test_rule_kinds(rule: Any, value: Any, accepted: bool) -> None:  # noqa: FBT001
    failure = ClaimRules({"c": rule}).failure({"c": value})
    assert (failure is None) is accepted
    if failure is not None:
        assert failure.reason is Reason.WRONG_CLAIM


def test_a_predicate_that_raises_is_logged_by_type() -> None:
    failure = ClaimRules({"c": lambda v: v.startswith("x")}).failure({"c": 5})
    assert failure is not None
    assert failure.context == {"claim": "c", "rule_error": "AttributeError"}


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ({"c": []}, ValueError),
        ({"c": [{"a": 1}]}, ValueError),
        ({"c": None}, TypeError),
        ({"c": {"a": 1}}, TypeError),
        ({"": "x"}, ValueError),
        ({"a..b": "x"}, ValueError),
        ([("c", "x")], TypeError),
    ],
)
def test_rules_are_checked_at_start_up(rules: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        JWTVerifier(key=SECRET, algorithms=["HS256"], claim_rules=rules)


def test_claim_paths() -> None:
    claims = {
        "realm_access": {"roles": ["admin"]},
        "https://example.com/roles": ["editor"],
        "a.b": "literal",
        "a": {"b": "nested"},
    }
    assert ClaimPath("realm_access.roles").lookup(claims) == ["admin"]
    assert ClaimPath("https://example.com/roles").lookup(claims) == ["editor"]
    assert ClaimPath("a.b").lookup(claims) == "literal"  # the literal name wins
    assert ClaimPath("realm_access.roles.x").lookup(claims) is None
    assert ClaimPath("nope.x").lookup(claims) is None


def test_nested_rule_and_unnameable_claim() -> None:
    rules = ClaimRules({"realm_access.roles": lambda r: "admin" in r})
    assert rules.failure({"realm_access": {"roles": ["admin"]}}) is None
    missing = rules.failure({})
    assert missing is not None
    assert missing.description == "The access token lacks the required realm_access.roles claim."
    # A name that cannot be said safely is not said.
    odd = ClaimRules({"https://example.com/tenant": "t1"}).failure(
        {"https://example.com/tenant": "t2"}
    )
    assert odd is not None
    assert odd.description == Reason.WRONG_CLAIM.description


def test_a_refused_rule_is_remembered_like_other_lasting_refusals() -> None:
    calls: list[object] = []

    def rule(value: object) -> bool:
        calls.append(value)
        return False

    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], claim_rules={"client_id": rule})
    token = cognito()
    for _ in range(3):
        with pytest.raises(AuthFailure):
            verifier.verify(token)
    assert calls == ["app-1"]


def test_scope_claims() -> None:
    claims = {"scope": "a b", "scp": ["c"], "permissions": ["read:orders", "bad scope"]}
    assert granted_scopes(claims) == {"a", "b", "c"}
    assert granted_scopes(claims, ("permissions",)) == {"read:orders"}
    assert granted_scopes({"scp": "x y"}) == {"x", "y"}


def test_role_claims() -> None:
    keycloak = {"realm_access": {"roles": ["admin", "user"]}, "roles": "ignored-by-config"}
    assert granted_roles(keycloak, ("realm_access.roles",)) == {"admin", "user"}
    assert granted_roles({"roles": ["Orders.Read", 5, ""]}) == {"Orders.Read"}
    check_roles({"roles": ["a", "b"]}, ["a", "b"])
    check_roles({"roles": ["a"]}, ["a", "z"], any_of=True)
    with pytest.raises(AuthFailure) as caught:
        check_roles({"roles": ["a"]}, ["a", "z"])
    assert caught.value.reason is Reason.INSUFFICIENT_ROLE
    assert caught.value.context == {"missing_roles": ["z"]}
    assert (caught.value.status, caught.value.error, caught.value.scopes) == (
        403,
        "insufficient_scope",
        (),
    )


def test_guard_reads_the_configured_claims() -> None:
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"])
    guard = Guard(
        verifier=verifier,
        realm="orders",
        scope_claims="scope, permissions",  # as it comes from config or the environment
        role_claims=["realm_access.roles"],
    )
    assert guard.scope_claims == ("scope", "permissions")
    guard.check_scopes({"permissions": ["read:orders"]}, ["read:orders"])
    guard.check_roles({"realm_access": {"roles": ["admin"]}}, ["admin"])
    with pytest.raises(AuthFailure) as caught:
        guard.check_roles({"roles": ["admin"]}, ["admin"])
    assert caught.value.reason is Reason.INSUFFICIENT_ROLE
    with pytest.raises(AuthFailure) as caught:
        guard.check_roles(None, ["admin"], any_of=True)
    assert caught.value.description == (
        "The access token grants none of the roles this request accepts; any one of them will do."
    )


def test_app_wide_scopes_honour_scope_claims() -> None:
    """Without 'scope' among scope_claims, the quick path must not grant from it."""
    guard = Guard(
        verifier=JWTVerifier(key=SECRET, algorithms=["HS256"]),
        realm="orders",
        scopes=["read:orders"],
        scope_claims=["permissions"],
    )
    assert not guard._grants_scopes({"scope": "read:orders"})  # noqa: SLF001


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"scope_claims": []}, ValueError),
        ({"role_claims": ["a..b"]}, ValueError),
        ({"role_claims": [5]}, TypeError),
    ],
)
def test_claim_settings_are_checked(options: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Guard(verifier=JWTVerifier(key=SECRET, algorithms=["HS256"]), realm="r", **options)
