"""Where our time goes: each step of the hot paths, timed in the same run.

The scenarios say how much a stack adds; this says which steps of ours the overhead is
made of, so a missed target can be explained with numbers from the same run. Steps
call private methods on purpose (a benchmark may; the library's API does not need to).
"""

# ruff: noqa: SLF001 - timing private steps one by one is the point of this module

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import apps
import jwt
import structlog
from material import AUDIENCE, ISSUER, AlgKeys, expired, mint
from starlette.middleware import Middleware
from timing import (
    Message,
    Plan,
    Runner,
    Scope,
    Timed,
    asgi_runner,
    asgi_scope,
    async_call_runner,
    call_runner,
    interleave,
)

from invalidtoken_mw import MemoryRevocationStore, RedisRevocationStore
from invalidtoken_mw.log import AuthEventLog, RequestFacts, _peek
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import revocation_keys

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Send

    from invalidtoken_mw import InvalidTokenMiddleware


_UNAUTHORIZED = 401


class _PassThrough:
    """The least an ASGI middleware can add: one more call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class _Watching(_PassThrough):
    """A pass-through that also wraps ``send``, as any middleware that may patch a 401 must."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == _UNAUTHORIZED:
                message = {**message}
            await send(message)

        await self.app(scope, receive, watch)


def _middleware(app: Starlette) -> InvalidTokenMiddleware:
    """Our middleware instance inside a built Starlette app."""
    layer: Any = app.middleware_stack
    while type(layer).__name__ != "InvalidTokenMiddleware":
        layer = layer.app
    return layer  # type: ignore[no-any-return]


async def _measure(steps: dict[str, Runner], plan: Plan) -> dict[str, float]:
    timed = [Timed(name, runner) for name, runner in steps.items()]
    await interleave(timed, plan)
    return {t.name: round(t.median, 3) for t in timed}


def _sync(step: Callable[[], object]) -> Runner:
    return call_runner(lambda _arg: step(), [None])


def _async(step: Callable[[], Awaitable[object]]) -> Runner:
    return async_call_runner(lambda _arg: step(), [None])


async def breakdown(
    keys: AlgKeys, redis_url: str | None, plan: Plan
) -> dict[str, dict[str, float]]:
    """Median µs per step, grouped by the target each group explains."""
    token = mint(keys)
    header = f"Bearer {token}"
    scope = asgi_scope(apps.PATH, header)
    bare = apps.bare_starlette()
    ours = apps.ours_starlette(keys)
    runner = asgi_runner(ours, [scope])
    await runner(0, 1)
    guard = _middleware(ours).guard
    verifier = guard.verifier
    groups: dict[str, dict[str, float]] = {}

    groups["repeated valid token, ASGI"] = await _measure(
        {
            "bare Starlette": asgi_runner(bare, [scope]),
            "+ a pass-through middleware": asgi_runner(
                apps.bare_starlette([Middleware(_PassThrough)]), [scope]
            ),
            "+ a pass-through middleware wrapping send": asgi_runner(
                apps.bare_starlette([Middleware(_Watching)]), [scope]
            ),
            "+ InvalidTokenMiddleware": runner,
            "find the Authorization header in the scope": _sync(
                lambda: [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
            ),
            "extract the token (cached header)": _sync(lambda: guard.extractor.extract([header])),
            "verify_async (cached verdict)": _async(lambda: verifier.verify_async(token)),
            "count the accepted request": _sync(guard.events.count_accepted),
        },
        plan,
    )

    pool = [
        mint(keys) for _ in range(plan.blocks * min(plan.max_calls, 300) + 4 * plan.warmup_calls)
    ]
    fresh_verifier = apps.verifier(keys)
    parser = apps.verifier(keys)
    claims = jwt.decode(token, options={"verify_signature": False})
    filler = apps.verifier(keys)
    extracting = apps.ours_starlette(keys)
    await asgi_runner(extracting, [scope])(0, 1)
    extract = _middleware(extracting).guard.extractor.extract
    new_headers = [f"Bearer {t}" for t in pool]

    def decode(fresh: str) -> object:
        return jwt.decode(
            fresh, keys.verifying, algorithms=[keys.alg], audience=AUDIENCE, issuer=ISSUER
        )

    distinct = len(pool)
    steps = {
        "jwt.decode with a key object (the floor)": call_runner(decode, pool),
        "JWTVerifier.verify, new token": call_runner(fresh_verifier.verify, pool),
        "structure and algorithm checks (_parse)": call_runner(parser._parse, pool),
        "cache fill (_remember)": call_runner(lambda t: filler._remember(t, dict(claims)), pool),
        "extract the token (new header)": call_runner(lambda h: extract([h]), new_headers),
    }
    timed = [Timed(name, run, distinct=distinct) for name, run in steps.items()]
    await interleave(timed, plan)
    groups[f"fresh valid {keys.alg} token"] = {t.name: round(t.median, 3) for t in timed}

    logger = structlog.get_logger("bench")
    events = AuthEventLog()
    facts = RequestFacts("GET", apps.PATH, "203.0.113.7", "bench/1.0")
    bad = expired(keys)
    failure = AuthFailure(Reason.EXPIRED)
    groups["a rejection with its log event rendered"] = await _measure(
        {
            "structlog pipeline alone, one 8-field event": _sync(
                lambda: logger.warning(
                    "auth_rejected", reason="expired", status=401, **facts._asdict()
                )
            ),
            "AuthEventLog.rejected, no token": _sync(lambda: events.rejected(failure, facts, None)),
            "AuthEventLog.rejected, an expired JWT": _sync(
                lambda: events.rejected(failure, facts, bad)
            ),
            "read the token's fields for the log (_peek)": _sync(lambda: _peek(bad)),
            "token fingerprint (HMAC-SHA256)": _sync(lambda: events.fingerprint(bad)),
        },
        plan,
    )

    memory = MemoryRevocationStore()
    steps = {
        "revocation_keys(claims)": _sync(lambda: revocation_keys(claims)),
        "MemoryRevocationStore.is_revoked": _sync(lambda: memory.is_revoked(claims)),
    }
    store: RedisRevocationStore | None = None
    if redis_url is not None:
        store = RedisRevocationStore(redis_url)
        store.is_revoked(claims)
        redis_store = store
        steps["RedisRevocationStore.is_revoked (local-cache hit)"] = _sync(
            lambda: redis_store.is_revoked(claims)
        )
        steps["RedisRevocationStore.is_revoked_async (local-cache hit)"] = _async(
            lambda: redis_store.is_revoked_async(claims)
        )
        steps["subscriber liveness check (_ensure_subscriber)"] = _sync(
            redis_store._ensure_subscriber
        )
        identity = revocation_keys(claims)
        steps["local cache lookup"] = _sync(lambda: redis_store._cache.get(identity))  # type: ignore[union-attr]
    groups["revocation check on a cached verdict"] = await _measure(steps, plan)
    if store is not None:
        await store.aclose()
    return groups
