r"""Build ``WWW-Authenticate`` challenges (RFC 6750 §3).

The builder is the only place the library writes a challenge. Configuration values
are checked once, at construction: the realm against RFC 6750's character set,
``error_uri`` as an RFC 3986 URI and ``resource_metadata`` as an https URL; a
failure's description and scopes are restricted to the RFC 6750 §3 character sets
whatever they contain, so no request or token content can put CR, LF, ``"``, ``\\``
or non-ASCII bytes into a header.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from invalidtoken_mw._grammar import (
    NQSCHARS_RE,
    SCOPE_TOKEN_RE,
    uri_problem,
)
from invalidtoken_mw.reasons import Reason
from invalidtoken_mw.stepup import challenge_parameters

if TYPE_CHECKING:
    from invalidtoken_mw.reasons import AuthFailure

__all__ = [
    "ChallengeSettings",
    "build_challenge",
    "build_dpop_challenges",
    "clean_description",
    "failure_description",
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
        elif reason is Reason.INSUFFICIENT_USER_AUTHENTICATION:
            parts.extend(challenge_parameters(failure.context))
    if settings.resource_metadata is not None:
        parts.append(f'resource_metadata="{settings.resource_metadata}"')
    return ", ".join(parts)


# The reasons whose error belongs to the DPoP challenge when both schemes are offered.
_DPOP_ERRORS = frozenset({"invalid_dpop_proof", "use_dpop_nonce"})


def build_dpop_challenges(
    failure: AuthFailure,
    settings: ChallengeSettings,
    algorithms: tuple[str, ...],
    *,
    bearer: bool,
    dpop_scheme: bool,
) -> tuple[str, ...]:
    """The ``WWW-Authenticate`` values of ``failure`` when DPoP is on (RFC 9449 §7.1).

    A ``DPoP`` challenge with ``algs``, and a ``Bearer`` one when bearer tokens are
    accepted too (``bearer``). The error goes to the scheme the request used
    (``dpop_scheme``), and DPoP's own errors always to ``DPoP``; that challenge comes
    first, the other stays bare. Nothing for a 5xx.
    """
    if failure.reason.is_server_fault:
        return ()
    own = build_challenge(failure, settings)
    assert own is not None  # noqa: S101 - only server faults have none
    params = own[len("Bearer ") :]
    bare = f'realm="{settings.realm}"'
    if settings.resource_metadata is not None:
        bare += f', resource_metadata="{settings.resource_metadata}"'
    algs = f'algs="{" ".join(algorithms)}"'
    on_dpop = failure.reason.error in _DPOP_ERRORS or dpop_scheme or not bearer
    dpop = f"DPoP {params}, {algs}" if on_dpop else f"DPoP {bare}, {algs}"
    if not bearer:
        return (dpop,)
    # The challenge carrying the error comes first: clients (requests-oauth2client) read
    # only the first scheme to decide whether to retry with a DPoP nonce.
    return (dpop, f"Bearer {bare}") if on_dpop else (own, dpop)
