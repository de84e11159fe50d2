"""Find the bearer token in a request (RFC 6750 §2), or say precisely why not.

The extractor knows nothing about ASGI or WSGI: adapters hand it the raw
``Authorization`` values, the query string and, only when :meth:`TokenExtractor.wants_body`
says so, the form body. It recognises the usual copy-paste mistakes (quotes around
the token, ``Bearer Bearer``, a wrapped line, a truncated JWT) and says so in the
failure's description, without ever repeating the token.

Query and body parameters are judged as the application's own parser reads them:
names are percent-decoded (``access%5Ftoken`` is ``access_token``), a second token
anywhere is ``invalid_request``, and so is a ``;`` that would make parsers splitting
on it see a different ``access_token`` than those splitting on ``&`` only.
"""

from __future__ import annotations

import functools
import re
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote_plus

from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_MAX_TOKEN_BYTES", "ExtractedToken", "TokenExtractor", "TokenSource"]

DEFAULT_MAX_TOKEN_BYTES = 8192
_KNOWN_HEADERS = 4096  # well-formed Authorization values remembered per extractor

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_JWT_HEADER_START = "eyJ"  # base64url of '{"' - every JWT starts this way
_JWT_SEGMENTS = 3
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_PARAM = "access_token"
# The longest spelling of the parameter's name: every character percent-encoded.
_PARAM_NAME_MAX = 3 * len(_PARAM)
# Parameters separated by ';' as well as '&' (Bottle, Python before 3.9.2, older
# python-multipart); today's stdlib, Starlette, Werkzeug and Django split on '&' only.
_ANY_SEPARATOR = re.compile("[&;]")
# Several Authorization lines folded into one by a proxy or WSGI server (RFC 9110 §5.3):
# a comma, then the next credentials' auth-scheme (a token) and a space. A b64token never
# contains a comma, so after a Bearer token this can only be folding.
_FOLDED = re.compile(r",[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]")
_FOLDED_BEARER = re.compile(r",[ \t]*bearer(?:[ \t]|\Z)", re.IGNORECASE)

_MALFORMED_PREFIX = "The access token is malformed: "
_HINT_TOO_LARGE = (
    _MALFORMED_PREFIX + "it is larger than this service accepts. Send the access token, not"
    " another kind of token or document."
)
_HINT_QUOTED = _MALFORMED_PREFIX + "it is wrapped in quotes. Send the token without them."
_HINT_DOUBLE_SCHEME = (
    _MALFORMED_PREFIX + "the Bearer scheme appears twice. Send 'Authorization: Bearer <token>'."
)
_HINT_WHITESPACE = (
    _MALFORMED_PREFIX + "it contains spaces or line breaks, as if it was wrapped when copied."
    " Copy it again as one line."
)
_HINT_CHARACTERS = _MALFORMED_PREFIX + "it contains characters a bearer token cannot contain."
_HINT_TRUNCATED = (
    _MALFORMED_PREFIX + "it has {count} of the 3 dot-separated parts of a JWT, so it looks"
    " truncated. Copy it again in full."
)
_HINT_SCHEME_PUNCTUATION = (
    _MALFORMED_PREFIX + "the scheme is followed by punctuation. Send 'Authorization: Bearer"
    " <token>' with a single space."
)
_EMPTY = "The request names the Bearer scheme but carries no token."
_SEVERAL = "The request carries more than one access token; send exactly one."
_EMPTY_PARAM = "The access_token parameter is empty."
_AMBIGUOUS_PARAM = (
    "The access_token parameter is ambiguous: separate parameters with '&' only, not ';'."
)


class TokenSource(str, Enum):
    """Where the token was found (RFC 6750 §2.1-2.3)."""

    HEADER = "header"
    BODY = "body"
    QUERY = "query"

    def __str__(self) -> str:
        """Return the value."""
        return self.value


class ExtractedToken(NamedTuple):
    """A token found in a request and where it came from."""

    token: str
    source: TokenSource

    def __repr__(self) -> str:
        """Never show the token itself."""
        return f"ExtractedToken(token=<{len(self.token)} chars>, source={self.source.value!r})"


def _malformed(description: str) -> AuthFailure:
    return AuthFailure(Reason.MALFORMED_TOKEN, description)


def _check_token(token: str) -> str:
    """Return ``token`` if it is a b64token, else raise with the most useful hint."""
    if len(token) == 6 and token.lower() == "bearer":  # noqa: PLR2004 - 'Bearer Bearer', no token
        raise _malformed(_HINT_DOUBLE_SCHEME)
    if _B64TOKEN.fullmatch(token):
        if token.startswith(_JWT_HEADER_START):
            count = token.count(".") + 1
            if count < _JWT_SEGMENTS:
                raise _malformed(_HINT_TRUNCATED.format(count=count))
        return token
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":  # noqa: PLR2004
        raise _malformed(_HINT_QUOTED)
    if token[:7].lower() == "bearer ":
        raise _malformed(_HINT_DOUBLE_SCHEME)
    if any(ch.isspace() for ch in token):
        raise _malformed(_HINT_WHITESPACE)
    raise _malformed(_HINT_CHARACTERS)


class TokenExtractor:
    """Find the bearer token of a request, configured once.

    Args:
        allow_query: Accept ``?access_token=`` (RFC 6750 §2.3). Off by default: URLs
            end up in logs and browser history.
        allow_body: Accept a form-encoded ``access_token`` body parameter
            (RFC 6750 §2.2), never on GET. Off by default.
        max_token_bytes: Larger ``Authorization`` values or tokens are refused before
            any parsing (``malformed_token``).

    Raises:
        ValueError: ``max_token_bytes`` is not a positive integer.
    """

    __slots__ = (
        "_header_only",
        "_known",
        "allow_body",
        "allow_query",
        "max_token_bytes",
    )

    def __init__(
        self,
        *,
        allow_query: bool = False,
        allow_body: bool = False,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
    ) -> None:
        """Validate and store the configuration."""
        if isinstance(max_token_bytes, bool) or not isinstance(max_token_bytes, int):
            raise TypeError("max_token_bytes must be an int (bytes), e.g. 8192.")
        if max_token_bytes < 1:
            raise ValueError("max_token_bytes must be at least 1; the default is 8192.")
        self.allow_query = allow_query
        self.allow_body = allow_body
        self.max_token_bytes = max_token_bytes
        self._header_only = not (allow_query or allow_body)
        # functools' LRU cache: bounded, thread-safe, and a hit costs no Python code.
        self._known = functools.lru_cache(maxsize=_KNOWN_HEADERS)(self._parse_one_header)

    def wants_body(self, method: str, content_type: str | None) -> bool:
        """Whether the adapter should read the body to look for a token.

        Only when the body method is on, the method is not GET or HEAD and the body is
        ``application/x-www-form-urlencoded`` (RFC 6750 §2.2).
        """
        if not self.allow_body or method.upper() in {"GET", "HEAD"} or not content_type:
            return False
        return content_type.split(";", 1)[0].strip().lower() == _FORM_CONTENT_TYPE

    def extract(
        self,
        authorization: Sequence[str],
        *,
        query_string: str = "",
        form_body: str | None = None,
    ) -> ExtractedToken:
        """Return the request's one bearer token.

        Args:
            authorization: Every ``Authorization`` header value of the request, in order.
            query_string: The raw (still percent-encoded) query string.
            form_body: The decoded form body, only where :meth:`wants_body` said so.

        Raises:
            AuthFailure: ``missing_token``, ``invalid_request`` or ``malformed_token``.
        """
        if self._header_only and len(authorization) == 1:
            return self._one_header(authorization[0])
        found: list[ExtractedToken] = []
        if len(authorization) > 1:
            raise AuthFailure(Reason.INVALID_REQUEST, _SEVERAL)
        if authorization:
            header_token = self._from_header(authorization[0])
            if header_token is not None:
                found.append(ExtractedToken(header_token, TokenSource.HEADER))
        if self.allow_body and form_body and _may_name_the_param(form_body):
            self._from_params(form_body, TokenSource.BODY, found)
        if self.allow_query and query_string and _may_name_the_param(query_string):
            self._from_params(query_string, TokenSource.QUERY, found)
        if not found:
            raise AuthFailure(Reason.MISSING_TOKEN)
        if len(found) > 1:
            raise AuthFailure(Reason.INVALID_REQUEST, _SEVERAL)
        return found[0]

    def _one_header(self, value: str) -> ExtractedToken:
        """The common case, kept short: one header and no other method enabled.

        A client resends the same header, so a well-formed one is remembered.
        """
        if len(value) > self.max_token_bytes:
            # Refused before the lookup, which would hash the whole oversized value.
            raise _malformed(_HINT_TOO_LARGE)
        return self._known(value)

    def _parse_one_header(self, value: str) -> ExtractedToken:
        """:meth:`_one_header` past the cache: failures raise, so are never remembered."""
        header_token = self._from_header(value)
        if header_token is None:
            raise AuthFailure(Reason.MISSING_TOKEN)
        return ExtractedToken(header_token, TokenSource.HEADER)

    def _from_header(self, value: str) -> str | None:
        """Return the token of a ``Bearer`` header, ``None`` for another scheme."""
        if len(value) > self.max_token_bytes:
            raise _malformed(_HINT_TOO_LARGE)
        value = value.strip(" \t")
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "bearer":
            lowered = scheme.lower()
            if lowered.startswith("bearer") and lowered[6:7].isspace():
                raise _malformed(_HINT_WHITESPACE)
            if lowered.startswith("bearer") and lowered[6:7] in {":", "=", ","}:
                raise _malformed(_HINT_SCHEME_PUNCTUATION)
            if _FOLDED_BEARER.search(rest):
                # "Basic ..., Bearer ...": folded lines, one of them a bearer token.
                raise AuthFailure(Reason.INVALID_REQUEST, _SEVERAL)
            return None
        token = rest.lstrip(" ")
        if not token:
            raise AuthFailure(Reason.INVALID_REQUEST, _EMPTY)
        if "," in token and _FOLDED.search(token):
            # Two Authorization headers folded into one by a proxy or WSGI server.
            raise AuthFailure(Reason.INVALID_REQUEST, _SEVERAL)
        return _check_token(token)

    def _from_params(self, encoded: str, source: TokenSource, found: list[ExtractedToken]) -> None:
        values = _param_values(encoded)
        if not values:
            return
        if len(values) > 1:
            raise AuthFailure(Reason.INVALID_REQUEST, _SEVERAL)
        token = values[0]
        if not token:
            raise AuthFailure(Reason.INVALID_REQUEST, _EMPTY_PARAM)
        if len(token) > self.max_token_bytes:
            raise _malformed(_HINT_TOO_LARGE)
        found.append(ExtractedToken(_check_token(token), source))


def _may_name_the_param(encoded: str) -> bool:
    """Whether any parser could find an ``access_token`` parameter in ``encoded``.

    Sound, not exact: a name that decodes to ``access_token`` is either spelled out or
    has a percent-encoded character ('+' decodes to a space, which the name lacks). Most
    requests have neither and skip the parse.
    """
    return _PARAM in encoded or "%" in encoded


def _param_values(encoded: str) -> list[str]:
    """Every ``access_token`` value a query or form parser would see in ``encoded``.

    Names and values are decoded as :func:`urllib.parse.parse_qsl` (and so Starlette
    and Werkzeug) decode them: '+' is a space, then percent-decoding as UTF-8. When
    a ';' makes parsers that also split on it read the parameters differently, no
    token can be trusted to be the one the application sees.

    Raises:
        AuthFailure: ``invalid_request`` when the two readings differ.
    """
    values = _param_values_in(encoded.split("&"))
    if ";" in encoded and _param_values_in(_ANY_SEPARATOR.split(encoded)) != values:
        raise AuthFailure(Reason.INVALID_REQUEST, _AMBIGUOUS_PARAM)
    return values


def _param_values_in(fields: list[str]) -> list[str]:
    values: list[str] = []
    for field in fields:
        name, _, value = field.partition("=")
        # Length first: most names cannot decode to the parameter's, however encoded.
        if len(_PARAM) <= len(name) <= _PARAM_NAME_MAX and (
            name == _PARAM or unquote_plus(name) == _PARAM
        ):
            values.append(unquote_plus(value))
    return values
