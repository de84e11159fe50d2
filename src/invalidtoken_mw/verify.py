"""JWTVerifier: decide whether a bearer JWT is good and, when it is not, exactly why.

A token is read once: split, each part decoded once, the signature checked with PyJWT's
algorithm object and a key prepared when it was loaded, and the registered claims
checked by the verifier itself. Checks run in a fixed order, cheapest and most
fundamental first, so a forged token is ``bad_signature`` and never ``expired``:

1. size and structure (three base64url segments, JSON objects; JWE refused; ``kid`` a
   string; ``crit`` only as RFC 7515 §4.1.11 allows);
2. ``alg`` against the configured allowlist (never taken from the token);
3. the key, by ``kid``, from the :class:`~invalidtoken_mw.keys.KeySource` (a static
   key, a JWKS with a rate-limited refresh, or the JWKS an issuer's metadata names);
4. the signature;
5. ``exp``, ``nbf``, ``iat`` (JSON numbers, RFC 7519 §2), ``iss`` (exact, or a
   multi-tenant template's issuer with a matching ``tid``), ``aud`` (RFC 7519
   §4.1.3: a token naming audiences must name this service), the required claims, the
   types of ``sub`` and ``jti``, then ``typ``, then the ``claim_rules`` in their order.

Steps 1 to 4 are public building blocks (:meth:`JWTVerifier.parse`,
:meth:`~JWTVerifier.signing_key`, :meth:`~JWTVerifier.check_signature`), and so is the
issuer check (:meth:`~JWTVerifier.check_issuer`), so a tool such as
:func:`invalidtoken_mw.explain.explain` can run each on its own. A
:class:`~invalidtoken_mw.multi_issuer.MultiIssuerVerifier` splits a token and decodes
its claims itself, to route it by ``iss``, and hands both to the chosen verifier, which
then decodes only what is left.

Verdicts are remembered by a digest of the token (:class:`~invalidtoken_mw.verdicts.VerdictCache`):
a verified token until it expires (or ``cache_ttl``), or until its key is withdrawn; a
lasting refusal for ``negative_cache_ttl``. A client resending the same token costs a
dictionary lookup.
"""

from __future__ import annotations

import binascii
import functools
import json
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

import structlog

from invalidtoken_mw._jose import MAX_JSON_DEPTH, too_deep
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.claims import ClaimRules
from invalidtoken_mw.classify import missing_claim
from invalidtoken_mw.discovery import ASYMMETRIC_ALGORITHMS, DiscoveryKeys
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES
from invalidtoken_mw.jwks import JWKSCache
from invalidtoken_mw.keys import KeySource, StaticKeys, VerifyingKey, check_algorithms
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import check_revocation, check_revocation_async
from invalidtoken_mw.verdicts import VerdictCache

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Mapping

    from invalidtoken_mw.claims import ClaimRule
    from invalidtoken_mw.revocation import RevocationStore

__all__ = ["JWTVerifier", "ParsedToken"]

_log = structlog.get_logger("invalidtoken_mw")

_JWE_PARTS = 5  # parts of a JWE compact serialisation
_JWS_PARTS = 3
_HEADERS_REMEMBERED = 64  # distinct JOSE headers decoded once per verifier (an issuer uses few)
# base64url to base64, with '+', '/' and '=' (not base64url, RFC 7515 §2) made invalid.
_TO_BASE64 = bytes.maketrans(b"-_+/=", b"+/***")
# RFC 7797's b64, understood only with its default value (true): a detached or unencoded
# payload (b64: false) is never accepted.
_SUPPORTED_CRITICAL = frozenset({"b64"})
_NOT_TEXT = (binascii.Error, ValueError)
_decode_json = json.JSONDecoder().decode

if sys.version_info >= (3, 11):

    def _unbase64(segment: bytes) -> bytes:
        """Decode one translated segment; strict: any stray character or bad length fails."""
        return binascii.a2b_base64(segment + b"=" * (-len(segment) % 4), strict_mode=True)

else:  # pragma: no cover - Python 3.10 has no strict mode
    _BASE64 = re.compile(rb"[A-Za-z0-9+/]*")

    def _unbase64(segment: bytes) -> bytes:
        """Decode one translated segment; any stray character or bad length fails."""
        if not _BASE64.fullmatch(segment):
            raise binascii.Error("not base64url")
        return binascii.a2b_base64(segment + b"=" * (-len(segment) % 4))


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
        """The decoded signature (empty when the token has none or it is not base64url)."""
        try:
            return _unbase64(self.token.rpartition(".")[2].encode("ascii").translate(_TO_BASE64))
        except (*_NOT_TEXT, UnicodeError):
            return b""


class _Header(NamedTuple):
    """What the verifier needs from one JOSE header, decoded once per distinct header."""

    header: dict[str, Any]  # shared between tokens: never handed out, never changed
    alg: str
    kid: str | None
    typ_ok: bool  # the typ the verifier requires, if any
    refusal: tuple[Reason, str | None] | None  # raised once the claims decoded


class _Split(NamedTuple):
    """A token's three segments, its claims already decoded (by :func:`_split_token`)."""

    raw: bytes
    header_b64: bytes
    claims_b64: bytes
    signature_b64: bytes
    claims: dict[str, Any]
    nested: bool


class _Token(NamedTuple):
    """One token, read once: everything the later checks need."""

    header: _Header
    claims: dict[str, Any]
    nested: bool  # lists or objects among the claims, maybe
    signing_input: bytes
    signature: bytes


def _load_object(segment: bytes, description: str) -> tuple[dict[str, Any], bool]:
    """Decode one translated base64url segment into a JSON object at most 64 levels deep.

    Returns the object and whether it may hold lists or objects (its copies must be deep).
    """
    try:
        text = _unbase64(segment)
    except _NOT_TEXT:
        raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS) from None
    try:
        # UTF-8 only (RFC 7519 §7.2); a str skips json's encoding detection.
        value = _decode_json(text.decode("utf-8"))
    except (ValueError, RecursionError):
        raise AuthFailure(Reason.MALFORMED_TOKEN, description) from None
    if type(value) is not dict:
        raise AuthFailure(Reason.MALFORMED_TOKEN, description)
    # Counting brackets is cheap and only over-estimates (strings may hold some).
    brackets = text.count(b"[") + text.count(b"{")
    if brackets > MAX_JSON_DEPTH and too_deep(value):
        raise AuthFailure(Reason.MALFORMED_TOKEN, description)
    return value, brackets > 1


def _segments(token: str, max_token_bytes: int) -> tuple[bytes, bytes, bytes, bytes]:
    """The token as ASCII and its three segments; size and shape checked (step 1)."""
    if len(token) > max_token_bytes:
        raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.TOO_LARGE)
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS) from None
    parts = raw.split(b".")
    if len(parts) != _JWS_PARTS or not parts[0] or not parts[1]:
        if len(parts) == _JWE_PARTS:
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.ENCRYPTED)
        raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS)
    return raw, parts[0], parts[1], parts[2]


def _split_token(token: str, max_token_bytes: int) -> _Split:
    """Split ``token`` and decode its claims, for a verifier to finish (internal).

    :class:`~invalidtoken_mw.multi_issuer.MultiIssuerVerifier` reads the unverified
    ``iss`` from the result and hands it to the chosen verifier, which decodes the
    header (remembered per distinct header) and the signature, never the claims again.

    Raises:
        AuthFailure: ``malformed_token``, as :meth:`JWTVerifier.parse` would (a header
            that is not a JSON object is named before claims that are not).
    """
    raw, header_b64, claims_b64, signature_b64 = _segments(token, max_token_bytes)
    try:
        claims, nested = _load_object(claims_b64.translate(_TO_BASE64), Sentence.CLAIMS_NOT_OBJECT)
    except AuthFailure:
        # Only on this failure path: keep the verifier's order (header first).
        _load_object(header_b64.translate(_TO_BASE64), Sentence.HEADER_NOT_OBJECT)
        raise
    return _Split(raw, header_b64, claims_b64, signature_b64, claims, nested)


def _check_header_shape(split: _Split) -> None:
    """Raise ``malformed_token`` unless the header is a JSON object (a failure path only).

    For a token no verifier will read: its structure is still judged before its issuer.
    """
    _load_object(split.header_b64.translate(_TO_BASE64), Sentence.HEADER_NOT_OBJECT)


def _numeric_date(claims: dict[str, Any], name: str) -> int | None:
    """The claim as a whole number of seconds, ``None`` when absent.

    RFC 7519 §2: a NumericDate is a JSON number; a string, boolean, ``null`` or a
    number no integer can hold (NaN, 1e400) is ``malformed_token``. Fractions are cut
    as PyJWT cuts them.
    """
    value = claims.get(name)
    if value is None and name not in claims:
        return None
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        try:
            return int(value)  # type: ignore[arg-type]
        except (ValueError, OverflowError):
            pass
    raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_A_NUMERIC_DATE.format(claim=name))


TENANT_PLACEHOLDER = "{tenantid}"
"""The placeholder of a multi-tenant issuer template, spelt as Microsoft Entra ID spells it."""


class _IssuerTemplate:
    """A multi-tenant issuer such as ``https://login.microsoftonline.com/{tenantid}/v2.0``.

    An ``iss`` matches when it is the template with one tenant (a non-empty path segment
    without ``/``, ``?``, ``#`` or spaces) in place of the placeholder.
    """

    __slots__ = ("_pattern", "template")

    def __init__(self, template: str) -> None:
        prefix, _, suffix = template.partition(TENANT_PLACEHOLDER)
        if TENANT_PLACEHOLDER in suffix:
            raise ValueError(
                f"an issuer template holds {TENANT_PLACEHOLDER} once, got {template!r}"
            )
        self.template = template
        self._pattern = re.compile(re.escape(prefix) + r"([^/?#\s]+)" + re.escape(suffix))

    def tenant(self, iss: str) -> str | None:
        """The tenant in ``iss`` when it matches the template, else ``None``."""
        found = self._pattern.fullmatch(iss)
        return None if found is None else found[1]


def _tenant_checked(
    iss: str,
    claims: dict[str, Any],
    templates: tuple[_IssuerTemplate, ...],
    tenants: frozenset[str] | None,
) -> bool:
    """Whether ``iss`` is one of the ``templates``' issuers, for a tenant it may name.

    Raises:
        AuthFailure: The tenant is not in ``tenants`` (``wrong_issuer``), or the
            token's ``tid`` is absent (``missing_claim``) or names another tenant
            (``wrong_issuer``: a token claiming one tenant's issuer for another tenant
            is not from an issuer this service trusts).
    """
    for template in templates:
        tenant = template.tenant(iss)
        if tenant is None:
            continue
        if tenants is not None and tenant not in tenants:
            raise AuthFailure(Reason.WRONG_ISSUER, Sentence.TENANT_NOT_TRUSTED)
        if claims.get("tid") is None:
            raise missing_claim("tid")
        if claims["tid"] != tenant:
            raise AuthFailure(Reason.WRONG_ISSUER, Sentence.TENANT_MISMATCH)
        return True
    return False


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
    """Verify bearer JWTs against a key, a JWKS endpoint or any key source.

    Args:
        key: An HMAC secret, a PEM public key or X.509 certificate, a JWK dict or a
            ``cryptography`` public key (shorthand for ``keys=StaticKeys(key, ...)``).
        jwks_url: An ``https://`` (or ``http://``) JWKS endpoint (shorthand for
            ``keys=JWKSCache(jwks_url, ...)``).
        issuer_url: The issuer identifier (e.g. ``"https://id.example.com/"``): its
            metadata is fetched on first use (OpenID Connect Discovery, then RFC 8414),
            its ``issuer`` must equal this exactly, and its ``jwks_uri`` supplies the
            keys (see :class:`~invalidtoken_mw.discovery.DiscoveryKeys`). It is also the
            expected ``iss`` unless ``issuer`` says otherwise.
        keys: Any :class:`~invalidtoken_mw.keys.KeySource`. Exactly one of ``key``,
            ``jwks_url``, ``issuer_url`` and ``keys``.
        algorithms: The allowlist, never taken from the token; required except with
            ``issuer_url``, where it defaults to the asymmetric algorithms the issuer
            advertises (never ``none`` or HMAC).
        issuer: The expected ``iss`` (exact match), or several; defaults to
            ``issuer_url``. An issuer holding ``{tenantid}`` is a multi-tenant
            template (Microsoft Entra ID:
            ``"https://login.microsoftonline.com/{tenantid}/v2.0"``): an ``iss`` with any
            tenant in its place matches, and the token's ``tid`` claim must be present
            and name that same tenant (absent: ``missing_claim``, another tenant:
            ``wrong_issuer``).
        tenants: The tenants a template ``issuer`` accepts (``wrong_issuer`` for any
            other); ``None``: every tenant (a multi-tenant application that signs in
            any organisation). Only with a template ``issuer``.
        audience: This resource's identifier(s); the token's ``aud`` must contain one.
            With none configured, a token that names audiences is refused
            ``wrong_audience`` (RFC 7519 §4.1.3) unless ``accept_any_audience``.
        accept_any_audience: Accept whatever ``aud`` a token carries when no
            ``audience`` is configured: only for a service whose tokens are never meant
            for anyone else (e.g. one issuer per service).
        leeway: Seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        required_claims: Claims that must be present (not ``null``).
        token_type: Require this JOSE ``typ``, e.g. ``"at+jwt"`` for RFC 9068
            access tokens (compared case-insensitively, ``application/`` optional).
        claim_rules: Claim values required beyond the registered claims, checked last,
            by claim name or dotted path: a value to equal, a list of accepted values, or
            a callable returning ``True`` for an accepted value, e.g.
            ``{"token_use": "access", "client_id": ["app-1", "app-2"]}`` (see
            :class:`~invalidtoken_mw.claims.ClaimRules`). An absent claim is
            ``missing_claim``, any other value ``wrong_claim``. A verdict is remembered
            like any other, so a callable's answer must not change for a given token.
        max_token_bytes: Longer tokens are refused before any decoding.
        cache_size: Verified tokens remembered, and as many refusals (0 turns the
            caches off).
        cache_ttl: Longest time a verified token is remembered, in seconds; never
            past its own ``exp``, never past a refresh that withdrew its key.
        negative_cache_ttl: How long a lasting refusal is remembered.
        jwks_timeout: Seconds one JWKS fetch may take in all (connecting, TLS
            handshake, status line, headers, body); no request waits longer for it.
            With ``issuer_url``, the metadata fetch has as long again.
        jwks_cooldown: Minimum seconds between refreshes caused by unknown ``kid``.
        jwks_min_interval: Inside the cool-down, one early fetch for the first unknown
            ``kid`` (a key the issuer has just published) is made when the last fetch is
            at least this old (:class:`~invalidtoken_mw.jwks.JWKSCache`'s
            ``min_interval``).
        jwks_max_age: The longest a fetched key set is trusted before it is fetched
            again, whatever its ``Cache-Control: max-age`` says (default one hour): a
            key the issuer withdraws verifies no new token after at most this long.
            :meth:`refresh_keys` fetches at once.
        jwks_ssl_context: The TLS context for an ``https`` JWKS URL, e.g.
            ``ssl.create_default_context(cafile="internal-ca.pem")``; it must check
            certificates and host names. ``None``: the system's trust store
            (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured).
        revocation: A revocation store (e.g. :class:`MemoryRevocationStore` or
            :class:`RedisRevocationStore`), checked after every other check, on
            cached verdicts too. A store that raises (anything but an
            :class:`AuthFailure`) answers 503 ``revocation_unavailable``, never 500.

    Raises:
        ValueError: The configuration is unusable; the message says how to fix it.
    """

    def __init__(
        self,
        *,
        key: str | bytes | Mapping[str, Any] | object | None = None,
        jwks_url: str | None = None,
        issuer_url: str | None = None,
        keys: KeySource | None = None,
        algorithms: Iterable[str] | None = None,
        issuer: str | Iterable[str] | None = None,
        tenants: Iterable[str] | None = None,
        audience: str | Iterable[str] | None = None,
        accept_any_audience: bool = False,
        leeway: float = 60,
        required_claims: Iterable[str] = ("exp",),
        token_type: str | None = None,
        claim_rules: Mapping[str, ClaimRule] | None = None,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        cache_size: int = 10_000,
        cache_ttl: float = 300,
        negative_cache_ttl: float = 60,
        jwks_timeout: float = 3.0,
        jwks_cooldown: float = 5.0,
        jwks_min_interval: float = 1.0,
        jwks_max_age: float = 3600.0,
        jwks_ssl_context: ssl.SSLContext | None = None,
        revocation: RevocationStore | None = None,
    ) -> None:
        """Validate the configuration and prepare the key once."""
        sources = sum(source is not None for source in (key, jwks_url, issuer_url, keys))
        self.algorithms = _allowlist(algorithms, issuer_url, sources)
        self.issuer = _as_tuple(issuer if issuer is not None else issuer_url, "issuer")
        self.audience = _as_tuple(audience, "audience")
        if accept_any_audience and self.audience is not None:
            raise ValueError("accept_any_audience=True contradicts audience=...: pass one of them.")
        self.accept_any_audience = bool(accept_any_audience)
        if isinstance(leeway, bool) or not isinstance(leeway, (int, float)) or leeway < 0:
            raise ValueError("leeway must be a number of seconds >= 0, e.g. 60.")
        self.leeway = float(leeway)
        self.required_claims = tuple(required_claims)
        if token_type is not None and not token_type.strip():
            raise ValueError("token_type must be a media type such as 'at+jwt', or None.")
        self.token_type = _normalise_typ(token_type) if token_type else None
        self.claim_rules = ClaimRules(claim_rules or {})
        if max_token_bytes < 1:
            raise ValueError("max_token_bytes must be at least 1; the default is 8192.")
        self.max_token_bytes = max_token_bytes
        if cache_size < 0 or cache_ttl <= 0 or negative_cache_ttl < 0:
            raise ValueError("cache_size must be >= 0 and cache_ttl > 0 seconds.")
        if keys is not None:
            if not isinstance(keys, KeySource):
                raise TypeError(
                    "keys must be a key source such as StaticKeys(key, algorithms=[...])"
                    " or JWKSCache(url)."
                )
            self.keys: KeySource = keys
        elif jwks_url is None and issuer_url is None:
            self.keys = StaticKeys(key, algorithms=self.algorithms)
        else:
            options = _jwks_options(jwks_timeout, jwks_cooldown, jwks_max_age, jwks_ssl_context)
            options["min_interval"] = jwks_min_interval
            self.keys = (
                JWKSCache(jwks_url, **options)
                if jwks_url is not None
                else DiscoveryKeys(
                    str(issuer_url),
                    algorithms_from_metadata=algorithms is None,
                    issuer_template=_discovered_template(issuer),
                    **options,
                )
            )
        self.revocation = _checked_store(revocation)
        self._templates = tuple(
            _IssuerTemplate(issuer) for issuer in self.issuer or () if TENANT_PLACEHOLDER in issuer
        )
        self.tenants = _tenants(tenants, templated=bool(self._templates))
        self._tenants = None if self.tenants is None else frozenset(self.tenants)
        self._issuers = (
            None
            if self.issuer is None
            else frozenset(i for i in self.issuer if TENANT_PLACEHOLDER not in i)
        )
        self._audiences = None if self.audience is None else frozenset(self.audience)
        self._required = tuple(
            (name, missing_claim(name).description) for name in self.required_claims
        )
        self._verdicts = VerdictCache(
            size=cache_size,
            ttl=cache_ttl,
            negative_ttl=negative_cache_ttl,
            keys=self.keys,
            leeway=self.leeway,
        )
        # A bounded, thread-safe memo: an issuer signs with few distinct headers.
        self._header = functools.lru_cache(maxsize=_HEADERS_REMEMBERED)(self._read_header)

    # -- the checks: public building blocks ---------------------------------------

    def parse(self, token: str) -> ParsedToken:
        """Check the token's size, structure and algorithm; no key, no cryptography.

        The first step of :meth:`verify`. Nothing in the result is trusted yet.

        Raises:
            AuthFailure: ``malformed_token`` (too large, not three base64url segments
                of JSON objects, an encrypted JWE, a ``kid`` that is not a string, a
                ``crit`` header) or ``algorithm_not_allowed`` (``alg`` missing,
                ``none`` or not allowed).
        """
        read = self._read(token)
        header = read.header
        return ParsedToken(token, dict(header.header), read.claims, header.alg, header.kid)

    def signing_key(self, parsed: ParsedToken) -> VerifyingKey:
        """The key that must have signed ``parsed``, from the key source by ``kid``.

        With a JWKS URL this may fetch the key set (blocking, at most ``jwks_timeout``);
        on the event loop use :meth:`signing_key_async`.

        Raises:
            AuthFailure: ``unknown_key`` or ``key_unavailable`` (JWKS), or
                ``algorithm_not_allowed`` when the key may not verify ``parsed.alg``.
        """
        return self.keys.key_for(parsed.kid, parsed.alg)

    async def signing_key_async(self, parsed: ParsedToken) -> VerifyingKey:
        """:meth:`signing_key` without blocking the event loop (a JWKS fetch runs in a thread).

        Raises:
            AuthFailure: As :meth:`signing_key`.
        """
        return await self.keys.key_for_async(parsed.kid, parsed.alg)

    def check_signature(self, parsed: ParsedToken, key: VerifyingKey) -> None:
        """Check the signature of ``parsed`` with ``key`` (from :meth:`signing_key`) alone.

        No claim is checked: :meth:`verify` does that too.

        Raises:
            AuthFailure: ``bad_signature``.
        """
        if not key.verify(parsed.signing_input, parsed.signature):
            raise AuthFailure(Reason.BAD_SIGNATURE)

    def check_issuer(self, claims: Mapping[str, Any]) -> None:
        """Check ``iss`` (and, for a tenant template, ``tid``) as :meth:`verify` does.

        A no-op when no issuer is expected.

        Raises:
            AuthFailure: ``missing_claim`` (no ``iss``, or no ``tid`` for a template) or
                ``wrong_issuer`` (not an expected issuer, a tenant not allowed, a
                ``tid`` naming another tenant).
        """
        if self._issuers is not None:
            self._check_issuer(dict(claims), self._issuers)

    def refresh_keys(self) -> None:
        """Load the keys again now, ignoring the JWKS cool-down; blocks up to ``jwks_timeout``.

        For operators retiring a compromised key: once it returns, tokens signed by a
        key the issuer no longer publishes are refused ``unknown_key``, including
        tokens accepted (and remembered) before. A no-op for a static key.

        Raises:
            AuthFailure: ``key_unavailable`` if the key set could not be fetched; the
                keys loaded before stay in use.
        """
        self.keys.refresh()

    async def refresh_keys_async(self) -> None:
        """:meth:`refresh_keys` without blocking the event loop.

        Raises:
            AuthFailure: ``key_unavailable`` if the key set could not be fetched.
        """
        await self.keys.refresh_async()

    # -- one pass ---------------------------------------------------------------

    def _read(self, token: str, split: _Split | None = None) -> _Token:
        """Split the token and decode each part once (step 1 and 2).

        ``split``: the token already split and its claims decoded (by a
        :class:`~invalidtoken_mw.multi_issuer.MultiIssuerVerifier`); only the header
        (remembered) and the signature are left to decode.
        """
        if split is None:
            raw, header_b64, claims_b64, signature_b64 = _segments(token, self.max_token_bytes)
            header = self._header(header_b64)
            claims, nested = _load_object(
                claims_b64.translate(_TO_BASE64), Sentence.CLAIMS_NOT_OBJECT
            )
        else:
            if len(token) > self.max_token_bytes:
                raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.TOO_LARGE)
            raw, header_b64, claims_b64, signature_b64, claims, nested = split
            header = self._header(header_b64)
        try:
            signature = _unbase64(signature_b64.translate(_TO_BASE64))
        except _NOT_TEXT:
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.NOT_THREE_PARTS) from None
        if header.refusal is not None:
            raise AuthFailure(*header.refusal)
        signing_input = raw[: len(header_b64) + 1 + len(claims_b64)]
        return _Token(header, claims, nested, signing_input, signature)

    def _read_header(self, segment: bytes) -> _Header:
        """Decode a JOSE header and judge it; remembered per distinct header.

        Malformed headers raise (and are not remembered); a judgement that must wait for
        the claims to decode (an algorithm not allowed, a bad ``kid`` or ``crit``) is
        returned as ``refusal``, so the check order stays structure first.
        """
        header, _ = _load_object(segment.translate(_TO_BASE64), Sentence.HEADER_NOT_OBJECT)
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        refusal: tuple[Reason, str | None] | None = None
        if type(alg) is not str or alg not in self.algorithms:
            unsigned = type(alg) is str and alg.lower() == "none"
            refusal = (Reason.ALGORITHM_NOT_ALLOWED, Sentence.UNSIGNED if unsigned else None)
        elif kid is not None and type(kid) is not str:
            refusal = (Reason.MALFORMED_TOKEN, Sentence.KID_NOT_STRING)
        elif header.get("b64") is False or ("crit" in header and not _critical_understood(header)):
            refusal = (Reason.MALFORMED_TOKEN, Sentence.CRITICAL_EXTENSION)
        typ_ok = self.token_type is None or (
            type(typ) is str and _normalise_typ(typ) == self.token_type
        )
        return _Header(header, alg if type(alg) is str else "", kid, typ_ok, refusal)

    def _check(self, read: _Token, key: VerifyingKey) -> None:
        """Steps 4 and 5: the signature, then the claims in the documented order."""
        if not key.verify(read.signing_input, read.signature):
            raise AuthFailure(Reason.BAD_SIGNATURE)
        claims = read.claims
        self._check_times(claims)
        if self._issuers is not None:
            self._check_issuer(claims, self._issuers)
        self._check_audience(claims)
        for name, description in self._required:
            if claims.get(name) is None:
                raise AuthFailure(Reason.MISSING_CLAIM, description)
        for name in ("sub", "jti"):
            if name in claims and type(claims[name]) is not str:
                raise AuthFailure(Reason.MALFORMED_TOKEN)
        if not read.header.typ_ok:
            raise AuthFailure(
                Reason.WRONG_TOKEN_TYPE, Sentence.NOT_THE_TOKEN_TYPE.format(typ=self.token_type)
            )
        if self.claim_rules:
            self.claim_rules.check(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        """``exp``, ``nbf``, ``iat``: JSON numbers, and the token valid now (with leeway)."""
        now = time.time()
        exp = _numeric_date(claims, "exp")
        if exp is not None and exp <= now - self.leeway:
            raise AuthFailure(Reason.EXPIRED)
        nbf = _numeric_date(claims, "nbf")
        if nbf is not None and nbf > now + self.leeway:
            raise AuthFailure(Reason.NOT_YET_VALID)
        iat = _numeric_date(claims, "iat")
        if iat is not None and iat > now + self.leeway:
            raise AuthFailure(Reason.NOT_YET_VALID)

    def _check_issuer(self, claims: dict[str, Any], issuers: frozenset[str]) -> None:
        if "iss" not in claims:
            raise missing_claim("iss")
        iss = claims["iss"]
        if type(iss) is not str:
            raise AuthFailure(Reason.WRONG_ISSUER)
        if iss in issuers:
            return
        if not self._templates or not _tenant_checked(iss, claims, self._templates, self._tenants):
            raise AuthFailure(Reason.WRONG_ISSUER)

    def _serves(self, iss: str) -> bool:
        """Whether ``iss`` is one of this verifier's template issuers (any tenant)."""
        return any(template.tenant(iss) is not None for template in self._templates)

    def _check_audience(self, claims: dict[str, Any]) -> None:
        """RFC 7519 §4.1.3: a token naming audiences must name this service."""
        audiences = self._audiences
        if audiences is None:
            if claims.get("aud") and not self.accept_any_audience:
                raise AuthFailure(Reason.WRONG_AUDIENCE)
            return
        if "aud" not in claims:
            raise missing_claim("aud")
        aud = claims["aud"]
        if type(aud) is str:
            named = aud in audiences
        else:
            listed = type(aud) is list and all(type(a) is str for a in aud)
            named = listed and not audiences.isdisjoint(aud)
        if not named:
            # An empty aud ([] or "") is present and names no audience, so not this one.
            raise AuthFailure(Reason.WRONG_AUDIENCE)

    def _verified(
        self, cache_key: bytes, read: _Token, key: VerifyingKey, version: int
    ) -> dict[str, Any]:
        """Check and remember the verdict; a copy of the claims to hand out."""
        try:
            self._check(read, key)
        except AuthFailure as failure:
            # _check verifies the signature first: any other failure was decided on
            # claims the key vouched for (the log's signature_verified).
            failure.signature_verified = failure.reason is not Reason.BAD_SIGNATURE
            # Decided after a signature check: worth remembering, as plain values.
            self._verdicts.remember_refusal(cache_key, failure, version)
            raise
        return self._verdicts.remember(cache_key, read.claims, read.nested, key, version)

    def _unexpected(self, exc: Exception, token: str) -> AuthFailure:
        """A bug, here or in a library: said loudly in the log, answered 401, never 500."""
        _log.error(
            "verifier_unexpected_error",
            error_type=type(exc).__name__,
            token_length=len(token),
        )
        return AuthFailure(Reason.MALFORMED_TOKEN, context={"unexpected_error": type(exc).__name__})

    def _revoked(self, cache_key: bytes) -> NoReturn:
        failure = AuthFailure(Reason.REVOKED)
        failure.signature_verified = True  # only verified claims are checked for revocation
        self._verdicts.forget(cache_key)
        self._verdicts.remember_refusal(cache_key, failure, self.keys.version)
        raise failure

    # -- public API -------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token (a copy the caller may change).

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        cache_key = self._verdicts.key(token)
        claims = self._verdicts.lookup(cache_key)
        if claims is None:
            claims = self._fresh(token, cache_key, None)
        if self.revocation is not None and check_revocation(self.revocation, claims):
            self._revoked(cache_key)
        return claims

    async def verify_async(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token without blocking the event loop.

        Only a JWKS fetch is waited for (it runs in its own thread); a remembered
        verdict answers at once.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        cache_key = self._verdicts.key(token)
        claims = self._verdicts.lookup(cache_key)
        if claims is None:
            claims = await self._fresh_async(token, cache_key, None)
        if self.revocation is not None and await check_revocation_async(self.revocation, claims):
            self._revoked(cache_key)
        return claims

    # -- the same, for a token a MultiIssuerVerifier has split and routed -------------
    # verify() and verify_async() keep their own bodies: a remembered verdict costs the
    # single-verifier case no extra call.

    def _verify(self, token: str, split: _Split) -> dict[str, Any]:
        """:meth:`verify` of a token whose claims are already decoded."""
        cache_key = self._verdicts.key(token)
        claims = self._verdicts.lookup(cache_key)
        if claims is None:
            claims = self._fresh(token, cache_key, split)
        if self.revocation is not None and check_revocation(self.revocation, claims):
            self._revoked(cache_key)
        return claims

    async def _verify_async(self, token: str, split: _Split) -> dict[str, Any]:
        """:meth:`verify_async` of a token whose claims are already decoded."""
        cache_key = self._verdicts.key(token)
        claims = self._verdicts.lookup(cache_key)
        if claims is None:
            claims = await self._fresh_async(token, cache_key, split)
        if self.revocation is not None and await check_revocation_async(self.revocation, claims):
            self._revoked(cache_key)
        return claims

    def _fresh(self, token: str, cache_key: bytes, split: _Split | None) -> dict[str, Any]:
        """Verify a token no verdict is remembered for, and remember the verdict."""
        try:
            read = self._read(token, split)
            version = self.keys.version
            key = self.keys.key_for(read.header.kid, read.header.alg)
            return self._verified(cache_key, read, key, version)
        except AuthFailure:
            raise
        except Exception as exc:
            raise self._unexpected(exc, token) from exc

    async def _fresh_async(
        self, token: str, cache_key: bytes, split: _Split | None
    ) -> dict[str, Any]:
        """:meth:`_fresh` without blocking the event loop (a key fetch runs in a thread)."""
        try:
            read = self._read(token, split)
            version = self.keys.version
            key = await self.keys.key_for_async(read.header.kid, read.header.alg)
            return self._verified(cache_key, read, key, version)
        except AuthFailure:
            raise
        except Exception as exc:
            raise self._unexpected(exc, token) from exc


def _allowlist(
    algorithms: Iterable[str] | None, issuer_url: str | None, sources: int
) -> tuple[str, ...]:
    """The algorithm allowlist, once the configuration names exactly one key source."""
    if sources != 1:
        raise ValueError(
            "pass exactly one of key=... (a static key), jwks_url=..., issuer_url=... or keys=...."
        )
    if algorithms is None and issuer_url is None:
        raise ValueError(
            "algorithms is required, e.g. algorithms=['RS256']; only issuer_url=..."
            " takes them from the issuer's metadata."
        )
    # With issuer_url alone, every asymmetric algorithm passes the header check and the
    # key source refuses those the issuer does not advertise.
    return check_algorithms(ASYMMETRIC_ALGORITHMS if algorithms is None else algorithms)


def _discovered_template(issuer: str | Iterable[str] | None) -> str | None:
    """The one template among the configured issuers, which discovery may also accept."""
    issuers = _as_tuple(issuer, "issuer") or ()
    templates = [i for i in issuers if TENANT_PLACEHOLDER in i]
    return templates[0] if len(templates) == 1 else None


def _tenants(tenants: Iterable[str] | None, *, templated: bool) -> tuple[str, ...] | None:
    if tenants is None:
        return None
    if not templated:
        raise ValueError(
            "tenants=... needs a multi-tenant issuer template, e.g."
            " issuer='https://login.microsoftonline.com/{tenantid}/v2.0'."
        )
    if isinstance(tenants, str):
        raise TypeError("tenants must be a list of tenant ids, e.g. tenants=['<tenant-id>'].")
    values = _as_tuple(tuple(tenants), "tenants")
    if values is None or any("/" in tenant for tenant in values):
        raise ValueError("tenants must be a non-empty list of tenant ids, without '/'.")
    return values


def _checked_store(revocation: RevocationStore | None) -> RevocationStore | None:
    if revocation is not None and not callable(getattr(revocation, "is_revoked", None)):
        raise TypeError(
            "revocation must be a store with is_revoked(), e.g. MemoryRevocationStore()."
        )
    return revocation


def _jwks_options(
    timeout: float,
    cooldown: float,
    max_age: float,
    ssl_context: ssl.SSLContext | None,
) -> dict[str, Any]:
    """The JWKS cache's options, its lifetimes capped at ``jwks_max_age``."""
    if isinstance(max_age, bool) or not isinstance(max_age, (int, float)):
        raise TypeError("jwks_max_age must be a number of seconds, e.g. 3600.")
    if not 0 < max_age < float("inf"):
        raise ValueError("jwks_max_age must be a positive number of seconds, e.g. 3600.")
    return {
        "timeout": timeout,
        "cooldown": cooldown,
        "min_ttl": min(60.0, float(max_age)),
        "default_ttl": min(300.0, float(max_age)),
        "max_ttl": float(max_age),
        "ssl_context": ssl_context,
    }


def _critical_understood(header: dict[str, Any]) -> bool:
    """RFC 7515 §4.1.11: ``crit`` is a non-empty list of understood extensions, each present.

    Only RFC 7797's ``b64`` is understood, and only with its default value.
    """
    crit = header["crit"]
    return (
        type(crit) is list
        and bool(crit)
        and all(
            type(name) is str and name in _SUPPORTED_CRITICAL and name in header for name in crit
        )
    )
