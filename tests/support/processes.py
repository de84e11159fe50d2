"""Servers the tests start as processes: started until ready, always stopped."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from support.redis_server import in_ci

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path


@contextlib.contextmanager
def serving(
    command: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    ready: Callable[[], bool],
    name: str,
    timeout: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (its output in ``log``) until ``ready()``; stop it on exit.

    A process that exits, or is not ready within ``timeout`` seconds, fails the test
    with the end of its log.
    """
    with log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - the tests' own fixed commands
            list(command), cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"{name} did not start:\n{tail}", pytrace=False)
            time.sleep(0.05)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[Any]) -> None:
    """Terminate ``process``; kill it if it has not exited within ten seconds."""
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def require_package(module: str, package: str) -> None:
    """Fail under CI and skip elsewhere when ``package`` (importing as ``module``) is missing."""
    if importlib.util.find_spec(module) is None:
        message = f"{package} is not installed (pip install --group dev)"
        if in_ci():
            pytest.fail(f"{message}; CI must run the real-provider tests", pytrace=False)
        pytest.skip(message)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now (a server's readiness probe)."""
    try:
        with httpx.Client(trust_env=False, timeout=1.0) as http:
            return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False
