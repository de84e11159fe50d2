"""The published artefact: a wheel installed into a fresh virtualenv, far from the checkout.

Builds the wheel with pip (as a release would), installs it with its ``demo`` extra
and pytest into a new virtualenv in a temporary directory (once for the module), and
runs from there ``invalidtoken-mw demo`` and a throwaway project's tests that use the
``local_issuer`` fixture: nothing of the source tree (examples/, src/, tests/) is on
hand, as for a user who ran ``pip install 'invalidtoken-mw[demo]'``. About half a
minute, most of it the install.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from invalidtoken_mw import Reason

ROOT = Path(__file__).resolve().parents[1]
STEP_TIMEOUT_S = 300


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one step with a clean environment (no PYTHONPATH, no virtualenv of ours)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "NO_COLOR", "PYTHONHOME"}
    }
    return subprocess.run(  # noqa: S603 - our own interpreter, pip and console script
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
        env=environment,
    )


@dataclass(frozen=True)
class Installed:
    """A fresh virtualenv holding the wheel (with ``demo``) and pytest, and a directory."""

    venv: Path
    elsewhere: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """pip wheel the checkout, make a virtualenv, ``pip install wheel[demo] pytest``."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(dist)],
        elsewhere,
    )
    assert 0 == built.returncode, built.stderr
    [wheel] = dist.glob("invalidtoken_mw-*.whl")
    made = _run([sys.executable, "-m", "venv", str(venv)], elsewhere)
    assert 0 == made.returncode, made.stderr
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile"]
    installed = _run([*pip, f"{wheel}[demo]", "pytest"], elsewhere)
    assert 0 == installed.returncode, installed.stderr
    return Installed(venv, elsewhere)


def test_demo_runs_from_a_wheel_installed_outside_the_checkout(installed: Installed) -> None:
    """pip wheel, a fresh venv, ``pip install wheel[demo]``: the demo shows every reason."""
    venv, elsewhere = installed.venv, installed.elsewhere
    python = venv / "bin" / "python"
    where = _run(
        [str(python), "-c", "import invalidtoken_mw; print(invalidtoken_mw.__file__)"], elsewhere
    )
    demo = _run([str(venv / "bin" / "invalidtoken-mw"), "demo"], elsewhere)
    assert (True, 0, "") == (
        Path(where.stdout.strip()).is_relative_to(venv),
        demo.returncode,
        "Traceback" if "Traceback" in demo.stderr else "",
    ), demo.stderr
    rows = re.findall(r"^.{26}(\d{3})\s+(\S+)", demo.stdout, re.MULTILINE)
    refused = [reason for status, reason in rows if int(status) >= 400]
    summary = re.search(r"^(\d+) auth_rejected log events", demo.stdout, re.MULTILINE)
    assert {reason.value for reason in Reason} == set(refused), demo.stdout
    assert len(refused) == (int(summary.group(1)) if summary else None), demo.stdout


PROJECT_TESTS = """
import asyncio

import httpx
import pytest
from fastapi import FastAPI

from invalidtoken_mw import InvalidTokenMiddleware


def make_app(verifier):
    app = FastAPI()
    app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm="orders")

    @app.get("/orders")
    def orders():
        return {"orders": []}

    return app


async def get(app, headers):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/orders", headers=headers)


@pytest.mark.local_issuer(audience="api://orders")
def test_orders(local_issuer):
    app = make_app(local_issuer.verifier())
    assert asyncio.run(get(app, local_issuer.headers())).status_code == 200
    refused = asyncio.run(get(app, local_issuer.headers("expired")))
    assert (refused.status_code, refused.json()["reason"]) == (401, "expired")


def test_rotation(local_issuer):
    verifier = local_issuer.verifier()
    local_issuer.rotate(keep_old=False)
    verifier.refresh_keys()
    assert verifier.verify(local_issuer.token(sub="alice"))["sub"] == "alice"
"""


def test_the_pytest_plugin_serves_a_project_that_installed_the_wheel(
    installed: Installed, tmp_path: Path
) -> None:
    """A throwaway project's tests use the local_issuer fixture the wheel's plugin gives."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "test_orders.py").write_text(dedent(PROJECT_TESTS))
    (project / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider --strict-markers\nfilterwarnings = error\n"
    )
    ran = _run([str(installed.venv / "bin" / "python"), "-m", "pytest", "-q"], project)
    assert (0, True) == (ran.returncode, "2 passed" in ran.stdout), ran.stdout + ran.stderr
