"""Every stack and every scenario of the benchmark, built once per run.

A *stack* is an application (or, for floors, a bare function) measured in a scenario;
each non-bare stack names the bare application of its framework, and its overhead is
its median minus that bare application's median in the same scenario. A *scenario* is
a request (repeated) or a pool of requests (one per call), the stacks that apply to
it, and the status our middleware must answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import apps
import jwt
import peers
import redis
import redis.asyncio
import structlog
from cachetools import LRUCache
from material import (
    ADMIN_SCOPE,
    ALGORITHMS,
    AUDIENCE,
    DEFAULT_ALG,
    ISSUER,
    AlgKeys,
    expired,
    forged,
    garbage,
    mint,
    oversized,
    truncated,
)
from timing import (
    Runner,
    asgi_runner,
    asgi_scope,
    asgi_status,
    async_call_runner,
    call_runner,
    wsgi_environ,
    wsgi_runner,
    wsgi_status,
)

from invalidtoken_mw import MemoryRevocationStore, RedisRevocationStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from invalidtoken_mw import RevocationStore

BARE = {"asgi": "starlette", "fastapi": "fastapi", "wsgi": "flask"}


@dataclass(frozen=True)
class Stack:
    """One thing to time: an ASGI or WSGI application, or a floor function."""

    name: str
    label: str
    family: str  # "asgi" (Starlette), "fastapi", "wsgi" (Flask) or "floor"
    kind: str  # "asgi", "wsgi", "call" or "acall"
    target: Any
    ours: bool = False

    @property
    def baseline(self) -> str | None:
        """The bare application this stack is compared with (none for bares and floors)."""
        bare = BARE.get(self.family)
        return None if bare == self.name else bare


@dataclass
class Requests:
    """The Authorization header values of a scenario, prebuilt for every kind of stack."""

    authorizations: Sequence[str | None]
    scopes: list[dict[str, Any]] = field(init=False)
    environs: list[dict[str, Any]] = field(init=False)
    tokens: list[str] = field(init=False)

    def __post_init__(self) -> None:
        """Build the ASGI scopes, WSGI environs and bare tokens once."""
        self.scopes = [asgi_scope(apps.PATH, a) for a in self.authorizations]
        self.environs = [wsgi_environ(apps.PATH, a) for a in self.authorizations]
        self.tokens = [(a or "").removeprefix("Bearer ") for a in self.authorizations]

    def runner(self, stack: Stack) -> Runner:
        """The runner that calls ``stack`` with these requests."""
        if stack.kind == "asgi":
            return asgi_runner(stack.target, self.scopes)
        if stack.kind == "wsgi":
            return wsgi_runner(stack.target, self.environs)
        if stack.kind == "acall":
            return async_call_runner(stack.target, self.tokens)
        return call_runner(stack.target, self.tokens)

    async def status(self, stack: Stack) -> int | None:
        """The status ``stack`` answers the first request with (``None`` for floors)."""
        if stack.kind == "asgi":
            return await asgi_status(stack.target, self.scopes[0])
        if stack.kind == "wsgi":
            return wsgi_status(stack.target, self.environs[0])
        return None


@dataclass
class Scenario:
    """One request shape measured on every stack that can handle it."""

    name: str
    title: str
    group: str  # "valid", "fresh", "invalid", "scope", "revocation"
    requests: Requests
    stacks: list[Stack]
    expect: int  # the status our middleware answers
    fresh: bool = False
    not_applicable: dict[str, str] = field(default_factory=dict)  # peer label -> why


def _bearer(token: str) -> str:
    return f"Bearer {token}"


class Catalogue:
    """Builds every stack once (they keep their caches across scenarios, like a server)."""

    def __init__(self, keys: dict[str, AlgKeys], redis_url: str | None) -> None:
        """Build the bare applications; the rest is built on first use."""
        self.keys = keys
        self.redis_url = redis_url
        self._stacks: dict[str, Stack] = {}
        self.closers: list[Callable[[], Awaitable[None]]] = []
        self.scenarios: list[Scenario] = []
        self.revoked_token = mint(keys[DEFAULT_ALG])
        self._redis_client: redis.Redis | None = None
        self.bare_asgi = self._add(
            "starlette", "bare Starlette", "asgi", "asgi", apps.bare_starlette
        )
        self.bare_fastapi = self._add(
            "fastapi", "bare FastAPI", "fastapi", "asgi", apps.bare_fastapi
        )
        self.bare_wsgi = self._add("flask", "bare Flask", "wsgi", "wsgi", apps.bare_flask)

    def _add(
        self,
        name: str,
        label: str,
        family: str,
        kind: str,
        build: Callable[[], Any],
        *,
        ours: bool = False,
    ) -> Stack:
        stack = self._stacks.get(name)
        if stack is None:
            stack = self._stacks[name] = Stack(name, label, family, kind, build(), ours=ours)
        return stack

    # -- our stacks -------------------------------------------------------------------

    def ours_asgi(self, alg: str = DEFAULT_ALG, *, variant: str = "") -> Stack:
        """``InvalidTokenMiddleware`` on Starlette; ``variant`` selects the options."""
        keys, options = self.keys[alg], self._variant(variant)
        suffix = f" [{variant}]" if variant else ""
        return self._add(
            f"ours_asgi_{alg}{'_' + variant if variant else ''}",
            f"invalidtoken-mw, ASGI (Starlette){suffix}",
            "asgi",
            "asgi",
            lambda: apps.ours_starlette(keys, **options),
            ours=True,
        )

    def ours_fastapi(self, alg: str = DEFAULT_ALG, *, variant: str = "") -> Stack:
        """``InvalidTokenMiddleware`` added to FastAPI."""
        keys = self.keys[alg]
        scopes = self._variant(variant).get("scopes", ())
        return self._add(
            f"ours_fastapi_{alg}{'_' + variant if variant else ''}",
            "invalidtoken-mw, ASGI (FastAPI)" + (f" [{variant}]" if variant else ""),
            "fastapi",
            "asgi",
            lambda: apps.ours_fastapi(keys, scopes=scopes),
            ours=True,
        )

    def ours_wsgi(self, alg: str = DEFAULT_ALG, *, variant: str = "") -> Stack:
        """``InvalidTokenWSGIMiddleware`` around Flask."""
        keys, options = self.keys[alg], self._variant(variant)
        suffix = f" [{variant}]" if variant else ""
        return self._add(
            f"ours_wsgi_{alg}{'_' + variant if variant else ''}",
            f"invalidtoken-mw, WSGI (Flask){suffix}",
            "wsgi",
            "wsgi",
            lambda: apps.ours_flask(keys, **options),
            ours=True,
        )

    def _variant(self, variant: str) -> dict[str, Any]:
        """Middleware options per variant: ``every event`` logging, scope, stores."""
        options: dict[str, Any] = {}
        for part in filter(None, variant.split("+")):
            if part == "every-event":
                options["log_rate_limit"] = None
            elif part == "admin-scope":
                options["scopes"] = [ADMIN_SCOPE]
            elif part == "memory-store":
                options["revocation"] = self._memory_store()
            elif part == "redis-store":
                options["revocation"] = self._redis_store(local_cache_ttl=1.0)
            elif part == "redis-no-local-cache":
                options["revocation"] = self._redis_store(local_cache_ttl=0.0)
            else:
                raise ValueError(f"unknown variant {part!r}")
        return options

    def _memory_store(self) -> RevocationStore:
        store = MemoryRevocationStore()
        claims = jwt.decode(self.revoked_token, options={"verify_signature": False})
        store.revoke(jti=claims["jti"], issuer=ISSUER, expires_at=claims["exp"])
        return store

    def _redis_url(self) -> str:
        if self.redis_url is None:
            raise RuntimeError("a Redis stack was requested without a Redis server")
        return self.redis_url

    def _redis_store(self, *, local_cache_ttl: float) -> RevocationStore:
        store = RedisRevocationStore(self._redis_url(), local_cache_ttl=local_cache_ttl)
        claims = jwt.decode(self.revoked_token, options={"verify_signature": False})
        store.revoke(jti=claims["jti"], issuer=ISSUER, expires_at=claims["exp"])
        self.closers.append(store.aclose)
        return store

    # -- peers ----------------------------------------------------------------------

    def starlette_pyjwt(self, alg: str = DEFAULT_ALG, *, scope: str | None = None) -> Stack:
        """Starlette ``AuthenticationMiddleware`` with a PyJWT backend."""
        keys = self.keys[alg]
        return self._add(
            f"starlette_pyjwt_{alg}{'_scoped' if scope else ''}",
            "Starlette AuthenticationMiddleware + PyJWT",
            "asgi",
            "asgi",
            lambda: peers.starlette_pyjwt(keys, scope=scope),
        )

    def fastapi_httpbearer(self, alg: str = DEFAULT_ALG, *, scope: str | None = None) -> Stack:
        """FastAPI ``HTTPBearer`` with an async PyJWT dependency."""
        keys = self.keys[alg]
        return self._add(
            f"fastapi_httpbearer_{alg}{'_scoped' if scope else ''}",
            "FastAPI HTTPBearer + PyJWT dependency",
            "fastapi",
            "asgi",
            lambda: peers.fastapi_httpbearer(keys, scope=scope),
        )

    def flask_jwt_extended(self, alg: str = DEFAULT_ALG, *, blocklist: str = "") -> Stack:
        """flask-jwt-extended, optionally with a memory or Redis blocklist."""
        keys = self.keys[alg]
        suffix = f" [{blocklist} blocklist]" if blocklist else ""
        return self._add(
            f"flask_jwt_extended_{alg}{'_' + blocklist if blocklist else ''}",
            f"flask-jwt-extended{suffix}",
            "wsgi",
            "wsgi",
            lambda: peers.flask_jwt_extended(keys, blocklist=self._blocklist(blocklist)),
        )

    def _blocklist(self, kind: str) -> peers.Blocklist | None:
        if not kind:
            return None
        jti = jwt.decode(self.revoked_token, options={"verify_signature": False})["jti"]
        if kind == "memory":
            return peers.memory_blocklist({jti})
        client = self.redis_client()
        client.set(jti, "", ex=3600)
        return peers.redis_blocklist(client)

    def redis_client(self) -> redis.Redis:
        """A plain synchronous Redis client (for the blocklist recipe and the floors)."""
        if self._redis_client is None:
            self._redis_client = redis.Redis.from_url(self._redis_url(), decode_responses=True)
        return self._redis_client

    def authlib(self, alg: str = DEFAULT_ALG, *, scope: str | None = None) -> Stack:
        """Authlib ``ResourceProtector`` with the RFC 9068 validator on Flask."""
        keys = self.keys[alg]
        return self._add(
            f"authlib_{alg}{'_scoped' if scope else ''}",
            "Authlib ResourceProtector + RFC 9068 validator",
            "wsgi",
            "wsgi",
            lambda: peers.authlib_flask(keys, scope=scope),
        )

    # -- floors ----------------------------------------------------------------------

    def jwt_decode(self, alg: str) -> Stack:
        """``jwt.decode`` with a pre-parsed key object and the same claim checks."""
        keys = self.keys[alg]

        def decode(token: str) -> object:
            return jwt.decode(
                token, keys.verifying, algorithms=[keys.alg], audience=AUDIENCE, issuer=ISSUER
            )

        return self._add(
            f"jwt_decode_{alg}",
            "floor: jwt.decode with a key object",
            "floor",
            "call",
            lambda: decode,
        )

    def verifier(self, alg: str) -> Stack:
        """``JWTVerifier.verify`` alone: our verification without any middleware."""
        keys = self.keys[alg]
        return self._add(
            f"verifier_{alg}",
            "floor: JWTVerifier.verify (no middleware)",
            "floor",
            "call",
            lambda: apps.verifier(keys).verify,
        )

    def cache_hit(self) -> Stack:
        """A bounded LRU cache hit keyed by the token: the floor of a repeated token."""

        def build() -> Callable[[str], object]:
            cache: LRUCache[str, float] = LRUCache(10_000)

            def hit(token: str) -> object:
                if token not in cache:
                    cache[token] = time.time()
                return cache.get(token)

            return hit

        return self._add(
            "cache_hit", "floor: LRUCache hit keyed by the token", "floor", "call", build
        )

    def log_event(self) -> Stack:
        """One event through the run's structlog pipeline: what any rendered event costs."""
        logger = structlog.get_logger("bench")
        fields = {
            "reason": "malformed_token",
            "error": "invalid_token",
            "status": 401,
            "method": "GET",
            "path": apps.PATH,
            "client_ip": "203.0.113.7",
            "user_agent": "bench/1.0",
            "token_fingerprint": "0123456789abcdef",
        }
        return self._add(
            "log_event",
            "floor: one structlog event through this pipeline",
            "floor",
            "call",
            lambda: lambda _token: logger.warning("auth_rejected", **fields),
        )

    def redis_round_trip(self, *, asynchronous: bool) -> Stack:
        """One ``MGET`` of two keys: what a revocation check without local cache costs."""
        keys = ["invalidtoken:bench:a", "invalidtoken:bench:b"]
        if not asynchronous:
            client = self.redis_client()
            return self._add(
                "redis_mget_sync",
                "floor: one Redis MGET round trip (sync)",
                "floor",
                "call",
                lambda: lambda _token: client.mget(keys),
            )
        aclient = redis.asyncio.Redis.from_url(self._redis_url())
        self.closers.append(aclient.aclose)

        async def mget(_token: str) -> object:
            return await aclient.mget(keys)

        return self._add(
            "redis_mget_async",
            "floor: one Redis MGET round trip (asyncio)",
            "floor",
            "acall",
            lambda: mget,
        )


def _framework_stacks(cat: Catalogue, alg: str) -> list[Stack]:
    return [
        cat.bare_asgi,
        cat.ours_asgi(alg),
        cat.starlette_pyjwt(alg),
        cat.bare_fastapi,
        cat.ours_fastapi(alg),
        cat.fastapi_httpbearer(alg),
        cat.bare_wsgi,
        cat.ours_wsgi(alg),
        cat.flask_jwt_extended(alg),
        cat.authlib(alg),
    ]


def _invalid_stacks(cat: Catalogue) -> list[Stack]:
    return [
        cat.bare_asgi,
        cat.ours_asgi(),
        cat.ours_asgi(variant="every-event"),
        cat.starlette_pyjwt(),
        cat.bare_fastapi,
        cat.ours_fastapi(),
        cat.fastapi_httpbearer(),
        cat.bare_wsgi,
        cat.ours_wsgi(),
        cat.ours_wsgi(variant="every-event"),
        cat.flask_jwt_extended(),
        cat.authlib(),
        cat.log_event(),
    ]


_NO_REVOCATION = {
    "Starlette AuthenticationMiddleware + PyJWT": "no revocation hook",
    "FastAPI HTTPBearer + PyJWT dependency": "no revocation hook",
    "Authlib ResourceProtector + RFC 9068 validator": "the RFC 9068 validator checks no revocation",
}

INVALID = {
    "expired": ("repeated expired token", 401),
    "forged": ("repeated forged token (bad signature)", 401),
    "garbage": ("garbage bearer value (not a JWT)", 401),
    "malformed": ("truncated JWT (signature cut off)", 401),
    "missing": ("no Authorization header", 401),
    "oversized": ("16 KiB bearer value", 401),
}


def build_scenarios(cat: Catalogue, *, fresh_pool: int, only: set[str] | None) -> list[Scenario]:
    """Every scenario, in report order (``only`` keeps a subset by name)."""
    keys = cat.keys[DEFAULT_ALG]

    def wanted(name: str) -> bool:
        return only is None or name in only

    scenarios: list[Scenario] = []
    for alg in ALGORITHMS:
        name = f"valid_{alg.lower()}"
        if wanted(name):
            floors = [cat.jwt_decode(alg), cat.verifier(alg), cat.cache_hit()]
            scenarios.append(
                Scenario(
                    name,
                    f"repeated valid {alg} token",
                    "valid",
                    Requests([_bearer(mint(cat.keys[alg]))]),
                    [*_framework_stacks(cat, alg), *floors],
                    200,
                )
            )
    for alg in ALGORITHMS:
        name = f"fresh_{alg.lower()}"
        if wanted(name):
            pool = [_bearer(mint(cat.keys[alg])) for _ in range(fresh_pool)]
            scenarios.append(
                Scenario(
                    name,
                    f"fresh valid {alg} token on every request",
                    "fresh",
                    Requests(pool),
                    [*_framework_stacks(cat, alg), cat.jwt_decode(alg), cat.verifier(alg)],
                    200,
                    fresh=True,
                )
            )
    values: dict[str, str | None] = {
        "expired": _bearer(expired(keys)),
        "forged": _bearer(forged(keys)),
        "garbage": _bearer(garbage()),
        "malformed": _bearer(truncated(mint(keys))),
        "missing": None,
        "oversized": _bearer(oversized()),
    }
    for name, (title, status) in INVALID.items():
        if wanted(name):
            scenarios.append(
                Scenario(
                    name, title, "invalid", Requests([values[name]]), _invalid_stacks(cat), status
                )
            )
    if wanted("insufficient_scope"):
        scenarios.append(
            Scenario(
                "insufficient_scope",
                f"repeated valid token without the required scope {ADMIN_SCOPE!r}",
                "scope",
                Requests([_bearer(mint(keys))]),
                [
                    cat.bare_asgi,
                    cat.ours_asgi(variant="admin-scope"),
                    cat.ours_asgi(variant="admin-scope+every-event"),
                    cat.starlette_pyjwt(scope=ADMIN_SCOPE),
                    cat.bare_fastapi,
                    cat.ours_fastapi(variant="admin-scope"),
                    cat.fastapi_httpbearer(scope=ADMIN_SCOPE),
                    cat.bare_wsgi,
                    cat.ours_wsgi(variant="admin-scope"),
                    cat.ours_wsgi(variant="admin-scope+every-event"),
                    cat.authlib(scope=ADMIN_SCOPE),
                    cat.log_event(),
                ],
                403,
                not_applicable={"flask-jwt-extended": "no scope support"},
            )
        )
    scenarios.extend(_revocation_scenarios(cat, wanted))
    return scenarios


def _revocation_scenarios(cat: Catalogue, wanted: Callable[[str], bool]) -> list[Scenario]:
    redis = cat.redis_url is not None
    scenarios: list[Scenario] = []
    if wanted("revocation_check"):
        stacks = [
            cat.bare_asgi,
            cat.ours_asgi(),
            cat.ours_asgi(variant="memory-store"),
            cat.bare_wsgi,
            cat.ours_wsgi(),
            cat.ours_wsgi(variant="memory-store"),
            cat.flask_jwt_extended(),
            cat.flask_jwt_extended(blocklist="memory"),
        ]
        if redis:
            stacks += [
                cat.ours_asgi(variant="redis-store"),
                cat.ours_asgi(variant="redis-no-local-cache"),
                cat.ours_wsgi(variant="redis-store"),
                cat.ours_wsgi(variant="redis-no-local-cache"),
                cat.flask_jwt_extended(blocklist="redis"),
                cat.redis_round_trip(asynchronous=True),
                cat.redis_round_trip(asynchronous=False),
            ]
        scenarios.append(
            Scenario(
                "revocation_check",
                "repeated valid token, revocation checked (not revoked)",
                "revocation",
                Requests([_bearer(mint(cat.keys[DEFAULT_ALG]))]),
                stacks,
                200,
                not_applicable=dict(_NO_REVOCATION),
            )
        )
    stores = ["memory", *(["redis"] if redis else [])]
    for store in stores:
        name = f"revoked_{store}"
        if not wanted(name):
            continue
        scenarios.append(
            Scenario(
                name,
                f"repeated revoked token ({store} store)",
                "revocation",
                Requests([_bearer(cat.revoked_token)]),
                [
                    cat.bare_asgi,
                    cat.ours_asgi(variant=f"{store}-store"),
                    cat.ours_asgi(variant=f"{store}-store+every-event"),
                    cat.bare_wsgi,
                    cat.ours_wsgi(variant=f"{store}-store"),
                    cat.ours_wsgi(variant=f"{store}-store+every-event"),
                    cat.flask_jwt_extended(blocklist=store),
                    cat.log_event(),
                ],
                401,
                not_applicable=dict(_NO_REVOCATION),
            )
        )
    return scenarios


SCENARIO_NAMES = (
    *(f"valid_{alg.lower()}" for alg in ALGORITHMS),
    *(f"fresh_{alg.lower()}" for alg in ALGORITHMS),
    *INVALID,
    "insufficient_scope",
    "revocation_check",
    "revoked_memory",
    "revoked_redis",
)
