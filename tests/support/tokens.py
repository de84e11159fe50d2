"""Real keys and token-minting helpers shared by the verifier and explain tests.

Keys are generated once per test session (:func:`session_keys` is cached) because RSA
generation is slow. Tokens are minted with ``jwt.encode`` where PyJWT allows it and
signed by hand (:func:`hs256_raw`) where a test needs bytes PyJWT refuses to produce:
malformed JSON, claims of the wrong type, or the RFC 8725 §2.1 key-confusion forgery.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

ISSUER = "https://issuer.example"
AUDIENCE = "https://api.example"
SECRET = b"s3cret-for-tests-that-is-32-byte"
OTHER_SECRET = b"another-secret-32-bytes-long-xyz"

ALGORITHMS = ("HS256", "RS256", "PS256", "ES256", "EdDSA")

# The kid under which the shared ``jwks`` fixture (conftest.py) publishes each
# asymmetric algorithm's session key.
KIDS = {"RS256": "rsa-1", "PS256": "rsa-ps", "ES256": "ec-1", "EdDSA": "ed-1"}


@dataclass(frozen=True)
class Keys:
    """One private key per algorithm family, plus a second RSA key for forgeries."""

    rsa: RSAPrivateKey
    rsa_other: RSAPrivateKey
    ec: EllipticCurvePrivateKey
    ed: Ed25519PrivateKey

    def signing_key(self, alg: str) -> Any:
        """The private key (or HMAC secret) that signs ``alg`` tokens."""
        return {
            "HS256": SECRET,
            "RS256": self.rsa,
            "PS256": self.rsa,
            "ES256": self.ec,
            "EdDSA": self.ed,
        }[alg]

    def forging_key(self, alg: str) -> Any:
        """A key of the right type for ``alg`` that the verifier does not trust."""
        return {
            "HS256": OTHER_SECRET,
            "RS256": self.rsa_other,
            "PS256": self.rsa_other,
            "ES256": ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate(),
        }[alg]

    def verifying_key(self, alg: str) -> Any:
        """The key a verifier is configured with for ``alg``: a secret or a public key."""
        key = self.signing_key(alg)
        return key if isinstance(key, bytes) else key.public_key()

    def rsa_public_pem(self) -> bytes:
        """The RSA public key as PEM, the material of the key-confusion attack."""
        return self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, alg: str, kid: str) -> dict[str, Any]:
        """The public JWK for ``alg`` (asymmetric algorithms only), with ``kid`` and ``alg``."""
        if alg in {"RS256", "PS256"}:
            data = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        elif alg == "ES256":
            data = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(self.ed.public_key(), as_dict=True)
        return {**data, "kid": kid, "alg": alg, "use": "sig"}

    def rsa_other_jwk(self) -> dict[str, Any]:
        """The public JWK of ``rsa_other`` (a forger's or a rotated-in key), no kid, no alg."""
        return dict(RSAAlgorithm.to_jwk(self.rsa_other.public_key(), as_dict=True))


@functools.cache
def session_keys() -> Keys:
    """Generate the session's keys once (RSA 2048, P-256, Ed25519)."""
    return Keys(
        rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa_other=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec=ec.generate_private_key(ec.SECP256R1()),
        ed=ed25519.Ed25519PrivateKey.generate(),
    )


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims valid for an hour for ISSUER and AUDIENCE; an override of ``None`` drops one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "iat": now,
        "exp": now + 3600,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def mint(
    alg: str = "HS256",
    payload: dict[str, Any] | None = None,
    *,
    headers: dict[str, Any] | None = None,
    key: Any = None,
) -> str:
    """Sign ``payload`` (default :func:`claims`) with the test key for ``alg`` or ``key``."""
    signing_key = session_keys().signing_key(alg) if key is None else key
    return jwt.encode(
        claims() if payload is None else payload, signing_key, algorithm=alg, headers=headers
    )


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hs256_raw(
    header: dict[str, Any] | str,
    payload: dict[str, Any] | str,
    secret: bytes = SECRET,
) -> str:
    """Sign exact header and claims JSON with HMAC-SHA256, whatever they contain.

    Strings are used verbatim (so tests can write JSON that ``json.dumps`` cannot, such as
    ``10**400`` beyond the int-to-str digit limit or ``NaN``); dicts are dumped.
    """
    header_json = header if isinstance(header, str) else json.dumps(header)
    payload_json = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{b64url(header_json.encode())}.{b64url(payload_json.encode())}"
    signature = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tamper_signature(token: str) -> str:
    """Flip one bit of the signature, keeping it valid base64url of the same length."""
    head, body, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[3] ^= 0x01
    return f"{head}.{body}.{b64url(bytes(raw))}"


def tamper_claims(token: str, **changes: Any) -> str:
    """Rewrite claims (e.g. ``sub="admin"``) and keep the original signature."""
    head, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return f"{head}.{b64url(json.dumps(payload).encode())}.{signature}"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value Python's ``json`` reads, including NaN, infinities and huge integers."""


@dataclass(frozen=True)
class Case:
    """A token, the options of the static HS256 verifier judging it, and the verdict due.

    ``expected`` is a ``Reason`` value or ``"valid"``; ``check`` names the explain check
    that must report the defect (``None`` for a valid token).
    """

    name: str
    token: str
    expected: str
    check: str | None
    options: dict[str, Any] = field(default_factory=dict)

    def verifier(self, **extra: Any) -> JWTVerifier:
        """A fresh verifier (empty caches) configured for this case."""
        return JWTVerifier(
            key=SECRET,
            algorithms=["HS256"],
            issuer=ISSUER,
            audience=AUDIENCE,
            **{**self.options, **extra},
        )


def static_cases() -> list[Case]:
    """One token per defect class a static-key verifier can detect, plus a valid one."""
    now = int(time.time())
    unsigned = hs256_raw({"alg": "none"}, claims()).rsplit(".", 1)[0] + "."
    return [
        Case("valid", mint(), "valid", None),
        Case("malformed", "not-a-jwt", "malformed_token", "structure"),
        Case("alg-none", unsigned, "algorithm_not_allowed", "structure"),
        Case("alg-not-allowed", mint("RS256"), "algorithm_not_allowed", "structure"),
        Case("bad-signature", mint(key=OTHER_SECRET), "bad_signature", "signature"),
        Case("expired", mint(payload=claims(exp=now - 7200)), "expired", "exp"),
        Case("nbf-future", mint(payload=claims(nbf=now + 3600)), "not_yet_valid", "nbf"),
        Case("iat-future", mint(payload=claims(iat=now + 3600)), "not_yet_valid", "iat"),
        Case("wrong-issuer", mint(payload=claims(iss=ISSUER + "/")), "wrong_issuer", "iss"),
        Case("wrong-audience", mint(payload=claims(aud="other")), "wrong_audience", "aud"),
        Case(
            "wrong-token-type",
            mint(headers={"typ": "JWT"}),
            "wrong_token_type",
            "typ",
            {"token_type": "at+jwt"},
        ),
        Case(
            "missing-claim",
            mint(payload=claims(jti=None)),
            "missing_claim",
            "required_claims",
            {"required_claims": ("exp", "jti")},
        ),
        Case(
            "exp-wrong-type",
            hs256_raw({"alg": "HS256"}, claims(exp="soon")),
            "malformed_token",
            "exp",
        ),
    ]
