"""Helpers for your own tests, in the spirit of ``structlog.testing``.

- :func:`mint_token` signs tokens, good or with one chosen defect from
  :data:`DEFECTS` (expired, wrong audience, forged signature, truncated...);
- :class:`FakeIssuer` is a throwaway identity provider: a freshly generated key (or
  HMAC secret), tokens it signs, and a :class:`~invalidtoken_mw.JWTVerifier` that
  trusts exactly that key;
- :func:`parse_challenges` reads a ``WWW-Authenticate`` value by the RFC 9110 §11
  grammar, strictly, so a test can assert on a challenge's parameters.

Nothing in the library imports this module: it is for tests, demos and trying the
middleware by hand, never for issuing production tokens.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt

from invalidtoken_mw._grammar import (
    AUTH_PARAM_START_RE,
    COMMA_RE,
    OWS_RE,
    QUOTED_STRING_RE,
    SPACES_RE,
    TOKEN68_RE,
    TOKEN_RE,
)
from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFECTS", "Challenge", "FakeIssuer", "mint_token", "parse_challenges"]

DEFECTS = (
    "expired",
    "not-yet-valid",
    "wrong-audience",
    "wrong-issuer",
    "wrong-type",
    "missing-exp",
    "bad-signature",
    "alg-none",
    "truncated",
    "quoted",
)
"""The defects :func:`mint_token` can build into a token, one per way a token goes wrong."""


# Defects that change the claims or the header before signing.
_BEFORE_SIGNING: dict[str, Callable[[dict[str, Any], dict[str, Any], int], None]] = {
    "expired": lambda body, _head, now: body.update(iat=now - 7200, exp=now - 3600),
    "not-yet-valid": lambda body, _head, now: body.update(
        nbf=now + 3600, iat=now + 3600, exp=now + 7200
    ),
    "wrong-audience": lambda body, _head, _now: body.update(aud="api://somewhere-else"),
    "wrong-issuer": lambda body, _head, _now: body.update(iss="https://untrusted.example/"),
    "wrong-type": lambda _body, head, _now: head.update(typ="JWT"),
    "missing-exp": lambda body, _head, _now: body.pop("exp", None),
}


def _flip_signature(token: str) -> str:
    head_b64, claims_b64, signature = token.split(".")
    return f"{head_b64}.{claims_b64}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


# Defects applied to the signed token.
_AFTER_SIGNING: dict[str, Callable[[str], str]] = {
    "bad-signature": _flip_signature,
    "truncated": lambda token: token.rsplit(".", 1)[0],
    "quoted": lambda token: f'"{token}"',
}


def mint_token(
    key: Any,  # noqa: ANN401 - a secret, a PEM private key or a key object
    *,
    algorithm: str,
    claims: dict[str, Any],
    headers: dict[str, Any] | None = None,
    defect: str | None = None,
    ttl: int = 300,
    now: float | None = None,
) -> str:
    """Sign ``claims`` (``iat``, ``exp`` filled in) and apply an optional ``defect``.

    A claim given as ``None`` is left out (``exp=None``: a token that never expires).

    Raises:
        ValueError: An unknown defect.
    """
    if defect not in (None, *DEFECTS):
        raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(DEFECTS)}")
    moment = int(time.time() if now is None else now)
    merged = {"iat": moment, "exp": moment + ttl, **claims}
    body = {name: value for name, value in merged.items() if value is not None}
    head = dict(headers or {})
    if defect in _BEFORE_SIGNING:
        _BEFORE_SIGNING[defect](body, head, moment)
    if defect == "alg-none":
        return jwt.encode(body, "", algorithm="none", headers=head)
    token = jwt.encode(body, key, algorithm=algorithm, headers=head or None)
    return _AFTER_SIGNING[defect](token) if defect in _AFTER_SIGNING else token


_ASYMMETRIC = ("ES256", "RS256", "PS256", "EdDSA")


def _generate(algorithm: str) -> Any:  # noqa: ANN401 - a secret or a private key object
    """A fresh signing key for ``algorithm``: 32 random bytes for HS256, a private key else."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: PLC0415

    if algorithm == "HS256":
        return secrets.token_bytes(32)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm in {"RS256", "PS256"}:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(
        f"FakeIssuer cannot make a key for {algorithm!r}; choose HS256, {', '.join(_ASYMMETRIC)}"
    )


@dataclass(frozen=True)
class FakeIssuer:
    """A throwaway identity provider for tests: a fresh key, its tokens, its verifier.

    Args:
        algorithm: ``HS256`` (a random 32-byte secret), ``ES256``, ``RS256``,
            ``PS256`` or ``EdDSA`` (a freshly generated key pair).
        issuer: The ``iss`` of its tokens and the issuer its verifier expects.
        audience: The ``aud`` of its tokens and the audience its verifier expects.
        kid: The ``kid`` header of its tokens and of its JWK.

    Example::

        issuer = FakeIssuer()
        verifier = issuer.verifier()
        assert verifier.verify(issuer.token(sub="alice"))["sub"] == "alice"
    """

    algorithm: str = "HS256"
    issuer: str = "https://issuer.test/"
    audience: str = "api://test"
    kid: str = "test-key"
    key: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Generate the key unless one was given."""
        if self.key is None:
            object.__setattr__(self, "key", _generate(self.algorithm))

    @property
    def public_key(self) -> Any:  # noqa: ANN401 - a secret or a public key object
        """What a verifier is configured with: the secret, or the public half of the key."""
        public = getattr(self.key, "public_key", None)
        return public() if callable(public) else self.key

    def token(
        self,
        defect: str | None = None,
        *,
        ttl: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: object,
    ) -> str:
        """A token for ``sub="user-1"`` with this issuer and audience; ``claims`` override.

        A claim given as ``None`` is left out. ``defect`` is one of :data:`DEFECTS`.
        """
        body = {"iss": self.issuer, "aud": self.audience, "sub": "user-1", **claims}
        head = {"kid": self.kid, **(headers or {})}
        return mint_token(
            self.key,
            algorithm=self.algorithm,
            claims=body,
            headers=head,
            defect=defect,
            ttl=ttl,
        )

    def verifier(self, **options: object) -> JWTVerifier:
        """A :class:`~invalidtoken_mw.JWTVerifier` trusting this key; ``options`` override."""
        settings: dict[str, Any] = {
            "key": self.public_key,
            "algorithms": [self.algorithm],
            "issuer": self.issuer,
            "audience": self.audience,
            **options,
        }
        return JWTVerifier(**settings)

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWK Set, to serve from a test JWKS endpoint (asymmetric only).

        Raises:
            ValueError: The issuer signs with an HMAC secret, which is never published.
        """
        if self.algorithm not in _ASYMMETRIC:
            raise ValueError("an HMAC secret is never published in a JWKS; use ES256 or RS256")
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = algorithm.to_jwk(self.public_key, as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}]}


# -- WWW-Authenticate challenges (RFC 9110 §11) ----------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """One parsed challenge: a scheme with either a ``token68`` or parameters.

    Scheme and parameter names are lower-cased (they are case-insensitive,
    RFC 9110 §11.1 and §11.2); values are unquoted.
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


_EQUALS = re.compile(r"=")
_UNESCAPE = re.compile(r"\\(.)")


class _Parser:
    """A small recursive-descent reader over one header value."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self, pattern: re.Pattern[str] = OWS_RE) -> None:
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        m = pattern.match(self.text, self.pos)
        if not m:
            raise ValueError(f"expected {what} at offset {self.pos}")
        self.pos = m.end()
        return m

    def skip_empty_list_items(self) -> None:
        while True:
            self.skip()
            if self.peek() != ",":
                return
            self.pos += 1

    def param_follows(self) -> bool:
        return AUTH_PARAM_START_RE.match(self.text, self.pos) is not None

    def param(self) -> tuple[str, str]:
        name = self.expect(TOKEN_RE, "a parameter name").group().lower()
        self.skip()
        self.expect(_EQUALS, "'='")
        self.skip()
        if self.peek() == '"':
            value = _UNESCAPE.sub(r"\1", self.expect(QUOTED_STRING_RE, "a quoted string").group(1))
        else:
            value = self.expect(TOKEN_RE, "a token or quoted string").group()
        return name, value

    def challenge(self) -> Challenge:
        scheme = self.expect(TOKEN_RE, "an auth-scheme").group().lower()
        if self.at_end() or self.peek() == ",":
            return Challenge(scheme)
        self.expect(SPACES_RE, "a space after the auth-scheme")
        if self.at_end() or self.peek() == ",":
            return Challenge(scheme)
        if not self.param_follows():
            token68 = self.expect(TOKEN68_RE, "a token68").group()
            self.skip()
            if not (self.at_end() or self.peek() == ","):
                raise ValueError(f"unexpected text after token68 at offset {self.pos}")
            return Challenge(scheme, token68=token68)
        params: dict[str, str] = {}
        while True:
            name, value = self.param()
            if name in params:
                raise ValueError(f"parameter {name!r} appears twice (RFC 9110 §11.2)")
            params[name] = value
            self.skip()
            if self.at_end():
                break
            self.expect(COMMA_RE, "','")
            self.skip_empty_list_items()
            if self.at_end() or not self.param_follows():
                break
        return Challenge(scheme, params)


def parse_challenges(value: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` field value into its challenges (RFC 9110 §11.6.1).

    Raises:
        ValueError: The value does not follow the RFC 9110 grammar, or a parameter
            occurs twice in one challenge.
    """
    parser = _Parser(value)
    challenges: list[Challenge] = []
    parser.skip_empty_list_items()
    while not parser.at_end():
        challenges.append(parser.challenge())
        parser.skip_empty_list_items()
    if not challenges:
        raise ValueError("no challenge in the header value")
    return challenges
