"""The benchmark harness still runs end to end (``benchmarks/run.py --smoke``).

Only that it runs, checks every stack's answer and writes every scenario is asserted,
never a timing: timings belong to docs/performance.md, not to a test on a shared machine.
The smoke run writes its page and chart into a temporary directory, so the code that
regenerates docs/performance.md cannot rot either.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = [
    *(f"{kind}_{alg}" for kind in ("valid", "fresh") for alg in ("hs256", "rs256", "es256")),
    "missing",
    "garbage",
    "expired",
    "forged",
]
FAMILIES = {"starlette", "fastapi", "flask"}


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
    assert (workdir / "performance.png").read_bytes().startswith(b"\x89PNG")


def test_committed_page_was_written_by_the_current_harness() -> None:
    """docs/performance.md is the generated page (its header names the one command)."""
    page = (ROOT / "docs" / "performance.md").read_text()
    assert "python benchmarks/run.py --write-docs" in page
    assert all(f"(`{name}`)" in page for name in SCENARIOS)
