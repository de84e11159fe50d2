"""The richer events and the outcome keys, through real servers.

uvicorn (Starlette) and waitress (plain WSGI, Flask, Django) serve the middleware; the
events are captured with structlog's ``capture_logs``, the ASGI scope and WSGI environ
keys by an outer middleware of each kind, the access logs from uvicorn in-process and
gunicorn in a subprocess, each configured by the recipes of docs/logging.md.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.urls import path as django_path
from flask import Flask
from litestar import Request as LitestarRequest  # noqa: TC002 - Litestar reads annotations at run time
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import AuthFailure, InvalidTokenMiddleware, InvalidTokenWSGIMiddleware
from invalidtoken_mw.flask import InvalidToken
from invalidtoken_mw.guard import STATE_KEY, AuthOutcome
from support.django_project import wsgi_app as django_wsgi_app
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import OTHER_SECRET, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import httpx
    from starlette.requests import Request
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
    from structlog.typing import EventDict

DOCS = Path(__file__).resolve().parent.parent / "docs"
SUB = "alice-personal-id-7"
CLIENT = "orders-web"
HMAC = re.compile(r"hmac:[0-9a-f]{16}")
_LOG_LOCK = threading.Lock()  # capture_logs configures structlog globally


def genuine(**overrides: Any) -> str:
    payload = claims(sub=SUB, azp=CLIENT, scope="orders:read orders:write", **overrides)
    return mint("HS256", payload, key=SECRET)


def forged(**overrides: Any) -> str:
    """A token with genuine-looking claims, signed with a key the service does not trust."""
    return mint("HS256", claims(sub=SUB, client_id=CLIENT, **overrides), key=OTHER_SECRET)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def events_of(
    http: httpx.Client, url: str, token: str | None
) -> tuple[httpx.Response, list[EventDict]]:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    with _LOG_LOCK, capture_logs() as logs:
        response = http.get(url, headers=headers)
    return response, [e for e in logs if e["event"] in {"auth_rejected", "auth_accepted"}]


# -- ASGI: Starlette on uvicorn, an outer ASGI middleware reading the scope ------------------


class ScopeSpy:
    """Outer ASGI middleware: remembers what the guard left in the scope's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[AuthOutcome | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting(message: Message) -> None:
            # Before the client has the answer: what it saw, the test sees.
            if message["type"] == "http.response.start":
                self.seen.append(scope.get("state", {}).get(STATE_KEY))
            await send(message)

        await self.app(scope, receive, noting)


async def order(request: Request) -> JSONResponse:
    return JSONResponse({"order": request.path_params["order_id"]})


async def refuse(_request: Request) -> JSONResponse:
    raise AuthFailure("insufficient_scope", scopes=["orders:admin"])


def starlette_app(**options: Any) -> ScopeSpy:
    app = Starlette(
        routes=[Route("/orders/{order_id}", order), Route("/admin/{thing}", refuse)],
    )
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=make_verifier(),
        fingerprint_key=b"k" * 32,
        log_rate_limit=None,
        log_accepted=True,
        **options,
    )
    return ScopeSpy(app)


@pytest.fixture(scope="module")
def asgi_default() -> Iterator[tuple[httpx.Client, ScopeSpy]]:
    spy = starlette_app()
    with run_uvicorn(spy) as base, client(base) as http:
        yield http, spy


def test_forged_token_is_logged_unverified(asgi_default: tuple[httpx.Client, ScopeSpy]) -> None:
    """A forged token's claims are logged, marked signature_verified false."""
    http, spy = asgi_default
    response, [event] = events_of(http, "/orders/7", forged())
    assert 401 == response.status_code
    assert ("bad_signature", False, SUB, CLIENT) == (
        event["reason"],
        event["signature_verified"],
        event["sub"],
        event["client_id"],
    )
    assert AuthOutcome("bad_signature", 401) == spy.seen[-1]
    # The middleware refused before routing: no route is known.
    assert "route" not in event


def test_expired_genuine_token_is_logged_verified(
    asgi_default: tuple[httpx.Client, ScopeSpy],
) -> None:
    """An expired token with a good signature: signature_verified true, ISO times beside."""
    http, spy = asgi_default
    now = int(time.time())
    exp, iat = now - 120, now - 3720
    _, [event] = events_of(http, "/orders/7", genuine(exp=exp, iat=iat))
    assert ("expired", True, CLIENT) == (
        event["reason"],
        event["signature_verified"],
        event["client_id"],
    )
    assert (exp, iso(exp), iat, iso(iat)) == (
        event["exp"],
        event["exp_at"],
        event["iat"],
        event["iat_at"],
    )
    assert 120 <= event["expired_for_s"] < 180
    assert AuthOutcome("expired", 401) == spy.seen[-1]
    # Remembered refusals keep the flag: the second time comes from the verdict cache.
    _, [again] = events_of(http, "/orders/7", genuine(exp=exp, iat=iat))
    assert (True, "expired") == (again["signature_verified"], again["reason"])


def test_unknown_algorithm_is_unverified(asgi_default: tuple[httpx.Client, ScopeSpy]) -> None:
    http, _ = asgi_default
    token = mint("HS384", claims(sub=SUB), key=SECRET + SECRET)
    _, [event] = events_of(http, "/orders/7", token)
    assert ("algorithm_not_allowed", False) == (event["reason"], event["signature_verified"])


def test_app_raised_failure_has_route_and_verified(
    asgi_default: tuple[httpx.Client, ScopeSpy],
) -> None:
    """A failure the application raised after acceptance: route template, verified."""
    http, spy = asgi_default
    response, events = events_of(http, "/admin/keys", genuine())
    assert 403 == response.status_code
    assert ["auth_accepted", "auth_rejected"] == [e["event"] for e in events]
    rejected = events[1]
    assert ("insufficient_scope", True, "/admin/{thing}", "/admin/keys") == (
        rejected["reason"],
        rejected["signature_verified"],
        rejected["route"],
        rejected["path"],
    )
    # Refused after acceptance: who it was stays beside the reason.
    assert AuthOutcome("insufficient_scope", 403, SUB, CLIENT) == spy.seen[-1]


@pytest.mark.parametrize("server", ["uvicorn", "waitress"])
def test_app_wide_scope_refusal_is_logged_verified(server: str) -> None:
    """The middleware's own scope check runs on verified claims: signature_verified true."""
    options: dict[str, Any] = {
        "verifier": make_verifier(),
        "scopes": ["orders:admin"],
        "log_rate_limit": None,
    }
    if server == "uvicorn":
        serving = run_uvicorn(InvalidTokenMiddleware(Starlette(), **options))
    else:
        serving = run_waitress(InvalidTokenWSGIMiddleware(plain_wsgi, **options))
    with serving as base, client(base) as http:
        response, [event] = events_of(http, "/orders/7", genuine())
    assert (403, "insufficient_scope", True) == (
        response.status_code,
        event["reason"],
        event["signature_verified"],
    )


def test_accepted_event_is_an_audit_record(asgi_default: tuple[httpx.Client, ScopeSpy]) -> None:
    """auth_accepted carries sub, iss, client_id and scopes; the scope has sub and client."""
    http, spy = asgi_default
    response, [event] = events_of(http, "/orders/7", genuine())
    assert 200 == response.status_code
    expected = {
        "event": "auth_accepted",
        "sub": SUB,
        "iss": "https://issuer.example",
        "client_id": CLIENT,
        "scopes": ["orders:read", "orders:write"],
    }
    assert expected == {k: event[k] for k in expected}
    assert iso(event["exp"]) == event["exp_at"]
    assert "signature_verified" not in event  # only claims the verifier accepted are here
    assert AuthOutcome(None, None, SUB, CLIENT) == spy.seen[-1]


def test_hashed_sub_never_shows_the_raw_value() -> None:
    spy = starlette_app(hash_claims=["sub"])
    with run_uvicorn(spy) as base, client(base) as http:
        _, [rejected] = events_of(http, "/orders/1", forged())
        _, [accepted] = events_of(http, "/orders/1", genuine())
    assert HMAC.fullmatch(rejected["sub"])
    assert rejected["sub"] != SUB
    assert rejected["sub"] == accepted["sub"]  # the same user correlates
    outcome = spy.seen[-1]
    assert outcome is not None
    assert (accepted["sub"], CLIENT) == (outcome.sub, outcome.client_id)
    assert SUB not in json.dumps([rejected, accepted, list(spy.seen)])


def test_removed_sub_appears_nowhere() -> None:
    spy = starlette_app(log_claims=["iss", "client_id", "exp"])
    with run_uvicorn(spy) as base, client(base) as http:
        _, rejected = events_of(http, "/orders/1", forged())
        _, accepted = events_of(http, "/orders/1", genuine())
    assert SUB not in json.dumps([rejected, accepted, list(spy.seen)])
    assert "sub" not in rejected[0]
    assert "sub" not in accepted[0]
    assert AuthOutcome(None, None, None, CLIENT) == spy.seen[-1]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"log_claims": ["sub", "path"]}, "'path' cannot be logged"),
        ({"hash_claims": ["email"]}, "not in log_claims"),
        ({"hash_claims": ["exp"]}, "exp, iat and nbf are times"),
        ({"log_claims": ["su b"]}, "cannot be logged"),
    ],
)
def test_claim_options_are_checked_at_start_up(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        InvalidTokenMiddleware(order, verifier=make_verifier(), **options)  # type: ignore[arg-type]


# -- WSGI: plain middleware, Flask and Django on waitress, an outer WSGI middleware ---------


class EnvironSpy:
    """Outer WSGI middleware: remembers the ``invalidtoken.*`` keys after the call."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.seen: list[dict[str, str]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = list(self.app(environ, start_response))
        self.seen.append({k: v for k, v in environ.items() if k.startswith("invalidtoken.")})
        return body


def plain_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [str(environ["invalidtoken_mw.claims"]["sub"]).encode()]


def test_wsgi_environ_keys_and_events_on_waitress() -> None:
    guarded = InvalidTokenWSGIMiddleware(
        plain_wsgi, verifier=make_verifier(), log_accepted=True, log_rate_limit=None
    )
    spy = EnvironSpy(guarded)
    with run_waitress(spy) as base, client(base) as http:
        response, [expired] = events_of(http, "/orders", genuine(exp=1, iat=0))
        assert 401 == response.status_code
        assert {"invalidtoken.reason": "expired", "invalidtoken.status": "401"} == spy.seen[-1]
        _, [bad] = events_of(http, "/orders", forged())
        _, [accepted] = events_of(http, "/orders", genuine())
    assert (True, "1970-01-01T00:00:01Z", CLIENT) == (
        expired["signature_verified"],
        expired["exp_at"],
        expired["client_id"],
    )
    assert (False, SUB) == (bad["signature_verified"], bad["sub"])
    assert (SUB, CLIENT) == (accepted["sub"], accepted["client_id"])
    assert {"invalidtoken.sub": SUB, "invalidtoken.client_id": CLIENT} == spy.seen[-1]


def test_wsgi_removed_sub_is_not_in_the_environ() -> None:
    guarded = InvalidTokenWSGIMiddleware(
        plain_wsgi, verifier=make_verifier(), log_claims=["client_id"]
    )
    spy = EnvironSpy(guarded)
    with run_waitress(spy) as base, client(base) as http:
        assert 200 == http.get("/o", headers={"authorization": f"Bearer {genuine()}"}).status_code
    assert {"invalidtoken.client_id": CLIENT} == spy.seen[-1]


def test_flask_route_and_environ_keys() -> None:
    app = Flask(__name__)
    InvalidToken(app, verifier=make_verifier(), hash_claims=["sub"], log_rate_limit=None)

    @app.get("/orders/<int:order_id>")
    def flask_order(order_id: int) -> str:
        return str(order_id)

    spy = EnvironSpy(app.wsgi_app)
    app.wsgi_app = spy  # type: ignore[method-assign]
    with run_waitress(app) as base, client(base) as http:
        _, [event] = events_of(http, "/orders/7", forged())
        assert {"invalidtoken.reason": "bad_signature", "invalidtoken.status": "401"} == (
            spy.seen[-1]
        )
        assert (
            200
            == http.get("/orders/7", headers={"authorization": f"Bearer {genuine()}"}).status_code
        )
    assert ("/orders/<int:order_id>", False) == (event["route"], event["signature_verified"])
    assert HMAC.fullmatch(event["sub"])
    assert HMAC.fullmatch(spy.seen[-1]["invalidtoken.sub"])
    assert CLIENT == spy.seen[-1]["invalidtoken.client_id"]


def django_order(_request: HttpRequest, order_id: int) -> HttpResponse:
    return HttpResponse(str(order_id))


def django_refuse(_request: HttpRequest, order_id: int) -> HttpResponse:
    raise AuthFailure("insufficient_scope", scopes=[f"orders:{order_id}"])


def test_django_route_and_environ_keys() -> None:
    patterns = [
        django_path("orders/<int:order_id>", django_order),
        django_path("refuse/<int:order_id>", django_refuse),
    ]
    app = django_wsgi_app(
        patterns, {"verifier": make_verifier(), "realm": "orders", "log_rate_limit": None}
    )
    spy = EnvironSpy(app)
    with run_waitress(spy) as base, client(base) as http:
        _, [event] = events_of(http, "/refuse/3", genuine())
        refused = spy.seen[-1]
        assert (
            200
            == http.get("/orders/3", headers={"authorization": f"Bearer {genuine()}"}).status_code
        )
    assert ("insufficient_scope", True, "refuse/<int:order_id>") == (
        event["reason"],
        event["signature_verified"],
        event["route"],
    )
    assert {
        "invalidtoken.reason": "insufficient_scope",
        "invalidtoken.status": "403",
        "invalidtoken.sub": SUB,
        "invalidtoken.client_id": CLIENT,
    } == refused
    assert {"invalidtoken.sub": SUB, "invalidtoken.client_id": CLIENT} == spy.seen[-1]


# -- access logs: the docs' recipes in real servers ------------------------------------------


def _recipe(marker: str) -> str:
    """The first python code block of docs/logging.md after ``marker``."""
    text = (DOCS / "logging.md").read_text(encoding="utf-8")
    after = text.split(marker, 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


UVICORN_SCRIPT = """
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from invalidtoken_mw import InvalidTokenMiddleware, JWTVerifier


async def order(request):
    return PlainTextResponse("ok")


app = InvalidTokenMiddleware(
    Starlette(routes=[Route("/orders/{{order_id}}", order)]),
    verifier=JWTVerifier(key={secret!r}, algorithms=["HS256"], audience={aud!r}, issuer={iss!r}),
)
# uvicorn configures logging (its access handler on stdout) when the Config is made:
config = uvicorn.Config(app, host="127.0.0.1", port={port}, http="h11", lifespan="off")
exec(open(sys.argv[1]).read())  # the recipe of docs/logging.md
config.app = app
uvicorn.Server(config).run()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def serve_in_subprocess(argv: list[str], port: int, output: Path) -> subprocess.Popen[bytes]:
    """Start a server process writing to ``output``; return once it answers on ``port``."""
    with output.open("wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:  # noqa: PERF203 - polled until the server listens
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                process.wait(10)
                raise RuntimeError(output.read_text()) from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(10)


def test_uvicorn_access_log_shows_the_reason(tmp_path: Path) -> None:
    """The uvicorn recipe: an outer middleware, a contextvar, a filter on uvicorn.access."""
    from support.tokens import AUDIENCE, ISSUER  # noqa: PLC0415

    port = free_port()
    recipe = tmp_path / "recipe.py"
    recipe.write_text(_recipe("### uvicorn's access log"))
    script = tmp_path / "serve.py"
    script.write_text(UVICORN_SCRIPT.format(secret=SECRET, aud=AUDIENCE, iss=ISSUER, port=port))
    output = tmp_path / "out.log"
    process = serve_in_subprocess([sys.executable, str(script), str(recipe)], port, output)
    try:
        with client(f"http://127.0.0.1:{port}") as http:
            http.get("/orders/1", headers={"authorization": f"Bearer {genuine(exp=1, iat=0)}"})
            http.get("/orders/1", headers={"authorization": f"Bearer {genuine()}"})
            http.get("/orders/1")
    finally:
        stop(process)
    lines = [line for line in output.read_text().splitlines() if "GET /orders" in line]
    assert len(lines) == 3, output.read_text()
    assert lines[0].endswith('"GET /orders/1 HTTP/1.1" 401 Unauthorized auth=expired')
    assert lines[1].endswith(f'"GET /orders/1 HTTP/1.1" 200 OK auth=ok sub={SUB}')
    assert lines[2].endswith('"GET /orders/1 HTTP/1.1" 401 Unauthorized auth=missing_token')


GUNICORN_APP = """
from invalidtoken_mw import InvalidTokenWSGIMiddleware, JWTVerifier

def plain(environ, start_response):
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"ok"]

app = InvalidTokenWSGIMiddleware(
    plain,
    verifier=JWTVerifier(key={secret!r}, algorithms=["HS256"], audience={aud!r}, issuer={iss!r}),
)
"""


def test_gunicorn_access_log_shows_the_reason(tmp_path: Path) -> None:
    """The gunicorn recipe: %({invalidtoken.reason}e)s in access_log_format."""
    from support.tokens import AUDIENCE, ISSUER  # noqa: PLC0415

    (tmp_path / "guarded.py").write_text(
        textwrap.dedent(GUNICORN_APP.format(secret=SECRET, aud=AUDIENCE, iss=ISSUER))
    )
    conf = _recipe("### gunicorn's access log")
    log = tmp_path / "access.log"
    (tmp_path / "gunicorn.conf.py").write_text(conf + f"\naccesslog = {str(log)!r}\n")
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(tmp_path / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--chdir",
        str(tmp_path),
        "guarded:app",
    ]
    process = serve_in_subprocess(argv, port, tmp_path / "out.log")
    try:
        with client(f"http://127.0.0.1:{port}") as http:
            http.get("/health")
            http.get("/orders", headers={"authorization": f"Bearer {forged()}"})
            http.get("/orders", headers={"authorization": f"Bearer {genuine()}"})
        deadline = time.monotonic() + 5
        while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(process)
    lines = log.read_text().splitlines()
    assert lines[0].endswith('"GET /health HTTP/1.1" 401 auth=missing_token sub=-'), lines
    assert lines[1].endswith('"GET /orders HTTP/1.1" 401 auth=bad_signature sub=-'), lines
    assert lines[2].endswith(f'"GET /orders HTTP/1.1" 200 auth=- sub={SUB}'), lines


# -- Quart and Litestar: the scope keys and the route, through uvicorn -----------------------


def quart_app() -> ScopeSpy:
    from quart import Quart  # noqa: PLC0415 - only these tests need Quart

    from invalidtoken_mw.quart import InvalidToken as QuartInvalidToken  # noqa: PLC0415

    quart = Quart(__name__)
    QuartInvalidToken(quart, verifier=make_verifier(), log_rate_limit=None)

    @quart.get("/orders/<int:order_id>")
    async def quart_order(order_id: int) -> str:
        return str(order_id)

    app: Any = quart  # its ASGI types are narrower
    return ScopeSpy(app)


def litestar_app() -> ScopeSpy:
    from litestar import Litestar, get  # noqa: PLC0415 - only these tests need Litestar

    from invalidtoken_mw.litestar import InvalidTokenPlugin  # noqa: PLC0415

    @get("/orders/{order_id:int}")
    async def litestar_order(request: LitestarRequest[Any, Any, Any]) -> str:
        return str(request.path_params["order_id"])

    plugin = InvalidTokenPlugin(verifier=make_verifier(), log_rate_limit=None)
    app: Any = Litestar([litestar_order], plugins=[plugin])  # its ASGI types are narrower
    return ScopeSpy(app)


@pytest.mark.parametrize(
    ("make", "route"),
    [(quart_app, "/orders/<int:order_id>"), (litestar_app, "/orders/{order_id}")],
    ids=["quart", "litestar"],
)
def test_routed_asgi_frameworks_log_the_route_and_fill_the_scope(
    make: Callable[[], ScopeSpy], route: str
) -> None:
    spy = make()
    with run_uvicorn(spy) as base, client(base) as http:
        _, [event] = events_of(http, "/orders/7", forged())
        refused = spy.seen[-1]
        accepted = http.get("/orders/7", headers={"authorization": f"Bearer {genuine()}"})
    assert (route, False, SUB) == (event["route"], event["signature_verified"], event["sub"])
    assert AuthOutcome("bad_signature", 401) == refused
    assert 200 == accepted.status_code
    assert AuthOutcome(None, None, SUB, CLIENT) == spy.seen[-1]


def test_acceptance_outcomes_are_remembered_per_token_and_bounded() -> None:
    """A resent token's outcome is looked up, not recomputed; each token keeps its own
    subject (hashed as configured); the memo never grows past its bound."""
    from invalidtoken_mw import Guard, GuardSettings  # noqa: PLC0415

    guard = Guard(GuardSettings(verifier=make_verifier(), hash_claims=["sub"]))
    outcomes = {}
    for number in range(300):
        token = mint(payload=claims(sub=f"user-{number}", azp=f"client-{number}"))
        outcomes[number] = guard._accepted_outcome(token, guard.settings.verifier.verify(token))  # noqa: SLF001
        # Claims of {} would give no subject: the same outcome means the memo answered.
        assert guard._accepted_outcome(token, {}) is outcomes[number]  # noqa: SLF001
    assert len(guard._outcomes) <= 256  # noqa: SLF001
    subs = {outcome.sub for outcome in outcomes.values()}
    assert len(subs) == 300
    assert all(sub is not None and sub.startswith("hmac:") for sub in subs)
    assert {f"client-{n}" for n in range(300)} == {o.client_id for o in outcomes.values()}
