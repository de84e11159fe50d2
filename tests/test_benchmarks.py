"""The benchmark harness still runs end to end (``benchmarks/run.py --smoke``).

Only that it runs and reports every scenario is checked, never a timing: timings belong
to docs/performance.md, not to a test on a shared machine.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (
    "valid_hs256",
    "valid_rs256",
    "valid_es256",
    "fresh_hs256",
    "fresh_rs256",
    "fresh_es256",
    "expired",
    "forged",
    "garbage",
    "malformed",
    "missing",
    "oversized",
    "insufficient_scope",
    "revocation_check",
    "revoked_memory",
)
EXTRAS = ("breakdown", "jwks_flood", "memory", "targets")


@pytest.fixture(scope="module")
def smoke_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    # The peers are benchmark-only dependencies (the `bench` extra).
    for module in ("flask_jwt_extended", "authlib", "joserfc", "fastapi", "flask", "redis"):
        pytest.importorskip(module)
    workdir = tmp_path_factory.mktemp("smoke")
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert 0 == completed.returncode, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert [] == list(workdir.iterdir()), "--smoke must not write files without --out"
    return completed.stdout


@pytest.mark.parametrize("name", SCENARIOS)
def test_smoke_run_reports_the_scenario(smoke_output: str, name: str) -> None:
    """Each scenario is timed and printed under its own heading."""
    assert f"== {name}:" in smoke_output


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
def test_smoke_run_reports_the_redis_scenario(smoke_output: str) -> None:
    """With redis-server on PATH the Redis revocation scenario runs too."""
    assert "== revoked_redis:" in smoke_output


@pytest.mark.parametrize("section", EXTRAS)
def test_smoke_run_reports_the_extras(smoke_output: str, section: str) -> None:
    """The step breakdown, JWKS flood, memory and target sections are printed."""
    assert f"== {section}" in smoke_output
