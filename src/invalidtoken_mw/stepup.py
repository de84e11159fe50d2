"""Step-up authentication (RFC 9470): how strongly and how recently the user authenticated.

A :class:`StepUp` is a requirement on the token's ``acr`` claim (one of some accepted
authentication context class references) and/or its ``auth_time`` (no older than
``max_age`` seconds). :func:`check_step_up` is the one check, a pure function of the
claims, the requirement and the time: a token that does not meet the requirement, or
lacks the claim needed to judge it, fails with ``insufficient_user_authentication``
(401), whose challenge carries the requirement as ``acr_values`` and ``max_age``
(RFC 9470 §3) so that the client can ask the authorization server for a stronger or
fresher authentication.

The requirement travels in the failure's ``context`` (keys :data:`REQUIRED_ACR_VALUES`
and :data:`REQUIRED_MAX_AGE`), which the challenge builder reads and the log event
shows; the token's own ``acr`` and the age of its authentication go to the log only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._grammar import SCOPE_TOKEN_RE
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEFAULT_LEEWAY",
    "REQUIRED_ACR_VALUES",
    "REQUIRED_MAX_AGE",
    "StepUp",
    "challenge_parameters",
    "check_step_up",
]

REQUIRED_ACR_VALUES = "required_acr_values"
"""Failure context (and log field): the accepted ``acr`` values, a list of strings."""
REQUIRED_MAX_AGE = "required_max_age"
"""Failure context (and log field): the ``max_age`` in seconds, an integer."""
TOKEN_ACR = "token_acr"  # noqa: S105 - a log field's name, not a secret
"""Log field: the token's ``acr`` claim (never sent to the client)."""
AUTH_AGE = "auth_age"
"""Log field: seconds since the token's ``auth_time`` (never sent to the client)."""

DEFAULT_LEEWAY = 60.0
"""Seconds of clock skew allowed on ``auth_time`` when the verifier states none."""

# An acr value longer than this is not logged as it is (it is a short URI or name).
_MAX_LOGGED_ACR = 200


def _acr_values(values: Iterable[str] | str | None, option: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        raise TypeError(f"{option} must be a list of acr values, e.g. [{values!r}], not a string.")
    result = tuple(dict.fromkeys(values))
    for value in result:
        if not isinstance(value, str):
            raise TypeError(f"{option}: acr value {value!r} is not a string.")
        if not SCOPE_TOKEN_RE.fullmatch(value):
            # RFC 9470 §3 joins the values with spaces into one quoted-string: each
            # must be printable ASCII without a space, '"' or '\\' (RFC 6750 §3 NQCHAR).
            raise ValueError(
                f"{option}: acr value {value!r} cannot appear in a challenge: use printable"
                " ASCII without spaces, '\"' or '\\', e.g. 'urn:example:mfa'."
            )
    return result


def _max_age(value: object, option: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{option} must be a whole number of seconds, e.g. 300, not {value!r}.")
    if value < 0:
        raise ValueError(f"{option} must be a number of seconds >= 0, e.g. 300.")
    return value


@dataclass(frozen=True, slots=True)
class StepUp:
    r"""A requirement on the strength and freshness of the user's authentication.

    Args:
        acr_values: The accepted ``acr`` values; the token's ``acr`` must be one of
            them. Each is printable ASCII without spaces, ``"`` or ``\\``.
        max_age: The most seconds since the token's ``auth_time``.

    Raises:
        ValueError: Neither is given, the list is empty, a value cannot appear in a
            challenge, or ``max_age`` is negative.
        TypeError: ``acr_values`` is a single string or holds a non-string, or
            ``max_age`` is not an integer.
    """

    acr_values: Sequence[str] | None = None
    max_age: int | None = None

    def __post_init__(self) -> None:
        """Check the requirement once, at start-up."""
        if (
            self.acr_values is not None
            and not isinstance(self.acr_values, str)
            and not tuple(self.acr_values)
        ):
            raise ValueError(
                "acr_values is empty: name the accepted acr values, e.g."
                " ['urn:example:mfa'], or leave it out (None)."
            )
        acr = _acr_values(self.acr_values, "acr_values")
        max_age = _max_age(self.max_age, "max_age")
        if not acr and max_age is None:
            raise ValueError(
                "a step-up requirement needs acr_values (e.g. ['urn:example:mfa'])"
                " and/or max_age (seconds, e.g. 300)."
            )
        object.__setattr__(self, "acr_values", acr)
        object.__setattr__(self, "max_age", max_age)

    @property
    def accepted_acr(self) -> Sequence[str]:
        """The accepted ``acr`` values (empty: any ``acr``), a tuple."""
        return self.acr_values or ()


def _logged_acr(acr: object) -> object:
    if isinstance(acr, str) and len(acr) > _MAX_LOGGED_ACR:
        return acr[:_MAX_LOGGED_ACR] + "..."
    return acr if isinstance(acr, (str, int, float)) else type(acr).__name__


def check_step_up(
    claims: Mapping[str, Any], requirement: StepUp, *, now: float, leeway: float = 0.0
) -> None:
    """Check verified ``claims`` against ``requirement`` at time ``now``.

    The ``acr`` claim must be a string among ``requirement.accepted_acr``; the
    ``auth_time`` claim a finite number no more than ``max_age`` + ``leeway`` seconds
    before ``now`` (and no more than ``leeway`` after it). A missing or unusable claim
    fails like a weak one: the service cannot tell.

    Raises:
        AuthFailure: ``insufficient_user_authentication``, its context holding the
            requirement (for the challenge) and, for the log, the token's ``acr`` and
            the age of its authentication.
    """
    context: dict[str, object] = {}
    description: str | None = None
    if requirement.accepted_acr:
        acr = claims.get("acr")
        if acr is None:
            description = Sentence.STEP_UP_NO_ACR
        elif not isinstance(acr, str) or acr not in requirement.accepted_acr:
            description = Sentence.STEP_UP_ACR
            context[TOKEN_ACR] = _logged_acr(acr)
    if description is None and requirement.max_age is not None:
        auth_time = claims.get("auth_time")
        if (
            isinstance(auth_time, bool)
            or not isinstance(auth_time, (int, float))
            or not math.isfinite(auth_time)
        ):
            description = Sentence.STEP_UP_NO_AUTH_TIME
        else:
            age = now - auth_time
            if age > requirement.max_age + leeway or age < -leeway:
                description = Sentence.STEP_UP_MAX_AGE if age > 0 else Sentence.STEP_UP_NO_AUTH_TIME
                context[AUTH_AGE] = int(age)
    if description is None:
        return
    if requirement.accepted_acr:
        context[REQUIRED_ACR_VALUES] = list(requirement.accepted_acr)
    if requirement.max_age is not None:
        context[REQUIRED_MAX_AGE] = requirement.max_age
    raise AuthFailure(Reason.INSUFFICIENT_USER_AUTHENTICATION, description, context=context)


def challenge_parameters(context: Mapping[str, object]) -> list[str]:
    """The ``acr_values`` and ``max_age`` challenge parameters a failure's context holds.

    Read again here because an application may raise the failure itself: only values
    that can appear in a quoted-string as they are (RFC 9470 §3, RFC 6750 §3) are kept.
    """
    parts: list[str] = []
    values = context.get(REQUIRED_ACR_VALUES)
    if isinstance(values, (list, tuple)):
        kept = [v for v in values if isinstance(v, str) and SCOPE_TOKEN_RE.fullmatch(v)]
        if kept:
            parts.append(f'acr_values="{" ".join(dict.fromkeys(kept))}"')
    max_age = context.get(REQUIRED_MAX_AGE)
    if isinstance(max_age, int) and not isinstance(max_age, bool) and max_age >= 0:
        parts.append(f'max_age="{max_age}"')
    return parts
