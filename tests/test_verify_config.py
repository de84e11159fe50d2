"""JWTVerifier configuration: errors fail at construction with a how-to message, never
quoting a secret; private keys are reduced to their public half.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    SECRET,
    Keys,
    mint,
)
from support.verifying import (
    verdict,
)

if TYPE_CHECKING:
    from collections.abc import Callable


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
    assert type(info.value) is error
    assert message in str(info.value)


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


def test_single_issuer_and_audience_strings_are_tuples() -> None:
    """String issuer and audience are stored as one-element tuples; the allowlist as given."""
    verifier = JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE)
    expected = ((ISSUER,), (AUDIENCE,), ("HS256",))
    assert expected == (verifier.issuer, verifier.audience, verifier.algorithms)
