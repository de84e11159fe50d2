"""verifier_from_env: INVALIDTOKEN_* variables configure a JWTVerifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from invalidtoken_mw import AuthFailure, MemoryRevocationStore, Reason, verifier_from_env
from invalidtoken_mw.testing import mint_token

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "s" * 64


def test_variables_configure_the_verifier() -> None:
    """Key, algorithms, issuers, audiences, leeway and token type all come from the env."""
    verifier = verifier_from_env(
        {
            "INVALIDTOKEN_KEY": SECRET,
            "INVALIDTOKEN_ALGORITHMS": "HS256, HS384",
            "INVALIDTOKEN_ISSUER": "https://a.example/,https://b.example/",
            "INVALIDTOKEN_AUDIENCE": "api://orders",
            "INVALIDTOKEN_LEEWAY": "5",
            "INVALIDTOKEN_TOKEN_TYPE": "at+jwt",
        }
    )
    expected = (
        ("HS256", "HS384"),
        ("https://a.example/", "https://b.example/"),
        ("api://orders",),
        5.0,
        "at+jwt",
    )
    actual = (
        verifier.algorithms,
        verifier.issuer,
        verifier.audience,
        verifier.leeway,
        verifier.token_type,
    )
    assert expected == actual


def test_defaults_fill_in_and_variables_win() -> None:
    """Keyword defaults apply where no variable is set; a set variable overrides them."""
    store = MemoryRevocationStore()
    verifier = verifier_from_env(
        {"INVALIDTOKEN_KEY": SECRET, "INVALIDTOKEN_AUDIENCE": "api://env"},
        algorithms=["HS256"],
        audience="api://default",
        revocation=store,
    )
    assert (("api://env",), store) == (verifier.audience, verifier.revocation)


def test_key_file_wins_over_key(tmp_path: Path) -> None:
    """INVALIDTOKEN_KEY_FILE is read and takes precedence over INVALIDTOKEN_KEY."""
    key_file = tmp_path / "secret"
    key_file.write_text("f" * 32, encoding="utf-8")
    verifier = verifier_from_env(
        {"INVALIDTOKEN_KEY": SECRET, "INVALIDTOKEN_KEY_FILE": str(key_file)},
        algorithms=["HS256"],
    )
    token = mint_token("f" * 32, algorithm="HS256", claims={"sub": "u"})
    assert "u" == verifier.verify(token)["sub"]
    with pytest.raises(AuthFailure) as caught:
        verifier.verify(mint_token(SECRET, algorithm="HS256", claims={"sub": "u"}))
    assert Reason.BAD_SIGNATURE == caught.value.reason


def test_custom_prefix_and_empty_values() -> None:
    """A custom prefix is honoured and empty variables count as unset."""
    verifier = verifier_from_env(
        {"AUTH_KEY": SECRET, "AUTH_ALGORITHMS": "HS256", "AUTH_ISSUER": ""}, prefix="AUTH_"
    )
    assert (("HS256",), None) == (verifier.algorithms, verifier.issuer)


def test_missing_key_is_a_clear_configuration_error() -> None:
    """Without a key or JWKS URL the verifier's own message explains what to set."""
    with pytest.raises(ValueError, match="exactly one of key"):
        verifier_from_env({}, algorithms=["RS256"])
