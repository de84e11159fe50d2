"""Algorithm allowlists, verification keys and where they come from.

Keys (an HMAC secret, a PEM public key or X.509 certificate, a JWK dict or a
``cryptography`` key object) are turned into :class:`VerifyingKey` objects when they are
loaded, one per algorithm they may verify, so no request ever parses a PEM or prepares
a key. Whether a key may verify an algorithm is decided by PyJWT's own ``prepare_key``
(which also checks EC curves and refuses PEM-shaped HMAC secrets, the RFC 8725 §2.1
key-confusion attack), never by the token.

A :class:`KeySource` answers "which key must have signed a token with this ``kid`` and
``alg``": :class:`StaticKeys` for a configured key, :class:`~invalidtoken_mw.JWKSCache`
for a JWKS endpoint, or a source of one's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import jwt
from cryptography import x509
from jwt.algorithms import get_default_algorithms

from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping


__all__ = [
    "KeySource",
    "StaticKeys",
    "VerifyingKey",
    "check_algorithms",
    "prepare_key",
    "prepare_static_key",
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


@dataclass(frozen=True, slots=True, eq=False)
class VerifyingKey:
    """One key, prepared for one algorithm, as a :class:`KeySource` hands it out.

    Compared by identity: a key source hands out the same object for as long as it
    publishes the same key, so a verdict can tell whether the key that verified it is
    still current (:meth:`KeySource.holds`).

    Attributes:
        alg: The JWS algorithm this key verifies, e.g. ``"RS256"``.
        key: The prepared key object (a ``cryptography`` public key, or HMAC secret bytes).
        kid: The key's ``kid``, or ``None``.
    """

    alg: str
    key: Any
    kid: str | None = None

    @classmethod
    def prepare(cls, alg: str, key: Any, kid: str | None = None) -> VerifyingKey:  # noqa: ANN401 - key objects of several types
        """Prepare ``key`` for ``alg`` once (see :func:`prepare_key`).

        Raises:
            jwt.InvalidKeyError: The key does not fit the algorithm or is too weak.
        """
        return cls(alg, prepare_key(alg, key), kid)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``signing_input`` verifies with this key.

        A signature of the wrong length or form simply does not match.
        """
        try:
            return bool(_ALGORITHMS[self.alg].verify(signing_input, self.key, signature))
        except (ValueError, TypeError):
            return False


@runtime_checkable
class KeySource(Protocol):
    """Where a verifier finds the key that must have signed a token.

    Implemented by :class:`StaticKeys` and :class:`~invalidtoken_mw.JWKSCache`; pass
    any implementation as ``JWTVerifier(keys=...)``.
    """

    @property
    def version(self) -> int:
        """A number that changes whenever the published keys may have changed.

        Read on every request a remembered verdict answers; a source may use it to
        start a due refresh in the background, but must never wait in it.
        """
        ...

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:
        """The key for a token's ``kid`` and (already allowed) ``alg``; may block.

        Raises:
            AuthFailure: ``unknown_key``, ``key_unavailable``, or
                ``algorithm_not_allowed`` when the key may not verify ``alg``.
        """
        ...

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:
        """:meth:`key_for` without blocking the event loop."""
        ...

    def holds(self, key: VerifyingKey) -> bool:
        """Whether ``key`` (handed out earlier) is still published, unchanged."""
        ...

    def refresh(self) -> None:
        """Load the keys again now, ignoring any cool-down (a no-op for fixed keys)."""
        ...

    async def refresh_async(self) -> None:
        """:meth:`refresh` without blocking the event loop."""
        ...


class StaticKeys:
    """A configured key, prepared once for every allowed algorithm: a :class:`KeySource`.

    The token's ``kid`` is not consulted: there is only one key.

    Args:
        key: An HMAC secret, a PEM public key or X.509 certificate, a JWK dict or a
            ``cryptography`` public (or private) key.
        algorithms: The algorithms this key verifies; all must fit it.

    Raises:
        ValueError: The key is empty, unreadable, too weak, or does not fit every
            algorithm (the message says how to fix it).
    """

    __slots__ = ("_keys",)

    version = 0

    def __init__(
        self, key: str | bytes | Mapping[str, Any] | object, *, algorithms: Iterable[str]
    ) -> None:
        """Check the algorithms and prepare the key once per algorithm."""
        prepared = prepare_static_key(key, check_algorithms(algorithms))
        self._keys = {alg: VerifyingKey(alg, value) for alg, value in prepared.items()}

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms this key verifies."""
        return tuple(self._keys)

    def key_for(self, kid: str | None, alg: str) -> VerifyingKey:  # noqa: ARG002 - one key, whatever the kid
        """The key prepared for ``alg``.

        Raises:
            AuthFailure: ``algorithm_not_allowed`` when the key was not prepared for ``alg``.
        """
        key = self._keys.get(alg)
        if key is None:
            raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED, Sentence.ALGORITHM_NOT_THE_KEYS)
        return key

    async def key_for_async(self, kid: str | None, alg: str) -> VerifyingKey:
        """:meth:`key_for`; nothing to wait for."""
        return self.key_for(kid, alg)

    def holds(self, key: VerifyingKey) -> bool:  # noqa: ARG002 - the protocol's signature
        """Always: a configured key is never withdrawn."""
        return True

    def refresh(self) -> None:
        """Nothing to load again."""

    async def refresh_async(self) -> None:
        """Nothing to load again."""
