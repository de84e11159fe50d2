"""The issue's seven targets, evaluated from one run's results.

Every number compared here comes from the same run: an overhead is a stack's median
minus its bare framework's median in the same scenario, a ratio divides two medians of
the same scenario.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from material import ALGORITHMS, DEFAULT_ALG

REJECTIONS_CHEAP = ("garbage", "malformed", "missing", "oversized")
REJECTIONS_REPEATED = ("expired", "forged", "insufficient_scope", "revoked_memory", "revoked_redis")


@dataclass(frozen=True)
class Target:
    """One checked goal: what was measured against which limit."""

    number: int
    goal: str
    where: str
    measured: float | None
    limit: float
    unit: str
    at_most: bool = True  # the measured value must stay at or below the limit
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """``None`` when it could not be measured in this run."""
        if self.measured is None:
            return None
        return self.measured <= self.limit if self.at_most else self.measured >= self.limit

    @property
    def by(self) -> float | None:
        """How far inside (positive) or outside (negative) the limit the result is."""
        if self.measured is None:
            return None
        return self.limit - self.measured if self.at_most else self.measured - self.limit

    def as_dict(self) -> dict[str, Any]:
        """JSON form, with the verdict."""
        return {**asdict(self), "passed": self.passed, "by": self.by}


class _Lookup:
    def __init__(self, results: dict[str, Any]) -> None:
        self.scenarios = {s["name"]: s for s in results["scenarios"]}
        self.results = results

    def stack(self, scenario: str, stack: str) -> dict[str, Any] | None:
        found = self.scenarios.get(scenario)
        if found is None:
            return None
        return next((s for s in found["stacks"] if s["name"] == stack), None)

    def overhead(self, scenario: str, stack: str) -> float | None:
        found = self.stack(scenario, stack)
        return None if found is None else float(found["overhead_us"])

    def median(self, scenario: str, stack: str) -> float | None:
        found = self.stack(scenario, stack)
        return None if found is None else float(found["median_us"])


def _worst(values: dict[str, float | None], *, highest: bool = True) -> tuple[float | None, str]:
    known = {k: v for k, v in values.items() if v is not None}
    if not known:
        return None, ""
    key = max(known, key=known.__getitem__) if highest else min(known, key=known.__getitem__)
    return known[key], key


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _repeated_valid(look: _Lookup) -> list[Target]:
    rows = []
    for family, limit, bare in (("asgi", 3.0, "Starlette"), ("wsgi", 5.0, "Flask")):
        values = {
            f"valid_{a.lower()}": look.overhead(f"valid_{a.lower()}", f"ours_{family}_{a}")
            for a in ALGORITHMS
        }
        worst, where = _worst(values)
        goal = f"repeated valid token: overhead over bare {bare}"
        rows.append(Target(1, goal, where, worst, limit, "µs"))
    ratios = {
        f"valid_{a.lower()}": _ratio(
            look.overhead(f"valid_{a.lower()}", f"starlette_pyjwt_{a}"),
            look.overhead(f"valid_{a.lower()}", f"ours_asgi_{a}"),
        )
        for a in ALGORITHMS
    }
    worst, where = _worst(ratios, highest=False)
    goal = "repeated valid token: Starlette+PyJWT overhead / our ASGI overhead"
    rows.append(Target(1, goal, where, worst, 30.0, "x", at_most=False))
    return rows


def _fresh(look: _Lookup) -> list[Target]:
    rows = []
    for family in ("asgi", "wsgi"):
        ratios = {
            f"fresh_{a.lower()}": _ratio(
                look.overhead(f"fresh_{a.lower()}", f"ours_{family}_{a}"),
                look.median(f"fresh_{a.lower()}", f"jwt_decode_{a}"),
            )
            for a in ALGORITHMS
        }
        worst, where = _worst(ratios)
        goal = f"fresh valid token: our {family.upper()} overhead / direct jwt.decode"
        rows.append(Target(2, goal, where, worst, 1.1, "x"))
    return rows


def _our_stack(family: str, scenario: str, variant: str) -> str:
    """Our stack's name in ``scenario``: the store or scope it needs, then ``variant``."""
    parts = []
    if scenario == "insufficient_scope":
        parts.append("admin-scope")
    elif scenario.startswith("revoked_"):
        parts.append(f"{scenario.removeprefix('revoked_')}-store")
    if variant:
        parts.append(variant)
    name = f"ours_{family}_{DEFAULT_ALG}"
    return f"{name}_{'+'.join(parts)}" if parts else name


def _rejections(look: _Lookup) -> list[Target]:
    rows = []
    for number, names, limit, what in (
        (3, REJECTIONS_CHEAP, 5.0, "garbage / malformed / missing / oversized"),
        (4, REJECTIONS_REPEATED, 10.0, "repeated invalid token"),
    ):
        for family in ("asgi", "wsgi"):
            for variant, label in (
                ("", "log rate-limited (default)"),
                ("every-event", "every event rendered"),
            ):
                values = {n: look.overhead(n, _our_stack(family, n, variant)) for n in names}
                worst, where = _worst(values)
                note = ""
                floor = look.median(where, "log_event") if where else None
                if variant and floor is not None:
                    note = f"the app's log pipeline alone takes {floor:.1f} µs per event"
                goal = f"{what}: {family.upper()} overhead, {label}"
                rows.append(Target(number, goal, where, worst, limit, "µs", note=note))
    return rows


def _redis(look: _Lookup, results: dict[str, Any]) -> list[Target]:
    rows = []
    d = DEFAULT_ALG
    for family in ("asgi", "wsgi"):
        base = look.median("revocation_check", f"ours_{family}_{d}")
        hit = look.median("revocation_check", f"ours_{family}_{d}_redis-store")
        added = None if base is None or hit is None else hit - base
        goal = f"Redis store, local-cache hit: added over no store ({family.upper()})"
        rows.append(Target(5, goal, "revocation_check", added, 2.0, "µs"))
    counts = results.get("redis", {}).get("commands_per_request", {})
    for family in ("asgi", "wsgi"):
        commands = counts.get(f"ours_{family}_no_local_cache")
        per_request = None if commands is None else sum(commands.values())
        base = look.median("revocation_check", f"ours_{family}_{d}")
        miss = look.median("revocation_check", f"ours_{family}_{d}_redis-no-local-cache")
        floor = look.median(
            "revocation_check", "redis_mget_async" if family == "asgi" else "redis_mget_sync"
        )
        note = ""
        if base is not None and miss is not None and floor is not None:
            note = f"adds {miss - base:.1f} µs; one MGET round trip alone takes {floor:.1f} µs"
        goal = f"Redis store, miss: Redis commands per request ({family.upper()})"
        rows.append(Target(5, goal, "revocation_check", per_request, 1.0, "commands", note=note))
    return rows


def _flood(results: dict[str, Any]) -> list[Target]:
    rows = []
    flood = results.get("jwks_flood", {})
    for key, label in (
        ("asgi_default_cooldown", "middleware, asyncio, 5 s cool-down"),
        ("threads_short_cooldown", "verifier, 4 threads, 0.02 s cool-down"),
    ):
        entry = flood.get(key)
        measured = None if entry is None else float(entry["max_fetches_per_window"])
        note = ""
        if entry is not None:
            note = (
                f"fetches: {entry['fetches']} for {flood['requests']} requests in"
                f" {entry['elapsed_s']} s ({entry['cooldown_windows']} windows)"
            )
        goal = f"unknown-kid flood: JWKS fetches per cool-down window ({label})"
        rows.append(Target(6, goal, key, measured, 1.0, "fetches", note=note))
    return rows


def _memory(results: dict[str, Any]) -> list[Target]:
    memory = results.get("memory", {})
    per_token = memory.get("middleware_bytes_per_token")
    held, bound = memory.get("bounded_cache_held"), memory.get("bounded_cache_size")
    return [
        Target(
            7,
            "memory per cached token (verifier + header cache)",
            "memory",
            None if per_token is None else float(per_token),
            3072.0,
            "bytes",
        ),
        Target(
            7,
            "cache bounded by cache_size (entries held beyond the bound)",
            "memory",
            None if held is None or bound is None else float(held - bound),
            0.0,
            "entries",
        ),
    ]


def evaluate(results: dict[str, Any]) -> list[Target]:
    """Every target row for ``results``, in the issue's order."""
    look = _Lookup(results)
    return [
        *_repeated_valid(look),
        *_fresh(look),
        *_rejections(look),
        *_redis(look, results),
        *_flood(results),
        *_memory(results),
    ]
