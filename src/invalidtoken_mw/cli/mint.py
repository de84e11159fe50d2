"""``invalidtoken-mw mint``: development tokens, good or with one chosen defect.

For tests, demos and trying the middleware by hand; never for production issuance.
The tokens come from :func:`invalidtoken_mw.testing.mint_token`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jwt

from invalidtoken_mw.cli._term import EXIT_USAGE, EXIT_VALID
from invalidtoken_mw.testing import DEFECTS, mint_token

__all__ = ["add_parser"]


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
        return EXIT_USAGE
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
        return EXIT_USAGE
    print(token)
    return EXIT_VALID


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
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
