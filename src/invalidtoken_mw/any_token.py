"""AnyTokenVerifier: one middleware for JWT access tokens and opaque ones.

Many authorization servers issue JWT access tokens for some clients or grants and
opaque ones (random strings, verified by RFC 7662 introspection) for others.
:class:`AnyTokenVerifier` tells the two apart by shape alone: a token of three
base64url segments separated by dots (the JWS compact serialisation, RFC 7515 §7.1)
goes to the ``jwt`` verifier, everything else to the ``opaque`` one. Nothing is decoded
to decide; the chosen verifier then does its full verification as if it were alone
(its own caches, revocation store and reasons), so a malformed JWT is refused by the
JWT verifier and an unknown opaque string by the opaque one.

Example::

    verifier = AnyTokenVerifier(
        jwt=JWTVerifier(issuer_url="https://id.example.com/", audience="orders"),
        opaque=IntrospectionVerifier(
            "https://id.example.com/oauth2/introspect",
            client_id="orders-api",
            client_secret=secret,
        ),
    )
    app = InvalidTokenMiddleware(app, verifier=verifier)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._jose import JWS_SHAPE
from invalidtoken_mw.reasons import AuthFailure

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from invalidtoken_mw.settings import TokenVerifier

__all__ = ["AnyTokenVerifier"]

# The route of a recent token of usual size is remembered: the shape test walks every
# character (about 2 us for an 800-character JWT), a dict lookup hashes the string once,
# and that hash is cached on the string, so the member's own verdict-cache lookup gets it
# for free. The map is emptied when full, as the verdict cache's digest memo is.
_ROUTES_REMEMBERED = 256
_ROUTE_MEMO_CHARS = 2048


def _has_verify(verifier: object) -> bool:
    return callable(getattr(verifier, "verify", None)) and callable(
        getattr(verifier, "verify_async", None)
    )


class AnyTokenVerifier:
    """A :class:`~invalidtoken_mw.TokenVerifier` for JWTs and opaque tokens alike.

    A token of three base64url segments (``header.payload.signature``) is verified
    by ``jwt``; any other token by ``opaque``. The test is one regular-expression
    match on the token's characters, remembered for recent tokens; no part of the
    token is decoded.

    Args:
        jwt: Verifies JWS-shaped tokens: a :class:`~invalidtoken_mw.JWTVerifier`,
            a :class:`~invalidtoken_mw.MultiIssuerVerifier` or any ``TokenVerifier``.
        opaque: Verifies every other token, typically an ``IntrospectionVerifier``
            (RFC 7662); any ``TokenVerifier``.

    Raises:
        TypeError: A member has no ``verify()`` and ``verify_async()``, or both are
            the same object (one verifier needs no routing).
    """

    __slots__ = ("_routes", "jwt", "opaque")

    def __init__(self, *, jwt: TokenVerifier, opaque: TokenVerifier) -> None:
        """Check both members once."""
        for name, member in (("jwt", jwt), ("opaque", opaque)):
            if not _has_verify(member):
                raise TypeError(
                    f"{name} must be a TokenVerifier with verify() and verify_async(), e.g."
                    + (" JWTVerifier(...)." if name == "jwt" else " IntrospectionVerifier(...).")
                    + f" Got {type(member).__name__}."
                )
        if jwt is opaque:
            raise TypeError(
                "jwt and opaque are the same verifier; use it directly, without AnyTokenVerifier."
            )
        self.jwt = jwt
        self.opaque = opaque
        self._routes: dict[str, TokenVerifier] = {}

    def verifier_for(self, token: str) -> TokenVerifier:
        """The member that verifies ``token``: ``jwt`` if it is JWS-shaped, else ``opaque``.

        For tools such as :func:`invalidtoken_mw.explain.explain`; nothing is verified.
        """
        member = self._routes.get(token)
        return self._route(token) if member is None else member

    def _route(self, token: str) -> TokenVerifier:
        member = self.jwt if JWS_SHAPE.fullmatch(token) else self.opaque
        if len(token) <= _ROUTE_MEMO_CHARS:
            # The route follows from the token alone; single dict operations are atomic,
            # so threads may race here harmlessly.
            if len(self._routes) >= _ROUTES_REMEMBERED:
                self._routes.clear()
            self._routes[token] = member
        return member

    # verify() and verify_async() look the route up inline: a resent token then costs one
    # dict lookup and no extra call before its member's own verdict cache.

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token, verified by the member its shape picks.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        member = self._routes.get(token)
        if member is None:
            member = self._route(token)
        return member.verify(token)

    async def verify_async(self, token: str) -> dict[str, Any]:
        """:meth:`verify` without blocking the event loop.

        Raises:
            AuthFailure: The token is refused; ``.reason`` says why.
        """
        member = self._routes.get(token)
        if member is None:
            member = self._route(token)
        return await member.verify_async(token)

    def refresh_keys(self) -> None:
        """Call ``refresh_keys()`` of each member that has one (a JWT verifier's keys).

        Every such member is refreshed even when one fails; the first failure is
        raised after all were tried.

        Raises:
            AuthFailure: ``key_unavailable`` if a member's keys could not be fetched.
        """
        failures: list[AuthFailure] = []
        for member in (self.jwt, self.opaque):
            refresh: Callable[[], object] | None = getattr(member, "refresh_keys", None)
            if callable(refresh):
                try:
                    refresh()
                except AuthFailure as failure:
                    failures.append(failure)
        if failures:
            raise failures[0]

    async def refresh_keys_async(self) -> None:
        """:meth:`refresh_keys` without blocking the event loop, both members at once.

        Raises:
            AuthFailure: ``key_unavailable`` if a member's keys could not be fetched.
        """
        pending: list[Coroutine[Any, Any, object]] = []
        for member in (self.jwt, self.opaque):
            refresh = getattr(member, "refresh_keys_async", None)
            if callable(refresh):
                pending.append(refresh())
        for result in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result

    def __repr__(self) -> str:
        """The members' types; never their settings (this may reach a log)."""
        jwt, opaque = type(self.jwt).__name__, type(self.opaque).__name__
        return f"AnyTokenVerifier(jwt={jwt}, opaque={opaque})"
