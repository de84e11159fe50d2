"""JWKS fetch hardening through real servers: one deadline per fetch, and TLS from a local CA.

A JWKS endpoint that trickles its status line and headers, or the chunk-size line of a
chunked body, one byte every 0.5 s, must not hold requests past ``jwks_timeout`` (1 s
here): ``http.client`` renews its socket timeout with every byte, so only a wall-clock
deadline over the whole exchange bounds it. Served by uvicorn and waitress on loopback:

- nothing cached: every token request is 503 ``key_unavailable`` within the timeout,
  from one shared fetch, and a public route stays answerable under waitress;
- a key set cached and expired: requests are answered from it at once while exactly one
  refresh runs in the background.

HTTPS: a certificate authority made with ``trustme`` signs the JWKS server's certificate.
Certificate and host name checks are on: a token verifies when that CA is trusted
(``jwks_ssl_context`` or ``SSL_CERT_FILE``), an untrusted or misnamed certificate is
503 ``key_unavailable`` with a ``jwks_refresh_failed`` event, a redirect from https down
to http is refused, and a server that never answers the TLS ClientHello is given up at
the deadline.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware, JWTVerifier
from invalidtoken_mw.jwks import JWKSCache
from support.jwks_server import JWKSServer
from support.servers import run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, KIDS, mint, session_keys

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
    from pathlib import Path

    from starlette.requests import Request
    from starlette.types import ASGIApp

    from support.jwks_server import Mode

TIMEOUT = 1.0
TRICKLE_DELAY = 0.5  # under TIMEOUT: http.client alone would never time out
SLACK = 0.6  # on top of the timeout, for a busy 2-core machine
# A request answered from cached keys: at most this much slower than the same burst of
# requests before the keys expired, measured in the same run (so a loaded machine slows
# both); a request that waited for the trickling refresh would take TIMEOUT longer.
PROMPT = 0.5
CLIENT_TIMEOUT = 6.0  # the unbounded fetch held requests 12-30 s: fail fast instead
KID = KIDS["ES256"]
FETCH_THREAD = "invalidtoken-mw-jwks-fetch"
TRICKLES = pytest.mark.parametrize("mode", ["trickle_head", "trickle_chunks"])


class FakeClock:
    """A monotonic clock that only moves when the test says so (for the keys' lifetime)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Answer:
    """One HTTP answer and how long it took."""

    status: int
    reason: str
    elapsed: float


def token() -> str:
    return mint("ES256", headers={"kid": KID})


def verifier_for(url: str, **options: Any) -> JWTVerifier:
    """A JWKS verifier with a 1 s fetch budget and no verdict cache: every request needs a key."""
    return JWTVerifier(
        jwks_url=url,
        algorithms=["ES256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_timeout=TIMEOUT,
        cache_size=0,
        **options,
    )


def expiring(url: str) -> tuple[JWTVerifier, FakeClock]:
    """A verifier as verifier_for builds it, with a key cache whose clock the test moves."""
    clock = FakeClock()
    keys = JWKSCache(url, timeout=TIMEOUT, clock=clock)
    verifier = JWTVerifier(
        keys=keys, algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, cache_size=0
    )
    return verifier, clock


async def _orders(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


async def _health(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def asgi_app(verifier: JWTVerifier) -> ASGIApp:
    app = Starlette(routes=[Route("/orders", _orders), Route("/health", _health)])
    return InvalidTokenMiddleware(app, verifier=verifier, exclude_paths=("/health",))


def wsgi_app(verifier: JWTVerifier) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        claims = environ.get("invalidtoken_mw.claims") or {}
        body = json.dumps({"status": "ok", "sub": claims.get("sub")}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return InvalidTokenWSGIMiddleware(app, verifier=verifier, exclude_paths=("/health",))


def call(http: httpx.Client, path: str, bearer: str | None = None) -> Answer:
    headers = {} if bearer is None else {"authorization": f"Bearer {bearer}"}
    started = time.monotonic()
    response = http.get(path, headers=headers)
    elapsed = time.monotonic() - started
    reason = "ok" if response.status_code == 200 else str(response.json()["reason"])
    return Answer(response.status_code, reason, elapsed)


def concurrently(http: httpx.Client, count: int, path: str = "/orders") -> list[Answer]:
    """``count`` token requests at once, each from its own thread."""
    bearer = token()
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: call(http, path, bearer), range(count)))


@contextlib.contextmanager
def http_client(base_url: str) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    with httpx.Client(
        base_url=base_url, trust_env=False, timeout=CLIENT_TIMEOUT, limits=limits
    ) as http:
        yield http


@contextlib.contextmanager
def stopping(server: JWKSServer) -> Iterator[None]:
    """Stop the JWKS server before the app server: a trickle must not outlive the test."""
    try:
        yield
    finally:
        server.stop()


def fetch_threads() -> int:
    return sum(thread.name == FETCH_THREAD for thread in threading.enumerate())


def fetch_threads_end(within: float) -> bool:
    """Whether every fetch thread has ended within ``within`` seconds: none is left behind."""
    deadline = time.monotonic() + within
    while fetch_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    return fetch_threads() == 0


def wait_for_event(logs: Sequence[Mapping[str, Any]], event: str, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not any(e["event"] == event for e in logs):
        time.sleep(0.02)


def refresh_failures(logs: Sequence[Mapping[str, Any]]) -> list[tuple[str, str | None, bool]]:
    return [
        (e["error_type"], e["cause"], e["serving_stale"])
        for e in logs
        if e["event"] == "jwks_refresh_failed"
    ]


# -- one deadline over the whole exchange --------------------------------------------------


@TRICKLES
def test_trickling_jwks_without_cached_keys_is_503_within_the_timeout_uvicorn(
    jwks: JWKSServer, mode: Mode
) -> None:
    """Nothing cached: 503 key_unavailable within the timeout, from one shared fetch."""
    jwks.mode, jwks.delay = mode, TRICKLE_DELAY
    with (
        capture_logs() as logs,
        run_uvicorn(asgi_app(verifier_for(jwks.url))) as base,
        http_client(base) as http,
        stopping(jwks),
    ):
        answers = concurrently(http, 6)
        requests = jwks.requests
        ended = fetch_threads_end(0.5)
    assert {(503, "key_unavailable")} == {(a.status, a.reason) for a in answers}
    assert max(a.elapsed for a in answers) <= TIMEOUT + SLACK
    assert 1 == requests
    assert ended
    assert [("TimeoutError", "timeout", False)] == refresh_failures(logs)


@TRICKLES
def test_expired_keys_serve_at_once_while_one_refresh_trickles_uvicorn(
    jwks: JWKSServer, mode: Mode
) -> None:
    """Cached and expired: answered from the old set at once; exactly one refresh runs."""
    verifier, clock = expiring(jwks.url)
    with (
        run_uvicorn(asgi_app(verifier)) as base,
        http_client(base) as http,
        stopping(jwks),
    ):
        assert call(http, "/orders", token()).status == 200
        usual = max(a.elapsed for a in concurrently(http, 20))  # fresh keys, same burst
        jwks.mode, jwks.delay = mode, TRICKLE_DELAY
        clock.now += 3600  # far past the set's lifetime
        with capture_logs() as logs:
            during = concurrently(http, 20)
            threads_during = fetch_threads()
            wait_for_event(logs, "jwks_refresh_failed", TIMEOUT + SLACK + 1)
            after = concurrently(http, 5)
        requests = jwks.requests
    assert {(200, "ok")} == {(a.status, a.reason) for a in during + after}
    assert max(a.elapsed for a in during + after) <= usual + PROMPT
    assert (requests, threads_during) == (2, 1)
    assert [("TimeoutError", "timeout", True)] == refresh_failures(logs)


def test_public_route_answers_while_the_fetch_trickles_waitress(jwks: JWKSServer) -> None:
    """Nothing cached, more token requests than threads: /health and 503s within the timeout."""
    jwks.mode, jwks.delay = "trickle_head", TRICKLE_DELAY
    threads = 4
    with (
        run_waitress(wsgi_app(verifier_for(jwks.url)), threads=threads) as base,
        http_client(base) as http,
        stopping(jwks),
        ThreadPoolExecutor(max_workers=2 * threads) as pool,
    ):
        bearer = token()
        pending = [pool.submit(call, http, "/orders", bearer) for _ in range(2 * threads)]
        time.sleep(0.2)  # every worker thread now serves a token request
        health = call(http, "/health")
        answers = [future.result() for future in pending]
        requests = jwks.requests
    assert 200 == health.status
    assert health.elapsed <= TIMEOUT + SLACK
    assert {(503, "key_unavailable")} == {(a.status, a.reason) for a in answers}
    assert max(a.elapsed for a in answers) <= TIMEOUT + SLACK
    assert requests == 1


def test_expired_keys_serve_at_once_while_one_refresh_trickles_waitress(
    jwks: JWKSServer,
) -> None:
    """Cached and expired: token requests and /health answered at once under waitress."""
    verifier, clock = expiring(jwks.url)
    with (
        run_waitress(wsgi_app(verifier), threads=4) as base,
        http_client(base) as http,
        stopping(jwks),
    ):
        assert call(http, "/orders", token()).status == 200
        usual = max(a.elapsed for a in concurrently(http, 12))  # fresh keys, same burst
        jwks.mode, jwks.delay = "trickle_head", TRICKLE_DELAY
        clock.now += 3600
        answers = concurrently(http, 12)
        health = call(http, "/health")
        requests = jwks.requests
    assert {(200, "ok")} == {(a.status, a.reason) for a in [*answers, health]}
    assert max(a.elapsed for a in [*answers, health]) <= usual + PROMPT
    assert requests == 2


# -- HTTPS from a local certificate authority ---------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, host: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(host).configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_jwks(ca: trustme.CA) -> Iterator[JWKSServer]:
    server = JWKSServer(tls=server_tls(ca))
    server.jwks = {"keys": [session_keys().jwk("ES256", KID)]}
    yield server
    server.stop()


def get_orders(verifier: JWTVerifier) -> Answer:
    """One token request through uvicorn."""
    with run_uvicorn(asgi_app(verifier)) as base, http_client(base) as http:
        return call(http, "/orders", token())


def test_https_jwks_from_a_trusted_local_ca_verifies_tokens(
    ca: trustme.CA, tls_jwks: JWKSServer
) -> None:
    """jwks_ssl_context trusting the CA: the key set loads over TLS and the token verifies."""
    assert tls_jwks.url.startswith("https://127.0.0.1:")
    answer = get_orders(verifier_for(tls_jwks.url, jwks_ssl_context=trusting(ca)))
    assert (answer.status, tls_jwks.requests) == (200, 1)


def test_https_jwks_trusted_through_ssl_cert_file(
    ca: trustme.CA, tls_jwks: JWKSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a context, the system trust store is used, and SSL_CERT_FILE points it at the CA."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    verifier = verifier_for(tls_jwks.url)
    assert verifier.verify(token())["sub"] == "user-1"


@pytest.mark.parametrize("case", ["system-store", "other-ca", "wrong-host"])
def test_https_jwks_with_an_untrusted_certificate_is_key_unavailable(
    ca: trustme.CA, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown CA or a certificate for another host: 503 and a logged failure, never a key."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server = JWKSServer(tls=server_tls(ca, "idp.example" if case == "wrong-host" else "127.0.0.1"))
    server.jwks = {"keys": [session_keys().jwk("ES256", KID)]}
    options = {
        "system-store": {},
        "other-ca": {"jwks_ssl_context": trusting(trustme.CA())},
        "wrong-host": {"jwks_ssl_context": trusting(ca)},
    }[case]
    try:
        with capture_logs() as logs:
            answer = get_orders(verifier_for(server.url, **options))
    finally:
        server.stop()
    assert (answer.status, answer.reason) == (503, "key_unavailable")
    assert [("URLError", "tls_error", False)] == refresh_failures(logs)


def test_https_jwks_redirect_down_to_http_is_refused(
    ca: trustme.CA, tls_jwks: JWKSServer, jwks: JWKSServer
) -> None:
    """An https JWKS URL redirecting to http:// is not followed, though the target has the keys."""
    tls_jwks.mode, tls_jwks.redirect_to = "redirect", jwks.url
    with capture_logs() as logs:
        answer = get_orders(verifier_for(tls_jwks.url, jwks_ssl_context=trusting(ca)))
    assert (answer.status, answer.reason) == (503, "key_unavailable")
    assert (tls_jwks.requests, jwks.requests) == (1, 0)
    assert [("HTTPError", "unsafe_redirect", False)] == refresh_failures(logs)


def test_https_jwks_redirect_within_https_is_followed(ca: trustme.CA, tls_jwks: JWKSServer) -> None:
    """The control: a redirect that stays on https is followed, certificates checked."""
    tls_jwks.mode = "redirect"
    tls_jwks.redirect_to = tls_jwks.url.replace("/jwks.json", "/moved")
    answer = get_orders(verifier_for(tls_jwks.url, jwks_ssl_context=trusting(ca)))
    assert (answer.status, tls_jwks.requests) == (200, 2)


@pytest.fixture
def silent_tls_port() -> Iterator[int]:
    """A TCP server on loopback that accepts connections and never answers a ClientHello."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


@contextlib.contextmanager
def trickling_proxy(port: int, delay: float) -> Iterator[int]:
    """A TCP relay to ``port`` on loopback passing the server's bytes on one per ``delay`` s."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    opened: list[socket.socket] = []
    stop = threading.Event()

    def relay(source: socket.socket, target: socket.socket, pause: float) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(4096):
                if not pause:
                    target.sendall(data)
                    continue
                for i in range(len(data)):
                    if stop.wait(pause):
                        return
                    target.sendall(data[i : i + 1])

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                downstream = listener.accept()[0]
                upstream = socket.create_connection(("127.0.0.1", port))
                opened.extend([downstream, upstream])
                for args in ((downstream, upstream, 0.0), (upstream, downstream, delay)):
                    threading.Thread(target=relay, args=args, daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in opened:
            connection.close()
        listener.close()


@pytest.mark.parametrize("how", ["silent", "trickling"])
def test_stalled_tls_handshake_gives_up_at_the_deadline(
    ca: trustme.CA, tls_jwks: JWKSServer, silent_tls_port: int, how: str
) -> None:
    """No answer to the ClientHello, or one byte of it every 0.3 s: 503 at the deadline."""
    with contextlib.ExitStack() as stack:
        port = silent_tls_port
        if how == "trickling":
            tls_port = int(tls_jwks.url.split(":")[2].split("/")[0])
            port = stack.enter_context(trickling_proxy(tls_port, 0.3))
        url = f"https://127.0.0.1:{port}/jwks.json"
        verifier = verifier_for(url, jwks_ssl_context=trusting(ca))
        logs = stack.enter_context(capture_logs())
        base = stack.enter_context(run_uvicorn(asgi_app(verifier)))
        answers = concurrently(stack.enter_context(http_client(base)), 4)
        # The fetch itself ended at the deadline too: no thread is left behind.
        ended = fetch_threads_end(0.5)
    assert {(503, "key_unavailable")} == {(a.status, a.reason) for a in answers}
    assert TIMEOUT - 0.1 <= max(a.elapsed for a in answers) <= TIMEOUT + SLACK
    assert ended
    assert [("URLError", "timeout", False)] == refresh_failures(logs)


def test_ssl_context_without_certificate_checks_is_refused(jwks: JWKSServer) -> None:
    """A context that skips certificate or host name checks fails at construction."""
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="must check certificates and host names"):
        verifier_for(jwks.url, jwks_ssl_context=unchecked)
    with pytest.raises(TypeError, match=r"must be an ssl\.SSLContext"):
        verifier_for(jwks.url, jwks_ssl_context="/etc/ssl/ca.pem")
