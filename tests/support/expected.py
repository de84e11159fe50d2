"""The exact challenges and descriptions the adapter tests expect on the wire.

Shared by the Flask and FastAPI adapter tests, which pin the same answers for the
same failures; the realm is ``orders`` throughout.
"""

from __future__ import annotations

EXPIRED_DETAIL = "The access token expired. Obtain a new one and retry."
EXPIRED_CHALLENGE = (
    f'Bearer realm="orders", error="invalid_token", error_description="{EXPIRED_DETAIL}"'
)
SCOPE_DETAIL = "The access token does not grant the scope this request requires."
EMPTY_DETAIL = "The request names the Bearer scheme but carries no token."
SEVERAL_DETAIL = "The request carries more than one access token; send exactly one."
CHARACTERS_DETAIL = (
    "The access token is malformed: it contains characters a bearer token cannot contain."
)
WRAPPED_DETAIL = (
    "The access token is malformed: it contains spaces or line breaks, as if it was wrapped"
    " when copied. Copy it again as one line."
)
OVERSIZED_DETAIL = (
    "The access token is malformed: it is larger than this service accepts. Send the"
    " access token, not another kind of token or document."
)


def invalid_request(detail: str) -> str:
    """The challenge of a 400 invalid_request with ``detail``."""
    return f'Bearer realm="orders", error="invalid_request", error_description="{detail}"'


def invalid_token(detail: str) -> str:
    """The challenge of a 401 invalid_token with ``detail``."""
    return f'Bearer realm="orders", error="invalid_token", error_description="{detail}"'


def scope_challenge(scope: str) -> str:
    """The challenge of a 403 insufficient_scope naming ``scope``."""
    return (
        'Bearer realm="orders", error="insufficient_scope",'
        f' error_description="{SCOPE_DETAIL}", scope="{scope}"'
    )


# The reason each invalidtoken_mw.testing defect makes an at+jwt-requiring verifier give.
DEFECT_REASONS = {
    "expired": "expired",
    "not-yet-valid": "not_yet_valid",
    "wrong-audience": "wrong_audience",
    "wrong-issuer": "wrong_issuer",
    "wrong-type": "wrong_token_type",
    "missing-exp": "missing_claim",
    "bad-signature": "bad_signature",
    "alg-none": "algorithm_not_allowed",
    "truncated": "malformed_token",
    "quoted": "malformed_token",
}
