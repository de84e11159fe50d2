"""docs/logging.md's recipes, each run in a fresh interpreter and its output checked.

A recipe (a block marked ``<!-- recipe: name -->``) configures process-wide logging, so
it never runs in the test process. Each runs in a subprocess followed by a probe that
sends one request without a token (``GET /orders``) through the WSGI middleware; what
comes out must be what the page shows after the recipe, the clock aside. The uvicorn
recipe is started as the script it is, served on loopback and asked over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from test_docs import DOCS, samples

if TYPE_CHECKING:
    from pathlib import Path

PAGE = DOCS / "logging.md"
RECIPES = {s.recipe: s for s in samples(PAGE) if s.recipe}
# Values that change with every run; the key must still be there.
VOLATILE = {"timestamp", "@timestamp", "user_agent", "ecs.version"}
TIMEOUT = 60

PROBE = """
from wsgiref.util import setup_testing_defaults as _defaults

from invalidtoken_mw import InvalidTokenWSGIMiddleware as _Middleware
from invalidtoken_mw import JWTVerifier as _Verifier


def _app(environ, start_response):
    start_response("200 OK", [])
    return [b"ok"]


_guarded = _Middleware(_app, verifier=_Verifier(
    key="docs-secret-for-hs256-at-least-32-bytes", algorithms=["HS256"],
    issuer="https://id.example.com/", audience="api://orders",
))
_environ = {}
_defaults(_environ)
_environ.update(
    PATH_INFO="/orders", REMOTE_ADDR="203.0.113.7",
    HTTP_USER_AGENT="curl/8.5.0", HTTP_X_REQUEST_ID="9f1c2e",
)
_statuses = []
b"".join(_guarded(_environ, lambda status, headers, exc_info=None: _statuses.append(status)))
assert _statuses == ["401 Unauthorized"], _statuses
"""


def shown_output(name: str, language: str = "json") -> list[str]:
    """The lines of the first ``language`` block after recipe ``name`` on the page."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    index = RECIPES[name].line
    while lines[index] != f"```{language}":
        index += 1
    end = lines.index("```", index + 1)
    return lines[index + 1 : end]


def run_recipe(name: str, probe: str = PROBE) -> subprocess.CompletedProcess[str]:
    """Recipe ``name`` then ``probe`` in a fresh interpreter; its output."""
    return subprocess.run(  # noqa: S603 - our own interpreter, the page's code
        [sys.executable, "-c", RECIPES[name].code + probe],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )


def same_shape(shown: Any, produced: Any) -> bool:
    """Equal JSON, but the values of VOLATILE keys, which need only be present."""
    if isinstance(shown, dict) and isinstance(produced, dict):
        return shown.keys() == produced.keys() and all(
            key in VOLATILE or same_shape(shown[key], produced[key]) for key in shown
        )
    return bool(shown == produced)


def test_every_recipe_on_the_page_is_checked_here() -> None:
    """A recipe added to the page needs its check below; none is forgotten."""
    checked = {
        "structlog-json",
        "uvicorn-stdlib",
        "gunicorn-stdlib",
        "stdlib-only",
        "otel-logs",
        "ecs",
        "datadog",
    }
    assert checked == set(RECIPES)


@pytest.mark.parametrize("name", ["structlog-json", "ecs", "datadog"])
def test_json_recipes_print_what_the_page_shows(name: str) -> None:
    """structlog-only JSON, ECS and Datadog: the one line printed is the one shown."""
    result = run_recipe(name)
    [shown] = [json.loads(line) for line in shown_output(name)]
    [produced] = [json.loads(line) for line in result.stdout.splitlines()]
    assert same_shape(shown, produced), (shown, produced)
    assert "" == result.stderr


def test_without_structlog_configuration_events_ignore_logging() -> None:
    """The page's warning: with only logging.basicConfig, the event goes to stdout."""
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", "import logging\nlogging.basicConfig()\n" + PROBE],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    assert "auth_rejected" in result.stdout
    assert "" == result.stderr


def test_the_stdlib_only_recipe_hands_the_event_to_logging() -> None:
    """stdlib-only: nothing on stdout, the shown line on stderr through logging."""
    result = run_recipe("stdlib-only")
    assert "" == result.stdout
    assert shown_output("stdlib-only", "text") == result.stderr.splitlines()


def test_the_otel_recipe_exports_the_event_as_a_log_record() -> None:
    """otel-logs: one record in the in-memory exporter, with semantic-convention names."""
    probe = PROBE + (
        "import json\n"
        "[_record] = exporter.get_finished_logs()\n"
        "_json = json.loads(_record.to_json())\n"
        "print(json.dumps({k: _json[k] for k in ('body', 'severity_text', 'attributes')}))\n"
    )
    result = run_recipe("otel-logs", probe)
    [shown] = [json.loads(line) for line in shown_output("otel-logs")]
    [produced] = [json.loads(line) for line in result.stdout.splitlines()]
    attributes = produced["attributes"]
    # The SDK adds where the logging call was made; the page leaves that out.
    kept = {k: v for k, v in attributes.items() if not k.startswith("code.")}
    assert shown == {**produced, "attributes": kept}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_and_refuse(command: list[str], port: int, cwd: Path) -> list[dict[str, Any]]:
    """Start ``command`` (a server on ``port``), GET /orders without a token, stop it.

    Returns the server's standard error, every line parsed as JSON (one that is not
    fails the test); standard output must stay empty.
    """
    server = subprocess.Popen(  # noqa: S603 - our own interpreter, the page's code
        command,
        cwd=cwd,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/orders", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert 401 == response.status_code
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, stderr = server.communicate(timeout=TIMEOUT)
    assert "" == stdout
    return [json.loads(line) for line in stderr.splitlines()]


def _check_stream(name: str, lines: list[dict[str, Any]], server_loggers: set[str]) -> None:
    assert server_loggers | {"invalidtoken_mw"} <= {line["logger"] for line in lines}
    [ours] = [line for line in lines if line["event"] == "auth_rejected"]
    shown = [json.loads(line) for line in shown_output(name)]
    [shown_ours] = [line for line in shown if line["event"] == "auth_rejected"]
    assert same_shape(shown_ours, ours), ours
    # Every line, the server's included, has the keys of a line the page shows.
    assert {tuple(sorted(line)) for line in shown} >= {tuple(sorted(line)) for line in lines}


def test_the_uvicorn_recipe_shares_one_json_stream(tmp_path: Path) -> None:
    """uvicorn-stdlib: uvicorn's lines and ours, all JSON, on the same stream."""
    (tmp_path / "app.py").write_text(RECIPES["uvicorn-stdlib"].code, encoding="utf-8")
    lines = serve_and_refuse([sys.executable, "app.py"], _free_port(), tmp_path)
    _check_stream("uvicorn-stdlib", lines, {"uvicorn.error", "uvicorn.access"})
    [access] = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert '"GET /orders HTTP/1.1" 401' in access["event"]


def test_the_gunicorn_recipe_shares_one_json_stream(tmp_path: Path) -> None:
    """gunicorn-stdlib: gunicorn's lines and ours, all JSON, on the same stream."""
    (tmp_path / "app.py").write_text(RECIPES["uvicorn-stdlib"].code, encoding="utf-8")
    (tmp_path / "gunicorn.conf.py").write_text(RECIPES["gunicorn-stdlib"].code, encoding="utf-8")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--no-control-socket",
        "-b",
        f"127.0.0.1:{port}",
        "app:app",
    ]
    lines = serve_and_refuse(command, port, tmp_path)
    _check_stream("gunicorn-stdlib", lines, {"gunicorn.error"})
    assert any(line["event"].startswith("Listening at: ") for line in lines)
