"""The failure taxonomy: every way a bearer-token request can be refused.

Each :class:`Reason` maps to exactly one HTTP status and one RFC 6750 §3.1 error
code (or none), and carries a fixed, client-friendly description (from the one table
of client-facing sentences, :mod:`invalidtoken_mw._sentences`). :class:`AuthFailure`
is the library's one exception type; the middlewares render it, and application code
may raise it too.

Exception hierarchy::

    Exception
     └── AuthFailure
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from invalidtoken_mw._sentences import Sentence

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["AuthFailure", "Reason"]


class Reason(str, Enum):
    """Why a request was refused; the value is what logs and bodies carry."""

    MISSING_TOKEN = "missing_token"
    INVALID_REQUEST = "invalid_request"
    MALFORMED_TOKEN = "malformed_token"
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_ISSUER = "wrong_issuer"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_TOKEN_TYPE = "wrong_token_type"
    MISSING_CLAIM = "missing_claim"
    WRONG_CLAIM = "wrong_claim"
    REVOKED = "revoked"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    INSUFFICIENT_ROLE = "insufficient_role"
    KEY_UNAVAILABLE = "key_unavailable"
    REVOCATION_UNAVAILABLE = "revocation_unavailable"
    INACTIVE_TOKEN = "inactive_token"
    INTROSPECTION_UNAVAILABLE = "introspection_unavailable"
    INSUFFICIENT_USER_AUTHENTICATION = "insufficient_user_authentication"
    INVALID_DPOP_PROOF = "invalid_dpop_proof"
    DPOP_REPLAYED = "dpop_replayed"
    DPOP_NONCE_REQUIRED = "dpop_nonce_required"
    DPOP_KEY_MISMATCH = "dpop_key_mismatch"
    DPOP_BOUND_BEARER = "dpop_bound_bearer"
    DPOP_REQUIRED = "dpop_required"
    DPOP_REPLAY_UNAVAILABLE = "dpop_replay_unavailable"

    def __str__(self) -> str:
        """Return the wire value, so ``f"{reason}"`` is ``expired``, not ``Reason.EXPIRED``."""
        return self.value

    @property
    def status(self) -> int:
        """The HTTP status code answered for this reason."""
        return _INFO[self].status

    @property
    def error(self) -> str | None:
        """The RFC 6750 §3.1 error code, or ``None`` where the RFC wants none."""
        return _INFO[self].error

    @property
    def problem_title(self) -> str:
        """A short, fixed summary (the RFC 9457 ``title``)."""
        return _INFO[self].title

    @property
    def description(self) -> str:
        """The fixed client-friendly sentence used when no better one is given."""
        return _INFO[self].description

    @property
    def is_server_fault(self) -> bool:
        """True where the server, not the client, is at fault (a 5xx answer)."""
        return _INFO[self].status >= 500  # noqa: PLR2004 - the 5xx class boundary


@dataclass(frozen=True, slots=True)
class _ReasonInfo:
    status: int
    error: str | None
    title: str
    description: str


_INVALID_TOKEN = "invalid_token"

_INFO: dict[Reason, _ReasonInfo] = {
    Reason.MISSING_TOKEN: _ReasonInfo(
        401,
        None,
        "Authentication required",
        Sentence.MISSING_TOKEN,
    ),
    Reason.INVALID_REQUEST: _ReasonInfo(
        400,
        "invalid_request",
        "Invalid authentication request",
        Sentence.INVALID_REQUEST,
    ),
    Reason.MALFORMED_TOKEN: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Malformed access token",
        Sentence.MALFORMED_TOKEN,
    ),
    Reason.ALGORITHM_NOT_ALLOWED: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Signing algorithm not allowed",
        Sentence.ALGORITHM_NOT_ALLOWED,
    ),
    Reason.UNKNOWN_KEY: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Unknown signing key",
        Sentence.UNKNOWN_KEY,
    ),
    Reason.BAD_SIGNATURE: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Invalid signature",
        Sentence.BAD_SIGNATURE,
    ),
    Reason.EXPIRED: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Access token expired",
        Sentence.EXPIRED,
    ),
    Reason.NOT_YET_VALID: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Access token not yet valid",
        Sentence.NOT_YET_VALID,
    ),
    Reason.WRONG_ISSUER: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Wrong issuer",
        Sentence.WRONG_ISSUER,
    ),
    Reason.WRONG_AUDIENCE: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Wrong audience",
        Sentence.WRONG_AUDIENCE,
    ),
    Reason.WRONG_TOKEN_TYPE: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Wrong token type",
        Sentence.WRONG_TOKEN_TYPE,
    ),
    Reason.MISSING_CLAIM: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Missing claim",
        Sentence.MISSING_CLAIM,
    ),
    Reason.WRONG_CLAIM: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Claim value not accepted",
        Sentence.WRONG_CLAIM,
    ),
    Reason.REVOKED: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Access token revoked",
        Sentence.REVOKED,
    ),
    Reason.INSUFFICIENT_SCOPE: _ReasonInfo(
        403,
        "insufficient_scope",
        "Insufficient scope",
        Sentence.INSUFFICIENT_SCOPE,
    ),
    # RFC 6750 registers no error for roles; insufficient_scope is its 403 for a token
    # without "higher privileges" (§3.1), so clients keep one rule. The challenge names
    # no scope: a role is not something to ask the authorization server for as a scope.
    Reason.INSUFFICIENT_ROLE: _ReasonInfo(
        403,
        "insufficient_scope",
        "Insufficient role",
        Sentence.INSUFFICIENT_ROLE,
    ),
    Reason.KEY_UNAVAILABLE: _ReasonInfo(
        503,
        None,
        "Signing keys unavailable",
        Sentence.UNAVAILABLE,
    ),
    Reason.REVOCATION_UNAVAILABLE: _ReasonInfo(
        503,
        None,
        "Revocation check unavailable",
        Sentence.UNAVAILABLE,
    ),
    # RFC 7662 §2.2: "active": false says only that the token is not usable now; the
    # server need not say whether it expired, was revoked or never existed.
    Reason.INACTIVE_TOKEN: _ReasonInfo(
        401,
        _INVALID_TOKEN,
        "Access token not active",
        Sentence.INACTIVE_TOKEN,
    ),
    Reason.INTROSPECTION_UNAVAILABLE: _ReasonInfo(
        503,
        None,
        "Token introspection unavailable",
        Sentence.UNAVAILABLE,
    ),
    # RFC 9470 §3: a valid token whose authentication is too weak or too old; 401, so
    # that the client authenticates the user again, and the challenge says how.
    Reason.INSUFFICIENT_USER_AUTHENTICATION: _ReasonInfo(
        401,
        "insufficient_user_authentication",
        "Insufficient user authentication",
        Sentence.INSUFFICIENT_USER_AUTHENTICATION,
    ),
    # DPoP (RFC 9449). A bad proof, or one used before, is invalid_dpop_proof (§7.1); a
    # missing nonce is use_dpop_nonce (§9); the token's own binding failing is
    # invalid_token. Bearer where only DPoP is accepted is an unsupported method, which
    # RFC 6750 §3.1 answers without an error code, as a missing token.
    Reason.INVALID_DPOP_PROOF: _ReasonInfo(
        401, "invalid_dpop_proof", "Invalid DPoP proof", Sentence.INVALID_DPOP_PROOF
    ),
    Reason.DPOP_REPLAYED: _ReasonInfo(
        401, "invalid_dpop_proof", "DPoP proof replayed", Sentence.DPOP_REPLAYED
    ),
    Reason.DPOP_NONCE_REQUIRED: _ReasonInfo(
        401, "use_dpop_nonce", "DPoP nonce required", Sentence.DPOP_NONCE_REQUIRED
    ),
    Reason.DPOP_KEY_MISMATCH: _ReasonInfo(
        401, _INVALID_TOKEN, "DPoP key mismatch", Sentence.DPOP_KEY_MISMATCH
    ),
    Reason.DPOP_BOUND_BEARER: _ReasonInfo(
        401, _INVALID_TOKEN, "DPoP-bound token sent as bearer", Sentence.DPOP_BOUND_BEARER
    ),
    Reason.DPOP_REQUIRED: _ReasonInfo(401, None, "DPoP required", Sentence.DPOP_REQUIRED),
    Reason.DPOP_REPLAY_UNAVAILABLE: _ReasonInfo(
        503, None, "DPoP replay check unavailable", Sentence.UNAVAILABLE
    ),
}


class AuthFailure(Exception):  # noqa: N818 - the name is public API; it is a failure, not an error
    """Raised when a request cannot be authenticated or authorised.

    Args:
        reason: Why, as a :class:`Reason` or its string value.
        description: A client-friendly sentence replacing the reason's default one.
            It must not contain secrets or the token; the challenge builder
            restricts it to the RFC 6750 §3 character set in any case.
        scopes: For ``insufficient_scope``, every scope the request requires (not
            only the missing ones: RFC 6750 §3); they are announced in the
            challenge's ``scope`` parameter. Name the missing ones, for the log, in
            ``context={"missing_scopes": [...]}``.
        context: Extra fields for the ``auth_rejected`` log event (never sent to the
            client), e.g. ``{"unexpected_error": "TypeError"}``.
    """

    __slots__ = ("context", "description", "reason", "scopes", "signature_verified")

    def __init__(
        self,
        reason: Reason | str,
        description: str | None = None,
        *,
        scopes: Iterable[str] = (),
        context: Mapping[str, object] | None = None,
    ) -> None:
        """Create a failure; an unknown ``reason`` string raises :class:`ValueError`."""
        self.reason: Reason = Reason(reason)
        self.description: str = description or self.reason.description
        self.scopes: tuple[str, ...] = tuple(scopes)
        self.context: Mapping[str, object] = context or {}
        #: Whether the token's signature had been checked, and was good, before this
        #: failure was decided (set by the verifier; logged as ``signature_verified``).
        self.signature_verified: bool = False
        super().__init__(self.reason.value, self.description)

    @property
    def status(self) -> int:
        """The HTTP status code of this failure."""
        return self.reason.status

    @property
    def error(self) -> str | None:
        """The RFC 6750 error code of this failure, or ``None``."""
        return self.reason.error

    def __repr__(self) -> str:
        """Show the reason and description (never a token: failures never hold one)."""
        return f"AuthFailure({self.reason.value!r}, {self.description!r})"

    def __str__(self) -> str:
        """Return ``reason: description``."""
        return f"{self.reason.value}: {self.description}"
