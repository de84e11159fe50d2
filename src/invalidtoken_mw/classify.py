"""Classify PyJWT exceptions into :class:`~invalidtoken_mw.Reason` failures.

Used by the verifier and by the middlewares when application code that decodes
tokens itself lets a PyJWT exception escape. The mapping runs most-specific first,
because PyJWT's hierarchy nests (``InvalidSignatureError`` is a ``DecodeError``).
Descriptions are fixed sentences: PyJWT's own messages can quote token content and
never reach the client.
"""

from __future__ import annotations

import re

import jwt

from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

__all__ = ["failure_from_pyjwt", "missing_claim"]

_CLAIM_NAME = re.compile(r"[A-Za-z0-9_:.\-]{1,64}")

_MAPPING: tuple[tuple[type[jwt.PyJWTError], Reason], ...] = (
    (jwt.ExpiredSignatureError, Reason.EXPIRED),
    (jwt.ImmatureSignatureError, Reason.NOT_YET_VALID),
    (jwt.InvalidAudienceError, Reason.WRONG_AUDIENCE),
    (jwt.InvalidIssuerError, Reason.WRONG_ISSUER),
    (jwt.MissingRequiredClaimError, Reason.MISSING_CLAIM),
    (jwt.InvalidSignatureError, Reason.BAD_SIGNATURE),
    (jwt.InvalidAlgorithmError, Reason.ALGORITHM_NOT_ALLOWED),
    # A key that cannot be used is the server's problem, not the client's.
    (jwt.InvalidKeyError, Reason.KEY_UNAVAILABLE),
    (jwt.PyJWKError, Reason.KEY_UNAVAILABLE),
    (jwt.PyJWKSetError, Reason.KEY_UNAVAILABLE),
    (jwt.PyJWKClientError, Reason.KEY_UNAVAILABLE),
    # InvalidIssuedAtError, InvalidSubjectError, InvalidJTIError, DecodeError: a claim
    # or segment of the wrong shape.
    (jwt.InvalidTokenError, Reason.MALFORMED_TOKEN),
)


def missing_claim(claim: str) -> AuthFailure:
    """``missing_claim`` naming ``claim`` when it looks like a claim name, else unnamed."""
    if _CLAIM_NAME.fullmatch(claim):
        return AuthFailure(Reason.MISSING_CLAIM, Sentence.LACKS_THE_CLAIM.format(claim=claim))
    return AuthFailure(Reason.MISSING_CLAIM)


def failure_from_pyjwt(exc: jwt.PyJWTError) -> AuthFailure:
    """Return the :class:`AuthFailure` that describes a PyJWT exception.

    ``MissingRequiredClaimError`` names the absent claim when it looks like a claim
    name (it comes from the verifier's configuration, not from the token).
    """
    for exc_type, reason in _MAPPING:
        if isinstance(exc, exc_type):
            if isinstance(exc, jwt.MissingRequiredClaimError):
                return missing_claim(str(exc.claim))
            return AuthFailure(reason)
    return AuthFailure(Reason.MALFORMED_TOKEN)
