"""The failure taxonomy: every Reason, its status, its error code and AuthFailure."""

from __future__ import annotations

import pytest

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.challenge import clean_description

# The failure taxonomy of docs/reasons.md: value -> (HTTP status, RFC 6750 §3.1 error code).
TAXONOMY: dict[str, tuple[int, str | None]] = {
    "missing_token": (401, None),
    "invalid_request": (400, "invalid_request"),
    "malformed_token": (401, "invalid_token"),
    "algorithm_not_allowed": (401, "invalid_token"),
    "unknown_key": (401, "invalid_token"),
    "bad_signature": (401, "invalid_token"),
    "expired": (401, "invalid_token"),
    "not_yet_valid": (401, "invalid_token"),
    "wrong_issuer": (401, "invalid_token"),
    "wrong_audience": (401, "invalid_token"),
    "wrong_token_type": (401, "invalid_token"),
    "missing_claim": (401, "invalid_token"),
    "wrong_claim": (401, "invalid_token"),
    "revoked": (401, "invalid_token"),
    "insufficient_scope": (403, "insufficient_scope"),
    "insufficient_role": (403, "insufficient_scope"),
    "key_unavailable": (503, None),
    "revocation_unavailable": (503, None),
    "inactive_token": (401, "invalid_token"),
    "introspection_unavailable": (503, None),
    "insufficient_user_authentication": (401, "insufficient_user_authentication"),
    "invalid_dpop_proof": (401, "invalid_dpop_proof"),
    "dpop_replayed": (401, "invalid_dpop_proof"),
    "dpop_nonce_required": (401, "use_dpop_nonce"),
    "dpop_key_mismatch": (401, "invalid_token"),
    "dpop_bound_bearer": (401, "invalid_token"),
    "dpop_required": (401, None),
    "dpop_replay_unavailable": (503, None),
}


def test_taxonomy_has_exactly_the_documented_reasons() -> None:
    """Reason has exactly the documented members in order; adding or dropping one fails."""
    assert list(TAXONOMY) == [reason.value for reason in Reason]


def test_taxonomy_maps_every_reason_to_its_documented_status_and_error() -> None:
    """The whole Reason -> (status, error) mapping equals the documented table, entry for entry."""
    actual = {reason.value: (reason.status, reason.error) for reason in Reason}
    assert actual == TAXONOMY


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [pytest.param(value, status, error, id=value) for value, (status, error) in TAXONOMY.items()],
)
def test_reason_status_and_error(value: str, status: int, error: str | None) -> None:
    """Each reason, looked up by its wire value, has its documented status and error code."""
    reason = Reason(value)
    assert (status, error) == (reason.status, reason.error)
    failure = AuthFailure(value)
    assert (status, error) == (failure.status, failure.error)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        pytest.param("invalid_request", 400, id="rfc6750-3.1-invalid_request-400"),
        pytest.param("invalid_token", 401, id="rfc6750-3.1-invalid_token-401"),
        pytest.param("insufficient_scope", 403, id="rfc6750-3.1-insufficient_scope-403"),
    ],
)
def test_rfc6750_error_codes_carry_their_status(error: str, status: int) -> None:
    """Every reason with an RFC 6750 §3.1 error code answers with the status the RFC gives it."""
    statuses = {reason.status for reason in Reason if reason.error == error}
    assert {status} == statuses


def test_only_503_reasons_are_server_faults() -> None:
    """is_server_fault is true exactly for the 503 reasons."""
    expected = {
        Reason.KEY_UNAVAILABLE,
        Reason.REVOCATION_UNAVAILABLE,
        Reason.INTROSPECTION_UNAVAILABLE,
        Reason.DPOP_REPLAY_UNAVAILABLE,
    }
    assert expected == {reason for reason in Reason if reason.is_server_fault}


def test_reason_str_and_format_are_the_wire_value() -> None:
    """str() and f-strings of a Reason give the wire value, not 'Reason.EXPIRED'."""
    expected = ("expired", "expired")
    assert expected == (str(Reason.EXPIRED), f"{Reason.EXPIRED}")


def test_reason_compares_equal_to_its_string_value() -> None:
    """A Reason is a str enum, so it equals its wire value."""
    expected = "not_yet_valid"
    actual: str = Reason.NOT_YET_VALID  # a str subclass: no conversion needed
    assert expected == actual


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_default_description_is_already_header_safe(reason: Reason) -> None:
    """Every default description is a non-empty, already clean RFC 6750 §3 error_description."""
    assert reason.description
    assert reason.description == clean_description(reason.description)


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_problem_title_is_header_safe_and_not_empty(reason: Reason) -> None:
    """Every problem title is a non-empty printable ASCII sentence."""
    assert reason.problem_title
    assert reason.problem_title == clean_description(reason.problem_title)


def test_problem_titles_are_distinct() -> None:
    """No two reasons share a title, so a title alone tells a person what went wrong."""
    assert len(Reason) == len({reason.problem_title for reason in Reason})


def test_not_yet_valid_description_hints_at_clock_skew() -> None:
    """The not_yet_valid description tells the client the clocks may disagree."""
    assert "clocks" in Reason.NOT_YET_VALID.description


def test_auth_failure_accepts_the_string_value() -> None:
    """AuthFailure('expired') is the same failure as AuthFailure(Reason.EXPIRED)."""
    assert Reason.EXPIRED is AuthFailure("expired").reason


def test_auth_failure_rejects_an_unknown_reason() -> None:
    """An unknown reason string raises ValueError instead of inventing a status."""
    with pytest.raises(ValueError, match="not_a_reason"):
        AuthFailure("not_a_reason")


def test_auth_failure_defaults_to_the_reason_description() -> None:
    """Without a description, the failure carries the reason's fixed sentence."""
    assert Reason.REVOKED.description == AuthFailure(Reason.REVOKED).description


def test_auth_failure_empty_description_falls_back_to_default() -> None:
    """An empty description is replaced by the reason's sentence, so no challenge says nothing."""
    assert Reason.REVOKED.description == AuthFailure(Reason.REVOKED, "").description


def test_auth_failure_keeps_a_custom_description_and_scopes() -> None:
    """A custom description and the scopes (as a tuple, in order) are kept as given."""
    failure = AuthFailure(Reason.INSUFFICIENT_SCOPE, "Needs orders:write.", scopes=["a", "b"])
    expected = ("Needs orders:write.", ("a", "b"))
    assert expected == (failure.description, failure.scopes)


def test_auth_failure_str_and_repr() -> None:
    """str() is 'reason: description' and repr() names both, for logs and debugging."""
    failure = AuthFailure(Reason.EXPIRED, "Gone.")
    expected = "expired: Gone."
    assert expected == str(failure)
    expected = "AuthFailure('expired', 'Gone.')"
    assert expected == repr(failure)


def test_auth_failure_is_an_exception_with_reason_and_description_args() -> None:
    """AuthFailure can be raised and caught, and its args are (reason value, description)."""
    with pytest.raises(AuthFailure) as caught:
        raise AuthFailure(Reason.BAD_SIGNATURE)
    assert ("bad_signature", Reason.BAD_SIGNATURE.description) == caught.value.args
