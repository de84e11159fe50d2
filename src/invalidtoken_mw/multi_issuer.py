"""MultiIssuerVerifier: one service, several token issuers, each verified by its own rules.

A token names its issuer in ``iss``. :class:`MultiIssuerVerifier` reads that claim,
unverified, in the one pass that splits the token and decodes its claims, and hands the
token to the one :class:`~invalidtoken_mw.JWTVerifier` configured for that issuer. The
chosen verifier then does its full verification as if it were alone (its own keys,
algorithms, audience, ``typ``, claim rules, verdict cache and revocation store); nothing
is decoded twice.

Routing is a dictionary lookup on the exact ``iss``; a multi-tenant template member
(``issuer="https://login.microsoftonline.com/{tenantid}/v2.0"``) is tried only when no
exact issuer matched, in the order the members were given. A token whose ``iss`` no
member serves (absent, not a string, or unknown) is refused ``wrong_issuer`` before any
key is looked up, with the default description: neither the configured issuers nor the
token's ``iss`` appear in the answer.

Example::

    verifier = MultiIssuerVerifier([
        JWTVerifier(issuer_url="https://id.example.com/", audience="api://orders"),
        JWTVerifier(
            jwks_url="https://partner.example.net/keys",
            algorithms=["ES256"],
            issuer="https://partner.example.net",
            audience="orders",
        ),
    ])
    app = InvalidTokenMiddleware(app, verifier=verifier)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.verify import (
    TENANT_PLACEHOLDER,
    JWTVerifier,
    _check_header_shape,
    _split_token,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from invalidtoken_mw.verify import _Split

__all__ = ["MultiIssuerVerifier"]

# Routes of recent tokens of usual size are remembered, so a resent token costs one dict
# lookup before its verifier's verdict cache, not a base64 and JSON decode; the map is
# emptied when full (as the verdict cache's digest memo is).
_ROUTES_REMEMBERED = 256
_ROUTE_MEMO_CHARS = 2048


class MultiIssuerVerifier:
    """A :class:`~invalidtoken_mw.TokenVerifier` that routes each token by its ``iss``.

    Args:
        verifiers: One :class:`~invalidtoken_mw.JWTVerifier` per issuer (or per group
            of issuers sharing keys and rules). Each must expect at least one issuer:
            ``issuer=...``, or ``issuer_url=...``, whose expected ``iss`` is that URL
            exactly (OpenID Connect Discovery §4.3), so routing is known at
            construction and never waits for a metadata fetch. No issuer may be
            expected by two members.

    Raises:
        TypeError: ``verifiers`` is not a list of ``JWTVerifier``.
        ValueError: The list is empty, a member expects no issuer, or two members
            expect the same issuer (or template); the message names it.
    """

    __slots__ = ("_exact", "_max_token_bytes", "_routes", "_templated", "verifiers")

    def __init__(self, verifiers: Iterable[JWTVerifier]) -> None:
        """Build the routing table once."""
        if isinstance(verifiers, (str, bytes, JWTVerifier)) or not hasattr(verifiers, "__iter__"):
            raise TypeError("verifiers must be a list of JWTVerifier, e.g. [JWTVerifier(...)].")
        members = tuple(verifiers)
        if not members:
            raise ValueError("MultiIssuerVerifier needs at least one JWTVerifier.")
        exact: dict[str, JWTVerifier] = {}
        templates: dict[str, JWTVerifier] = {}
        for index, member in enumerate(members):
            if not isinstance(member, JWTVerifier):
                raise TypeError(
                    f"verifiers[{index}] is a {type(member).__name__}; each member must be a"
                    " JWTVerifier."
                )
            if not member.issuer:
                raise ValueError(
                    f"verifiers[{index}] expects no issuer, so no token can be routed to it:"
                    " give it issuer=... or issuer_url=...."
                )
            for issuer in member.issuer:
                table = templates if TENANT_PLACEHOLDER in issuer else exact
                if issuer in table:
                    raise ValueError(
                        f"issuer {issuer!r} is expected by two verifiers; give each issuer"
                        " to exactly one."
                    )
                table[issuer] = member
        self.verifiers = members
        self._exact = exact
        # Members with a template, in the order given: tried after the exact issuers.
        self._templated = tuple(dict.fromkeys(templates.values()))
        self._max_token_bytes = max(member.max_token_bytes for member in members)
        self._routes: dict[str, JWTVerifier] = {}

    def _route(self, token: str) -> tuple[JWTVerifier, _Split]:
        """The member for the token's unverified ``iss``, and the token read once."""
        split = _split_token(token, self._max_token_bytes)
        iss = split.claims.get("iss")
        member = self._exact.get(iss) if type(iss) is str else None
        if member is None:
            member = self._by_template(iss, split)
        if len(token) <= _ROUTE_MEMO_CHARS:
            # The route follows from the token alone; single dict operations are atomic,
            # so threads may race here harmlessly.
            if len(self._routes) >= _ROUTES_REMEMBERED:
                self._routes.clear()
            self._routes[token] = member
        return member, split

    def _by_template(self, iss: object, split: _Split) -> JWTVerifier:
        if type(iss) is str:
            for member in self._templated:
                if member._serves(iss):  # noqa: SLF001 - the verifier's own template match
                    return member
        # Structure before issuer, as in a verifier: a broken header is malformed_token.
        _check_header_shape(split)
        # The default sentence: nothing configured, nothing from the token.
        raise AuthFailure(Reason.WRONG_ISSUER)

    def verifier_for(self, token: str) -> JWTVerifier:
        """The member that verifies ``token``, chosen by its unverified ``iss``.

        For tools such as :func:`invalidtoken_mw.explain.explain`; nothing is verified.

        Raises:
            AuthFailure: ``malformed_token`` (not a JWT) or ``wrong_issuer`` (no member
                serves its ``iss``).
        """
        return self._routes.get(token) or self._route(token)[0]

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, verified by its issuer's verifier.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        member = self._routes.get(token)
        if member is not None:
            return member.verify(token)
        member, split = self._route(token)
        return member._verify(token, split)  # noqa: SLF001 - the claims are decoded once

    async def verify_async(self, token: str) -> dict[str, Any]:
        """:meth:`verify` without blocking the event loop (a key fetch runs in a thread).

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        member = self._routes.get(token)
        if member is not None:
            return await member.verify_async(token)
        member, split = self._route(token)
        return await member._verify_async(token, split)  # noqa: SLF001 - decoded once

    def refresh_keys(self) -> None:
        """Load every member's keys again now (see :meth:`JWTVerifier.refresh_keys`).

        Every member is refreshed even when one fails; the first failure is raised
        after all were tried.

        Raises:
            AuthFailure: ``key_unavailable`` if a member's key set could not be fetched;
                that member keeps the keys it had.
        """
        failures = [failure for member in self.verifiers if (failure := _refreshed(member))]
        if failures:
            raise failures[0]

    async def refresh_keys_async(self) -> None:
        """:meth:`refresh_keys` without blocking the event loop, every member at once.

        Raises:
            AuthFailure: ``key_unavailable`` if a member's key set could not be fetched.
        """
        results = await asyncio.gather(
            *(member.refresh_keys_async() for member in self.verifiers), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def __repr__(self) -> str:
        """How many issuers it routes to; never the issuers (this may reach a log)."""
        return f"MultiIssuerVerifier({len(self.verifiers)} verifiers)"


def _refreshed(member: JWTVerifier) -> AuthFailure | None:
    """Refresh one member's keys; its failure, returned so the others are still refreshed."""
    try:
        member.refresh_keys()
    except AuthFailure as failure:
        return failure
    return None
