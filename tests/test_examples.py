"""The example applications, run for real and held to what their READMEs say.

Each README documents its set-up as shell commands (``orders.env`` exports and a ``mint``
shell function) and every request as a ``console`` block followed by an ``http`` block
with the status line, the ``www-authenticate`` header and the body a person sees. These
tests read those blocks, configure the example through the same environment variables
(the module is loaded by path and ``create_app()`` called under them), serve it for real
(FastAPI, Litestar, Quart and Starlette under uvicorn, Flask and Django under waitress), mint
each token with the ``invalidtoken-mw mint`` parser, send each documented request and
compare the answer with the README, for both the HMAC and the RS256 set-up. The FastAPI
example's websocket script and OpenAPI claims are checked the same way, and each example
is started once with its README's own command in a subprocess.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import json
import os
import re
import runpy
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from invalidtoken_mw import Reason
from invalidtoken_mw.cli import build_parser
from invalidtoken_mw.testing import DEFECTS
from support.jwks_server import JWKSServer
from support.servers import client, run_uvicorn, run_waitress
from support.tokens import session_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#+ (?P<title>.+)$", re.MULTILINE)
MINT_HELPER = re.compile(
    r'^\$ mint\(\) \{ invalidtoken-mw mint (?P<args>.*) "\$@"; \}$', re.MULTILINE
)
COMMAND_SUBSTITUTION = re.compile(r"\$\((?P<command>[^()]*(?:\([^()]*\)[^()]*)*)\)")
VARIABLE = re.compile(r"\$\{?(?P<name>[A-Za-z_]\w*)\}?")
START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Example:
    """One example application: its source, its README and the address the README uses."""

    name: str
    source: Path
    address: str
    start_command: str
    asgi: bool = False  # served by uvicorn; otherwise by waitress

    @property
    def readme(self) -> str:
        """The README's text (beside the source, or beside its package for Django)."""
        folder = self.source.parent
        if not (folder / "README.md").exists():
            folder = folder.parent
        return (folder / "README.md").read_text(encoding="utf-8")


FASTAPI = Example(
    "fastapi",
    REPO / "examples" / "fastapi" / "main.py",
    "127.0.0.1:8000",
    "uvicorn --factory main:create_app --app-dir examples/fastapi",
    asgi=True,
)
FLASK = Example(
    "flask",
    REPO / "examples" / "flask" / "app.py",
    "127.0.0.1:5000",
    "flask --app examples/flask/app.py:create_app run",
)
DJANGO = Example(
    "django",
    REPO / "examples" / "django" / "orders" / "settings.py",
    "127.0.0.1:8000",
    "uvicorn orders.asgi:application --app-dir examples/django",
)
LITESTAR = Example(
    "litestar",
    REPO / "examples" / "litestar" / "litestar_app.py",
    "127.0.0.1:8000",
    "uvicorn --factory litestar_app:create_app --app-dir examples/litestar",
    asgi=True,
)
QUART = Example(
    "quart",
    REPO / "examples" / "quart" / "quart_app.py",
    "127.0.0.1:8000",
    "uvicorn --factory quart_app:create_app --app-dir examples/quart",
    asgi=True,
)
STARLETTE = Example(
    "starlette",
    REPO / "examples" / "starlette" / "starlette_app.py",
    "127.0.0.1:8000",
    "uvicorn --factory starlette_app:create_app --app-dir examples/starlette",
    asgi=True,
)
EXAMPLES = (FASTAPI, FLASK, DJANGO, LITESTAR, QUART, STARLETTE)


# -- reading the README ----------------------------------------------------------------


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """Every fenced block: ``(language, body, offset)``."""
    return [(m["lang"], m["body"], m.start()) for m in FENCE.finditer(text)]


def heading_before(text: str, offset: int) -> str:
    """The title of the last heading above ``offset``."""
    return [m["title"] for m in HEADING.finditer(text, 0, offset)][-1]


@dataclass(frozen=True)
class Setup:
    """A documented way to configure an example: the exports and the ``mint`` helper."""

    exports: tuple[tuple[str, str], ...]
    mint_args: str


def setups(text: str) -> dict[str, Setup]:
    """The README's set-ups by key kind ("hmac", "rs256"), in the order documented."""
    found: dict[str, Setup] = {}
    blocks = fenced_blocks(text)
    for index, (_, body, offset) in enumerate(blocks):
        if "$ cat > orders.env <<EOF" not in body:
            continue
        heredoc = body.split("$ cat > orders.env <<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
        pairs = (line.removeprefix("export ").partition("=") for line in heredoc.splitlines())
        exports = tuple((name, value) for name, _, value in pairs)
        helpers = (MINT_HELPER.search(later) for _, later, _ in blocks[index:])
        helper = next(match for match in helpers if match is not None)
        kind = "hmac" if "HMAC" in heading_before(text, offset) else "rs256"
        found[kind] = Setup(exports, helper["args"])
    return found


@dataclass(frozen=True)
class Exchange:
    """A documented request (shell commands) and the answer the README shows for it."""

    commands: tuple[str, ...]
    status_line: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @property
    def name(self) -> str:
        """A short test id: the method, the path and the mint options."""
        words = " ".join(self.commands).replace("curl -i", "").replace("TOKEN=$(mint", "")
        words = re.sub(r'-H "Authorization: Bearer \$TOKEN"|http://[\d.:]+', " ", words)
        return re.sub(r"[^a-z0-9:]+", "-", words.lower()).strip("-") or "get"


def exchanges(text: str) -> list[Exchange]:
    """Every ``console`` block running curl that is directly followed by an ``http`` block."""
    blocks = fenced_blocks(text)
    found = []
    for (lang, body, _), (next_lang, answer, _) in itertools.pairwise(blocks):
        if lang != "console" or next_lang != "http" or "$ curl" not in body:
            continue
        head, _, content = answer.partition("\n\n")
        status_line, *header_lines = head.strip("\n").splitlines()
        headers = tuple(
            (name, value.strip())
            for name, _, value in (line.partition(":") for line in header_lines)
        )
        commands = tuple(line[2:] for line in body.splitlines() if line.startswith("$ "))
        found.append(Exchange(commands, status_line, headers, content.rstrip("\n")))
    return found


# -- running the documented commands ---------------------------------------------------


def expand(word: str, variables: Mapping[str, str]) -> str:
    """Expand ``$(python ...)``, ``$NAME`` and ``${NAME}`` as the shell would."""

    def substitute(match: re.Match[str]) -> str:
        program, *arguments = shlex.split(match["command"])
        assert "python" == program, f"the README may only substitute python, not {program}"
        result = subprocess.run(  # noqa: S603 - runs the README's own python one-liner
            [sys.executable, *arguments], capture_output=True, text=True, check=True
        )
        return result.stdout.rstrip("\n")

    word = COMMAND_SUBSTITUTION.sub(substitute, word)
    return VARIABLE.sub(lambda m: variables[m["name"]], word)


def environment(setup: Setup, workdir: Path) -> dict[str, str]:
    """The values ``. ./orders.env`` exports, with ``$PWD`` the working directory."""
    variables = {"PWD": str(workdir)}
    return {name: expand(value, variables) for name, value in setup.exports}


def mint(setup: Setup, arguments: str, env: Mapping[str, str], workdir: Path) -> str:
    """Run ``mint ARGUMENTS``: the helper's ``invalidtoken-mw mint`` through the CLI parser."""
    argv = [expand(word, env) for word in shlex.split(f"{setup.mint_args} {arguments}")]
    argv = [str(workdir / a) if a.endswith(".pem") else a for a in argv]
    args = build_parser().parse_args(["mint", *argv])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = args.handler(args)
    assert 0 == status
    return out.getvalue().rstrip("\n")


@dataclass(frozen=True)
class Request:
    """What a documented curl command sends."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]


def curl(command: str, variables: Mapping[str, str], address: str) -> Request:
    """Read ``curl -i [-X METHOD] [-H 'Name: value']... URL``; other options are refused."""
    program, *words = (expand(word, variables) for word in shlex.split(command))
    assert "curl" == program
    method, headers, url = "GET", [], ""
    remaining = iter(words)
    for word in remaining:
        if word == "-X":
            method = next(remaining)
        elif word == "-H":
            name, _, value = next(remaining).partition(":")
            headers.append((name, value.strip()))
        elif word.startswith("http://"):
            url = word
        else:
            assert "-i" == word, f"unsupported curl option {word!r}"
    parts = urlsplit(url)
    assert address == parts.netloc
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return Request(method, target, tuple(headers))


# -- serving the examples --------------------------------------------------------------


def load_example(example: Example, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import the example module by path (registered in sys.modules while patched)."""
    name = f"invalidtoken_example_{example.name}"
    spec = importlib.util.spec_from_file_location(name, example.source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


def create_app(example: Example, env: Mapping[str, str]) -> Any:
    """``create_app()`` of the example with exactly ``env`` as its INVALIDTOKEN_* variables.

    Django's settings are configured once per process (support.django_project), so the
    Django example's application is Django's WSGI handler for its own ``urlpatterns``,
    ``MIDDLEWARE`` and ``INVALIDTOKEN`` settings.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("INVALIDTOKEN_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        if example is DJANGO:
            from support.django_project import (  # noqa: PLC0415 - Django tests only
                configure,
                wsgi_app,
            )

            configure()  # before orders.urls: DRF reads the settings as its views are defined
            patch.syspath_prepend(str(example.source.parents[1]))
            project = importlib.import_module("orders.settings")
            urls = importlib.import_module("orders.urls")
            return wsgi_app(urls.urlpatterns, project.INVALIDTOKEN, middleware=project.MIDDLEWARE)
        return load_example(example, patch).create_app()


def write_key_pair(workdir: Path) -> None:
    """What the README's two openssl commands make: a PKCS#8 key and its SPKI public key."""
    key = session_keys().rsa
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (workdir / "orders-private.pem").write_bytes(private)
    (workdir / "orders-public.pem").write_bytes(public)


@dataclass(frozen=True)
class Served:
    """An example served for real, configured by one documented set-up."""

    url: str
    setup: Setup
    env: dict[str, str]
    workdir: Path


@contextlib.contextmanager
def serve(example: Example, kind: str, workdir: Path) -> Iterator[Served]:
    """Configure ``example`` as the README's ``kind`` set-up says and serve it."""
    setup = setups(example.readme)[kind]
    write_key_pair(workdir)
    env = environment(setup, workdir)
    app = create_app(example, env)
    runner = run_uvicorn if example.asgi else run_waitress
    with runner(app) as url:
        yield Served(url, setup, env, workdir)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[Example, str], Served]]:
    """Start each (example, set-up) server on first use; stop them all at the end."""
    with contextlib.ExitStack() as stack:
        started: dict[tuple[str, str], Served] = {}

        def get(example: Example, kind: str) -> Served:
            key = (example.name, kind)
            if key not in started:
                workdir = tmp_path_factory.mktemp(f"{example.name}-{kind}")
                started[key] = stack.enter_context(serve(example, kind, workdir))
            return started[key]

        yield get


def run_exchange(example: Example, server: Served, exchange: Exchange) -> httpx.Response:
    """Run the exchange's commands: ``TOKEN=$(mint ...)`` lines, then the curl request."""
    variables = dict(server.env)
    for command in exchange.commands:
        assignment = re.fullmatch(r"TOKEN=\$\(mint (?P<args>.*)\)", command)
        if assignment is not None:
            variables["TOKEN"] = mint(server.setup, assignment["args"], variables, server.workdir)
            continue
        request = curl(command, variables, example.address)
        with client(server.url) as http:
            return http.request(request.method, request.target, headers=list(request.headers))
    raise AssertionError(f"no curl command in {exchange.commands}")


# -- the documented exchanges ----------------------------------------------------------


EXCHANGES = [
    pytest.param(example, kind, exchange, id=f"{example.name}-{kind}-{exchange.name}")
    for example in EXAMPLES
    for kind in ("hmac", "rs256")
    for exchange in exchanges(example.readme)
]


@pytest.mark.parametrize(("example", "kind", "exchange"), EXCHANGES)
def test_readme_exchange_answers_as_documented(
    served: Callable[[Example, str], Served], example: Example, kind: str, exchange: Exchange
) -> None:
    """Each README request gets the documented status line, challenge and body."""
    with capture_logs() as logs:
        response = run_exchange(example, served(example, kind), exchange)
    documented = dict(exchange.headers)
    headers = [(name, response.headers.get_list(name)) for name in documented]
    # A README block without a challenge promises that the answer has none.
    undocumented = [] if "www-authenticate" in documented else ["www-authenticate"]
    extra = [(name, response.headers.get_list(name)) for name in undocumented]
    none: list[tuple[str, list[str]]] = [(name, []) for name in undocumented]
    expected = (
        exchange.status_line,
        [(name, [value]) for name, value in documented.items()],
        none,
        exchange.body,
    )
    assert expected == (
        f"{response.http_version} {response.status_code} {response.reason_phrase}",
        headers,
        extra,
        response.text.removesuffix("\n"),
    )
    events = [(e["reason"], e["status"]) for e in logs if e["event"] == "auth_rejected"]
    body = {} if response.is_success else response.json()
    # An answer of ours (it has a reason) is logged once; another, such as DRF's own
    # NotAuthenticated 401 that only carries our challenge, not at all.
    refused = [(body["reason"], response.status_code)] if "reason" in body else []
    assert refused == events


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_readme_mints_a_token_for_every_failure_class(example: Example) -> None:
    """The README shows a request with a token for each ``mint --defect`` value."""
    documented = {
        match
        for exchange in exchanges(example.readme)
        for command in exchange.commands
        for match in re.findall(r"--defect (\S+)\)", command)
    }
    assert sorted(DEFECTS) == sorted(documented)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_readme_documents_both_key_set_ups_and_the_start_command(example: Example) -> None:
    """The README starts the example with its real command, from an HMAC or an RS256 set-up."""
    text = example.readme
    names = [[name for name, _ in s.exports] for s in setups(text).values()]
    assert ["hmac", "rs256"] == list(setups(text))
    assert f"$ {example.start_command}\n" in text
    assert ["INVALIDTOKEN_ALGORITHMS", "INVALIDTOKEN_KEY", "INVALIDTOKEN_ISSUER"] == names[0][:3]
    key_file = ["INVALIDTOKEN_ALGORITHMS", "INVALIDTOKEN_KEY_FILE", "INVALIDTOKEN_ISSUER"]
    assert key_file == names[1][:3]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_example_configured_from_a_jwks_url(example: Example, tmp_path: Path) -> None:
    """INVALIDTOKEN_JWKS_URL configures the example: a token from the published key passes."""
    jwks = JWKSServer()
    jwks.add_key(session_keys().jwk("RS256", "orders-1"))
    env = {
        "INVALIDTOKEN_JWKS_URL": jwks.url,
        "INVALIDTOKEN_ISSUER": "https://id.example.test/",
        "INVALIDTOKEN_AUDIENCE": "api://orders",
    }
    setup = Setup((), "--key-file orders-private.pem --alg RS256")
    write_key_pair(tmp_path)
    common = "--iss https://id.example.test/ --aud api://orders --sub alice --scope orders:read"
    good = mint(setup, f"{common} --kid orders-1", env, tmp_path)
    unknown = mint(setup, f"{common} --kid orders-2", env, tmp_path)
    runner = run_uvicorn if example.asgi else run_waitress
    try:
        with runner(create_app(example, env)) as url, client(url) as http:
            answers = [
                http.get("/orders", headers={"authorization": f"Bearer {token}"})
                for token in (good, unknown)
            ]
    finally:
        jwks.stop()
    expected: list[tuple[int, str | None]] = [(200, None), (401, "unknown_key")]
    assert expected == [
        (r.status_code, None if r.is_success else r.json()["reason"]) for r in answers
    ]


# -- FastAPI: websocket script and documentation ---------------------------------------


def websocket_runs(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The README's ws_orders.py and its runs: ``(mint arguments, printed line)``."""
    block = next(b for lang, b, _ in fenced_blocks(text) if "ws_orders.py <<'EOF'" in b)
    script = block.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0] + "\n"
    runs = re.findall(
        r"^\$ TOKEN=\$\(mint (.*)\) python ws_orders\.py\n(.+)$", block, flags=re.MULTILINE
    )
    return script, runs


def test_fastapi_websocket_script_prints_as_documented(
    served: Callable[[Example, str], Served], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The README's websocket script prints the documented feed and the documented refusal."""
    server = served(FASTAPI, "hmac")
    script, runs = websocket_runs(FASTAPI.readme)
    path = tmp_path / "ws_orders.py"
    path.write_text(script.replace(FASTAPI.address, urlsplit(server.url).netloc))
    printed = []
    for arguments, _ in runs:
        monkeypatch.setenv("TOKEN", mint(server.setup, arguments, server.env, server.workdir))
        out = io.StringIO()
        # capture_logs: the in-process server's log events must not reach the script's stdout.
        with capture_logs(), contextlib.redirect_stdout(out):
            runpy.run_path(str(path), run_name="__main__")
        printed.append(out.getvalue().rstrip("\n"))
    assert [(2, line) for _, line in runs] == [(len(runs), line) for line in printed]


def test_fastapi_openapi_as_documented(served: Callable[[Example, str], Served]) -> None:
    """/docs is public and the schema has the bearerAuth scheme and each route's scopes."""
    server = served(FASTAPI, "hmac")
    with client(server.url) as http:
        docs = http.get("/docs")
        schema = http.get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["bearerAuth"]
    orders = schema["paths"]["/orders"]
    expected = (200, "http", "bearer", [{"bearerAuth": ["orders:read"]}])
    assert expected == (
        docs.status_code,
        scheme["type"],
        scheme["scheme"],
        orders["get"]["security"],
    )
    assert [{"bearerAuth": ["orders:write"]}] == orders["post"]["security"]
    documented = (
        "`bearerAuth`",
        "`type: http`, `scheme: bearer`",
        "`orders:read`",
        "`orders:write`",
    )
    assert [] == [text for text in documented if text not in FASTAPI.readme]


# -- the README's own start command ----------------------------------------------------


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[str]) -> None:
    """Poll ``url`` until the server answers, or fail when it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.TransportError), client(url) as http:
            http.get("/health", timeout=1)
            return
        time.sleep(0.05)
    process.kill()
    output = process.communicate()[0]
    raise AssertionError(f"the example did not start:\n{output}")


@contextlib.contextmanager
def started(example: Example, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """The README's start command, HMAC set-up, as a subprocess: ``(url, output)``.

    ``output`` receives the server's output once it has stopped.
    """
    env = environment(setups(example.readme)["hmac"], tmp_path)
    port = free_port()
    program, *arguments = shlex.split(example.start_command)
    process = subprocess.Popen(  # noqa: S603 - the README's own command, under this Python
        [sys.executable, "-m", program, *arguments, "--port", str(port)],
        cwd=REPO,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("INVALIDTOKEN_")}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        wait_until_up(url, process)
        yield url, output
    finally:
        process.terminate()
        output.append(process.communicate(timeout=START_TIMEOUT)[0])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_readme_start_command_serves_the_example(example: Example, tmp_path: Path) -> None:
    """The README's start command, run as a subprocess, serves /health and refuses /orders."""
    with started(example, tmp_path) as (url, output), client(url) as http:
        health = http.get("/health")
        orders = http.get("/orders")
    expected = (200, {"status": "ok"}, 401, 'Bearer realm="orders"', "missing_token", 1)
    assert expected == (
        health.status_code,
        health.json(),
        orders.status_code,
        orders.headers.get("www-authenticate"),
        json.loads(orders.text)["reason"],
        output[0].count("auth_rejected"),
    )


# -- Django: the DRF views under the project's own settings -----------------------------


def test_django_example_drf_views_under_its_own_settings(tmp_path: Path) -> None:
    """With orders/settings.py itself (INSTALLED_APPS, REST_FRAMEWORK), DRF's 401 is ours.

    The README's exchanges run in this process under support.django_project's settings;
    this runs the project as its README starts it, so its own settings serve the DRF views.
    """
    with started(DJANGO, tmp_path) as (url, output), client(url) as http:
        anonymous = http.get("/catalogue")
        refused = http.post("/catalogue")
    expected = (
        200,
        {"items": ["coffee beans", "tea"], "for": None},
        401,
        'Bearer realm="orders"',
        {"detail": "Authentication credentials were not provided."},
    )
    assert expected == (
        anonymous.status_code,
        anonymous.json(),
        refused.status_code,
        refused.headers.get("www-authenticate"),
        refused.json(),
    )
    assert 0 == output[0].count("auth_rejected")  # DRF's own answer: no refusal of ours


def test_django_example_settings_are_the_ones_its_readme_is_replayed_with() -> None:
    """The replay's Django configuration (support.django_project) is the example's own."""
    from django.conf import settings  # noqa: PLC0415 - Django tests only

    from support.django_project import REST_FRAMEWORK, configure  # noqa: PLC0415

    configure()
    project = runpy.run_path(str(DJANGO.source))
    expected = (project["REST_FRAMEWORK"], sorted(project["INSTALLED_APPS"]))
    assert expected == (REST_FRAMEWORK, sorted(settings.INSTALLED_APPS))


def rejections(url: str) -> dict[str, float]:
    """The example's ``invalidtoken_rejections_total`` samples, by reason."""
    with client(url) as http:
        text = http.get("/metrics").text
    samples = re.findall(
        r'^invalidtoken_rejections_total\{reason="(\w+)",status="\d+"\} (\S+)$', text, re.MULTILINE
    )
    return {reason: float(value) for reason, value in samples}


def test_fastapi_metrics_endpoint_counts_refusals(
    served: Callable[[Example, str], Served],
) -> None:
    """The example's public /metrics, scraped over HTTP, counts each refusal by reason."""
    server = served(FASTAPI, "hmac")
    before = rejections(server.url)
    with client(server.url) as http:
        http.get("/orders")
        http.get("/orders")
        http.get("/orders", headers={"Authorization": "Bearer not.a.jwt"})
    after = rejections(server.url)
    delta = {r: after[r] - before.get(r, 0.0) for r in after if after[r] != before.get(r, 0.0)}
    assert {"missing_token": 2.0, "malformed_token": 1.0} == delta
    assert "invalidtoken_rejections_total" in FASTAPI.readme


def test_core_contract_example_prints_every_reason() -> None:
    """examples/contract.py runs the sans-IO core alone and prints one line per reason."""
    script = Path(__file__).resolve().parents[1] / "examples" / "contract.py"
    result = subprocess.run(  # noqa: S603 - our own example script
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    lines = result.stdout.splitlines()
    expected = [True] * len(Reason)
    assert expected == [any(line.startswith(r.value + " ") for line in lines) for r in Reason]
    assert any(line.startswith("token wrapped in quotes") for line in lines)
