"""Claim rules and claim paths: the values a token must carry beyond the registered claims.

A :class:`ClaimRules` is built once from ``{"claim": rule}`` (the verifier's
``claim_rules``) and checked in the verifier's one pass, after the registered claims.
A rule is one of:

* a string, number or boolean: the claim must equal it (as a JSON value of the same
  type: ``"1"`` never equals ``1``, ``true`` never equals ``1``);
* a list, tuple, set or frozenset of them: an allowlist; the claim must be one of them;
* a callable taking the claim's value and returning ``True`` to accept it.

A claim is named by its name, or by a dotted path into nested objects
(``"realm_access.roles"``): a top-level claim with exactly the configured name wins,
so URL-namespaced names such as ``"https://example.com/roles"`` work as they are.
An absent (or ``null``) claim is ``missing_claim``; a value the rule does not accept
is ``wrong_claim``, naming the claim (from the configuration, never the value).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

__all__ = ["CLIENT_ID_CLAIMS", "ClaimPath", "ClaimRule", "ClaimRules", "ClaimValue", "client_id"]

CLIENT_ID_CLAIMS = ("azp", "client_id", "cid", "appid")
"""The claims naming the client, first present wins (OIDC, RFC 9068, Okta, Entra ID v1)."""

ClaimValue: TypeAlias = str | int | float | bool
"""A JSON scalar a rule compares a claim with."""
ClaimRule: TypeAlias = ClaimValue | Collection[ClaimValue] | Callable[[Any], bool]
"""Equality with a value, membership in an allowlist, or a predicate of the value."""

_NAMEABLE = re.compile(r"[A-Za-z0-9_:.\-]{1,64}")
_SCALARS = (str, int, float, bool)
_ABSENT: Any = object()


def client_id(claims: Mapping[str, Any]) -> str | None:
    """The client a token's claims name: the first string of :data:`CLIENT_ID_CLAIMS`.

    Read as it is: callers that show it (logs, spans) make it safe their own way.
    """
    for name in CLIENT_ID_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str):
            return value
    return None


def _same(value: object, expected: ClaimValue) -> bool:
    """JSON equality: the same type (a bool is no number) and the same value."""
    if type(expected) is bool or type(value) is bool:
        return value is expected
    if isinstance(expected, str):
        return type(value) is str and value == expected
    return type(value) in (int, float) and value == expected


@dataclass(frozen=True, slots=True)
class ClaimPath:
    """A claim named by its name or a dotted path into nested objects.

    Attributes:
        name: As configured, e.g. ``"roles"`` or ``"realm_access.roles"``.
    """

    name: str

    def __post_init__(self) -> None:
        """Refuse a name no claim can have."""
        if not isinstance(self.name, str) or not self.name or "" in self.name.split("."):
            raise ValueError(
                f"claim {self.name!r} is not a claim name or a dotted path such as"
                " 'realm_access.roles'."
            )

    def lookup(self, claims: Mapping[str, Any]) -> Any:  # noqa: ANN401 - any JSON value
        """The claim's value, or ``None`` when it is absent.

        The top-level claim with exactly this name wins; otherwise the dotted path is
        followed through JSON objects.
        """
        value = claims.get(self.name, _ABSENT)
        if value is not _ABSENT:
            return value
        if "." not in self.name:
            return None
        node: Any = claims
        for part in self.name.split("."):
            if type(node) is not dict:
                return None
            node = node.get(part)
        return node

    def missing(self) -> AuthFailure:
        """``missing_claim`` naming this claim (when it looks like a claim name)."""
        if _NAMEABLE.fullmatch(self.name):
            return AuthFailure(
                Reason.MISSING_CLAIM, Sentence.LACKS_THE_CLAIM.format(claim=self.name)
            )
        return AuthFailure(Reason.MISSING_CLAIM)

    def mismatch(self, context: Mapping[str, object] | None = None) -> AuthFailure:
        """``wrong_claim`` naming this claim (when it looks like a claim name)."""
        description = (
            Sentence.CLAIM_NOT_ACCEPTED.format(claim=self.name)
            if _NAMEABLE.fullmatch(self.name)
            else None
        )
        return AuthFailure(
            Reason.WRONG_CLAIM, description, context={"claim": self.name, **(context or {})}
        )


@dataclass(frozen=True, slots=True)
class _Rule:
    path: ClaimPath
    equals: tuple[ClaimValue, ...] | None
    predicate: Callable[[Any], bool] | None

    def failure(self, claims: Mapping[str, Any]) -> AuthFailure | None:
        value = self.path.lookup(claims)
        if value is None:
            return self.path.missing()
        if self.predicate is not None:
            try:
                accepted = self.predicate(value) is True
            except Exception as exc:  # noqa: BLE001 - a rule that cannot judge a value refuses it
                return self.path.mismatch({"rule_error": type(exc).__name__})
            return None if accepted else self.path.mismatch()
        assert self.equals is not None  # noqa: S101 - one of the two is set by _compile
        if any(_same(value, expected) for expected in self.equals):
            return None
        return self.path.mismatch()


def _compile(name: str, rule: object) -> _Rule:
    path = ClaimPath(name)
    if isinstance(rule, _SCALARS):
        return _Rule(path, (rule,), None)
    if isinstance(rule, (list, tuple, set, frozenset)):
        values = tuple(rule)
        if not values or not all(isinstance(v, _SCALARS) for v in values):
            raise ValueError(
                f"claim_rules[{name!r}] must list the accepted values, e.g."
                f" {{{name!r}: ['app-1', 'app-2']}}."
            )
        return _Rule(path, values, None)
    if callable(rule):
        return _Rule(path, None, rule)
    raise TypeError(
        f"claim_rules[{name!r}] must be a value, a list of accepted values or a callable"
        f" returning True for an accepted value; got {type(rule).__name__}."
    )


class ClaimRules:
    """Required claim values, checked together in the configured order.

    Args:
        rules: ``{claim name or dotted path: rule}``; see the module documentation.

    Raises:
        ValueError: A rule is empty or names no claim.
        TypeError: A rule is neither a value, an allowlist nor a callable.
    """

    __slots__ = ("_rules",)

    def __init__(self, rules: Mapping[str, ClaimRule]) -> None:
        """Check every rule once."""
        if not isinstance(rules, Mapping):
            raise TypeError(
                "claim_rules must be a mapping such as {'token_use': 'access'},"
                f" not {type(rules).__name__}."
            )
        self._rules = tuple(_compile(name, rule) for name, rule in rules.items())

    def __bool__(self) -> bool:
        """Whether there is any rule."""
        return bool(self._rules)

    @property
    def names(self) -> tuple[str, ...]:
        """The claims the rules read, in order."""
        return tuple(rule.path.name for rule in self._rules)

    def failure(self, claims: Mapping[str, Any]) -> AuthFailure | None:
        """The first rule the claims break, as its failure; ``None`` when all hold."""
        for rule in self._rules:
            failure = rule.failure(claims)
            if failure is not None:
                return failure
        return None

    def check(self, claims: Mapping[str, Any]) -> None:
        """Raise the first rule's failure.

        Raises:
            AuthFailure: ``missing_claim`` or ``wrong_claim``.
        """
        failure = self.failure(claims)
        if failure is not None:
            raise failure
