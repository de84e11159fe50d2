"""Benchmark invalidtoken-mw against a bare app and the libraries people use today.

Usage::

    python benchmarks/run.py            # full run (under 10 minutes)
    python benchmarks/run.py --quick    # under two minutes
    python benchmarks/run.py --smoke    # seconds: checks the harness, writes nothing
    python benchmarks/run.py --only valid_rs256,garbage --out /tmp/bench
    python benchmarks/run.py --from-json benchmarks/results/latest.json  # rewrite the page

The full and quick runs write benchmarks/results/latest.json, docs/performance.md and
docs/performance.png (``--out DIR`` writes all three into DIR instead). Needs the
``bench`` extra (``pip install -e '.[bench]'``); Redis scenarios need ``redis-server``
on ``PATH`` and are skipped with a note without it.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import report
import structlog
from breakdown import breakdown
from extras import commands_per_request, jwks_flood, memory_per_token, redis_server
from material import DEFAULT_ALG, make_keys, mint
from scenarios import SCENARIO_NAMES, Catalogue, Scenario, build_scenarios
from targets import Target, evaluate
from timing import Plan, Timed, interleave

OK = 200
EXTRAS = ("breakdown", "jwks_flood", "memory")
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DOCS = ROOT / "docs" / "performance.md"
CHART = ROOT / "docs" / "performance.png"
PACKAGES = (
    "invalidtoken-mw",
    "starlette",
    "fastapi",
    "flask",
    "pyjwt",
    "cryptography",
    "flask-jwt-extended",
    "authlib",
    "joserfc",
    "structlog",
    "redis",
)


@dataclass(frozen=True)
class Mode:
    """How much to measure."""

    name: str
    plan: Plan
    fresh_pool: int
    flood_requests: int
    memory_tokens: int
    memory_bound: int
    redis_check_calls: int


MODES = {
    "smoke": Mode("smoke", Plan(2, 0.001, 2, 10, 2), 40, 300, 40, 20, 10),
    "quick": Mode("quick", Plan(11, 0.01, 20, 20_000, 30), 1_500, 10_000, 1_500, 1_000, 200),
    "full": Mode("full", Plan(21, 0.025, 30, 50_000, 100), 4_000, 10_000, 4_000, 2_000, 1_000),
}


class HarnessError(RuntimeError):
    """Raised when a stack answers a status the scenario says it cannot."""


def configure_logging(sink: TextIO) -> None:
    """A cheap but real structlog pipeline: level, ISO timestamp, JSON, to ``sink``."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.WriteLoggerFactory(file=sink),
        cache_logger_on_first_use=True,
    )


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


async def _statuses(scenario: Scenario) -> dict[str, int | None]:
    """Each stack's status for the scenario's request; wrong answers stop the run."""
    found: dict[str, int | None] = {}
    for stack in scenario.stacks:
        status = await scenario.requests.status(stack)
        found[stack.name] = status
        if status is None:
            continue
        if stack.baseline is None and status != OK:
            raise HarnessError(f"{scenario.name}: bare {stack.name} answered {status}")
        if stack.ours and status != scenario.expect:
            raise HarnessError(
                f"{scenario.name}: {stack.name} answered {status}, expected {scenario.expect}"
            )
        if not stack.ours and stack.baseline is not None:
            rejected = scenario.expect != OK
            if rejected == (status == OK):
                raise HarnessError(
                    f"{scenario.name}: peer {stack.name} answered {status}; check its setup"
                )
    return found


def _summary(
    scenario: Scenario, timed: list[Timed], statuses: dict[str, int | None]
) -> dict[str, Any]:
    medians = {t.name: t.median for t in timed}
    stacks = []
    for stack, entry in zip(scenario.stacks, timed, strict=True):
        baseline = stack.baseline
        bare = medians.get(baseline) if baseline else None
        quartiles = statistics.quantiles(entry.samples, n=4) if len(entry.samples) > 1 else []
        stacks.append(
            {
                "name": stack.name,
                "label": stack.label,
                "family": stack.family,
                "ours": stack.ours,
                "baseline": baseline,
                "status": statuses.get(stack.name),
                "median_us": round(entry.median, 3),
                "p25_us": round(quartiles[0], 3) if quartiles else None,
                "p75_us": round(quartiles[2], 3) if quartiles else None,
                "overhead_us": round(entry.median - bare if bare is not None else entry.median, 3),
                "ratio": round(entry.median / bare, 3) if bare else None,
                "calls_per_block": entry.calls,
                "samples_us": [round(s, 3) for s in entry.samples],
            }
        )
    return {
        "name": scenario.name,
        "title": scenario.title,
        "group": scenario.group,
        "expect": scenario.expect,
        "fresh": scenario.fresh,
        "not_applicable": scenario.not_applicable,
        "stacks": stacks,
    }


async def _time_scenarios(scenarios: list[Scenario], mode: Mode) -> list[dict[str, Any]]:
    summaries = []
    for scenario in scenarios:
        statuses = await _statuses(scenario)
        pool = len(scenario.requests.authorizations) if scenario.fresh else None
        timed = [Timed(s.name, scenario.requests.runner(s), distinct=pool) for s in scenario.stacks]
        await interleave(timed, mode.plan)
        summary = _summary(scenario, timed, statuses)
        report.print_scenario(summary)
        summaries.append(summary)
    return summaries


async def _redis_commands(catalogue: Catalogue, mode: Mode) -> dict[str, Any]:
    """Commands per request for our Redis-backed stacks and the peer's blocklist."""
    requests = next((s.requests for s in catalogue.scenarios if s.name == "revocation_check"), None)
    if requests is None:
        return {}
    client = catalogue.redis_client()
    counted = {
        "ours_asgi_local_cache": catalogue.ours_asgi(variant="redis-store"),
        "ours_asgi_no_local_cache": catalogue.ours_asgi(variant="redis-no-local-cache"),
        "ours_wsgi_local_cache": catalogue.ours_wsgi(variant="redis-store"),
        "ours_wsgi_no_local_cache": catalogue.ours_wsgi(variant="redis-no-local-cache"),
        "flask_jwt_extended_redis_blocklist": catalogue.flask_jwt_extended(blocklist="redis"),
    }
    return {
        name: await commands_per_request(client, requests.runner(stack), mode.redis_check_calls)
        for name, stack in counted.items()
    }


async def measure(mode: Mode, only: set[str] | None) -> dict[str, Any]:
    """Run every scenario and extra; return the results document."""
    began = time.monotonic()
    load = round(os.getloadavg()[0], 2)
    if load > 0.5:  # noqa: PLR2004 - a quarter of this 2-core machine
        print(f"note: load average {load}: other processes are running; expect noisier numbers")
    keys = make_keys()
    results: dict[str, Any] = {}
    with redis_server() as redis_url:
        if redis_url is None:
            print("note: redis-server is not on PATH; the Redis scenarios are skipped")
        catalogue = Catalogue(keys, redis_url)
        scenarios = build_scenarios(catalogue, fresh_pool=mode.fresh_pool, only=only)
        catalogue.scenarios = scenarios
        gc.collect()
        gc.freeze()  # set-up objects never need collecting: keep each block's gc.collect() cheap
        results["scenarios"] = await _time_scenarios(scenarios, mode)
        if redis_url is None:
            results["redis"] = {"skipped": "redis-server is not on PATH"}
        else:
            results["redis"] = {"commands_per_request": await _redis_commands(catalogue, mode)}
            print(f"\n== redis commands per request: {results['redis']['commands_per_request']}")
        if only is None or "breakdown" in only:
            results["breakdown"] = await breakdown(keys[DEFAULT_ALG], redis_url, mode.plan)
            report.print_breakdown(results["breakdown"])
        for close in catalogue.closers:
            await close()
    if only is None or "jwks_flood" in only:
        results["jwks_flood"] = await jwks_flood(keys[DEFAULT_ALG], requests=mode.flood_requests)
        print(f"\n== jwks_flood: {results['jwks_flood']}")
    if only is None or "memory" in only:
        tokens = [mint(keys[DEFAULT_ALG]) for _ in range(mode.memory_tokens)]
        results["memory"] = await memory_per_token(
            keys[DEFAULT_ALG], tokens, bound=mode.memory_bound
        )
        print(f"\n== memory: {results['memory']}")
    results["meta"] = {
        "mode": mode.name,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.monotonic() - began, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load": load,
        "blocks": mode.plan.blocks,
        "block_ms": mode.plan.block_seconds * 1000,
        "fresh_pool": mode.fresh_pool,
        "versions": {p: _version(p) for p in PACKAGES},
    }
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="fewer, shorter blocks (< 2 min)")
    group.add_argument("--smoke", action="store_true", help="a few calls each (< 15 s), no files")
    group.add_argument(
        "--from-json",
        type=Path,
        metavar="JSON",
        help="measure nothing: rewrite the page and chart from a results file",
    )
    parser.add_argument("--only", help=f"comma-separated scenarios or extras ({', '.join(EXTRAS)})")
    parser.add_argument("--out", type=Path, help="write the JSON, markdown and chart here")
    return parser


def _write(results: dict[str, Any], targets: list[Target], out: Path | None) -> None:
    json_path = RESULTS if out is None else out / "latest.json"
    docs_path = DOCS if out is None else out / "performance.md"
    chart_path = CHART if out is None else out / "performance.png"
    report.write_json(results, json_path)
    report.write_chart(results, chart_path)
    report.write_markdown(results, targets, docs_path, chart_path.name)
    print(f"\nwrote {json_path}, {docs_path}, {chart_path}")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run, print and write the results."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.from_json is not None:
        results = json.loads(args.from_json.read_text())
        targets = evaluate(results)
        results["targets"] = [t.as_dict() for t in targets]
        report.print_targets(targets)
        _write(results, targets, args.out)
        return 0
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    only = set(args.only.split(",")) if args.only else None
    known = {*SCENARIO_NAMES, *EXTRAS}
    if only is not None and not only <= known:
        parser.error(f"unknown scenario(s) {sorted(only - known)}; choose from {sorted(known)}")
    with Path(os.devnull).open("w") as sink:
        configure_logging(sink)
        try:
            results = asyncio.run(measure(mode, only))
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    targets = evaluate(results)
    results["targets"] = [t.as_dict() for t in targets]
    report.print_targets(targets)
    if args.out is not None or mode.name != "smoke":
        _write(results, targets, args.out)
    print(f"\ndone in {results['meta']['seconds']} s ({mode.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
