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
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import unquote_plus

from invalidtoken_mw._grammar import (
    B64TOKEN_RE,
    FOLDED_BEARER_RE,
    FOLDED_CREDENTIALS_RE,
    QUERY_SEPARATORS_RE,
)
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_MAX_TOKEN_BYTES", "ExtractedToken", "TokenExtractor", "TokenSource"]

DEFAULT_MAX_TOKEN_BYTES = 8192
"""The default ``max_token_bytes``: longer ``Authorization`` values are refused unparsed."""
# The usual header, "Bearer <b64token>", is recognised without a regular expression:
# the token's characters are checked by deleting the allowed ones (one C call).
_BEARER_PREFIXES = frozenset({"Bearer ", "bearer ", "BEARER "})
# Well-formed header values of usual size remembered per extractor (a client resends
# its header until the token expires): at most about 1 MiB, whatever clients send.
_KNOWN_HEADERS = 256
_KNOWN_HEADER_CHARS = 2048
_B64TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"

_JWT_HEADER_START = "eyJ"  # base64url of '{"' - every JWT starts this way
_JWT_SEGMENTS = 3
_FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_PARAM = "access_token"
# The longest spelling of the parameter's name: every character percent-encoded.
_PARAM_NAME_MAX = 3 * len(_PARAM)


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


def _plainly_b64token(token: str, max_bytes: int) -> bool:
    """Whether ``token`` is a b64token that :func:`_check_token` accepts as it is.

    At most ``max_bytes`` long (with its scheme), not ``bearer`` itself (the scheme
    twice), not a JWT with fewer than three parts.
    """
    if len(token) + 7 > max_bytes:
        return False
    core = token.rstrip("=")
    if not core or not core.isascii() or core.encode("ascii").translate(None, _B64TOKEN_BYTES):
        return False
    if token.startswith(_JWT_HEADER_START):
        # At least two dots (three parts); find stops at the second, count would not.
        return token.find(".", token.find(".") + 1) > 0
    return len(token) != 6 or token.lower() != "bearer"  # noqa: PLR2004 - 'Bearer Bearer'


def _check_token(token: str) -> str:
    """Return ``token`` if it is a b64token, else raise with the most useful hint."""
    if len(token) == 6 and token.lower() == "bearer":  # noqa: PLR2004 - 'Bearer Bearer', no token
        raise _malformed(Sentence.SCHEME_TWICE)
    if B64TOKEN_RE.fullmatch(token):
        if token.startswith(_JWT_HEADER_START):
            count = token.count(".") + 1
            if count < _JWT_SEGMENTS:
                raise _malformed(Sentence.TRUNCATED_JWT.format(count=count))
        return token
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":  # noqa: PLR2004
        raise _malformed(Sentence.QUOTED)
    if token[:7].lower() == "bearer ":
        raise _malformed(Sentence.SCHEME_TWICE)
    if any(ch.isspace() for ch in token):
        raise _malformed(Sentence.WRAPPED)
    raise _malformed(Sentence.BAD_CHARACTERS)


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
        # functools' LRU cache: bounded, thread-safe, and a hit runs no Python code.
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
            # The common case, inline (one call less on every request): one header and
            # no other method enabled. A resent header of usual size is remembered; a
            # longer one is parsed every time.
            value = authorization[0]
            if len(value) <= _KNOWN_HEADER_CHARS:
                return self._known(value)
            return self._parse_one_header(value)
        found: list[ExtractedToken] = []
        if len(authorization) > 1:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
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
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
        return found[0]

    def _parse_one_header(self, value: str) -> ExtractedToken:
        """One header value: "Bearer <b64token>" at once, else the full parse.

        The full parse names the mistake; failures raise, so are never remembered.
        """
        token = value[7:]
        if value[:7] in _BEARER_PREFIXES and _plainly_b64token(token, self.max_token_bytes):
            return ExtractedToken(token, TokenSource.HEADER)
        return self._parse_header_in_full(value)

    def _parse_header_in_full(self, value: str) -> ExtractedToken:
        """One header value, every rule checked, the mistake named."""
        header_token = self._from_header(value)
        if header_token is None:
            raise AuthFailure(Reason.MISSING_TOKEN)
        return ExtractedToken(header_token, TokenSource.HEADER)

    def _from_header(self, value: str) -> str | None:
        """Return the token of a ``Bearer`` header, ``None`` for another scheme."""
        if len(value) > self.max_token_bytes:
            raise _malformed(Sentence.TOO_LARGE)
        value = value.strip(" \t")
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "bearer":
            lowered = scheme.lower()
            if lowered.startswith("bearer") and lowered[6:7].isspace():
                raise _malformed(Sentence.WRAPPED)
            if lowered.startswith("bearer") and lowered[6:7] in {":", "=", ","}:
                raise _malformed(Sentence.SCHEME_PUNCTUATION)
            if FOLDED_BEARER_RE.search(rest):
                # "Basic ..., Bearer ...": folded lines, one of them a bearer token.
                raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
            return None
        token = rest.lstrip(" ")
        if not token:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.NO_TOKEN_AFTER_SCHEME)
        if "," in token and FOLDED_CREDENTIALS_RE.search(token):
            # Two Authorization headers folded into one by a proxy or WSGI server.
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
        return _check_token(token)

    def _from_params(self, encoded: str, source: TokenSource, found: list[ExtractedToken]) -> None:
        values = _param_values(encoded)
        if not values:
            return
        if len(values) > 1:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
        token = values[0]
        if not token:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.EMPTY_PARAMETER)
        if len(token) > self.max_token_bytes:
            raise _malformed(Sentence.TOO_LARGE)
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
    if ";" in encoded and _param_values_in(QUERY_SEPARATORS_RE.split(encoded)) != values:
        raise AuthFailure(Reason.INVALID_REQUEST, Sentence.AMBIGUOUS_PARAMETER)
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
