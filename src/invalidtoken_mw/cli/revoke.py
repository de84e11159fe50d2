"""``invalidtoken-mw revoke``: revoke a token or a subject in a shared Redis store.

Writes the keys :class:`~invalidtoken_mw.RedisRevocationStore` reads, so every
instance sharing that Redis refuses the token. Needs the ``redis`` extra.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import jwt

from invalidtoken_mw.cli._term import EXIT_INVALID, EXIT_USAGE, EXIT_VALID, token_arg

if TYPE_CHECKING:
    import argparse

    from invalidtoken_mw.redis_store import RedisRevocationStore

__all__ = ["add_parser"]


def _run(args: argparse.Namespace) -> int:
    import redis  # noqa: PLC0415 - optional extra

    from invalidtoken_mw.redis_store import RedisRevocationStore  # noqa: PLC0415

    store = RedisRevocationStore(args.redis_url, prefix=args.prefix, timeout=3.0)
    try:
        return _revoke(store, args)
    except (redis.RedisError, OSError) as exc:
        print(f"invalidtoken-mw: cannot reach Redis: {type(exc).__name__}", file=sys.stderr)
        return EXIT_INVALID
    except ValueError as exc:  # --before inf, --expires-at nan: the store refuses them
        print(f"invalidtoken-mw: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()


def _revoke(store: RedisRevocationStore, args: argparse.Namespace) -> int:
    """Revoke what ``args`` name; the exit code."""
    if args.token:
        try:
            claims = jwt.decode(token_arg(args.token), options={"verify_signature": False})
        except jwt.DecodeError:
            print("invalidtoken-mw: --token is not a readable JWT", file=sys.stderr)
            return EXIT_USAGE
        jti, issuer, exp = claims.get("jti"), claims.get("iss", ""), claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, (int, float)):
            print("invalidtoken-mw: the token has no jti or exp to revoke by", file=sys.stderr)
            return EXIT_USAGE
        if store.revoke(jti=jti, issuer=issuer, expires_at=exp):
            print(f"revoked jti={jti} issuer={issuer} until exp={exp}")
        else:
            print(f"jti={jti} has already expired: nothing to revoke")
    elif args.subject:
        store.revoke_subject(args.subject, issuer=args.issuer or "", before=args.before)
        print(f"revoked subject={args.subject} issuer={args.issuer or ''}")
    else:
        if args.jti is None or args.expires_at is None:
            print(
                "invalidtoken-mw: give --token, --subject, or --jti with --expires-at",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if store.revoke(jti=args.jti, issuer=args.issuer or "", expires_at=args.expires_at):
            print(f"revoked jti={args.jti} issuer={args.issuer or ''}")
        else:
            print(f"jti={args.jti} has already expired: nothing to revoke")
    return EXIT_VALID


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Register ``revoke`` on the CLI's subparsers."""
    revoke = sub.add_parser("revoke", help="revoke a token or a subject in Redis")
    revoke.add_argument(
        "--redis-url",
        default=os.environ.get("INVALIDTOKEN_REDIS_URL", "redis://localhost:6379/0"),
        help="Redis URL (default $INVALIDTOKEN_REDIS_URL or redis://localhost:6379/0)",
    )
    revoke.add_argument("--prefix", default="invalidtoken:", help="key prefix")
    revoke.add_argument("--token", help="revoke this token by its iss and jti (- for stdin)")
    revoke.add_argument("--jti", help="token id to revoke")
    revoke.add_argument("--issuer", help="issuer of the token or subject")
    revoke.add_argument("--expires-at", type=float, help="exp of the token (epoch seconds)")
    revoke.add_argument("--subject", help="revoke every token of this subject issued before")
    revoke.add_argument("--before", type=float, help="epoch seconds (default: now)")
    revoke.set_defaults(handler=_run)
