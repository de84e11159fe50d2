"""Explain a token: every check, passed or failed, in plain English.

:func:`explain` runs each of the verifier's checks on its own and keeps going past
the first failure, so a person sees everything that is wrong at once. The verdict
(:attr:`Explanation.failure`) is exactly what :meth:`JWTVerifier.verify` answers,
with the description the middleware sends: where the kind of credential explains the
failure (an ID token, a GitHub key), the sentence naming it
(:func:`~invalidtoken_mw.token_kind.describe_refusal`); :attr:`Explanation.token_kind`
says what the token looks like.
It reads the token's untrusted header and claims for display: the report is for the
operator's terminal or a test, never for a response.

It uses only the verifier's public API (:meth:`~JWTVerifier.parse`,
:meth:`~JWTVerifier.signing_key`, :meth:`~JWTVerifier.check_signature`,
:meth:`~JWTVerifier.verify` and its configuration attributes); the verifier does
not know about it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._keyhealth import describe
from invalidtoken_mw.any_token import AnyTokenVerifier
from invalidtoken_mw.discovery import DiscoveryKeys
from invalidtoken_mw.multi_issuer import MultiIssuerVerifier
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.token_kind import TokenKind, describe_refusal, detect_token_kind
from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    from invalidtoken_mw.settings import TokenVerifier
    from invalidtoken_mw.verify import ParsedToken

__all__ = ["Check", "Explanation", "explain", "human_duration"]

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def human_duration(seconds: float) -> str:
    """Render a duration as its two largest units, e.g. ``3 h 12 min`` or ``45 s``."""
    if not math.isfinite(seconds):
        return "forever"
    remaining = int(abs(seconds))
    parts: list[str] = []
    for unit, size in _UNITS:
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size} {unit}")
            remaining %= size
        if len(parts) == 2:  # noqa: PLR2004 - two units read best
            break
    return " ".join(parts)


def _iso(timestamp: float) -> str:
    try:
        moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{timestamp!r} (out of range)"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Check:
    """One check: its name, whether it passed (``None``: not applicable) and why."""

    name: str
    passed: bool | None
    detail: str

    @classmethod
    def of(cls, name: str, passed: bool, detail: str) -> Check:  # noqa: FBT001 - the verdict
        """A check that passed or failed."""
        return cls(name, passed, detail)

    @classmethod
    def ok(cls, name: str, detail: str) -> Check:
        """A check that passed."""
        return cls(name, True, detail)  # noqa: FBT003 - the dataclass field

    @classmethod
    def fail(cls, name: str, detail: str) -> Check:
        """A check that failed."""
        return cls(name, False, detail)  # noqa: FBT003 - the dataclass field

    @classmethod
    def skip(cls, name: str, detail: str) -> Check:
        """A check that does not apply."""
        return cls(name, None, detail)


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything :func:`explain` found out about a token.

    ``token_kind`` is what the token looks like (:func:`~invalidtoken_mw.detect_token_kind`),
    ``None`` where no token was looked at.
    """

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    checks: tuple[Check, ...]
    failure: AuthFailure | None = field(default=None)
    token_kind: TokenKind | None = field(default=None)

    @property
    def valid(self) -> bool:
        """True when the verifier accepts the token."""
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the report."""
        return {
            "valid": self.valid,
            "reason": None if self.failure is None else self.failure.reason.value,
            "status": 200 if self.failure is None else self.failure.status,
            "description": None if self.failure is None else self.failure.description,
            "token_kind": None if self.token_kind is None else self.token_kind.value,
            "header": self.header,
            "claims": self.claims,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
        }


def _number(claims: dict[str, Any], name: str) -> float | None:
    """The claim as the verifier reads it (``int(value)``), or ``None`` where it refuses it.

    A NumericDate is a JSON number (RFC 7519 §2): strings, booleans and null are not.
    """
    value = claims.get(name)
    if type(value) is not int and type(value) is not float:
        return None
    try:
        whole = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    try:
        return float(whole)
    except OverflowError:  # 10**400 is beyond any date, but PyJWT accepts it
        return math.inf if whole > 0 else -math.inf


def _time_checks(claims: dict[str, Any], leeway: float, now: float) -> list[Check]:
    checks: list[Check] = []
    exp = _number(claims, "exp")
    if "exp" not in claims:
        checks.append(Check.skip("exp", "no exp claim: the token never expires"))
    elif exp is None:
        checks.append(Check.fail("exp", "exp is not a number"))
    elif exp <= now - leeway:
        ago = human_duration(now - exp)
        checks.append(Check.fail("exp", f"expired {ago} ago at {_iso(exp)}"))
    else:
        left = human_duration(exp - now)
        note = (
            f"valid for another {left} (until {_iso(exp)})"
            if exp > now
            else (
                f"expired {human_duration(now - exp)} ago, accepted within the {leeway:g} s leeway"
            )
        )
        checks.append(Check.ok("exp", note))
    for name, label in (("nbf", "not valid before"), ("iat", "issued at")):
        value = _number(claims, name)
        if name not in claims:
            continue
        if value is None:
            checks.append(Check.fail(name, f"{name} is not a number"))
        elif value > now + leeway:
            ahead = human_duration(value - now)
            checks.append(
                Check.fail(
                    name,
                    f"{label} {_iso(value)}, {ahead} in the future: the issuer's clock or"
                    " this machine's is probably wrong",
                )
            )
        else:
            checks.append(Check.ok(name, f"{label} {_iso(value)}"))
    return checks


def _claim_checks(
    verifier: JWTVerifier, header: dict[str, Any], claims: dict[str, Any]
) -> list[Check]:
    checks: list[Check] = []
    if verifier.issuer is not None:
        iss = claims.get("iss")
        expected = " or ".join(verifier.issuer)
        detail = f"issuer is {iss!r}, this service expects {expected}"
        try:
            verifier.check_issuer(claims)
        except AuthFailure as refused:
            if refused.description != Reason.WRONG_ISSUER.description:
                # A tenant template's own refusal (tenant not allowed, tid) says more.
                detail = f"{refused.description} ({detail})"
            checks.append(Check.fail("iss", detail))
        else:
            checks.append(Check.ok("iss", detail))
    if verifier.audience is not None:
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        # As PyJWT: one non-string member makes the whole claim unusable.
        ok = all(isinstance(a, str) for a in auds) and any(a in verifier.audience for a in auds)
        shown = ", ".join(str(a) for a in auds) or "absent"
        expected = " or ".join(verifier.audience)
        checks.append(Check.of("aud", ok, f"audience is {shown}, this service expects {expected}"))
    elif claims.get("aud") and not verifier.accept_any_audience:
        checks.append(
            Check.fail(
                "aud",
                f"audience is {claims['aud']!r}, but this service is configured with no"
                " audience: a token naming one is refused (RFC 7519 4.1.3); configure"
                " the audience (--audience) or accept_any_audience=True",
            )
        )
    if verifier.token_type is not None:
        typ = header.get("typ")
        ok = (
            isinstance(typ, str) and typ.lower().removeprefix("application/") == verifier.token_type
        )
        checks.append(
            Check.of("typ", ok, f"typ is {typ!r}, this service expects {verifier.token_type!r}")
        )
    missing = [c for c in verifier.required_claims if claims.get(c) is None]
    if verifier.required_claims:
        detail = "missing: " + ", ".join(missing) if missing else "all present"
        checks.append(Check.of("required_claims", not missing, detail))
    if verifier.claim_rules:
        failure = verifier.claim_rules.failure(claims)
        names = ", ".join(verifier.claim_rules.names)
        # The operator's own token: the description names the claim, never the value.
        detail = f"{names} accepted" if failure is None else failure.description
        checks.append(Check.of("claim_rules", failure is None, detail))
    return checks


def _signature_check(verifier: JWTVerifier, parsed: ParsedToken) -> Check:
    """Key lookup and signature, with every claim check left out."""
    try:
        verifier.check_signature(parsed, verifier.signing_key(parsed))
    except AuthFailure as failure:
        if failure.reason is Reason.BAD_SIGNATURE:
            return Check.fail("signature", "the signature does not match the key")
        why = describe(failure.__cause__) if failure.reason is Reason.KEY_UNAVAILABLE else None
        if why is not None:
            # The operator's question is why the keys are missing, not that they are.
            return Check.fail(
                "signature", f"the signing keys could not be fetched ({why.cause}): {why.detail}"
            )
        return Check.fail("signature", failure.description)
    return Check.ok("signature", f"signed with {parsed.alg}, key {parsed.kid or '(static)'}")


def _explain_member(member: TokenVerifier, token: str, kind: str) -> Explanation:
    """The verdict of a verifier whose checks :func:`explain` cannot take apart."""
    checks = [Check.ok("kind", f"{kind}: verified by {type(member).__name__}")]
    try:
        claims = member.verify(token)
    except AuthFailure as refused:
        checks.append(Check.fail("verify", refused.description))
        return Explanation(None, None, tuple(checks), refused)
    checks.append(Check.ok("verify", "accepted"))
    return Explanation(None, claims, tuple(checks))


def explain(
    verifier: JWTVerifier | MultiIssuerVerifier | AnyTokenVerifier,
    token: str,
    *,
    now: float | None = None,
) -> Explanation:
    """Report every check of ``verifier`` on ``token``, continuing past failures.

    Needs no network with a static key; with a JWKS URL it may fetch the key set. A
    :class:`~invalidtoken_mw.MultiIssuerVerifier` is explained through the member its
    routing picks for the token's ``iss``. An
    :class:`~invalidtoken_mw.AnyTokenVerifier` is explained through the member the
    token's shape picks: a JWT verifier check by check, any other verifier (an opaque
    token's introspection) by its verdict alone, which may call its server.

    Example::

        report = explain(verifier, token)
        if not report.valid:
            print(report.failure.reason, [c.name for c in report.checks if c.passed is False])
    """
    report = _explain(verifier, token, time.time() if now is None else now)
    kind = detect_token_kind(token)
    failure = report.failure
    if failure is not None:
        failure = describe_refusal(failure, kind)  # as the middleware describes it
    return dataclasses.replace(report, failure=failure, token_kind=kind)


def _explain(
    verifier: JWTVerifier | MultiIssuerVerifier | AnyTokenVerifier, token: str, now: float
) -> Explanation:
    if isinstance(verifier, AnyTokenVerifier):
        member = verifier.verifier_for(token)
        if member is verifier.opaque:
            return _explain_member(member, token, "not three base64url segments (not a JWT)")
        if not isinstance(member, (JWTVerifier, MultiIssuerVerifier)):
            return _explain_member(member, token, "three base64url segments (a JWT)")
        verifier = member
    if isinstance(verifier, MultiIssuerVerifier):
        try:
            verifier = verifier.verifier_for(token)
        except AuthFailure as refused:
            check = "structure" if refused.reason is Reason.MALFORMED_TOKEN else "iss"
            return Explanation(None, None, (Check.fail(check, refused.description),), refused)
    try:
        parsed = verifier.parse(token)
    except AuthFailure as refused:
        return Explanation(None, None, (Check.fail("structure", refused.description),), refused)
    signature = _signature_check(verifier, parsed)  # may fetch an issuer's metadata
    allowed = verifier.algorithms
    if isinstance(verifier.keys, DiscoveryKeys) and verifier.keys.algorithms is not None:
        allowed = verifier.keys.algorithms  # what the issuer advertises
    checks = [
        Check.ok("structure", "three base64url segments with JSON header and claims"),
        Check.of(
            "alg",
            parsed.alg in allowed,
            f"{parsed.alg} {'is' if parsed.alg in allowed else 'is not'} allowed"
            f" ({', '.join(allowed)})",
        ),
        signature,
        *_time_checks(parsed.claims, verifier.leeway, now),
        *_claim_checks(verifier, parsed.header, parsed.claims),
    ]
    failure: AuthFailure | None = None
    try:
        verifier.verify(token)
    except AuthFailure as exc:
        failure = exc
    return Explanation(parsed.header, parsed.claims, tuple(checks), failure)
