"""The benchmark harness still runs end to end (``benchmarks/run.py --smoke``).

Only that it runs, checks every stack's answer and writes every scenario is asserted,
never a timing: timings belong to docs/performance.md, not to a test on a shared machine.
The smoke run writes its page and chart into a temporary directory, so the code that
regenerates docs/performance.md cannot rot either.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from invalidtoken_mw import TokenKind

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = [
    *(f"{kind}_{alg}" for kind in ("valid", "fresh") for alg in ("hs256", "rs256", "es256")),
    "missing",
    "garbage",
    "expired",
    "forged",
]
FAMILIES = {"starlette", "fastapi", "flask"}
ALGORITHMS = ("HS256", "RS256", "ES256")
FRESH = [f"fresh_{alg.lower()}" for alg in ALGORITHMS]
FRESH_REFUSED = ["fresh_forged_rs256", "fresh_expired_rs256"]
# The targets of the issue, in its order; memory rows end with the token's size.
TARGET_CASES = [
    *(f"fresh valid {alg} token, Starlette" for alg in ALGORITHMS),
    *(
        f"fresh valid {alg} token, Starlette, against AuthenticationMiddleware + PyJWT"
        for alg in ALGORITHMS
    ),
    *(f"fresh valid {alg} token, Flask" for alg in ALGORITHMS),
    *(
        f"fresh RS256 token {what}, {framework}"
        for what in ("signed by another key", "expired, signature good")
        for framework in ("Starlette", "Flask")
    ),
    "RS256 verified token, positive cache (",
    "RS256 refused: signed by another key (",
    "RS256 refused: signed by another key, about 8 KB (",
    "RS256 refused: junk of the largest size allowed (",
    "a refusal put on the current span, tracing off",
    "resent opaque token, cached introspection answer, Starlette (ASGI)",
    "resent RS256 token, Starlette route reads the claims",
    "resent RS256 token, Flask route reads the claims",
    "resent RS256 token, Starlette, Prometheus and OpenTelemetry metrics on",
    "resent RS256 token, Flask, Prometheus and OpenTelemetry metrics on",
    "token-kind detection on a refusal, one token of each kind",
    *(
        f"introspection miss, 100 concurrent requests over 5 new tokens, {framework}"
        for framework in ("Starlette", "Flask")
    ),
    "valid DPoP request (fresh ES256 proof, resent token), ASGI",
    "replay of a DPoP proof",
    'Bearer path with dpop="allowed", ASGI',
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    workdir = tmp_path_factory.mktemp("smoke")
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--smoke",
            "--json",
            str(workdir / "results.json"),
            "--write-docs",
            str(workdir),
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert 0 == completed.returncode, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads((workdir / "results.json").read_text()), workdir


@pytest.mark.parametrize("name", SCENARIOS)
def test_smoke_run_times_every_stack_of_the_scenario(
    smoke: tuple[dict[str, Any], Path], name: str
) -> None:
    """Each scenario times the bare app, invalidtoken-mw and the peers on every framework."""
    results, _ = smoke
    scenario = next(s for s in results["scenarios"] if s["name"] == name)
    rows = {row["name"]: row for row in scenario["stacks"]}
    assert FAMILIES == {row["family"] for row in rows.values() if row["bare"]}
    assert {f"ours_{family}" for family in FAMILIES} <= set(rows)
    peers = {"starlette_pyjwt", "fastapi_httpbearer", "flask_jwt_extended", "authlib_flask"}
    assert peers <= set(rows)
    assert all(row["median_us"] > 0 and row["samples_us"] for row in rows.values())
    expected = 200 if name.startswith(("valid", "fresh")) else 401
    assert {expected} == {rows[f"ours_{family}"]["status"] for family in FAMILIES}


def _rows(results: dict[str, Any], name: str) -> dict[str, dict[str, Any]]:
    scenario = next(s for s in results["scenarios"] if s["name"] == name)
    return {row["name"]: row for row in scenario["stacks"]}


@pytest.mark.parametrize("name", FRESH + FRESH_REFUSED)
def test_smoke_run_times_the_raw_signature_check_beside_fresh_tokens(
    smoke: tuple[dict[str, Any], Path], name: str
) -> None:
    """Every fresh scenario also times PyJWT's algorithm ``verify`` alone, the targets' floor."""
    results, _ = smoke
    raw = _rows(results, name)["raw_signature"]
    assert "floor" == raw["family"]
    assert raw["median_us"] > 0
    assert raw["samples_us"]


@pytest.mark.parametrize("name", FRESH_REFUSED)
def test_smoke_run_refuses_a_fresh_forged_or_expired_token_on_starlette_and_flask(
    smoke: tuple[dict[str, Any], Path], name: str
) -> None:
    """A new forged or expired token on every request: bare app 200, invalidtoken-mw 401."""
    results, _ = smoke
    rows = _rows(results, name)
    for family in ("starlette", "flask"):
        assert 200 == rows[family]["status"]
        assert 401 == rows[f"ours_{family}"]["status"]
        assert rows[f"ours_{family}"]["median_us"] > 0


def test_smoke_run_times_routes_that_read_the_claims(smoke: tuple[dict[str, Any], Path]) -> None:
    """A resent token whose claims the route reads answers 200, next to the bare route."""
    results, _ = smoke
    rows = _rows(results, "claims_rs256")
    for family in ("starlette", "flask"):
        assert rows[family]["bare"]
        assert 200 == rows[f"ours_{family}_claims"]["status"]
        assert rows[f"ours_{family}_claims"]["overhead_us"] is not None


def test_smoke_run_times_a_cached_opaque_token_beside_the_jwt_path(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """The opaque-token scenario answers 200 through the IntrospectionVerifier's cache."""
    results, _ = smoke
    rows = _rows(results, "opaque_cached")
    for family in ("starlette", "flask"):
        assert rows[family]["bare"]
        assert 200 == rows[f"ours_{family}"]["status"]
        assert 200 == rows[f"ours_{family}_opaque"]["status"]
        assert rows[f"ours_{family}_opaque"]["overhead_us"] is not None


def test_smoke_run_measures_the_memory_kept_per_token(smoke: tuple[dict[str, Any], Path]) -> None:
    """Bytes kept per verified token and per refused token of each size, as numbers."""
    results, _ = smoke
    memory = {entry["name"]: entry for entry in results["memory"]}
    assert ["verified", "forged", "forged_8k", "junk"] == list(memory)
    assert 500 < memory["verified"]["token_bytes"] < 800
    assert 500 < memory["forged"]["token_bytes"] < 800
    assert 7000 < memory["forged_8k"]["token_bytes"] <= 8192 - len("Bearer ")
    assert 8192 - len("Bearer ") == memory["junk"]["token_bytes"]
    for entry in memory.values():
        assert entry["tokens"] > 0
        assert math.isfinite(entry["bytes_per_token"])


def test_smoke_run_measures_tracing_off_and_on(smoke: tuple[dict[str, Any], Path]) -> None:
    """A refusal's span lookup is timed in each tracing state, and the page shows it."""
    results, workdir = smoke
    tracing = results["tracing"]
    assert ["not_imported", "no_sdk", "sampled_out", "recording"] == list(tracing)
    assert all(math.isfinite(ns) and ns > 0 for ns in tracing.values())
    # Looking in sys.modules only must be cheaper than asking OpenTelemetry for a span.
    assert tracing["not_imported"] < tracing["sampled_out"] < tracing["recording"]
    cases = [row["case"] for row in results["targets"]]
    assert "a refusal put on the current span, tracing off" in cases
    assert "### Refusals on the current span (tracing)" in (workdir / "performance.md").read_text()


def test_smoke_run_reports_every_target_with_a_number(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """One row per target, each with its measured value and bound; pass or fail is not
    asserted: a timing belongs to the benchmark, not to a test on a shared machine. A
    ratio whose baseline came out at or below zero (noise on a loaded machine) is
    infinite, which counts as failed, never as passed; only NaN would be no number."""
    results, workdir = smoke
    rows = results["targets"]
    assert len(TARGET_CASES) == len(rows)
    for case, row in zip(TARGET_CASES, rows, strict=True):
        assert row["case"].startswith(case)
        assert not math.isnan(row["measured"])
        assert math.isfinite(row["measured"]) or not row["passed"]
        assert math.isfinite(row["bound"])
        assert isinstance(row["passed"], bool)
    page = (workdir / "performance.md").read_text()
    assert "## Targets" in page
    assert all(f"| {row['case']} | {row['target']} |" in page for row in rows)
    assert "targets pass" in page


def test_smoke_run_measures_the_redis_store_when_redis_server_exists(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """With redis-server on PATH the Redis local-cache scenario runs too."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}:
            pytest.fail("redis-server is not on PATH; CI must run the Redis scenario")
        pytest.skip("needs redis-server")
    results, _ = smoke
    scenario = next(s for s in results["scenarios"] if s["name"] == "redis_local_cache")
    names = {row["name"] for row in scenario["stacks"]}
    assert {"ours_starlette_redis", "ours_flask_redis"} <= names


def test_smoke_run_writes_the_performance_page_and_chart(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """``--write-docs DIR`` writes the page with every scenario's table, and a PNG chart."""
    _, workdir = smoke
    page = (workdir / "performance.md").read_text()
    assert "## Headline" in page
    assert all(f"(`{name}`)" in page for name in SCENARIOS)
    assert "## Targets" in page
    assert (workdir / "performance.png").read_bytes().startswith(b"\x89PNG")


def test_committed_page_was_written_by_the_current_harness() -> None:
    """docs/performance.md is the generated page (its header names the one command)."""
    page = (ROOT / "docs" / "performance.md").read_text()
    assert "python benchmarks/run.py --write-docs" in page
    assert all(f"(`{name}`)" in page for name in SCENARIOS)
    assert "## Targets" in page


def test_smoke_run_measures_token_kind_detection(smoke: tuple[dict[str, Any], Path]) -> None:
    """Every kind is timed (its sample detected as that kind), and the page shows it."""
    results, workdir = smoke
    kinds = results["token_kinds"]
    assert {kind.value for kind in TokenKind} | {"mean"} == set(kinds)
    assert all(math.isfinite(ns) and ns > 0 for ns in kinds.values())
    page = (workdir / "performance.md").read_text()
    assert "### Token-kind detection on a refusal" in page


def test_smoke_run_counts_introspection_calls_under_concurrent_misses(
    smoke: tuple[dict[str, Any], Path],
) -> None:
    """100 concurrent requests over 5 new opaque tokens: 5 calls, on ASGI and on WSGI."""
    results, workdir = smoke
    misses = results["introspection_misses"]
    assert {"starlette", "flask"} == set(misses)
    assert all((100, 5, 5) == (m["requests"], m["tokens"], m["calls"]) for m in misses.values())
    targets = [t for t in results["targets"] if t["case"].startswith("introspection miss")]
    assert [True, True] == [t["passed"] for t in targets]
    assert "### Introspection misses under concurrency" in (workdir / "performance.md").read_text()


def test_smoke_run_measures_dpop(smoke: tuple[dict[str, Any], Path]) -> None:
    """The DPoP figures are measured: a replayed proof costs exactly one cache operation."""
    results, _ = smoke
    dpop = results["dpop"]
    assert dpop["replay_operations"] == 1
    assert all(math.isfinite(value) and value > 0 for value in dpop.values())
    replay = next(t for t in results["targets"] if t["case"] == "replay of a DPoP proof")
    assert replay["passed"]
