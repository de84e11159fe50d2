r"""Build ``WWW-Authenticate`` challenges (RFC 6750 §3).

The builder is the only place the library writes a challenge. Configuration values
(realm, ``error_uri``, ``resource_metadata``) are checked once, at construction; a
failure's description and scopes are restricted to the RFC 6750 §3 character sets
whatever they contain, so no request or token content can put CR, LF, ``"``, ``\\``
or non-ASCII bytes into a header.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from invalidtoken_mw.reasons import Reason

if TYPE_CHECKING:
    from invalidtoken_mw.reasons import AuthFailure

__all__ = [
    "ChallengeSettings",
    "build_challenge",
    "clean_description",
    "failure_description",
]

# RFC 6750 §3: error-description and realm-like values: %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_OK = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
# RFC 6750 §3: error-uri and scope-token characters: %x21 / %x23-5B / %x5D-7E.
_NQCHAR_RUN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
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
    if _DESCRIPTION_OK.fullmatch(text) and len(text) <= _MAX_DESCRIPTION:
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


def _check_nqchars(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not _NQCHAR_RUN.fullmatch(value):
        raise ValueError(
            f"{name}={value!r} is not allowed in a WWW-Authenticate challenge: use a"
            " non-empty URI of printable ASCII without spaces, '\"' or '\\'"
            " (RFC 6750 §3), percent-encoding anything else."
        )
    return value


@dataclass(frozen=True, slots=True)
class ChallengeSettings:
    r"""How this service introduces itself in challenges; validated at construction.

    Args:
        realm: The protection space (RFC 9110 §11.5), printable ASCII without ``"``
            or ``\\``.
        error_uri: A page explaining the errors (RFC 6750 §3 ``error_uri``), added to
            every challenge that carries an error code.
        resource_metadata: The URL of this resource's OAuth protected resource
            metadata (RFC 9728 §5.1), added to every challenge.

    Raises:
        ValueError: A value cannot appear in a header as it is.
    """

    realm: str = "api"
    error_uri: str | None = None
    resource_metadata: str | None = None

    def __post_init__(self) -> None:
        """Reject values that would need escaping or could break the header."""
        if not isinstance(self.realm, str) or not _DESCRIPTION_OK.fullmatch(self.realm):
            raise ValueError(
                f"realm={self.realm!r} is not allowed: use printable ASCII without"
                " '\"' or '\\' (for example realm=\"orders\")."
            )
        if not self.realm.strip():
            raise ValueError('realm must not be empty: name the API, e.g. realm="orders".')
        _check_nqchars("error_uri", self.error_uri)
        _check_nqchars("resource_metadata", self.resource_metadata)


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
            scopes = [s for s in failure.scopes if _NQCHAR_RUN.fullmatch(s)]
            if scopes:
                parts.append(f'scope="{" ".join(dict.fromkeys(scopes))}"')
    if settings.resource_metadata is not None:
        parts.append(f'resource_metadata="{settings.resource_metadata}"')
    return ", ".join(parts)
