"""Development tokens, good or with one chosen defect (``invalidtoken-mw mint``).

For tests, demos and trying the middleware by hand; never for production issuance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFECTS", "mint_token"]

DEFECTS = (
    "expired",
    "not-yet-valid",
    "wrong-audience",
    "wrong-issuer",
    "wrong-type",
    "missing-exp",
    "bad-signature",
    "alg-none",
    "truncated",
    "quoted",
)


# Defects that change the claims or the header before signing.
_BEFORE_SIGNING: dict[str, Callable[[dict[str, Any], dict[str, Any], int], None]] = {
    "expired": lambda body, _head, now: body.update(iat=now - 7200, exp=now - 3600),
    "not-yet-valid": lambda body, _head, now: body.update(
        nbf=now + 3600, iat=now + 3600, exp=now + 7200
    ),
    "wrong-audience": lambda body, _head, _now: body.update(aud="api://somewhere-else"),
    "wrong-issuer": lambda body, _head, _now: body.update(iss="https://untrusted.example/"),
    "wrong-type": lambda _body, head, _now: head.update(typ="JWT"),
    "missing-exp": lambda body, _head, _now: body.pop("exp", None),
}


def _flip_signature(token: str) -> str:
    head_b64, claims_b64, signature = token.split(".")
    return f"{head_b64}.{claims_b64}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


# Defects applied to the signed token.
_AFTER_SIGNING: dict[str, Callable[[str], str]] = {
    "bad-signature": _flip_signature,
    "truncated": lambda token: token.rsplit(".", 1)[0],
    "quoted": lambda token: f'"{token}"',
}


def mint_token(
    key: Any,  # noqa: ANN401 - a secret, a PEM private key or a key object
    *,
    algorithm: str,
    claims: dict[str, Any],
    headers: dict[str, Any] | None = None,
    defect: str | None = None,
    ttl: int = 300,
    now: float | None = None,
) -> str:
    """Sign ``claims`` (``iat``, ``exp`` filled in) and apply an optional ``defect``.

    Raises:
        ValueError: An unknown defect.
    """
    if defect not in (None, *DEFECTS):
        raise ValueError(f"unknown defect {defect!r}; choose from {', '.join(DEFECTS)}")
    moment = int(time.time() if now is None else now)
    body: dict[str, Any] = {"iat": moment, "exp": moment + ttl, **claims}
    head = dict(headers or {})
    if defect in _BEFORE_SIGNING:
        _BEFORE_SIGNING[defect](body, head, moment)
    if defect == "alg-none":
        return jwt.encode(body, "", algorithm="none", headers=head)
    token = jwt.encode(body, key, algorithm=algorithm, headers=head or None)
    return _AFTER_SIGNING[defect](token) if defect in _AFTER_SIGNING else token


def _claim(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--claim takes name=value, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def _run(args: argparse.Namespace) -> int:
    key: Any = Path(args.key_file).read_text(encoding="utf-8") if args.key_file else args.key
    if key is None and args.defect != "alg-none":
        print("invalidtoken-mw: mint needs --key or --key-file", file=sys.stderr)
        return 2
    claims: dict[str, Any] = dict(args.claim or [])
    for name in ("sub", "iss", "aud", "jti"):
        value = getattr(args, name)
        if value is not None:
            claims[name] = value
    if args.scope:
        claims["scope"] = " ".join(args.scope)
    headers = {"kid": args.kid} if args.kid else {}
    if args.typ:
        headers["typ"] = args.typ
    try:
        token = mint_token(
            key,
            algorithm=args.alg,
            claims=claims,
            headers=headers,
            defect=args.defect,
            ttl=args.ttl,
        )
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        print(f"invalidtoken-mw: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def add_mint_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Register ``mint`` on the CLI's subparsers."""
    mint = sub.add_parser("mint", help="make a development token, optionally with a defect")
    mint.add_argument("--key", help="HMAC secret or PEM private key")
    mint.add_argument("--key-file", help="read --key from this file")
    mint.add_argument("--alg", default="HS256", help="signing algorithm (HS256)")
    mint.add_argument("--sub", help="subject")
    mint.add_argument("--iss", help="issuer")
    mint.add_argument("--aud", help="audience")
    mint.add_argument("--jti", help="token id")
    mint.add_argument("--scope", action="append", help="scope to grant (repeatable)")
    mint.add_argument("--kid", help="key id header")
    mint.add_argument("--typ", help="typ header, e.g. at+jwt")
    mint.add_argument("--ttl", type=int, default=300, help="lifetime in seconds (300)")
    mint.add_argument("--claim", action="append", type=_claim, help="extra claim name=JSON")
    mint.add_argument("--defect", choices=DEFECTS, help="make the token fail in this way")
    mint.set_defaults(handler=_run)
