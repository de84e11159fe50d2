"""Algorithm allowlists and verification keys, checked and parsed once.

Keys (an HMAC secret, a PEM public key or X.509 certificate, a JWK dict or a
``cryptography`` key object)
are turned into key objects at construction, one per allowed algorithm, so no request
ever parses a PEM. Whether a key may verify an algorithm is decided by PyJWT's own
``prepare_key`` (which also checks EC curves and refuses PEM-shaped HMAC secrets, the
RFC 8725 §2.1 key-confusion attack), never by the token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt
from cryptography import x509
from jwt.algorithms import get_default_algorithms

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "check_algorithms",
    "jwk_accepts",
    "prepare_key",
    "prepare_static_key",
    "signature_matches",
]

_ALGORITHMS = {name: alg for name, alg in get_default_algorithms().items() if name != "none"}
_CERTIFICATE_PEM = b"-----BEGIN CERTIFICATE-----"


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Validate an algorithm allowlist and return it as a tuple.

    Raises:
        ValueError: The list is empty, names ``none`` or an algorithm PyJWT does not
            implement.
        TypeError: ``algorithms`` is a single string instead of a list.
    """
    if isinstance(algorithms, str):
        raise TypeError(f"algorithms must be a list, e.g. algorithms=[{algorithms!r}].")
    allowed = tuple(dict.fromkeys(algorithms))
    if not allowed:
        raise ValueError("algorithms must name at least one algorithm, e.g. ['RS256'].")
    for name in allowed:
        if not isinstance(name, str) or name.lower() == "none":
            raise ValueError(
                f"algorithm {name!r} is not allowed: unsigned tokens can be forged by anyone."
            )
        if name not in _ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {name!r}; choose from {', '.join(sorted(_ALGORITHMS))}."
            )
    return allowed


def prepare_key(algorithm: str, key: Any) -> Any:  # noqa: ANN401 - key objects of several types
    """Return ``key`` as the key object ``algorithm`` verifies with.

    Private keys are reduced to their public half: verification never needs more.

    Raises:
        jwt.InvalidKeyError: The key does not fit the algorithm or is too weak.
    """
    alg = _ALGORITHMS[algorithm]
    try:
        prepared = alg.prepare_key(key)
    except (ValueError, TypeError) as exc:
        raise jwt.InvalidKeyError(f"the key cannot be used with {algorithm}") from exc
    public_key = getattr(prepared, "public_key", None)
    if callable(public_key):
        prepared = public_key()
    weakness = alg.check_key_length(prepared)
    if weakness:
        raise jwt.InvalidKeyError(weakness)
    return prepared


def prepare_static_key(
    key: str | bytes | Mapping[str, Any] | object,
    algorithms: tuple[str, ...],
) -> dict[str, Any]:
    """Parse a configured key once and return a key object per allowed algorithm.

    Raises:
        ValueError: The key is empty, unreadable, too weak, or does not fit every
            algorithm of the allowlist (for example HS256 next to RS256 for one key).
    """
    if isinstance(key, (str, bytes)) and not key:
        raise ValueError("key must not be empty.")
    material: Any = key
    declared: str | None = None
    if isinstance(key, (str, bytes)) and _is_certificate(key):
        material = _certificate_key(key)
    elif isinstance(key, dict):
        declared = key.get("alg")
        try:
            material = jwt.PyJWK(key, algorithm=declared or algorithms[0]).key
        except jwt.PyJWTError as exc:
            # PyJWT's message may quote the JWK, secret included: do not repeat it.
            raise ValueError(
                "key is not a usable JWK: check its kty, crv and key members."
            ) from exc
    prepared: dict[str, Any] = {}
    for algorithm in algorithms:
        if declared is not None and declared != algorithm:
            raise ValueError(
                f"the JWK declares alg {declared!r} but algorithms allows {algorithm!r};"
                f" use algorithms=[{declared!r}]."
            )
        try:
            prepared[algorithm] = prepare_key(algorithm, material)
        except jwt.InvalidKeyError as exc:
            raise ValueError(
                f"key cannot verify {algorithm}: {_safe(exc)}. One key serves one algorithm"
                " family (HS*, RS*/PS*, ES*, EdDSA); an HMAC secret must be at least as long"
                " as the hash and an RSA key at least 2048 bits."
            ) from exc
    return prepared


def _is_certificate(key: str | bytes) -> bool:
    text = key.encode("latin-1", "replace") if isinstance(key, str) else key
    return text.lstrip().startswith(_CERTIFICATE_PEM)


def _certificate_key(key: str | bytes) -> Any:  # noqa: ANN401 - public keys of several types
    """The public key of an X.509 certificate PEM (as Auth0, Google and Keycloak publish).

    Only the key is used: the certificate's validity dates and issuer are not checked,
    as for a JWKS key's ``x5c``; trust comes from the configuration, not from a CA.
    """
    try:
        certificate = x509.load_pem_x509_certificate(
            key.encode("ascii") if isinstance(key, str) else key
        )
        return certificate.public_key()
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "key looks like an X.509 certificate PEM but cannot be read: copy the whole"
            " -----BEGIN CERTIFICATE----- block again."
        ) from exc


def _safe(exc: Exception) -> str:
    """Describe a key error without quoting key material."""
    text = str(exc).rstrip(".")
    return text if "-----" not in text and len(text) < 200 else type(exc).__name__  # noqa: PLR2004


def jwk_accepts(jwk: jwt.PyJWK, algorithm: str) -> Any:  # noqa: ANN401 - key objects of several types
    """Return the key object of ``jwk`` for ``algorithm``, or ``None`` if it may not verify it.

    A JWK that declares ``alg`` verifies only that algorithm (RFC 8725 §3.1); one
    without serves any algorithm its key type fits (an RSA key: RS* and PS*).
    """
    declared = jwk._jwk_data.get("alg")  # noqa: SLF001 - PyJWK exposes no public accessor
    if declared is not None and declared != algorithm:
        return None
    try:
        return prepare_key(algorithm, jwk.key)
    except jwt.InvalidKeyError:
        return None


def signature_matches(
    algorithm: str,
    key: Any,  # noqa: ANN401 - key objects of several types
    signing_input: bytes,
    signature: bytes,
) -> bool:
    """Whether ``signature`` over ``signing_input`` verifies with a prepared ``key``.

    ``key`` is a key object from :func:`prepare_key` (or :func:`jwk_accepts`) for
    ``algorithm``; a signature of the wrong length or form simply does not match.
    """
    try:
        return bool(_ALGORITHMS[algorithm].verify(signing_input, key, signature))
    except (ValueError, TypeError):
        return False
