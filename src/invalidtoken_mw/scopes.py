"""Scope and role checks (RFC 6749 §3.3, RFC 9068 §2.2.3): what a token grants.

By default scopes come from the space-separated ``scope`` string claim and the ``scp``
claim (a list or a string, used by several identity providers), and roles from the
``roles`` list claim (Entra ID); the claims are configurable (``scope_claims``,
``role_claims``), by name or dotted path: Auth0's ``permissions``, Keycloak's
``realm_access.roles``. A string claim holds space-separated values, a list claim one
value per item. Only U+0020 separates scopes, and only
RFC 6749 scope-tokens (printable ASCII without space, double quote or backslash) are
granted: other whitespace, such as a no-break space or a line separator, never splits
off a scope.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._grammar import SCOPE_TOKEN_RE
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.claims import ClaimPath
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "DEFAULT_ROLE_CLAIMS",
    "DEFAULT_SCOPE_CLAIMS",
    "check_roles",
    "check_scopes",
    "granted_roles",
    "granted_scopes",
    "validate_claim_names",
    "validate_roles",
    "validate_scopes",
]

DEFAULT_SCOPE_CLAIMS: tuple[str, ...] = ("scope", "scp")
"""The claims scopes are read from unless configured (RFC 9068 ``scope``, and ``scp``)."""
DEFAULT_ROLE_CLAIMS: tuple[str, ...] = ("roles",)
"""The claims roles are read from unless configured (Entra ID's and RFC 9068's ``roles``)."""


@functools.lru_cache(maxsize=64)  # bounded and thread-safe; a service configures few
def _paths(names: tuple[str, ...]) -> tuple[ClaimPath, ...]:
    return tuple(ClaimPath(name) for name in names)


def validate_claim_names(names: Iterable[str], option: str) -> tuple[str, ...]:
    """Check configured claim names (or dotted paths) once and return them as a tuple.

    Raises:
        ValueError: No name, or one that names no claim.
        TypeError: ``names`` is a single string (a common slip for a list).
    """
    if isinstance(names, str):
        raise TypeError(f"{option} must be a list, e.g. [{names!r}], not a string.")
    result = tuple(dict.fromkeys(names))
    if not result:
        raise ValueError(f"{option} must name at least one claim, e.g. ['scope'].")
    _paths(result)  # raises for a name no claim can have
    return result


def validate_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Check configured roles once and return them as a tuple.

    Raises:
        ValueError: A role is empty or holds a space or control character (a role in
            a string claim is one of its space-separated parts).
        TypeError: ``roles`` is a single string (a common slip for a list).
    """
    if isinstance(roles, str):
        raise TypeError(f"roles must be a list, e.g. [{roles!r}], not a string.")
    result = tuple(dict.fromkeys(roles))
    for role in result:
        if not isinstance(role, str) or not role or not role.isprintable() or " " in role:
            raise ValueError(f"role {role!r} is not valid: a role is printable, without spaces.")
    return result


def _values(claims: Mapping[str, Any], names: tuple[str, ...]) -> set[str]:
    """Every string granted by the named claims: a string split on U+0020, a list's items."""
    found: set[str] = set()
    for path in _paths(names):
        value = path.lookup(claims)
        if isinstance(value, str):
            found.update(value.split(" "))
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    found.discard("")
    return found


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


def granted_scopes(
    claims: Mapping[str, Any], claim_names: Iterable[str] = DEFAULT_SCOPE_CLAIMS
) -> frozenset[str]:
    """The scopes a token grants, from ``claim_names`` (by default ``scope`` and ``scp``).

    A string is split on spaces (U+0020) only; any part, or list item, that is not an
    RFC 6749 §3.3 scope-token grants nothing.
    """
    return frozenset(v for v in _values(claims, tuple(claim_names)) if SCOPE_TOKEN_RE.fullmatch(v))


def granted_roles(
    claims: Mapping[str, Any], claim_names: Iterable[str] = DEFAULT_ROLE_CLAIMS
) -> frozenset[str]:
    """The roles a token grants, from ``claim_names`` (by default ``roles``).

    A list claim grants each string item; a string claim each space-separated part.
    """
    return frozenset(_values(claims, tuple(claim_names)))


def check_roles(
    claims: Mapping[str, Any],
    required: Iterable[str],
    *,
    any_of: bool = False,
    claim_names: Iterable[str] = DEFAULT_ROLE_CLAIMS,
) -> None:
    """Raise ``insufficient_role`` unless the token grants the ``required`` roles.

    Args:
        claims: The verified claims.
        required: The roles the request needs.
        any_of: Any one of ``required`` is enough (by default every one is needed).
            An empty ``required`` is always satisfied.
        claim_names: The claims roles are read from (names or dotted paths).

    Raises:
        AuthFailure: ``insufficient_role`` (403, ``error="insufficient_scope"``, no
            ``scope`` in the challenge), the roles the token lacks in
            ``context["missing_roles"]`` (logged, never sent).
    """
    wanted = tuple(dict.fromkeys(required))
    if not wanted:
        return
    granted = granted_roles(claims, claim_names)
    if any_of:
        if not granted.isdisjoint(wanted):
            return
        raise AuthFailure(
            Reason.INSUFFICIENT_ROLE,
            Sentence.INSUFFICIENT_ROLE_ANY,
            context={"missing_roles": list(wanted), "roles_rule": "any"},
        )
    missing = [role for role in wanted if role not in granted]
    if missing:
        raise AuthFailure(Reason.INSUFFICIENT_ROLE, context={"missing_roles": missing})


def check_scopes(
    claims: Mapping[str, Any],
    required: Iterable[str],
    *,
    any_of: bool = False,
    claim_names: Iterable[str] = DEFAULT_SCOPE_CLAIMS,
) -> None:
    """Raise ``insufficient_scope`` unless the token grants the ``required`` scopes.

    Args:
        claims: The verified claims.
        required: The scopes the request needs.
        any_of: Any one of ``required`` is enough (by default every one is needed).
            An empty ``required`` is always satisfied.
        claim_names: The claims scopes are read from (names or dotted paths).

    Raises:
        AuthFailure: With ``scopes`` set to every required scope (RFC 6750 §3: the
            challenge's ``scope`` is the scope the request requires, so a client that
            asks for exactly it keeps the scopes it had) and the ones the token lacks
            in ``context["missing_scopes"]`` (logged as ``missing_scopes``). With
            ``any_of``, the description says that one of them is enough.
    """
    wanted = tuple(required)
    granted = granted_scopes(claims, claim_names)
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
