"""Interoperability with other JOSE implementations: key sets, key formats and claim types.

Each test reproduces what another identity provider or library publishes or sends: a
``kid`` shared by keys of different types (RFC 7517 §4.5), Ed448 keys without ``alg``,
keys too weak to trust, NumericDate claims of the wrong JSON type (RFC 7519 §2) and
X.509 certificate PEMs as the configured key. Key sets are served by a real JWKS server
on loopback.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from structlog.testing import capture_logs

from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.verify import JWTVerifier
from support.jwks_server import JWKSServer
from support.tokens import AUDIENCE, ISSUER, claims, hs256_raw, mint, tamper_signature
from support.verifying import APIS, HS256, failure_of, jwks_verifier, static_verifier, verdict

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.tokens import Keys


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    srv = JWKSServer()
    yield srv
    srv.stop()


def _without_alg(jwk: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in jwk.items() if name != "alg"}


# -- a kid shared by several keys (RFC 7517 §4.5) -----------------------------------------


@APIS
@pytest.mark.parametrize("declared", [True, False], ids=["with-alg", "without-alg"])
def test_a_kid_shared_by_keys_of_different_types_picks_the_one_for_the_alg(
    server: JWKSServer, keys: Keys, api: str, *, declared: bool
) -> None:
    """An RSA and an EC key under one kid: tokens of either algorithm verify."""
    published = [keys.jwk("RS256", "shared"), keys.jwk("ES256", "shared")]
    server.jwks = {"keys": published if declared else [_without_alg(j) for j in published]}
    verifier = jwks_verifier(server, algorithms=["RS256", "ES256"])
    assert verdict(verifier, mint("ES256", headers={"kid": "shared"}), api) == "valid"
    assert verdict(verifier, mint("RS256", headers={"kid": "shared"}), api) == "valid"
    assert server.requests == 1


@APIS
def test_a_kid_shared_by_keys_of_different_algs_picks_the_declared_one(
    server: JWKSServer, keys: Keys, api: str
) -> None:
    """One RSA key published twice under one kid, for RS256 and for PS256: both verify."""
    server.jwks = {"keys": [keys.jwk("RS256", "shared"), keys.jwk("PS256", "shared")]}
    verifier = jwks_verifier(server, algorithms=["RS256", "PS256"])
    assert verdict(verifier, mint("PS256", headers={"kid": "shared"}), api) == "valid"
    assert verdict(verifier, mint("RS256", headers={"kid": "shared"}), api) == "valid"


def test_a_shared_kid_with_no_key_for_the_alg_is_still_refused(
    server: JWKSServer, keys: Keys
) -> None:
    """Sharing a kid widens nothing: an alg none of its keys declares is refused."""
    server.jwks = {"keys": [keys.jwk("RS256", "shared"), keys.jwk("ES256", "shared")]}
    verifier = jwks_verifier(server, algorithms=["RS256", "PS256", "ES256"])
    assert verdict(verifier, mint("PS256", headers={"kid": "shared"})) == "algorithm_not_allowed"


# -- the algorithm of a key without alg, inferred for every curve ----------------------


@APIS
def test_an_ed448_key_without_alg_verifies_eddsa_tokens(server: JWKSServer, api: str) -> None:
    """PyJWT infers EdDSA only for Ed25519; an Ed448 JWK without alg must still load."""
    private = ed448.Ed448PrivateKey.generate()
    jwk = {**OKPAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": "ed448"}
    assert "alg" not in jwk
    server.jwks = {"keys": [jwk]}
    verifier = jwks_verifier(server, algorithms=["EdDSA"])
    token = mint("EdDSA", headers={"kid": "ed448"}, key=private)
    assert verdict(verifier, token, api) == "valid"
    assert verdict(verifier, tamper_signature(token), api) == "bad_signature"


@pytest.mark.parametrize(
    ("curve", "alg"),
    [(ec.SECP384R1(), "ES384"), (ec.SECP521R1(), "ES512"), (ec.SECP256K1(), "ES256K")],
)
def test_ec_keys_without_alg_verify_their_curves_algorithm(
    server: JWKSServer, curve: ec.EllipticCurve, alg: str
) -> None:
    """Every EC curve PyJWT supports is matched to its algorithm (RFC 7518 §3.4)."""
    private = ec.generate_private_key(curve)
    server.jwks = {
        "keys": [{**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": "ec"}]
    }
    verifier = jwks_verifier(server, algorithms=[alg])
    assert verdict(verifier, mint(alg, headers={"kid": "ec"}, key=private)) == "valid"


def test_a_key_with_an_odd_crv_is_skipped_not_fatal(server: JWKSServer, keys: Keys) -> None:
    """A crv that is not a string (here a list, unhashable) spoils only its own key."""
    odd = {**keys.jwk("EdDSA", "odd"), "crv": ["Ed25519"]}
    server.jwks = {"keys": [_without_alg(odd), keys.jwk("ES256", "ec-1")]}
    verifier = jwks_verifier(server, algorithms=["ES256", "EdDSA"])
    assert verdict(verifier, mint("ES256", headers={"kid": "ec-1"})) == "valid"
    assert verdict(verifier, mint("EdDSA", headers={"kid": "odd"})) == "unknown_key"


# -- keys too weak to trust ---------------------------------------------------------


@APIS
def test_a_too_weak_jwks_key_is_skipped_with_one_warning(
    server: JWKSServer, keys: Keys, api: str
) -> None:
    """An RSA-1024 key is dropped at load, logged by kid; its tokens are unknown_key."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    weak_jwk = {**RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True), "kid": "weak"}
    server.jwks = {"keys": [weak_jwk, keys.jwk("RS256", "rsa-1")]}
    verifier = jwks_verifier(server, algorithms=["RS256"])
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        token = mint("RS256", headers={"kid": "weak"}, key=weak)
    with capture_logs() as logs:
        assert verdict(verifier, token, api) == "unknown_key"
        assert verdict(verifier, mint("RS256", headers={"kid": "rsa-1"}), api) == "valid"
    skipped = [e for e in logs if e["event"] == "jwks_key_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["kid"] == "weak"
    assert skipped[0]["log_level"] == "warning"


# -- NumericDate claims are numbers (RFC 7519 §2, §4.1.4-4.1.6) ------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", "0", True, False, None, [1], {"t": 1}])
def test_a_numeric_date_that_is_not_a_number_is_malformed(claim: str, value: object) -> None:
    """Strings, booleans, null, arrays and objects are not NumericDates."""
    token = hs256_raw(HS256, claims(**{claim: 1}) | {claim: value})
    failure = failure_of(static_verifier(), token)
    assert failure.reason.value == "malformed_token"
    assert failure.description == Sentence.NOT_A_NUMERIC_DATE.format(claim=claim)


@pytest.mark.parametrize("value", [1_000, 1_000.5])
def test_numeric_dates_as_ints_and_floats_still_work(value: float) -> None:
    """Integers and fractional seconds are NumericDates (RFC 7519 §2)."""
    verifier = static_verifier()
    assert verdict(verifier, hs256_raw(HS256, claims(iat=value, nbf=value))) == "valid"
    assert verdict(verifier, hs256_raw(HS256, claims(exp=value))) == "expired"


def test_a_forged_token_with_a_string_exp_is_a_bad_signature() -> None:
    """The claim types are checked after the signature, in the documented order."""
    token = hs256_raw(HS256, claims(exp="9999999999"), secret=b"x" * 32)
    assert verdict(static_verifier(), token) == "bad_signature"


@pytest.mark.parametrize("aud", [[], ""])
def test_an_empty_audience_is_the_wrong_audience(aud: object) -> None:
    """``"aud": []`` names no audience, so not this one: wrong_audience, not missing_claim."""
    assert verdict(static_verifier(), mint(payload=claims(aud=aud))) == "wrong_audience"


# -- certificate PEMs as the configured key -----------------------------------------


def _certificate(private: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.example")])
    now = dt.datetime.now(tz=dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("as_text", [True, False], ids=["str", "bytes"])
def test_a_certificate_pem_is_accepted_as_key(keys: Keys, alg: str, *, as_text: bool) -> None:
    """Auth0, Google and Keycloak publish X.509 certificates: their public key verifies."""
    pem = _certificate(keys.signing_key(alg))
    verifier = JWTVerifier(
        key=pem.decode() if as_text else pem, algorithms=[alg], issuer=ISSUER, audience=AUDIENCE
    )
    assert verdict(verifier, mint(alg)) == "valid"
    assert verdict(verifier, tamper_signature(mint(alg))) == "bad_signature"


def test_a_certificate_pem_is_no_hmac_secret(keys: Keys) -> None:
    """A certificate configured for HS256 is refused (RFC 8725 §2.1 key confusion)."""
    with pytest.raises(ValueError, match="HS256"):
        JWTVerifier(key=_certificate(keys.rsa), algorithms=["HS256"])


def test_an_unreadable_certificate_pem_says_so() -> None:
    """A damaged certificate is refused with a message about the certificate."""
    broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    with pytest.raises(ValueError, match="certificate"):
        JWTVerifier(key=broken, algorithms=["RS256"])
