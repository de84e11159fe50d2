"""Turn one run's results into a terminal table, JSON, docs/performance.md and a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from material import ALGORITHMS, DEFAULT_ALG

if TYPE_CHECKING:
    from targets import Target

ANALYSIS = Path(__file__).with_name("analysis.md")
# Which of our stacks a peer's overhead is compared with.
OURS_FOR = {"asgi": "ours_asgi", "fastapi": "ours_fastapi", "wsgi": "ours_wsgi"}
CHART_SCENARIOS = (
    "valid_hs256",
    "valid_rs256",
    "valid_es256",
    "fresh_rs256",
    "expired",
    "forged",
    "garbage",
    "missing",
    "insufficient_scope",
    "revoked_memory",
)


def _num(value: float | None, digits: int = 1, *, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _verdict(target: Target) -> str:
    if target.passed is None:
        return "not measured"
    if target.passed:
        return "PASS"
    return f"MISS by {abs(target.by or 0):.2f} {target.unit}"


def _ours_reference(scenario: dict[str, Any], family: str) -> dict[str, Any] | None:
    """Our plain (default options) stack of ``family`` in ``scenario``, if present."""
    candidates = [s for s in scenario["stacks"] if s["ours"] and s["family"] == family]
    return min(candidates, key=lambda s: len(s["name"]), default=None)


def vs_ours(scenario: dict[str, Any], stack: dict[str, Any]) -> float | None:
    """A peer's overhead as a multiple of ours in the same framework family."""
    if stack["ours"] or stack["baseline"] is None:
        return None
    ours = _ours_reference(scenario, stack["family"])
    if ours is None or ours["overhead_us"] <= 0:
        return None
    return float(stack["overhead_us"]) / float(ours["overhead_us"])


# -- terminal ---------------------------------------------------------------------------


def print_scenario(scenario: dict[str, Any]) -> None:
    """One scenario as an aligned table."""
    print(f"\n== {scenario['name']}: {scenario['title']}")
    print(f"   {'stack':<58} {'status':>6} {'median µs':>10} {'overhead':>9} {'x bare':>7}")
    for stack in scenario["stacks"]:
        ratio = stack["ratio"]
        print(
            f"   {stack['label']:<58} {stack['status'] or '':>6} {stack['median_us']:>10.1f}"
            f" {_num(stack['overhead_us'], sign=stack['baseline'] is not None):>9}"
            f" {'' if ratio is None else f'{ratio:.2f}':>7}"
        )
    for label, why in scenario["not_applicable"].items():
        print(f"   {label:<58} n/a ({why})")


def print_targets(targets: list[Target]) -> None:
    """The targets with their verdicts."""
    print("\n== targets")
    for target in targets:
        measured = _num(target.measured, 2)
        print(
            f"   {target.number}. {target.goal:<78} {measured:>9} {target.unit:<8}"
            f" limit {target.limit:g}  {_verdict(target)}  [{target.where}]"
        )


# -- JSON -------------------------------------------------------------------------------


def write_json(results: dict[str, Any], path: Path) -> None:
    """The full results, block samples included."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")


# -- chart ------------------------------------------------------------------------------


_PANELS = (
    ("Starlette", "asgi"),
    ("FastAPI", "fastapi"),
    ("Flask", "wsgi"),
)
_COLOURS = ("#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c")


def _series_key(stack: dict[str, Any]) -> str | None:
    """The bar a stack belongs to: the bare app, ours (default logging) or a peer."""
    if stack["baseline"] is None:
        return None if stack["family"] == "floor" else "bare"
    if stack["ours"]:
        return None if "every-event" in stack["name"] else "invalidtoken-mw"
    return str(stack["label"]).split(" [", 1)[0]


def write_chart(results: dict[str, Any], path: Path) -> None:
    """Median µs per request (log scale) per scenario: bare app, ours and each peer."""
    import matplotlib as mpl  # noqa: PLC0415 - only a run that writes a chart pays for it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    scenarios = {s["name"]: s for s in results["scenarios"]}
    names = [n for n in CHART_SCENARIOS if n in scenarios]
    figure, axes = plt.subplots(1, len(_PANELS), figsize=(19, 7.4), sharey=True)
    for axis, (framework, family) in zip(axes, _PANELS, strict=True):
        series: dict[str, list[float | None]] = {"bare": [None] * len(names)}
        series["invalidtoken-mw"] = [None] * len(names)
        for index, name in enumerate(names):
            for stack in scenarios[name]["stacks"]:
                key = _series_key(stack)
                if key is not None and stack["family"] == family:
                    series.setdefault(key, [None] * len(names))[index] = stack["median_us"]
        width = 0.8 / len(series)
        for offset, (label, values) in enumerate(series.items()):
            xs = [i + (offset - (len(series) - 1) / 2) * width for i in range(len(names))]
            heights = [0.0 if v is None else v for v in values]
            shown = f"bare {framework}" if label == "bare" else label
            bars = axis.bar(xs, heights, width, label=shown, color=_COLOURS[offset % 4])
            if label == "invalidtoken-mw":
                for bar, value in zip(bars, values, strict=True):
                    if value is not None:
                        axis.annotate(
                            f"{value:.0f}",
                            (bar.get_x() + bar.get_width() / 2, value),
                            ha="center",
                            va="bottom",
                            fontsize=7,
                        )
        axis.set_title(framework)
        axis.set_yscale("log")
        axis.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        axis.grid(axis="y", which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)
    axes[0].set_ylabel("µs per request, median (log scale; lower is better)")
    meta = results["meta"]
    figure.suptitle(
        "Time per request in-process: the bare framework, invalidtoken-mw and the usual"
        f" stacks ({meta['mode']} run, {meta['cpus']} CPUs, Python {meta['python']};"
        " a missing bar: the stack cannot do it)"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


# -- markdown ---------------------------------------------------------------------------


def _scenario_table(scenario: dict[str, Any]) -> list[str]:
    lines = [
        f"### {scenario['title']} (`{scenario['name']}`)",
        "",
        "| stack | status | median µs | overhead µs | x bare | overhead x ours |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for stack in scenario["stacks"]:
        label = f"**{stack['label']}**" if stack["ours"] else stack["label"]
        overhead = _num(stack["overhead_us"], sign=True) if stack["baseline"] is not None else "—"
        ratio = "—" if stack["ratio"] is None else f"{stack['ratio']:.2f}"
        multiple = vs_ours(scenario, stack)
        lines.append(
            f"| {label} | {stack['status'] or '—'} | {stack['median_us']:.1f} | {overhead}"
            f" | {ratio} | {'—' if multiple is None else f'{multiple:.0f}x'} |"
        )
    lines.extend(
        f"| {label} | n/a | | | | {why} |" for label, why in scenario["not_applicable"].items()
    )
    lines.append("")
    return lines


def _stack(results: dict[str, Any], scenario: str, name: str) -> dict[str, Any] | None:
    found = next((s for s in results["scenarios"] if s["name"] == scenario), None)
    if found is None:
        return None
    return next((s for s in found["stacks"] if s["name"] == name), None)


def _over(results: dict[str, Any], scenario: str, name: str) -> str:
    stack = _stack(results, scenario, name)
    return "n/a" if stack is None else f"{stack['overhead_us']:+.1f} µs"


def _headline(results: dict[str, Any], targets: list[Target]) -> list[str]:
    lines: list[str] = []
    d = DEFAULT_ALG
    if _stack(results, f"valid_{d.lower()}", f"ours_asgi_{d}") is not None:
        scenario = f"valid_{d.lower()}"
        lines.append(
            f"- **The common case, a resent valid {d} token**: invalidtoken-mw adds"
            f" {_over(results, scenario, f'ours_asgi_{d}')} to Starlette (Starlette +"
            f" PyJWT: {_over(results, scenario, f'starlette_pyjwt_{d}')}),"
            f" {_over(results, scenario, f'ours_fastapi_{d}')} to FastAPI (HTTPBearer +"
            f" PyJWT: {_over(results, scenario, f'fastapi_httpbearer_{d}')}) and"
            f" {_over(results, scenario, f'ours_wsgi_{d}')} to Flask (flask-jwt-extended:"
            f" {_over(results, scenario, f'flask_jwt_extended_{d}')}, Authlib:"
            f" {_over(results, scenario, f'authlib_{d}')})."
        )
    fresh = []
    for alg in ALGORITHMS:
        ours = _stack(results, f"fresh_{alg.lower()}", f"ours_asgi_{alg}")
        floor = _stack(results, f"fresh_{alg.lower()}", f"jwt_decode_{alg}")
        if ours is not None and floor is not None and floor["median_us"] > 0:
            fresh.append(
                f"{alg} {ours['overhead_us']:.0f} µs vs {floor['median_us']:.0f} µs"
                f" ({ours['overhead_us'] / floor['median_us']:.2f}x)"
            )
    if fresh:
        lines.append(
            "- **A new token on every request** (no cache can help), our ASGI overhead vs a"
            f" direct `jwt.decode`: {'; '.join(fresh)}."
        )
    if _stack(results, "garbage", f"ours_asgi_{d}") is not None:
        lines.append(
            "- **Rejections** (default flood-limited logging), added to Starlette: garbage"
            f" {_over(results, 'garbage', f'ours_asgi_{d}')}, missing"
            f" {_over(results, 'missing', f'ours_asgi_{d}')}, a resent expired token"
            f" {_over(results, 'expired', f'ours_asgi_{d}')}, forged"
            f" {_over(results, 'forged', f'ours_asgi_{d}')}; rendering every event through"
            " the app's structlog pipeline costs"
            f" {_over(results, 'garbage', 'log_event').lstrip('+')} per event by itself."
        )
    memory = results.get("memory", {})
    flood = results.get("jwks_flood", {})
    if memory and flood:
        lines.append(
            f"- **Floods and memory**: {flood['requests']} requests with random unknown"
            f" `kid`s caused {flood['asgi_default_cooldown']['fetches']} JWKS fetch(es) with"
            " the default cool-down; a cached token costs"
            f" {memory['middleware_bytes_per_token']} bytes."
        )
    passed = sum(1 for t in targets if t.passed)
    measured = sum(1 for t in targets if t.passed is not None)
    lines.append(f"- **Targets**: {passed} of {measured} rows pass; see the table below.")
    return lines


def print_breakdown(groups: dict[str, dict[str, float]]) -> None:
    """The step timings."""
    for group, steps in groups.items():
        print(f"\n== breakdown: {group}")
        for step, median in steps.items():
            print(f"   {step:<62} {median:>9.3f} µs")


_PAGE = """\
# Performance

<!-- Generated by benchmarks/run.py; edit benchmarks/report.py or benchmarks/analysis.md,
not this file. -->

What invalidtoken-mw adds to a request, next to the stacks our users would otherwise pick,
all measured side by side in one run: {mode} mode, {date}, {cpus} CPUs ({machine}), Python
{python}, load average {load} at the start; {blocks} interleaved blocks per stack and
scenario. Versions: {versions}.

![Median µs per request per scenario and stack, log scale]({chart})

## Headline

{headline}

## Targets

Benchmark goals from the issue, not timed unit tests. *where* names the scenario that
decided the row (the worst one).

| # | goal | measured | limit | result | where | note |
|---|---|---:|---:|---|---|---|
{targets}

## Results by scenario

*median µs*: median over the blocks of the mean time per call; *overhead*: median minus the
bare framework's median in the same scenario (floors: their own median); *x bare*: median /
bare median; *overhead x ours*: a peer's overhead as a multiple of ours on the same
framework. **Bold** rows are invalidtoken-mw; `[every-event]` rows log every rejection
(`log_rate_limit=None`), the others use the default flood limit (a burst of 50 events per
reason, then 10 per second). A rejection by our WSGI middleware never reaches Flask, which
is why its overhead over a bare Flask 200 is negative.

{scenarios}
{extras}
{breakdown}
## Method

- **In-process calls, no network.** ASGI applications are awaited directly
  (`await app(scope, receive, send)`) with a prebuilt uvicorn-shaped scope, copied per
  call; WSGI applications are called with a prebuilt PEP 3333 environ and their response
  iterable is consumed and closed. Endpoints are `async` on Starlette and FastAPI (a sync
  endpoint runs in the thread pool, which would dominate).
- **Interleaved blocks, medians.** For each scenario every stack is warmed up, then
  calibrated to about {block_ms:g} ms per block; {blocks} rounds then time one block of every
  stack, rotating the order each round, so a noisy neighbour on this shared 2-core machine
  slows all stacks alike. The figure per stack is the median over blocks of the mean µs per
  call (the JSON also has the quartiles and every block). The garbage collector runs before
  and is disabled during each block, so one stack's garbage is not collected on another's
  time (this slightly favours the allocation-heavy peers).
- **Overhead and ratio** come from the same scenario of the same run: overhead =
  median(stack) - median(bare app of the same framework); ratio = median(stack) /
  median(bare). Floors (a direct `jwt.decode`, `JWTVerifier.verify`, a cache hit, one Redis
  `MGET`, one structlog event) are plain calls in the same interleaving.
- **Repeated and fresh tokens.** Repeated scenarios send one token on every request, as a
  client does between refreshes. Fresh scenarios send each stack a different pre-minted
  token on every call (a pool of {fresh_pool}; no stack sees a token twice), so no cache can
  help.
- **Peers** are built the way their documentation shows: Starlette's
  `AuthenticationMiddleware` with a PyJWT backend decoding with a key object parsed once,
  and `@requires`; FastAPI `HTTPBearer` with an `async` dependency calling `jwt.decode`
  (`Security` scopes); flask-jwt-extended with `JWT_DECODE_*` settings and the PEM public
  key, `token_in_blocklist_loader` for revocation (its Redis recipe: one `GET` per request);
  Authlib's `ResourceProtector` with the RFC 9068 `JWTBearerTokenValidator`, given a
  pre-imported joserfc key. Every valid token carries the claims all of them require
  (`iss`, `aud`, `sub`, `client_id`, `iat`, `exp`, `jti`, `scope`, `typ: at+jwt`), and each
  stack's status is checked before it is timed (a valid token must get 200 everywhere, a bad
  one must not).
- **Logging is real.** structlog is configured with `add_log_level`,
  `TimeStamper(fmt="iso", utc=True)` and `JSONRenderer`, writing to `/dev/null` through
  `WriteLoggerFactory`. Our middleware logs one `auth_rejected` event per rejection: untagged
  rows use the default flood limit, `[every-event]` rows render every event. The peers log
  nothing.
- **Redis** runs as a local `redis-server` on a free loopback port (`--save ""
  --appendonly no`), started and stopped by the harness; the local-cache hit and the miss
  (`local_cache_ttl=0`) are timed next to the same middleware without a store, and the
  server counts the commands per request.
- **Memory** is `tracemalloc`'s retained size after verifying N distinct tokens once each,
  with header values decoded from bytes inside the measured region, so everything the
  caches keep is counted.

{analysis}

## Reproduce

```sh
pip install -e '.[bench]'          # the peers and matplotlib; redis-server from your OS
python benchmarks/run.py           # full run (under 10 minutes), rewrites this page
python benchmarks/run.py --quick   # under two minutes
python benchmarks/run.py --smoke   # seconds: checks the harness, writes nothing
```
"""

_REDIS = """\
## Revocation through Redis

Redis commands the server executed per request (`INFO commandstats`), local cache warm:

| stack | commands per request |
|---|---|
{rows}
"""

_FLOOD = """\
## JWKS flood (random unknown `kid` values)

{requests} requests per flood against a local JWKS endpoint that records every fetch.

| flood | cool-down | elapsed | fetches | windows | most fetches in one window | smallest gap \
| µs per request |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}
"""

_MEMORY = """\
## Memory per cached token

{tokens} distinct RS256 tokens ({token_chars} characters each), verified once each and
measured with `tracemalloc` after a `gc.collect()`:

- the `JWTVerifier` cache alone: **{verifier_bytes_per_token} bytes** per token (the token
  string, the entry and the claims);
- through `InvalidTokenMiddleware` (the verifier's cache plus the extractor's cache of
  `Authorization` values): **{middleware_bytes_per_token} bytes** per token;
- bounded: a verifier with `cache_size={bounded_cache_size}` holds {bounded_cache_held}
  entries after {tokens} tokens; the header cache holds at most {header_cache_bound} values
  ({header_cache_held} here).
"""

_BREAKDOWN = """\
## Where the time goes

Each step of our hot paths timed on its own, interleaved like the scenarios, in this run
(median µs per call; rows starting with + are whole applications, the bare one first).

{groups}"""


def _breakdown(results: dict[str, Any]) -> str:
    groups = results.get("breakdown")
    if not groups:
        return ""
    parts = []
    for group, steps in groups.items():
        rows = "\n".join(f"| {step} | {median:.2f} |" for step, median in steps.items())
        parts.append(f"**{group}**\n\n| step | median µs |\n|---|---:|\n{rows}\n")
    return _BREAKDOWN.format(groups="\n".join(parts))


def _extras(results: dict[str, Any]) -> str:
    parts = []
    redis = results.get("redis", {})
    if "skipped" in redis:
        parts.append(f"## Revocation through Redis\n\nSkipped: {redis['skipped']}\n")
    elif redis:
        rows = [
            f"| `{name}` | {', '.join(f'{k} {v:g}' for k, v in commands.items()) or 'none'} |"
            for name, commands in redis["commands_per_request"].items()
        ]
        parts.append(_REDIS.format(rows="\n".join(rows)))
    flood = results.get("jwks_flood")
    if flood:
        rows = []
        for key in ("asgi_default_cooldown", "threads_short_cooldown"):
            entry = flood[key]
            gap = "-" if entry["min_gap_s"] is None else f"{entry['min_gap_s']} s"
            rows.append(
                f"| `{key}` | {entry['cooldown_s']} s | {entry['elapsed_s']} s |"
                f" {entry['fetches']} | {entry['cooldown_windows']} |"
                f" {entry['max_fetches_per_window']} | {gap} | {entry['per_request_us']} |"
            )
        parts.append(_FLOOD.format(requests=flood["requests"], rows="\n".join(rows)))
    memory = results.get("memory")
    if memory:
        parts.append(_MEMORY.format(**memory))
    return "\n".join(parts)


def write_markdown(results: dict[str, Any], targets: list[Target], path: Path, chart: str) -> None:
    """docs/performance.md: headline, targets, every scenario, extras, method, analysis."""
    meta = results["meta"]
    target_rows = [
        f"| {t.number} | {t.goal} | {_num(t.measured, 2)} {t.unit} | {t.limit:g} |"
        f" {_verdict(t)} | `{t.where}` | {t.note} |"
        for t in targets
    ]
    scenarios = ["\n".join(_scenario_table(s)) for s in results["scenarios"]]
    page = _PAGE.format(
        **{**meta, "versions": ", ".join(f"{k} {v}" for k, v in meta["versions"].items())},
        chart=chart,
        headline="\n".join(_headline(results, targets)),
        targets="\n".join(target_rows),
        scenarios="\n".join(scenarios),
        extras=_extras(results),
        breakdown=_breakdown(results),
        analysis=ANALYSIS.read_text().strip() if ANALYSIS.exists() else "",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
