"""Helpers for your own tests, in the spirit of ``structlog.testing``.

- :func:`mint_token` signs tokens, good or with one chosen defect from
  :data:`DEFECTS` (expired, wrong audience, forged signature, truncated...);
- :class:`FakeIssuer` is a throwaway identity provider: a freshly generated key (or
  HMAC secret), tokens it signs, and a :class:`~invalidtoken_mw.JWTVerifier` that
  trusts exactly that key;
- :class:`LocalIssuer` is a local identity provider on a loopback port: OpenID
  Connect discovery, RFC 8414 metadata and a JWKS served from a thread, tokens with
  any claims or defect, and key rotation;
- :func:`parse_challenges` reads a ``WWW-Authenticate`` value by the RFC 9110 §11
  grammar, strictly, so a test can assert on a challenge's parameters.

Nothing in the library imports this module: it is for tests, demos and trying the
middleware by hand, never for issuing production tokens.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    from collections.abc import Callable, Mapping, Sequence
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "DEFECTS",
    "LOCAL_DEFECTS",
    "Challenge",
    "FakeIssuer",
    "LocalIssuer",
    "mint_token",
    "parse_challenges",
]

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


# -- a local identity provider on a loopback port -------------------------------------

LOCAL_DEFECTS = (*DEFECTS, "unknown-key")
"""The defects :meth:`LocalIssuer.token` can build: :data:`DEFECTS` and ``unknown-key``.

``unknown-key`` is a token signed by a key the issuer never published, under a
``kid`` it never published (``unknown_key``).
"""

_OPENID = "/.well-known/openid-configuration"
_OAUTH = "/.well-known/oauth-authorization-server"


class LocalIssuer:
    """A local identity provider for tests: discovery, a JWKS and tokens, on loopback.

    It serves, from a background thread on a free ``127.0.0.1`` port:

    - ``{issuer}/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0);
    - ``/.well-known/oauth-authorization-server{path}`` (RFC 8414 §3, the path of the
      issuer after the well-known segment);
    - ``{issuer}/jwks`` (the JWK Set: every published key, never a private half), or
      ``jwks_path``.

    Its tokens carry its ``iss``, its ``aud``, ``typ: at+jwt`` (RFC 9068) and the
    ``kid`` of its current key; :meth:`rotate` publishes a new key, keeping or
    withdrawing the old one. Use it as a context manager (or call :meth:`close`): the
    port is released and the thread joined on exit.

    Args:
        algorithm: ``ES256``, ``RS256``, ``PS256`` or ``EdDSA``.
        audience: The ``aud`` of its tokens and the audience its verifier expects.
        path: A path for the issuer identifier, e.g. ``"/realms/orders"`` (Keycloak)
            or ``"/tenant-1/v2.0"`` (Entra ID); empty for an issuer at the origin.
        trailing_slash: End the issuer identifier with ``/`` (as Auth0 does).
        token_type: The ``typ`` header of its tokens and the one its verifier
            requires; ``None`` for neither.
        kid_prefix: Key ids are this prefix and a counter: ``key-1``, ``key-2``...
        jwks_path: Serve the JWK Set at this path of the origin instead of
            ``{path}/jwks``, e.g. ``"/tenant-1/discovery/keys"`` (Entra ID's v1.0 keys).
        x509: Publish each key with an ``x5c`` (a self-signed certificate for it) and
            its ``x5t`` thumbprint, as Auth0, Entra ID, Keycloak and GitHub do.
        publish_alg: Publish each key's ``alg``; ``False`` leaves it out, as Entra ID does.
        jwk_members: More members for every published key, e.g. Entra ID's
            ``{"issuer": "..."}``.
        extra_keys: More JWKs published as they are, after the issuer's own keys, e.g.
            Keycloak's ``{"use": "enc", "alg": "RSA-OAEP", ...}`` encryption key.

    Example::

        with LocalIssuer(audience="api://orders") as issuer:
            verifier = issuer.verifier()
            assert verifier.verify(issuer.token(sub="alice"))["sub"] == "alice"
    """

    def __init__(
        self,
        algorithm: str = "ES256",
        *,
        audience: str = "api://test",
        path: str = "",
        trailing_slash: bool = False,
        token_type: str | None = "at+jwt",  # noqa: S107 - a JOSE typ, not a password
        kid_prefix: str = "key-",
        jwks_path: str | None = None,
        x509: bool = False,
        publish_alg: bool = True,
        jwk_members: Mapping[str, Any] | None = None,
        extra_keys: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """Generate the first key and start serving."""
        if algorithm not in _ASYMMETRIC:
            raise ValueError(
                f"LocalIssuer publishes its keys, so it signs with {', '.join(_ASYMMETRIC)};"
                f" got {algorithm!r} (use FakeIssuer for an HMAC secret)"
            )
        if path and (not path.startswith("/") or path.endswith("/") or "?" in path):
            raise ValueError(f"path must look like '/realms/orders', got {path!r}")
        if jwks_path is not None and (not jwks_path.startswith("/") or "?" in jwks_path):
            raise ValueError(f"jwks_path must look like '/discovery/keys', got {jwks_path!r}")
        self.algorithm = algorithm
        self.audience = audience
        self.path = path
        self.token_type = token_type
        self._kid_prefix = kid_prefix
        self._jwks_route = jwks_path or f"{path}/jwks"
        self._x509 = x509
        self._publish_alg = publish_alg
        self._jwk_members = dict(jwk_members or {})
        self._extra_keys = [dict(jwk) for jwk in extra_keys]
        self._shaped: dict[str, dict[str, Any]] = {}
        self._kids = itertools.count(1)
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._status: int = 200
        self._keys: list[FakeIssuer] = []
        self._published: bytes = b""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _issuer_handler(self))
        # Joined on close: no answer is still being written once close() returns.
        self._server.daemon_threads = False
        self._server.block_on_close = True
        host, port = self._server.server_address[:2]
        self.origin = f"http://{host!s}:{port}"
        self.issuer = f"{self.origin}{path}{'/' if trailing_slash else ''}"
        self._base = f"{self.origin}{path}"
        self._closed = False
        self.rotate(keep_old=False)
        # A short poll interval makes close() (shutdown) return quickly.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LocalIssuer {self.origin}",
            daemon=True,
        )
        self._thread.start()

    # -- what it publishes ----------------------------------------------------------

    @property
    def jwks_url(self) -> str:
        """The URL of its JWK Set (the ``jwks_uri`` of its metadata)."""
        return f"{self.origin}{self._jwks_route}"

    @property
    def discovery_url(self) -> str:
        """The URL of its OpenID Connect discovery document."""
        return f"{self._base}{_OPENID}"

    @property
    def metadata_url(self) -> str:
        """The URL of its RFC 8414 authorization server metadata."""
        return f"{self.origin}{_OAUTH}{self.path}"

    @property
    def kid(self) -> str:
        """The ``kid`` of the key that signs new tokens."""
        with self._lock:
            return self._keys[-1].kid

    @property
    def kids(self) -> list[str]:
        """The ``kid`` of every published key, oldest first."""
        with self._lock:
            return [key.kid for key in self._keys]

    @property
    def requests(self) -> Counter[str]:
        """How many requests each path received (a copy), e.g. ``requests["/jwks"]``."""
        with self._lock:
            return Counter(self._requests)

    def metadata(self) -> dict[str, Any]:
        """Its metadata, as both discovery documents serve it."""
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": [self.algorithm],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        """Its JWK Set: the public half of every published key, then ``extra_keys``."""
        with self._lock:
            return json.loads(self._published)  # type: ignore[no-any-return]

    def jwk(self, kid: str | None = None) -> dict[str, Any]:
        """The published JWK of key ``kid`` (default: the current key), e.g. for its ``x5t``.

        Raises:
            KeyError: No published key of its own has this ``kid``.
        """
        with self._lock:
            return dict(self._shaped[kid or self._keys[-1].kid])

    # -- tokens and keys ------------------------------------------------------------

    def token(
        self,
        defect: str | None = None,
        *,
        ttl: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: object,
    ) -> str:
        """A token for ``sub="user-1"``, signed by the current key; ``claims`` override.

        A claim given as ``None`` is left out. ``defect`` is one of
        :data:`LOCAL_DEFECTS`; :meth:`verifier` refuses each for its own reason.

        Raises:
            ValueError: An unknown defect.
        """
        return self._mint(defect, ttl, headers, claims)

    def headers(
        self, defect: str | None = None, *, ttl: int = 300, **claims: object
    ) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for :meth:`token` with these arguments.

        Raises:
            ValueError: An unknown defect.
        """
        return {"Authorization": f"Bearer {self._mint(defect, ttl, None, claims)}"}

    def _mint(
        self,
        defect: str | None,
        ttl: int,
        headers: dict[str, Any] | None,
        claims: dict[str, object],
    ) -> str:
        if defect not in (None, *LOCAL_DEFECTS):
            raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(LOCAL_DEFECTS)}")
        with self._lock:
            signer = self._keys[-1]
        # typ None: no typ at all (PyJWT leaves a falsy typ out instead of adding "JWT").
        head: dict[str, Any] = {"typ": self.token_type, **(headers or {})}
        if defect == "unknown-key":
            signer = FakeIssuer(self.algorithm, kid=f"{self._kid_prefix}never-published")
            defect = None
        body: dict[str, Any] = {"iss": self.issuer, "aud": self.audience, **claims}
        return signer.token(defect, ttl=ttl, headers=head, **body)

    def rotate(self, *, keep_old: bool = True) -> str:
        """Publish a new key and sign new tokens with it; returns its ``kid``.

        With ``keep_old`` (the usual overlap) the previous keys stay published and
        their tokens keep verifying; without it they are withdrawn at once. A verifier
        sees the change at its next fetch of the key set (``refresh_keys()`` fetches
        at once).
        """
        key = FakeIssuer(self.algorithm, kid=f"{self._kid_prefix}{next(self._kids)}")
        with self._lock:
            self._keys = [*self._keys, key] if keep_old else [key]
            self._publish()
        return key.kid

    def withdraw(self, kid: str) -> None:
        """Stop publishing the key ``kid`` (never the current one).

        Raises:
            ValueError: ``kid`` is the key that signs new tokens, or not published.
        """
        with self._lock:
            if kid == self._keys[-1].kid:
                raise ValueError("the current key cannot be withdrawn; rotate() first")
            kept = [key for key in self._keys if key.kid != kid]
            if len(kept) == len(self._keys):
                raise ValueError(f"no published key has kid {kid!r}")
            self._keys = kept
            self._publish()

    @property
    def available(self) -> bool:
        """Whether it answers (``False``: every path answers 503, an outage)."""
        return self._status == 200  # noqa: PLR2004 - HTTP OK

    @available.setter
    def available(self, value: bool) -> None:
        self._status = 200 if value else 503

    def _publish(self) -> None:
        """Serialise the key set once per change (the lock is held)."""
        self._shaped = {
            key.kid: self._shaped.get(key.kid) or self._shape(key) for key in self._keys
        }
        keys = [*self._shaped.values(), *self._extra_keys]
        self._published = json.dumps({"keys": keys}).encode()

    def _shape(self, key: FakeIssuer) -> dict[str, Any]:
        """The JWK of ``key`` with the members this issuer publishes."""
        jwk: dict[str, Any] = key.jwks()["keys"][0]
        if not self._publish_alg:
            del jwk["alg"]
        if self._x509:
            der = _self_signed_certificate(key.key, key.kid)
            jwk["x5c"] = [base64.b64encode(der).decode("ascii")]
            # RFC 7517 §4.8: the base64url SHA-1 thumbprint of the DER certificate.
            thumbprint = hashlib.sha1(der, usedforsecurity=False).digest()
            jwk["x5t"] = _base64url(thumbprint)
        jwk.update(self._jwk_members)
        return jwk

    # -- the verifier ---------------------------------------------------------------

    def verifier(self, **options: object) -> JWTVerifier:
        """A :class:`~invalidtoken_mw.JWTVerifier` for this issuer; ``options`` override.

        It discovers this issuer as a production verifier would (``issuer_url``: the
        metadata document, then its JWK Set) and expects its ``iss``, its audience, its
        algorithm and (unless ``token_type=None``) its ``typ``.
        """
        settings: dict[str, Any] = {
            "issuer_url": self.issuer,
            "audience": self.audience,
            "algorithms": [self.algorithm],
            "token_type": self.token_type,
            **options,
        }
        return JWTVerifier(**settings)

    # -- serving --------------------------------------------------------------------

    def _answer(self, path: str) -> tuple[int, bytes]:
        """The status and JSON body for ``path``."""
        with self._lock:
            self._requests[path] += 1
            published = self._published
        route = path.split("?", 1)[0]
        if self._status != 200:  # noqa: PLR2004 - HTTP OK
            return self._status, b'{"error": "temporarily_unavailable"}'
        if route == self._jwks_route:
            return 200, published
        if route in {f"{self.path}{_OPENID}", f"{_OAUTH}{self.path}"}:
            return 200, json.dumps(self.metadata()).encode()
        return 404, b'{"error": "not_found"}'

    def close(self) -> None:
        """Stop serving, close the listening socket and join the thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        """Return the running issuer."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close it."""
        self.close()

    def __repr__(self) -> str:
        """Its issuer, algorithm and current key."""
        return f"LocalIssuer({self.issuer!r}, algorithm={self.algorithm!r}, kid={self.kid!r})"


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _self_signed_certificate(key: Any, name: str) -> bytes:  # noqa: ANN401 - a private key object
    """A self-signed X.509 certificate (DER) for ``key``, as an ``x5c`` carries it."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.DER)


def _issuer_handler(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so close() never waits on an idle
        # keep-alive connection of some client.
        def do_GET(self) -> None:
            status, body = issuer._answer(self.path)  # noqa: SLF001 - part of the issuer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401 - http.server's signature
            """Keep the test output quiet."""

    return Handler


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
