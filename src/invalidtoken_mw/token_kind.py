"""What did the client send? Recognise the kind of credential a refused request carried.

The most common "invalid token" is not a bad JWT but the wrong kind of credential: an
OpenID Connect ID token instead of an access token, a refresh token, an encrypted JWT,
HTTP Basic credentials under the Bearer scheme, or a key from another service pasted
into the header. :func:`detect_token_kind` tells these apart by their documented
shapes, with no I/O and nothing trusted: it reads at most the token's unverified JOSE
header and claims.

It is conservative: a vendor format is named only when the whole token has that
vendor's documented prefix, length and alphabet (a random string is ``opaque``, never a
vendor key), and a JWT is called an ID token only on evidence an access token does not
carry. :func:`describe_refusal` turns a kind into the refusal's ``error_description``
(one fixed sentence per kind, never any part of the token) for the failures the kind
explains. The :class:`~invalidtoken_mw.guard.Guard` calls both only when it refuses a
request, so the accepted path costs nothing.
"""

# The kinds' names end in "_TOKEN" and "_KEY": S105 takes them for hard-coded secrets.
# ruff: noqa: S105

from __future__ import annotations

import binascii
import json
import re
import sys
from enum import Enum
from typing import Any

from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

__all__ = ["TokenKind", "describe_refusal", "detect_token_kind", "kind_sentence"]


class TokenKind(str, Enum):
    """The kind of credential a request carried; the value is what logs carry."""

    JWS = "jws"
    """A signed JWT that says nothing more about itself (an access token, usually)."""
    JWT_ACCESS_TOKEN = "jwt_access_token"
    """A JWT access token that says so (RFC 9068: JOSE ``typ`` ``at+jwt``)."""
    ID_TOKEN = "id_token"
    """An OpenID Connect ID token."""
    REFRESH_TOKEN = "refresh_token"
    """A refresh token in JWT form (Keycloak's ``typ`` claim ``Refresh`` or ``Offline``)."""
    JWE = "jwe"
    """An encrypted JWT (five dot-separated parts, RFC 7516)."""
    GITHUB_PERSONAL_ACCESS_TOKEN = "github_personal_access_token"
    """GitHub ``ghp_`` (classic) or ``github_pat_`` (fine-grained)."""
    GITHUB_OAUTH_TOKEN = "github_oauth_token"
    """GitHub ``gho_``: an OAuth app's access token."""
    GITHUB_APP_TOKEN = "github_app_token"
    """GitHub ``ghu_`` (user-to-server) or ``ghs_`` (server-to-server)."""
    GITHUB_REFRESH_TOKEN = "github_refresh_token"
    """GitHub ``ghr_``: a GitHub App's refresh token."""
    SLACK_BOT_TOKEN = "slack_bot_token"
    """Slack ``xoxb-``."""
    SLACK_USER_TOKEN = "slack_user_token"
    """Slack ``xoxp-``."""
    SLACK_REFRESH_TOKEN = "slack_refresh_token"
    """Slack ``xoxe-`` or ``xoxr-``."""
    SLACK_TOKEN = "slack_token"
    """Other Slack tokens: ``xoxa-``, ``xoxs-``, rotating ``xoxe.xoxb-``/``xoxe.xoxp-``."""
    STRIPE_SECRET_KEY = "stripe_secret_key"
    """Stripe ``sk_live_`` or ``sk_test_``."""
    STRIPE_RESTRICTED_KEY = "stripe_restricted_key"
    """Stripe ``rk_live_`` or ``rk_test_``."""
    STRIPE_PUBLISHABLE_KEY = "stripe_publishable_key"
    """Stripe ``pk_live_`` or ``pk_test_``."""
    GOOGLE_ACCESS_TOKEN = "google_access_token"
    """A Google OAuth access token (``ya29.``)."""
    AWS_ACCESS_KEY_ID = "aws_access_key_id"
    """An AWS access key ID (``AKIA`` or ``ASIA`` and 16 upper-case letters or digits)."""
    DISCORD_BOT_TOKEN = "discord_bot_token"
    """A Discord token: three dot-separated parts, the first a base64 snowflake ID."""
    BASIC_CREDENTIALS = "basic_credentials"
    """HTTP Basic credentials (base64 of ``user:password``) sent as a bearer token."""
    OPAQUE = "opaque"
    """Anything else: a random string, as many authorization servers issue."""

    def __str__(self) -> str:
        """Return the value, as logs and reports print it."""
        return self.value


_MAX_DETECTED = 16384  # longer tokens are not read: the extractor refuses them anyway

# Documented shapes, each matched against the whole token.
# GitHub (changelog 2021-03-04): prefixes ghp_ gho_ ghu_ ghs_ ghr_, alphabet
# [A-Za-z0-9_], 40 characters today and up to 255 announced. Fine-grained personal
# access tokens: github_pat_, 22 and 59 alphanumerics around an underscore.
_GITHUB = re.compile(r"gh([pousr])_[A-Za-z0-9_]{36,251}")
_GITHUB_PAT = re.compile(r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}")
_GITHUB_KINDS = {
    "p": TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN,
    "o": TokenKind.GITHUB_OAUTH_TOKEN,
    "u": TokenKind.GITHUB_APP_TOKEN,
    "s": TokenKind.GITHUB_APP_TOKEN,
    "r": TokenKind.GITHUB_REFRESH_TOKEN,
}
# Slack: xox<type>- then dash-separated numeric IDs and a secret
# (xoxb-<team>-<bot>-<secret>, xoxp-<team>-<user>-<id>-<secret>, xoxe-1-<secret>);
# token rotation gives access tokens "xoxe.xoxb-"/"xoxe.xoxp-".
_SLACK = re.compile(r"(?:xoxe\.)?xox([abeprs])-[0-9]+-[A-Za-z0-9-]{6,250}")
_SLACK_KINDS = {
    "b": TokenKind.SLACK_BOT_TOKEN,
    "p": TokenKind.SLACK_USER_TOKEN,
    "e": TokenKind.SLACK_REFRESH_TOKEN,
    "r": TokenKind.SLACK_REFRESH_TOKEN,
    "a": TokenKind.SLACK_TOKEN,
    "s": TokenKind.SLACK_TOKEN,
}
# Stripe: sk_/rk_/pk_, live_ or test_, then 10 to 128 alphanumerics (the pattern Stripe
# gave GitLab's secret detection, gitlab-org/gitlab#458019).
_STRIPE = re.compile(r"([srp])k_(?:live|test)_[0-9A-Za-z]{10,128}")
_STRIPE_KINDS = {
    "s": TokenKind.STRIPE_SECRET_KEY,
    "r": TokenKind.STRIPE_RESTRICTED_KEY,
    "p": TokenKind.STRIPE_PUBLISHABLE_KEY,
}
_GOOGLE = re.compile(r"ya29\.[A-Za-z0-9_.-]{20,4096}")
# AWS IAM unique identifiers: AKIA (access key), ASIA (temporary, STS), 20 characters.
_AWS = re.compile(r"A(?:KI|SI)A[A-Z0-9]{16}")
# Discord: base64(user ID) "." base64(timestamp) "." HMAC; a snowflake ID has 17 to 20
# digits, so the first part has 23 to 27 characters (unpadded).
_DISCORD = re.compile(r"([A-Za-z0-9]{23,27})\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")
_SNOWFLAKE = re.compile(rb"[1-9][0-9]{16,19}")
# RFC 7617: base64 of user-id ":" password (standard alphabet, padded).
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_BASIC_MIN = 8  # "dTpwYXNz" = "u:pass": shorter is too little to say anything about
_TO_BASE64 = bytes.maketrans(b"-_", b"+/")  # on a segment that is base64url already
_decode_json = json.JSONDecoder().decode
_HEADERS: dict[str, TokenKind | None] = {}
_HEADERS_REMEMBERED = 64
_UNSEEN = object()
# The claims that can make a JWT an ID or refresh token (see _is_id_token), as they
# appear in JSON; a claim named with escapes is not looked for.
_CLAIM_MARKERS = re.compile(rb'"(?:at_hash|c_hash|typ|token_use|nonce|azp)"')
_JWE_PARTS = 5
_KEYCLOAK_REFRESH = frozenset({"Refresh", "Offline"})


def _decoded(segment: str) -> bytes | None:
    """A base64url segment's bytes, else ``None`` (never raises; lenient: only a hint)."""
    try:
        raw = segment.encode("ascii").translate(_TO_BASE64) + b"=" * (-len(segment) % 4)
        return binascii.a2b_base64(raw)
    except (binascii.Error, UnicodeError):
        return None


def _object(text: bytes | None) -> dict[str, Any] | None:
    """``text`` as a JSON object, else ``None`` (never raises)."""
    if text is None:
        return None
    try:
        value = _decode_json(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return value if type(value) is dict else None


def _header_kind(segment: str) -> TokenKind | None:
    """What a JOSE header says: ``at+jwt``, a JWS, or ``None`` when it is no JSON object.

    Remembered per distinct header (an issuer uses few), as the verifier does.
    """
    kind = _HEADERS.get(segment, _UNSEEN)
    if kind is not _UNSEEN:
        return kind  # type: ignore[return-value]
    # A JSON object's "{" is always "e" in base64url: anything else is not one (a
    # Discord token's digits never are), so most non-JWTs cost one comparison.
    header = _object(_decoded(segment)) if segment[:1] == "e" else None
    if header is None:
        kind = None
    else:
        typ = header.get("typ")
        at_jwt = isinstance(typ, str) and typ.lower().removeprefix("application/") == "at+jwt"
        kind = TokenKind.JWT_ACCESS_TOKEN if at_jwt else TokenKind.JWS
    if len(_HEADERS) >= _HEADERS_REMEMBERED:
        _HEADERS.clear()  # bounded; a race here only costs a recomputation
    _HEADERS[segment] = kind
    return kind


def _is_id_token(claims: dict[str, Any]) -> bool:
    """Whether unverified claims are an OpenID Connect ID token's, on firm evidence only.

    ``at_hash`` and ``c_hash`` exist only in ID tokens (OpenID Connect Core §2, §3.3.2.11);
    Keycloak names its tokens in a ``typ`` claim (``ID``) and Amazon Cognito in
    ``token_use`` (``id``). A ``nonce``, or an ``aud`` that is the ``azp`` (the token was
    issued to the client itself), counts only without the ``scope``/``scp`` an access
    token carries.
    """
    if "at_hash" in claims or "c_hash" in claims:
        return True
    typ = claims.get("typ")
    if typ == "ID" or claims.get("token_use") == "id":
        return True
    if typ == "Bearer" or "scope" in claims or "scp" in claims:
        return False
    if "nonce" in claims:
        return True
    azp = claims.get("azp")
    aud = claims.get("aud")
    return (
        isinstance(azp, str) and bool(azp) and (aud == azp or (type(aud) is list and aud == [azp]))
    )


def _jwt_kind(header_b64: str, claims_b64: str) -> TokenKind | None:
    """The kind of a three-part token whose header is a JSON object, else ``None``."""
    kind = _header_kind(header_b64)
    if kind is not TokenKind.JWS:
        return kind
    text = _decoded(claims_b64)
    # Only claims naming one of the markers are parsed (most access tokens name none).
    if text is None or _CLAIM_MARKERS.search(text) is None:
        return TokenKind.JWS
    claims = _object(text)
    if claims is None:
        return TokenKind.JWS
    typ = claims.get("typ")
    if type(typ) is str and typ in _KEYCLOAK_REFRESH:
        return TokenKind.REFRESH_TOKEN
    if _is_id_token(claims):
        return TokenKind.ID_TOKEN
    return TokenKind.JWS


def _is_discord(token: str) -> bool:
    found = _DISCORD.fullmatch(token)
    if found is None:
        return False
    first = found[1]
    try:
        user_id = binascii.a2b_base64(first + "=" * (-len(first) % 4))
    except binascii.Error:
        return False
    return _SNOWFLAKE.fullmatch(user_id) is not None


if sys.version_info >= (3, 11):

    def _standard_base64(token: str) -> bytes | None:
        try:
            return binascii.a2b_base64(token, strict_mode=True)
        except ValueError:  # binascii.Error, or a str that is not ASCII
            return None

else:  # pragma: no cover - Python 3.10 has no strict mode

    def _standard_base64(token: str) -> bytes | None:
        return binascii.a2b_base64(token) if _BASE64.fullmatch(token) else None


def _is_basic(token: str) -> bool:
    if len(token) < _BASIC_MIN or len(token) % 4:
        return False
    raw = _standard_base64(token)
    if raw is None or b":" not in raw[1:]:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # A user-id of one or more characters, a colon, a password; all printable.
    return text.find(":") > 0 and text.isprintable()


def _vendor_kind(token: str) -> TokenKind | None:  # noqa: PLR0911 - one return per vendor
    """A vendor credential by its prefix and shape (dispatched on the first character)."""
    first = token[0]
    found: re.Match[str] | None = None
    if first == "g":
        found = _GITHUB.fullmatch(token)
        if found is not None:
            return _GITHUB_KINDS[found[1]]
        return TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN if _GITHUB_PAT.fullmatch(token) else None
    if first == "x":
        found = _SLACK.fullmatch(token)
        return None if found is None else _SLACK_KINDS[found[1]]
    if first in "srp":
        found = _STRIPE.fullmatch(token)
        return None if found is None else _STRIPE_KINDS[found[1]]
    if first == "y":
        return TokenKind.GOOGLE_ACCESS_TOKEN if _GOOGLE.fullmatch(token) else None
    if first == "A":
        return TokenKind.AWS_ACCESS_KEY_ID if _AWS.fullmatch(token) else None
    return None


def _shape_kind(token: str) -> TokenKind | None:
    """A JWT (JWS or JWE), a Discord token or Basic credentials, by their parts."""
    dots = token.count(".")
    if dots == 2:  # noqa: PLR2004 - a JWS, or a Discord token
        header_b64, claims_b64, _ = token.split(".")
        kind = _jwt_kind(header_b64, claims_b64)
        if kind is None and _is_discord(token):
            return TokenKind.DISCORD_BOT_TOKEN
        return kind
    if dots == _JWE_PARTS - 1:
        return TokenKind.JWE if _header_kind(token[: token.index(".")]) is not None else None
    if dots == 0 and _is_basic(token):
        return TokenKind.BASIC_CREDENTIALS
    return None


def detect_token_kind(token: str) -> TokenKind:
    """Recognise what kind of credential ``token`` is, by its documented shape.

    Pure and cheap (about a microsecond; a JWT's claims are parsed only when they name
    a claim that could make it an ID or refresh token): no I/O, no signature check,
    nothing trusted. The kinds and how each is recognised are listed in
    docs/reasons.md.

    Args:
        token: The bearer token as the request carried it.

    Returns:
        The kind; :attr:`TokenKind.OPAQUE` when nothing more can be said.

    Example::

        >>> detect_token_kind("AKIA" + "IOSFODNN7EXAMPLE")
        <TokenKind.AWS_ACCESS_KEY_ID: 'aws_access_key_id'>
    """
    if not token or len(token) > _MAX_DETECTED:
        return TokenKind.OPAQUE
    kind = _vendor_kind(token)
    if kind is None:
        kind = _shape_kind(token)
    return TokenKind.OPAQUE if kind is None else kind


# -- What a refusal says about the kind ---------------------------------------------------

_SENTENCES: dict[TokenKind, str] = {
    TokenKind.ID_TOKEN: Sentence.KIND_ID_TOKEN,
    TokenKind.REFRESH_TOKEN: Sentence.KIND_REFRESH_TOKEN,
    TokenKind.JWE: Sentence.ENCRYPTED,
    TokenKind.GITHUB_PERSONAL_ACCESS_TOKEN: Sentence.KIND_GITHUB_PERSONAL_ACCESS_TOKEN,
    TokenKind.GITHUB_OAUTH_TOKEN: Sentence.KIND_GITHUB_OAUTH_TOKEN,
    TokenKind.GITHUB_APP_TOKEN: Sentence.KIND_GITHUB_APP_TOKEN,
    TokenKind.GITHUB_REFRESH_TOKEN: Sentence.KIND_GITHUB_REFRESH_TOKEN,
    TokenKind.SLACK_BOT_TOKEN: Sentence.KIND_SLACK_BOT_TOKEN,
    TokenKind.SLACK_USER_TOKEN: Sentence.KIND_SLACK_USER_TOKEN,
    TokenKind.SLACK_REFRESH_TOKEN: Sentence.KIND_SLACK_REFRESH_TOKEN,
    TokenKind.SLACK_TOKEN: Sentence.KIND_SLACK_TOKEN,
    TokenKind.STRIPE_SECRET_KEY: Sentence.KIND_STRIPE_SECRET_KEY,
    TokenKind.STRIPE_RESTRICTED_KEY: Sentence.KIND_STRIPE_RESTRICTED_KEY,
    TokenKind.STRIPE_PUBLISHABLE_KEY: Sentence.KIND_STRIPE_PUBLISHABLE_KEY,
    TokenKind.GOOGLE_ACCESS_TOKEN: Sentence.KIND_GOOGLE_ACCESS_TOKEN,
    TokenKind.AWS_ACCESS_KEY_ID: Sentence.KIND_AWS_ACCESS_KEY_ID,
    TokenKind.DISCORD_BOT_TOKEN: Sentence.KIND_DISCORD_BOT_TOKEN,
    TokenKind.BASIC_CREDENTIALS: Sentence.KIND_BASIC_CREDENTIALS,
}
# A JWT of the wrong kind is well formed and may even be signed by the trusted issuer:
# it fails on what it is for (its audience, type or claims) or its signing key.
_JWT_REFUSALS = frozenset({
    Reason.WRONG_AUDIENCE,
    Reason.WRONG_TOKEN_TYPE,
    Reason.MISSING_CLAIM,
    Reason.WRONG_CLAIM,
    Reason.ALGORITHM_NOT_ALLOWED,
    Reason.UNKNOWN_KEY,
    Reason.INACTIVE_TOKEN,  # an introspection verifier's refusal, where one is configured
})  # fmt: skip
# Anything else never parses as an access token: the verifier calls it malformed, and an
# introspecting authorization server calls it not active.
_FOREIGN_REFUSALS = frozenset({Reason.MALFORMED_TOKEN, Reason.INACTIVE_TOKEN})
_JWT_KINDS = frozenset({TokenKind.ID_TOKEN, TokenKind.REFRESH_TOKEN})


def kind_sentence(kind: TokenKind) -> str | None:
    """The fixed ``error_description`` naming ``kind``; ``None`` for an access token's kinds.

    :attr:`~TokenKind.JWS`, :attr:`~TokenKind.JWT_ACCESS_TOKEN` and
    :attr:`~TokenKind.OPAQUE` have none: they may well be access tokens, and the
    verifier's own sentence says more.
    """
    return _SENTENCES.get(kind)


def describe_refusal(failure: AuthFailure, kind: TokenKind) -> AuthFailure:
    """``failure``, its description replaced by what ``kind`` explains, if it does.

    An ID or refresh token refused for its audience, type, claims or signing key, and
    any other recognised non-access-token refused as malformed, get the kind's
    sentence (e.g. "This looks like a GitHub personal access token; this API accepts
    access tokens issued by its identity provider."). Any other failure, and every
    failure of an access token's kinds, is returned as it is.
    """
    sentence = _SENTENCES.get(kind)
    if sentence is None:
        return failure
    reason = failure.reason
    explains = reason in _JWT_REFUSALS if kind in _JWT_KINDS else reason in _FOREIGN_REFUSALS
    if not explains or failure.description == sentence:
        return failure
    described = AuthFailure(
        failure.reason, sentence, scopes=failure.scopes, context=failure.context
    )
    described.signature_verified = failure.signature_verified
    return described
