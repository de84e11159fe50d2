"""``invalidtoken-mw explain``: why a token is accepted or rejected, and the exact answer.

Configured as the middleware is, it runs every check of
:func:`invalidtoken_mw.explain.explain` (continuing past the first failure), adds
what the middleware's extraction and a route's required scopes would say, and shows
the status, challenge and body the middleware would send. Offline with a static key.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._jose import decode_object
from invalidtoken_mw.challenge import ChallengeSettings
from invalidtoken_mw.cli._term import (
    EXIT_INVALID,
    EXIT_USAGE,
    EXIT_VALID,
    Style,
    printable,
    token_arg,
)
from invalidtoken_mw.explain import Check, Explanation, explain
from invalidtoken_mw.extract import TokenExtractor
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.render import Renderer
from invalidtoken_mw.scopes import check_scopes, granted_scopes, validate_scopes
from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    import argparse

__all__ = ["add_parser"]

_JWT_SEGMENTS = 3
_JWE_SEGMENTS = 5


def _read_key(args: argparse.Namespace) -> Any:  # noqa: ANN401 - secret, PEM or JWK
    if args.key_file:
        text = Path(args.key_file).read_text(encoding="utf-8")
    elif args.key is not None:
        text = args.key
    else:
        return None
    stripped = text.strip()
    if stripped.startswith("{"):
        return json.loads(stripped)
    return stripped if "-----BEGIN" in stripped else text


def _default_algorithms(key: Any) -> list[str]:  # noqa: ANN401 - secret, PEM or JWK
    """A sensible allowlist from the key's type; never from the token."""
    if isinstance(key, dict):
        if "alg" in key:
            return [key["alg"]]
        return {"RSA": ["RS256"], "EC": ["ES256"], "OKP": ["EdDSA"]}.get(
            str(key.get("kty")), ["RS256"]
        )
    if isinstance(key, str) and "-----BEGIN" in key:
        return ["ES256"] if "EC " in key or _is_ec_pem(key) else ["RS256"]
    return ["HS256"] if key is not None else ["RS256"]


def _is_ec_pem(pem: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only for explain
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        return isinstance(load_pem_public_key(pem.encode()), ec.EllipticCurvePublicKey)
    except ValueError:
        return False


def _build_verifier(args: argparse.Namespace) -> JWTVerifier:
    given = (args.key, args.key_file, args.jwks_url, args.issuer_url)
    if all(source is None for source in given):
        raise ValueError("give the verification key: --key, --key-file, --jwks-url or --issuer-url")
    key = _read_key(args)
    # With --issuer-url and no --alg, the issuer's metadata says which algorithms it uses.
    algorithms = args.alg or (None if args.issuer_url else _default_algorithms(key))
    return JWTVerifier(
        key=key,
        jwks_url=args.jwks_url,
        issuer_url=args.issuer_url,
        algorithms=algorithms,
        issuer=args.issuer or None,
        audience=args.audience or None,
        leeway=args.leeway,
        required_claims=tuple(args.require),
        token_type=args.token_type,
        cache_size=0,
    )


def _answer(failure: AuthFailure | None, renderer: Renderer) -> dict[str, Any]:
    if failure is None:
        return {"status": 200, "www_authenticate": None, "headers": {}, "body": None}
    rendered = renderer.render(failure)
    headers = dict(rendered.headers)
    return {
        "status": rendered.status,
        "www_authenticate": headers.get("www-authenticate"),
        "headers": headers,
        "body": json.loads(rendered.body),
    }


def _segments_check(token: str) -> Check | None:
    """A plain-English line when the token does not have the 3 segments of a JWT."""
    count = token.count(".") + 1
    if count == _JWT_SEGMENTS:
        return None
    if count == 1:
        detail = "the token has 1 segment: it is not a JWT, or it looks truncated — copy it again"
    elif count < _JWT_SEGMENTS:
        detail = f"the token has {count} segments: it looks truncated — copy it again"
    elif count == _JWE_SEGMENTS:
        detail = (
            f"the token has {count} segments: it is encrypted (JWE), not a signed JWT"
            " — ask the issuer for a signed access token"
        )
    else:
        detail = (
            f"the token has {count} segments, a JWT has 3: it looks like two tokens"
            " pasted together — copy it again"
        )
    return Check.fail("segments", detail)


def _extraction_failure(token: str) -> AuthFailure | None:
    """What the middleware's extraction says about ``Authorization: Bearer <token>``."""
    try:
        TokenExtractor().extract([f"Bearer {token}"])
    except AuthFailure as failure:
        return failure
    return None


def _scope_check(
    claims: dict[str, Any], required: tuple[str, ...]
) -> tuple[Check, AuthFailure | None]:
    granted = " ".join(sorted(granted_scopes(claims))) or "no scope"
    try:
        check_scopes(claims, required)
    except AuthFailure as failure:
        detail = (
            f"the token grants {granted}; this request needs {' '.join(required)}"
            f" (missing: {' '.join(failure.scopes)})"
        )
        return Check.fail("scope", detail), failure
    return Check.ok("scope", f"grants {' '.join(required)}"), None


def _unverified_parts(token: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The header and claims of a token the verifier could not parse, for display only."""
    segments = token.strip("\"'").split(".")
    if len(segments) < 2:  # noqa: PLR2004 - header and claims
        return None, None
    return decode_object(segments[0]), decode_object(segments[1])


def _named_for_the_reader(report: Explanation) -> list[Check]:
    """The report's checks; a refused algorithm is named ``alg``, not ``structure``."""
    if report.failure is not None and report.failure.reason is Reason.ALGORITHM_NOT_ALLOWED:
        return [
            Check(c.name if c.name != "structure" else "alg", c.passed, c.detail)
            for c in report.checks
        ]
    return list(report.checks)


def _run(args: argparse.Namespace) -> int:
    try:
        verifier = _build_verifier(args)
        renderer = Renderer(ChallengeSettings(args.realm))
        required = validate_scopes(args.scope or ())
    except (ValueError, TypeError, OSError) as exc:
        print(f"invalidtoken-mw: {exc}", file=sys.stderr)
        return EXIT_USAGE
    token = token_arg(args.token)
    if token[:7].lower() == "bearer ":
        print("invalidtoken-mw: explaining the token after 'Bearer '", file=sys.stderr)
        token = token[7:].strip()
    if not token:
        print("invalidtoken-mw: no token given (empty argument or stdin)", file=sys.stderr)
        return EXIT_USAGE
    report = explain(verifier, token)
    refused = _extraction_failure(token)
    segments = _segments_check(token)
    checks = [c for c in (segments,) if c is not None]
    if refused is not None:
        # The middleware stops at extraction; the verifier's structure failure says less.
        checks.append(Check.fail("bearer", refused.description))
        checks.extend(c for c in report.checks if c.name != "structure")
    else:
        checks.extend(_named_for_the_reader(report))
    header, claims = report.header, report.claims
    if header is None:
        header, claims = _unverified_parts(token)
    failure = refused or report.failure
    if required and claims is not None:
        scope, lacking = _scope_check(claims, required)
        checks.append(scope)
        failure = failure or lacking
    answer = _answer(failure, renderer)
    if args.json:
        data = {
            "valid": failure is None,
            "reason": None if failure is None else failure.reason.value,
            "status": answer["status"],
            "description": None if failure is None else failure.description,
            "token_kind": None if report.token_kind is None else report.token_kind.value,
            "header": header,
            "claims": claims,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in checks],
            "response": answer,
        }
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        shown = Explanation(header, claims, tuple(checks), failure, report.token_kind)
        _print_report(shown, answer, Style(sys.stdout))
    return EXIT_VALID if failure is None else EXIT_INVALID


def _print_report(report: Explanation, answer: dict[str, Any], style: Style) -> None:
    out = sys.stdout
    if report.header is not None:
        out.write(style.bold("Header") + "\n" + json.dumps(report.header, indent=2) + "\n")
    if report.claims is not None:
        out.write(style.bold("Claims") + "\n" + json.dumps(report.claims, indent=2) + "\n")
    out.write(style.bold("Checks") + "\n")
    for check in report.checks:
        mark = (
            "-" if check.passed is None else style.ok("PASS") if check.passed else style.bad("FAIL")
        )
        out.write(f"  {mark:>4}  {check.name:<16} {printable(check.detail)}\n")
    if report.token_kind is not None:
        out.write(f"\n{style.bold('Token kind')}  {report.token_kind.value}\n")
    failure = report.failure
    verdict = (
        style.ok("VALID") if failure is None else style.bad(f"REJECTED: {failure.reason.value}")
    )
    out.write(f"\n{style.bold('Verdict')}  {verdict}\n")
    out.write(f"{style.bold('The middleware would answer')}\n  HTTP {answer['status']}\n")
    if answer["www_authenticate"]:
        out.write(f"  WWW-Authenticate: {answer['www_authenticate']}\n")
    if "retry-after" in answer["headers"]:
        out.write(f"  Retry-After: {answer['headers']['retry-after']}\n")
    if answer["body"] is not None:
        out.write(f"  {json.dumps(answer['body'])}\n")


def _add_verifier_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("verification (as the middleware is configured)")
    group.add_argument("--key", help="HMAC secret, PEM public key or JWK JSON")
    group.add_argument("--key-file", help="read --key from this file")
    group.add_argument("--jwks-url", help="JWKS endpoint instead of a static key")
    group.add_argument(
        "--issuer-url",
        help="issuer whose metadata (/.well-known/openid-configuration) names the JWKS;"
        " also the expected issuer",
    )
    group.add_argument("--alg", action="append", help="allowed algorithm (repeatable)")
    group.add_argument("--issuer", action="append", help="expected issuer (repeatable)")
    group.add_argument("--audience", action="append", help="this resource's audience")
    group.add_argument("--leeway", type=float, default=60, help="clock skew seconds (60)")
    group.add_argument("--require", action="append", default=["exp"], help="required claim")
    group.add_argument("--token-type", help="required typ, e.g. at+jwt")
    group.add_argument("--scope", action="append", help="scope the request needs")
    group.add_argument("--realm", default="api", help="realm of the challenge shown")


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Register ``explain`` on the CLI's subparsers."""
    explain = sub.add_parser("explain", help="explain why a token is accepted or rejected")
    explain.add_argument("token", help="the token, or - to read it from stdin")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    _add_verifier_options(explain)
    explain.set_defaults(handler=_run)
