"""The load test (``tests/load.py``) at a small size, and the checks it relies on.

CI also runs it at full size (20,000 requests per server) from ``.ci/run``; here 2,000
requests per server through a real uvicorn and a real waitress must all be answered
correctly, without a 5xx and without RSS growth after the warm-up.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from types import ModuleType

SCRIPT = Path(__file__).resolve().with_name("load.py")


@functools.cache
def load_module() -> ModuleType:
    """Import ``tests/load.py`` once, as a module (tests is not a package)."""
    spec = importlib.util.spec_from_file_location("invalidtoken_load_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


def test_load_script_passes_at_a_small_size(tmp_path: Path) -> None:
    """2,000 mixed requests per server: exit 0, every answer right, no 5xx, figures written."""
    figures = tmp_path / "load.json"
    command = [sys.executable, str(SCRIPT), "--requests", "2000", "--concurrency", "8"]
    completed = subprocess.run(  # noqa: S603 - our own interpreter and script
        [*command, "--json", str(figures)], capture_output=True, text=True, timeout=240, check=False
    )
    assert 0 == completed.returncode, completed.stdout + completed.stderr
    results = json.loads(figures.read_text())
    summary = [
        (r["server"], r["requests"], r["wrong"], r["server_errors"], r["transport_errors"])
        for r in results
    ]
    assert [("uvicorn", 2000, 0, 0, 0), ("waitress", 2000, 0, 0, 0)] == summary
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in results)


def _response(
    status: int, body: dict[str, str] | str, challenge: str | None = None
) -> httpx.Response:
    headers = {} if challenge is None else {"www-authenticate": challenge}
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


BARE = 'Bearer realm="orders"'
INVALID = 'Bearer realm="orders", error="invalid_token", error_description="x"'


@pytest.mark.parametrize(
    ("kind", "sub", "response", "verdict"),
    [
        ("valid", "user-1", _response(200, "user-1"), "right"),
        ("valid", "user-1", _response(200, "user-2"), "wrong"),
        ("valid", "user-1", _response(500, "user-1"), "wrong"),
        ("expired", None, _response(401, {"reason": "expired"}, INVALID), "right"),
        ("expired", None, _response(401, {"reason": "bad_signature"}, INVALID), "wrong"),
        ("forged", None, _response(403, {"reason": "bad_signature"}, INVALID), "wrong"),
        ("missing", None, _response(401, {"reason": "missing_token"}, BARE), "right"),
        ("missing", None, _response(401, {"reason": "missing_token"}, INVALID), "wrong"),
        ("revoked", None, _response(401, {"reason": "revoked"}, BARE), "wrong"),
        ("garbage", None, _response(401, "not json"), "wrong"),
    ],
)
def test_load_checker_flags_every_wrong_answer(
    kind: str, sub: str | None, response: httpx.Response, verdict: str
) -> None:
    """The script's per-response check accepts the due answer and flags anything else."""
    load = load_module()
    item = load.Item(kind, "Bearer x", sub)
    assert verdict == ("right" if load.problem(item, response) is None else "wrong")
