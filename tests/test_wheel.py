"""The published artefact: a wheel installed into a fresh virtualenv, far from the checkout.

Builds the wheel with pip (as a release would), installs it with its ``demo`` extra
into a new virtualenv in a temporary directory, and runs ``invalidtoken-mw demo`` from
there: nothing of the source tree (examples/, src/) is on hand, as for a user who ran
``pip install 'invalidtoken-mw[demo]'``. About half a minute, most of it the install.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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


def test_demo_runs_from_a_wheel_installed_outside_the_checkout(tmp_path: Path) -> None:
    """pip wheel, a fresh venv, ``pip install wheel[demo]``: the demo shows every reason."""
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
    python = venv / "bin" / "python"
    installed = _run(
        [str(python), "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[demo]"], elsewhere
    )
    assert 0 == installed.returncode, installed.stderr
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
