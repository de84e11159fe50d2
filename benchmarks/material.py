"""Keys and tokens for the benchmarks: one key per algorithm, tokens every stack accepts.

Every valid token carries the claims all four peers insist on (RFC 9068's ``iss``,
``aud``, ``sub``, ``client_id``, ``iat``, ``exp``, ``jti``, plus ``scope``) and the
``at+jwt`` type, so a rejection is always the scenario's defect and never a peer's
configuration.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://id.example.com/"
AUDIENCE = "api://orders"
SECRET = b"benchmark-hmac-secret-of-32-byte"
OTHER_SECRET = b"someone-elses-hmac-secret-32-byt"
ALGORITHMS = ("HS256", "RS256", "ES256")
DEFAULT_ALG = "RS256"  # what most identity providers sign access tokens with
SCOPE = "orders:read"
ADMIN_SCOPE = "orders:admin"
OVERSIZED_BYTES = 16_384  # twice the default max_token_bytes


@dataclass(frozen=True)
class AlgKeys:
    """The keys of one algorithm in every form a stack is configured with."""

    alg: str
    signing: Any  # the private key or HMAC secret
    forging: Any  # a key of the same kind nobody trusts
    verifying: Any  # a pre-parsed key object (or the secret)
    pem: str  # the verifying key as a PEM string (or the secret as text)


def _public_pem(private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def make_keys() -> dict[str, AlgKeys]:
    """Generate one key per algorithm (RSA 2048, P-256, a 32-byte secret)."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_other = ec.generate_private_key(ec.SECP256R1())
    return {
        "HS256": AlgKeys("HS256", SECRET, OTHER_SECRET, SECRET, SECRET.decode()),
        "RS256": AlgKeys("RS256", rsa_key, rsa_other, rsa_key.public_key(), _public_pem(rsa_key)),
        "ES256": AlgKeys("ES256", ec_key, ec_other, ec_key.public_key(), _public_pem(ec_key)),
    }


def claims(*, scope: str = SCOPE, lifetime: int = 7200, age: int = 0) -> dict[str, Any]:
    """Claims of an access token issued ``age`` seconds ago, with a unique ``jti``."""
    now = int(time.time()) - age
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-4711",
        "client_id": "orders-web",
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(12),
        "scope": scope,
    }


def mint(keys: AlgKeys, *, scope: str = SCOPE, lifetime: int = 7200, age: int = 0) -> str:
    """A signed access token."""
    return jwt.encode(
        claims(scope=scope, lifetime=lifetime, age=age),
        keys.signing,
        algorithm=keys.alg,
        headers={"typ": "at+jwt"},
    )


def forged(keys: AlgKeys) -> str:
    """A well-formed token signed by a key nobody trusts (``bad_signature``)."""
    return jwt.encode(claims(), keys.forging, algorithm=keys.alg, headers={"typ": "at+jwt"})


def expired(keys: AlgKeys) -> str:
    """A genuine token that expired an hour ago."""
    return mint(keys, lifetime=3600, age=7200)


def truncated(token: str) -> str:
    """The token with its signature cut off, as a bad copy-paste leaves it."""
    return token.rsplit(".", 1)[0]


def garbage() -> str:
    """A plausible-looking bearer value that is no JWT at all."""
    return secrets.token_urlsafe(30)


def oversized() -> str:
    """A token far larger than any service accepts."""
    return "A" * OVERSIZED_BYTES


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unknown_kid_tokens(count: int) -> list[str]:
    """Well-formed RS256 tokens naming random ``kid`` values (a JWKS flood).

    The signature is random: the flood is refused at the key lookup, before any
    cryptography, which is exactly what an attacker's flood exercises.
    """
    body = _b64(claims())
    signature = base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b"=").decode()
    return [
        f"{_b64({'alg': 'RS256', 'typ': 'at+jwt', 'kid': secrets.token_hex(8)})}.{body}.{signature}"
        for _ in range(count)
    ]
