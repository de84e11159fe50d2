"""Scope checks (RFC 6749 §3.3, RFC 9068 §2.2.3): which scopes a token grants.

Both the space-separated ``scope`` string claim and the ``scp`` list claim (used by
several identity providers) are understood. Only U+0020 separates scopes, and only
RFC 6749 scope-tokens (printable ASCII without space, double quote or backslash) are
granted: other whitespace, such as a no-break space or a line separator, never splits
off a scope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invalidtoken_mw._grammar import SCOPE_TOKEN_RE
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["check_scopes", "granted_scopes", "validate_scopes"]


def validate_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Check configured scopes once and return them as a tuple.

    Raises:
        ValueError: A scope is not an RFC 6749 §3.3 scope-token.
        TypeError: ``scopes`` is a single string (a common slip for a list).
    """
    if isinstance(scopes, str):
        raise TypeError(f"scopes must be a list, e.g. [{scopes!r}], not a string.")
    result = tuple(dict.fromkeys(scopes))
    for scope in result:
        if not isinstance(scope, str) or not SCOPE_TOKEN_RE.fullmatch(scope):
            raise ValueError(
                f"scope {scope!r} is not valid: a scope is printable ASCII without spaces,"
                " '\"' or '\\' (RFC 6749 §3.3)."
            )
    return result


def granted_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes a token grants, from ``scope`` (string) and ``scp`` (list or string).

    A string is split on spaces (U+0020) only; any part, or list item, that is not an
    RFC 6749 §3.3 scope-token grants nothing.
    """
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            candidates: Iterable[object] = value.split(" ")
        elif isinstance(value, list):
            candidates = value
        else:
            continue
        granted.update(v for v in candidates if isinstance(v, str) and SCOPE_TOKEN_RE.fullmatch(v))
    return frozenset(granted)


def check_scopes(
    claims: Mapping[str, Any], required: Iterable[str], *, any_of: bool = False
) -> None:
    """Raise ``insufficient_scope`` unless the token grants the ``required`` scopes.

    Args:
        claims: The verified claims.
        required: The scopes the request needs.
        any_of: Any one of ``required`` is enough (by default every one is needed).
            An empty ``required`` is always satisfied.

    Raises:
        AuthFailure: With ``scopes`` set to every required scope (RFC 6750 §3: the
            challenge's ``scope`` is the scope the request requires, so a client that
            asks for exactly it keeps the scopes it had) and the ones the token lacks
            in ``context["missing_scopes"]`` (logged as ``missing_scopes``). With
            ``any_of``, the description says that one of them is enough.
    """
    wanted = tuple(required)
    granted = granted_scopes(claims)
    if any_of:
        if not wanted or not granted.isdisjoint(wanted):
            return
        raise AuthFailure(
            Reason.INSUFFICIENT_SCOPE,
            Sentence.INSUFFICIENT_SCOPE_ANY,
            scopes=dict.fromkeys(wanted),
            context={"missing_scopes": list(dict.fromkeys(wanted)), "scopes_rule": "any"},
        )
    missing = [scope for scope in wanted if scope not in granted]
    if missing:
        raise AuthFailure(
            Reason.INSUFFICIENT_SCOPE,
            scopes=dict.fromkeys(wanted),
            context={"missing_scopes": missing},
        )
