"""JWTVerifier: decide whether a bearer JWT is good and, when it is not, exactly why.

Checks run in a fixed order, cheapest and most fundamental first, so a forged token
is ``bad_signature`` and never ``expired``:

1. size and structure (three base64url segments, JSON objects; JWE refused);
2. ``alg`` against the configured allowlist (never taken from the token);
3. the key, by ``kid`` (static key, or JWKS with a rate-limited refresh);
4. the signature and the registered claims, by PyJWT;
5. ``typ`` and the remaining claim checks.

Steps 1 to 3, and the signature alone, are public building blocks
(:meth:`JWTVerifier.parse`, :meth:`~JWTVerifier.signing_key`,
:meth:`~JWTVerifier.check_signature`), so a tool such as
:func:`invalidtoken_mw.explain.explain` can run each on its own.

Verdicts are cached by the exact token string: a verified token until it expires
(or ``cache_ttl``), a permanently bad one for ``negative_cache_ttl``, so a client
resending the same token costs a dictionary lookup.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import jwt
import structlog
from cachetools import LRUCache

from invalidtoken_mw._jose import JWS_SHAPE, decode_object
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.classify import failure_from_pyjwt
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES
from invalidtoken_mw.jwks import JWKSCache
from invalidtoken_mw.keys import (
    check_algorithms,
    jwk_accepts,
    prepare_static_key,
    signature_matches,
)
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Iterator, Mapping

    from invalidtoken_mw.revocation import RevocationStore

__all__ = ["JWTVerifier", "ParsedToken"]

_log = structlog.get_logger("invalidtoken_mw")

_JWE_SEGMENTS = 4  # dots in a JWE compact serialisation
# RFC 7519 §2: a NumericDate is a JSON number; PyJWT also reads numeric strings and booleans.
_NUMERIC_DATES = ("exp", "nbf", "iat")

# Verdicts that stay true for a given token and configuration; safe to remember.
_LASTING = frozenset(
    {
        Reason.MALFORMED_TOKEN,
        Reason.ALGORITHM_NOT_ALLOWED,
        Reason.BAD_SIGNATURE,
        Reason.EXPIRED,
        Reason.WRONG_ISSUER,
        Reason.WRONG_AUDIENCE,
        Reason.WRONG_TOKEN_TYPE,
        Reason.MISSING_CLAIM,
        Reason.REVOKED,
    }
)


class _Verified(NamedTuple):
    claims: dict[str, Any]
    reuse_until: float  # the earlier of cache_ttl and expires_at
    expires_at: float  # exp + leeway
    nested: bool  # any list or object among the claims: copies must be deep


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A token that passed the structure and algorithm checks, not yet verified.

    Nothing here is trusted until :meth:`JWTVerifier.check_signature` (or
    :meth:`JWTVerifier.verify`) has accepted the signature.

    Attributes:
        token: The compact JWS, as given.
        header: The decoded JOSE header.
        claims: The decoded claims, unverified.
        alg: The header's ``alg``, one of the verifier's allowed algorithms.
        kid: The header's ``kid``, or ``None`` when it has none.
    """

    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    alg: str
    kid: str | None

    @property
    def signing_input(self) -> bytes:
        """What the signature covers: ``BASE64URL(header) "." BASE64URL(claims)`` (RFC 7515)."""
        return self.token.rpartition(".")[0].encode("ascii")

    @property
    def signature(self) -> bytes:
        """The decoded signature (empty when the token has none)."""
        segment = self.token.rpartition(".")[2]
        try:
            return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        except (binascii.Error, ValueError):
            return b""


def _copy_json(value: dict[str, Any]) -> dict[str, Any]:
    """Copy decoded JSON (dicts, lists, scalars) several times faster than ``deepcopy``."""
    return {k: _copy_value(v) for k, v in value.items()}


def _copy_value(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    kind = type(value)
    if kind is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    if kind is list:
        return [_copy_value(v) for v in value]
    return value


def _object(segment: str, description: str) -> dict[str, Any]:
    value = decode_object(segment)
    if value is None:
        raise AuthFailure(Reason.MALFORMED_TOKEN, description)
    return value


def _not_a_numeric_date(claims: dict[str, Any]) -> str | None:
    """The first of ``exp``, ``nbf``, ``iat`` present but not a JSON number, else ``None``."""
    for name in _NUMERIC_DATES:
        if name in claims:
            kind = type(claims[name])
            if kind is not int and kind is not float:  # bool is an int subclass: refused
                return name
    return None


def _normalise_typ(value: str) -> str:
    return value.lower().removeprefix("application/")


def _as_tuple(value: str | Iterable[str] | None, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{name} must be a non-empty string or a list of them.")
    return values


class JWTVerifier:
    """Verify bearer JWTs against a key or a JWKS endpoint.

    Args:
        key: An HMAC secret, a PEM public key or X.509 certificate, a JWK dict or a
            ``cryptography`` public key. Exactly one of ``key`` and ``jwks_url``.
        jwks_url: An ``https://`` (or ``http://``) JWKS endpoint.
        algorithms: The allowlist; required, never taken from the token.
        issuer: The expected ``iss`` (exact match), or several.
        audience: This resource's identifier; the token's ``aud`` must contain it.
        leeway: Seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        required_claims: Claims that must be present.
        token_type: Require this JOSE ``typ``, e.g. ``"at+jwt"`` for RFC 9068
            access tokens (compared case-insensitively, ``application/`` optional).
        max_token_bytes: Longer tokens are refused before any decoding.
        cache_size: Verified tokens remembered (0 turns the caches off).
        cache_ttl: Longest time a verified token is remembered, in seconds; never
            past its own ``exp``.
        negative_cache_ttl: How long a permanently bad token's verdict is remembered.
        jwks_timeout: Seconds one JWKS fetch may take in all (connecting, TLS
            handshake, status line, headers, body); no request waits longer for it.
        jwks_cooldown: Minimum seconds between refreshes caused by unknown ``kid``.
        jwks_ssl_context: The TLS context for an ``https`` JWKS URL, e.g.
            ``ssl.create_default_context(cafile="internal-ca.pem")``; it must check
            certificates and host names. ``None``: the system's trust store
            (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured).
        revocation: A revocation store (e.g. :class:`MemoryRevocationStore` or
            :class:`RedisRevocationStore`), checked after every other check, on
            cached verdicts too.

    Raises:
        ValueError: The configuration is unusable; the message says how to fix it.
    """

    def __init__(
        self,
        *,
        key: str | bytes | Mapping[str, Any] | object | None = None,
        jwks_url: str | None = None,
        algorithms: Iterable[str],
        issuer: str | Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        leeway: float = 60,
        required_claims: Iterable[str] = ("exp",),
        token_type: str | None = None,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        cache_size: int = 10_000,
        cache_ttl: float = 300,
        negative_cache_ttl: float = 60,
        jwks_timeout: float = 3.0,
        jwks_cooldown: float = 5.0,
        jwks_ssl_context: ssl.SSLContext | None = None,
        revocation: RevocationStore | None = None,
    ) -> None:
        """Validate the configuration and parse the key once."""
        if (key is None) == (jwks_url is None):
            raise ValueError("pass exactly one of key=... (a static key) or jwks_url=....")
        self.algorithms = check_algorithms(algorithms)
        self.issuer = _as_tuple(issuer, "issuer")
        self.audience = _as_tuple(audience, "audience")
        if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or leeway < 0:
            raise ValueError("leeway must be a number of seconds >= 0, e.g. 60.")
        self.leeway = float(leeway)
        self.required_claims = tuple(required_claims)
        if token_type is not None and not token_type.strip():
            raise ValueError("token_type must be a media type such as 'at+jwt', or None.")
        self.token_type = _normalise_typ(token_type) if token_type else None
        if max_token_bytes < 1:
            raise ValueError("max_token_bytes must be at least 1; the default is 8192.")
        self.max_token_bytes = max_token_bytes
        if cache_size < 0 or cache_ttl <= 0 or negative_cache_ttl < 0:
            raise ValueError("cache_size must be >= 0 and cache_ttl > 0 seconds.")
        self._static_keys: dict[str, Any] | None = None
        self._jwks: JWKSCache | None = None
        if jwks_url is not None:
            self._jwks = JWKSCache(
                jwks_url,
                timeout=jwks_timeout,
                cooldown=jwks_cooldown,
                ssl_context=jwks_ssl_context,
            )
        else:
            self._static_keys = prepare_static_key(key, self.algorithms)
        if revocation is not None and not callable(getattr(revocation, "is_revoked", None)):
            raise TypeError(
                "revocation must be a store with is_revoked(), e.g. MemoryRevocationStore()."
            )
        self.revocation = revocation
        self._decoder = jwt.PyJWT({"enforce_minimum_key_length": True})
        self._options: dict[str, Any] = {
            "require": list(self.required_claims),
            "verify_aud": self.audience is not None,
            "verify_iss": self.issuer is not None,
        }
        self._issuer_arg: str | tuple[str, ...] | None = (
            self.issuer[0] if self.issuer and len(self.issuer) == 1 else self.issuer
        )
        self._lock = threading.Lock()
        self._cache_ttl = float(cache_ttl)
        self._negative_ttl = float(negative_cache_ttl)
        # Plain LRU caches with the deadline stored in each entry: a lookup costs a
        # fraction of a TLRUCache's, and expired entries are dropped when met or evicted.
        self._cache: LRUCache[str, _Verified] | None = None
        self._negative: LRUCache[str, tuple[AuthFailure, float]] | None = None
        if cache_size:
            self._cache = LRUCache(cache_size)
            if negative_cache_ttl:
                self._negative = LRUCache(cache_size)

    # -- caches ---------------------------------------------------------------

    def _cached(self, token: str) -> dict[str, Any] | None:
        """Return cached claims, or raise the cached failure; ``None`` on a miss."""
        if self._cache is None:
            return None
        with self._lock:
            hit = self._cache.get(token)
            refused = (
                None if hit is not None or self._negative is None else self._negative.get(token)
            )
        now = time.time()
        if hit is not None:
            if now < hit.reuse_until:
                # Deep when nested: the app may mutate a scope list of its copy.
                return _copy_json(hit.claims) if hit.nested else dict(hit.claims)
            self._forget(token)
            if now >= hit.expires_at:
                raise AuthFailure(Reason.EXPIRED)
            return None
        if refused is not None:
            failure, until = refused
            if now < until:
                # A fresh exception per hit: re-raising one shared instance would grow
                # its traceback on every hit and share it between threads.
                raise AuthFailure(
                    failure.reason,
                    failure.description,
                    scopes=failure.scopes,
                    context=failure.context,
                )
            self._forget(token)
        return None

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.pop(token, None)
            if self._negative is not None:
                self._negative.pop(token, None)

    def _remember(self, token: str, claims: dict[str, Any]) -> dict[str, Any]:
        """Cache PyJWT's fresh ``claims`` (never handed out) and return a copy to hand out."""
        if self._cache is None:
            return claims
        expires_at = math.inf
        if "exp" in claims:
            # exp is a JSON number (_not_a_numeric_date) PyJWT accepted; an exp beyond
            # any float never ends.
            try:
                expires_at = int(claims["exp"]) + self.leeway
            except OverflowError:
                expires_at = math.inf
        nested = any(isinstance(v, (dict, list)) for v in claims.values())
        reuse_until = min(time.time() + self._cache_ttl, expires_at)
        entry = _Verified(claims, reuse_until, expires_at, nested)
        with self._lock:
            self._cache[token] = entry
        return _copy_json(claims) if nested else dict(claims)

    def _revoked(self, token: str) -> NoReturn:
        failure = AuthFailure(Reason.REVOKED)
        self._forget(token)
        self._remember_failure(token, failure)
        raise failure

    def _remember_failure(self, token: str, failure: AuthFailure) -> None:
        if self._negative is not None and failure.reason in _LASTING:
            until = time.time() + self._negative_ttl
            with self._lock:
                self._negative[token] = (failure, until)

    # -- the checks: public building blocks ---------------------------------------

    def parse(self, token: str) -> ParsedToken:
        """Check the token's size, structure and algorithm; no key, no cryptography.

        The first step of :meth:`verify`. Nothing in the result is trusted yet.

        Raises:
            AuthFailure: ``malformed_token`` (too large, not three base64url segments
                of JSON objects, an encrypted JWE, a ``kid`` that is not a string) or
                ``algorithm_not_allowed`` (``alg`` missing, ``none`` or not allowed).
        """
        if len(token) > self.max_token_bytes:
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.TOO_LARGE)
        if not JWS_SHAPE.fullmatch(token):
            if token.count(".") == _JWE_SEGMENTS:
                raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.ENCRYPTED)
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS)
        header_b64, claims_b64, _ = token.split(".")
        header = _object(header_b64, Sentence.HEADER_NOT_OBJECT)
        claims = _object(claims_b64, Sentence.CLAIMS_NOT_OBJECT)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            if isinstance(alg, str) and alg.lower() == "none":
                raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED, Sentence.UNSIGNED)
            raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.KID_NOT_STRING)
        return ParsedToken(token, header, claims, alg, kid)

    def signing_key(self, parsed: ParsedToken) -> Any:  # noqa: ANN401 - key objects
        """The key that must have signed ``parsed``: the static key, or the JWKS key by ``kid``.

        With a JWKS URL this may fetch the key set (blocking, at most ``jwks_timeout``);
        on the event loop use :meth:`signing_key_async`.

        Raises:
            AuthFailure: ``unknown_key`` or ``key_unavailable`` (JWKS), or
                ``algorithm_not_allowed`` when the key may not verify ``parsed.alg``.
        """
        jwk = None if self._jwks is None else self._jwks.get_key(parsed.kid, parsed.alg)
        return self._key_for(parsed, jwk)

    async def signing_key_async(self, parsed: ParsedToken) -> Any:  # noqa: ANN401 - key objects
        """:meth:`signing_key` without blocking the event loop (a JWKS fetch runs in a thread).

        Raises:
            AuthFailure: As :meth:`signing_key`.
        """
        jwk = None if self._jwks is None else await self._jwks.get_key_async(parsed.kid, parsed.alg)
        return self._key_for(parsed, jwk)

    def check_signature(self, parsed: ParsedToken, key: Any) -> None:  # noqa: ANN401 - key objects
        """Check the signature of ``parsed`` with ``key`` (from :meth:`signing_key`) alone.

        No claim is checked: :meth:`verify` does that too.

        Raises:
            AuthFailure: ``bad_signature``.
        """
        if not signature_matches(parsed.alg, key, parsed.signing_input, parsed.signature):
            raise AuthFailure(Reason.BAD_SIGNATURE)

    def _key_for(self, parsed: ParsedToken, jwk: jwt.PyJWK | None) -> Any:  # noqa: ANN401 - key objects
        """The key object that must have signed this token."""
        if jwk is None:
            assert self._static_keys is not None  # noqa: S101 - no JWK means a static key
            return self._static_keys[parsed.alg]
        key = jwk_accepts(jwk, parsed.alg)
        if key is None:
            raise AuthFailure(Reason.ALGORITHM_NOT_ALLOWED, Sentence.ALGORITHM_NOT_THE_KEYS)
        return key

    def _finish(self, parsed: ParsedToken, key: Any) -> dict[str, Any]:  # noqa: ANN401 - key objects
        """Signature and claims (PyJWT), then ``typ``."""
        not_a_date = _not_a_numeric_date(parsed.claims)
        if not_a_date is not None:
            # Rare, so this path checks the signature on its own, keeping the documented
            # order (a forged token is bad_signature) without handing PyJWT a claim it
            # would read as a number ("123", true) or fail on with a TypeError ([1]).
            self.check_signature(parsed, key)
            raise AuthFailure(
                Reason.MALFORMED_TOKEN, Sentence.NOT_A_NUMERIC_DATE.format(claim=not_a_date)
            )
        try:
            claims: dict[str, Any] = self._decoder.decode(
                parsed.token,
                key=key,
                algorithms=[parsed.alg],
                options=self._options,  # type: ignore[arg-type]
                audience=self.audience,
                issuer=self._issuer_arg,
                leeway=self.leeway,
            )
        except jwt.MissingRequiredClaimError as exc:
            # PyJWT calls an empty aud ([] or "") missing; it is present and names no
            # audience, so not this one.
            if exc.claim == "aud" and "aud" in parsed.claims:
                raise AuthFailure(Reason.WRONG_AUDIENCE) from exc
            raise failure_from_pyjwt(exc) from exc
        except jwt.PyJWTError as exc:
            raise failure_from_pyjwt(exc) from exc
        if self.token_type is not None:
            typ = parsed.header.get("typ")
            if not isinstance(typ, str) or _normalise_typ(typ) != self.token_type:
                raise AuthFailure(
                    Reason.WRONG_TOKEN_TYPE, Sentence.NOT_THE_TOKEN_TYPE.format(typ=self.token_type)
                )
        return claims

    @contextmanager
    def _recording(self, token: str) -> Iterator[None]:
        """Remember lasting failures; turn unexpected exceptions into a 401, never a 500."""
        try:
            yield
        except AuthFailure as failure:
            self._remember_failure(token, failure)
            raise
        except Exception as exc:
            # A bug, here or in PyJWT: say so loudly, but answer 401, never 500.
            _log.error(
                "verifier_unexpected_error",
                error_type=type(exc).__name__,
                token_length=len(token),
            )
            raise AuthFailure(
                Reason.MALFORMED_TOKEN, context={"unexpected_error": type(exc).__name__}
            ) from exc

    # -- public API -------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        claims = self._cached(token)
        if claims is None:
            with self._recording(token):
                parsed = self.parse(token)
                claims = self._finish(parsed, self.signing_key(parsed))
            claims = self._remember(token, claims)
        if self.revocation is not None and self.revocation.is_revoked(claims):
            self._revoked(token)
        return claims  # already a copy: the cached claims are never handed out

    async def verify_async(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token without blocking the event loop.

        Only a JWKS fetch is waited for (it runs in its own thread); a cached verdict
        answers at once.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        claims = self._cached(token)
        if claims is None:
            with self._recording(token):
                parsed = self.parse(token)
                claims = self._finish(parsed, await self.signing_key_async(parsed))
            claims = self._remember(token, claims)
        if self.revocation is not None and await self.revocation.is_revoked_async(claims):
            self._revoked(token)
        return claims
