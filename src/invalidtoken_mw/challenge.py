r"""Build and parse ``WWW-Authenticate`` challenges (RFC 6750 §3, RFC 9110 §11).

The builder is the only place the library writes a challenge. Configuration values
are checked once, at construction: the realm against RFC 6750's character set,
``error_uri`` as an RFC 3986 URI and ``resource_metadata`` as an https URL; a
failure's description and scopes are restricted to the RFC 6750 §3 character sets
whatever they contain, so no request or token content can put CR, LF, ``"``, ``\\``
or non-ASCII bytes into a header.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from invalidtoken_mw._grammar import (
    AUTH_PARAM_START_RE,
    COMMA_RE,
    NQSCHARS_RE,
    OWS_RE,
    QUOTED_STRING_RE,
    SCOPE_TOKEN_RE,
    SPACES_RE,
    TOKEN68_RE,
    TOKEN_RE,
    uri_problem,
)
from invalidtoken_mw.reasons import Reason

if TYPE_CHECKING:
    from invalidtoken_mw.reasons import AuthFailure

__all__ = [
    "Challenge",
    "ChallengeSettings",
    "build_challenge",
    "clean_description",
    "failure_description",
    "parse_challenges",
]

_MAX_DESCRIPTION = 300

# Typographic characters people paste into messages, mapped to their ASCII cousins.
_ASCII_COUSINS = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": "'",
        "\u201d": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        '"': "'",
        "\\": "/",
    }
)


def clean_description(text: str) -> str:
    """Restrict ``text`` to the RFC 6750 §3 ``error_description`` character set."""
    if NQSCHARS_RE.fullmatch(text) and len(text) <= _MAX_DESCRIPTION:
        return text
    # Normalise first: NFKD folds some characters (fullwidth quote and backslash) onto '"'
    # and '\\', which the translation must still see.
    folded = unicodedata.normalize("NFKD", text).translate(_ASCII_COUSINS)
    kept = (
        ch if ("\x20" <= ch <= "\x7e") else (" " if ch.isspace() or ch < "\x20" else "")
        for ch in folded
    )
    cleaned = " ".join("".join(kept).split())
    if len(cleaned) > _MAX_DESCRIPTION:
        cleaned = cleaned[: _MAX_DESCRIPTION - 3].rstrip() + "..."
    return cleaned


def failure_description(failure: AuthFailure) -> str:
    """The failure's description as sent: cleaned, or the reason's default if nothing is left."""
    return clean_description(failure.description) or failure.reason.description


def _check_error_uri(value: str | None) -> None:
    """``error_uri`` is a URI (RFC 6750 §3, RFC 6749 §5.2: "a URI identifying a page")."""
    if value is None:
        return
    problem = uri_problem(value, absolute=True)
    if problem is not None:
        raise ValueError(
            f"error_uri={value!r} is not an absolute URI (RFC 6750 §3, RFC 3986 §3): {problem}."
            " Give the address of the page that explains the errors, such as"
            " 'https://docs.example.com/errors', percent-encoding any other character."
        )


def _check_resource_metadata(value: str | None) -> None:
    """``resource_metadata`` is the https URL of the metadata document (RFC 9728 §5.1)."""
    if value is None:
        return
    problem = uri_problem(value, absolute=True)
    if problem is None:
        parts = urlsplit(value)
        if parts.scheme.lower() != "https":
            problem = f"its scheme is {parts.scheme!r}: RFC 9728 §3 requires https"
        elif not parts.hostname:
            problem = "it names no host"
        elif parts.fragment or value.endswith("#"):
            problem = "it has a fragment, which a client does not send"
    if problem is not None:
        raise ValueError(
            f"resource_metadata={value!r} is not an https URL (RFC 9728 §5.1): {problem}."
            " Give the URL of this resource's metadata, such as"
            " 'https://api.example.com/.well-known/oauth-protected-resource',"
            " percent-encoding any other character."
        )


@dataclass(frozen=True, slots=True)
class ChallengeSettings:
    r"""How this service introduces itself in challenges; validated at construction.

    Args:
        realm: The protection space (RFC 9110 §11.5), printable ASCII without ``"``
            or ``\\``.
        error_uri: A page explaining the errors (RFC 6750 §3 ``error_uri``), added to
            every challenge that carries an error code: an absolute URI (RFC 3986 §3).
        resource_metadata: The URL of this resource's OAuth protected resource
            metadata (RFC 9728 §5.1), added to every challenge: an ``https`` URL with
            a host and no fragment.

    Raises:
        ValueError: A value is not of its kind (a URI, an https URL) or cannot appear
            in a header as it is; the message names the option and how to fix it.
    """

    realm: str = "api"
    error_uri: str | None = None
    resource_metadata: str | None = None

    def __post_init__(self) -> None:
        """Reject values that would need escaping or could break the header."""
        if not isinstance(self.realm, str) or not NQSCHARS_RE.fullmatch(self.realm):
            raise ValueError(
                f"realm={self.realm!r} is not allowed: use printable ASCII without"
                " '\"' or '\\' (for example realm=\"orders\")."
            )
        if not self.realm.strip():
            raise ValueError('realm must not be empty: name the API, e.g. realm="orders".')
        _check_error_uri(self.error_uri)
        _check_resource_metadata(self.resource_metadata)


def build_challenge(failure: AuthFailure, settings: ChallengeSettings) -> str | None:
    """Return the ``WWW-Authenticate`` value for ``failure``, or ``None`` for a 5xx.

    A request without credentials gets a bare ``Bearer realm="..."`` (RFC 6750 §3:
    no error information); every other client fault adds ``error`` and
    ``error_description``, plus ``error_uri`` when configured and ``scope`` for
    ``insufficient_scope``. Server faults (503) get no challenge: new credentials
    would not help.
    """
    reason = failure.reason
    if reason.is_server_fault:
        return None
    parts = [f'Bearer realm="{settings.realm}"']
    if reason.error is not None:
        parts.append(f'error="{reason.error}"')
        parts.append(f'error_description="{failure_description(failure)}"')
        if settings.error_uri is not None:
            parts.append(f'error_uri="{settings.error_uri}"')
        if reason is Reason.INSUFFICIENT_SCOPE:
            scopes = [s for s in failure.scopes if SCOPE_TOKEN_RE.fullmatch(s)]
            if scopes:
                parts.append(f'scope="{" ".join(dict.fromkeys(scopes))}"')
    if settings.resource_metadata is not None:
        parts.append(f'resource_metadata="{settings.resource_metadata}"')
    return ", ".join(parts)


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
# quoted-pair (RFC 9110 §5.6.4): a backslash stands for the character after it.
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
