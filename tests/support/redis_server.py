"""A real ``redis-server`` on loopback for the revocation tests.

:func:`running_redis` starts ``redis-server`` from ``PATH`` on a free 127.0.0.1 port,
without persistence (``--save "" --appendonly no``) in a temporary directory, and
waits until it answers ``PING``. A test can :meth:`RedisServer.kill` it (SIGKILL, as
a crash) and :meth:`RedisServer.start` it again on the same port, or freeze it
(:meth:`RedisServer.pause`, SIGSTOP) so it accepts connections but never answers. Without
``redis-server`` the tests fail under CI (``.ci/run`` installs Debian's package) and
are skipped elsewhere. :class:`AppProcess` serves ``support.revocation_app:app`` in a process
of its own (uvicorn, or gunicorn with uvicorn workers) pointed at such a server.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from pathlib import Path

START_TIMEOUT = 10.0
_FALSE = frozenset({"", "0", "false", "no"})


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set to a true value."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def redis_server_executable() -> str:
    """The ``redis-server`` on ``PATH``; fail under CI and skip elsewhere when missing."""
    found = shutil.which("redis-server")
    if found is None:
        message = "redis-server is not on PATH (Debian: apt-get install redis-server)"
        if in_ci():
            pytest.fail(f"{message}; CI must run the Redis tests", pytrace=False)
        pytest.skip(message)
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pong(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on a fixed port, which can crash and come back."""

    def __init__(self, executable: str, directory: Path, port: int) -> None:
        """Remember where and how to run; :meth:`start` runs it."""
        self.executable = executable
        self.directory = directory
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, after :meth:`kill`) and wait until it answers PING."""
        command = [
            self.executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", str(self.directory), "--logfile", "redis.log"),
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + START_TIMEOUT
        while not _pong(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = self.directory / "redis.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server did not start on port {self.port}\n{tail}")
            time.sleep(0.01)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted, nothing is answered."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server if it runs (SIGTERM, then SIGKILL after a few seconds)."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGCONT)  # a paused server cannot exit
        self._process.terminate()
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
        self._process = None


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> float:
    """Seconds until ``condition()`` held (polled), or ``math.inf`` after ``timeout``."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            return math.inf
        time.sleep(interval)


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[RedisServer]:
    """Run ``redis-server`` in ``directory`` on a free port for the ``with`` block."""
    server = RedisServer(redis_server_executable(), directory, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class AppProcess:
    """``support.revocation_app:app`` served by a server process of its own, on a free port.

    ``server`` is the ``python -m`` command line (``uvicorn`` or ``gunicorn`` with
    uvicorn workers, say), with ``{port}`` where the port goes. ``settings`` are the
    ``INVALIDTOKEN_TEST_*`` variables beyond the Redis URL (``SECRET``, ``PREFIX``, ...).
    """

    def __init__(
        self,
        server: Sequence[str],
        *,
        redis_url: str,
        settings: dict[str, str],
        log: Path,
        ready_within: float = 15,
        stop_within: float = 5,
    ) -> None:
        """Start the process; :meth:`wait_ready` waits for it."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._ready_within = ready_within
        self._stop_within = stop_within
        env = {
            **os.environ,
            "INVALIDTOKEN_TEST_REDIS_URL": redis_url,
            **{f"INVALIDTOKEN_TEST_{name}": value for name, value in settings.items()},
        }
        command = [sys.executable, "-m", *(arg.format(port=port) for arg in server)]
        with log.open("wb") as output:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=env, stdout=output, stderr=subprocess.STDOUT
            )

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.url} exited:\n{self.log.read_text()}")
        try:
            return httpx.get(f"{self.url}/health", trust_env=False).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self) -> None:
        """Wait until the process answers ``/health``."""
        if wait_until(self._healthy, self._ready_within, 0.05) == math.inf:
            self.stop()
            raise RuntimeError(f"{self.url} did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the process (SIGTERM: a lifespan shutdown closes its store); kill if it hangs."""
        self.process.terminate()
        try:
            self.process.wait(self._stop_within)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
