"""Measurements that are not request timings: Redis, JWKS floods, memory per token."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apps
from jwt.algorithms import RSAAlgorithm
from material import AUDIENCE, ISSUER, AlgKeys, mint, unknown_kid_tokens
from timing import Message, Runner, Scope, asgi_scope

from invalidtoken_mw import AuthFailure, InvalidTokenMiddleware, JWTVerifier, Reason
from invalidtoken_mw.extract import _KNOWN_HEADERS

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    import redis

    from invalidtoken_mw.asgi import Receive, Send

_START_TIMEOUT = 10.0
DEFAULT_COOLDOWN = 5.0  # JWTVerifier's default jwks_cooldown
SHORT_COOLDOWN = 0.02  # seconds: a 10,000-request flood then spans several windows


# -- Redis ------------------------------------------------------------------------------


def _free_port() -> int:
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


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """Run ``redis-server`` on a free loopback port; yields its URL, or ``None`` if absent."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        command = [
            executable,
            *("--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", directory, "--logfile", str(Path(directory) / "redis.log")),
        ]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603 - our argv
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not _pong(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def commands_per_request(client: redis.Redis, runner: Runner, calls: int) -> dict[str, float]:
    """Redis commands (by name) the server executed per request while ``runner`` ran."""
    client.config_resetstat()
    await runner(0, calls)
    stats = client.info("commandstats")
    counts = {
        name.removeprefix("cmdstat_"): float(entry["calls"]) / calls
        for name, entry in stats.items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))
    }
    return {name: round(count, 3) for name, count in sorted(counts.items())}


# -- JWKS flood -------------------------------------------------------------------------


class JWKSServer:
    """A JWKS endpoint on 127.0.0.1 that records when each fetch arrived."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        """Start serving ``jwks`` in a background thread."""
        body = json.dumps(jwks).encode()
        self.fetched_at: list[float] = []
        fetched_at = self.fetched_at

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fetched_at.append(time.monotonic())
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401, ARG002
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/jwks.json"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _most_in_window(times: Sequence[float], window: float) -> int:
    """The largest number of ``times`` that fall within any ``window`` seconds."""
    ordered = sorted(times)
    return max(
        (sum(1 for t in ordered[i:] if t < start + window) for i, start in enumerate(ordered)),
        default=0,
    )


def _jwks(keys: AlgKeys) -> dict[str, Any]:
    jwk = json.loads(RSAAlgorithm.to_jwk(keys.verifying))
    return {"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}


def _flood_report(
    server: JWKSServer, verifier: JWTVerifier, began: float, ended: float, cooldown: float
) -> dict[str, Any]:
    fetches = [t for t in server.fetched_at if began <= t <= ended]
    gaps = [b - a for a, b in itertools.pairwise(fetches)]
    jwks_cache = verifier._jwks  # noqa: SLF001 - the verifier keeps its JWKSCache private
    return {
        "cooldown_s": cooldown,
        "elapsed_s": round(ended - began, 3),
        "fetches": len(fetches),
        "fetch_count_property": None if jwks_cache is None else jwks_cache.fetch_count,
        "cooldown_windows": int((ended - began) // cooldown) + 1,
        "max_fetches_per_window": _most_in_window(fetches, cooldown),
        "min_gap_s": round(min(gaps), 3) if gaps else None,
    }


async def _flood_middleware(server: JWKSServer, requests: int) -> dict[str, Any]:
    """The middleware, asyncio, 100 requests in flight, starting cold, default cool-down."""
    verifier = JWTVerifier(
        jwks_url=server.url, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE
    )
    app = InvalidTokenMiddleware(apps.bare_starlette(), verifier=verifier, realm=apps.REALM)
    scopes = [asgi_scope(apps.PATH, f"Bearer {t}") for t in unknown_kid_tokens(requests)]
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    began = time.monotonic()
    for start in range(0, len(scopes), 100):
        await asyncio.gather(*(app(dict(s), _receive, send) for s in scopes[start : start + 100]))
    ended = time.monotonic()
    return {
        **_flood_report(server, verifier, began, ended, DEFAULT_COOLDOWN),
        "per_request_us": round((ended - began) / requests * 1e6, 1),
        "all_401": all(s == 401 for s in statuses),  # noqa: PLR2004
    }


def _flood_threads(server: JWKSServer, keys: AlgKeys, requests: int) -> dict[str, Any]:
    """The verifier from 4 threads with a short cool-down, after one initial fetch."""
    verifier = JWTVerifier(
        jwks_url=server.url,
        algorithms=["RS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_cooldown=SHORT_COOLDOWN,
    )
    verifier.verify(mint(keys))  # the initial fetch, outside the flood
    tokens = unknown_kid_tokens(requests)
    refused: list[Reason] = []

    def hammer(part: Sequence[str]) -> None:
        for token in part:
            try:
                verifier.verify(token)
            except AuthFailure as failure:  # noqa: PERF203 - the refusal is what is measured
                refused.append(failure.reason)  # list.append is atomic

    threads = [threading.Thread(target=hammer, args=(tokens[i::4],)) for i in range(4)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.monotonic()
    return {
        **_flood_report(server, verifier, began, ended, SHORT_COOLDOWN),
        "per_request_us": round((ended - began) / requests * 1e6, 1),
        "all_refused": refused.count(Reason.UNKNOWN_KEY) == requests,
    }


async def jwks_flood(keys: AlgKeys, *, requests: int) -> dict[str, Any]:
    """Floods of tokens with random unknown ``kid`` values against a local JWKS.

    1. Through ``InvalidTokenMiddleware`` (asyncio, 100 requests in flight), starting cold,
       with the default 5 s cool-down.
    2. ``JWTVerifier.verify`` from 4 threads with a 0.02 s cool-down, so the flood spans
       several cool-down windows.
    """
    server = JWKSServer(_jwks(keys))
    try:
        return {
            "requests": requests,
            "asgi_default_cooldown": await _flood_middleware(server, requests),
            "threads_short_cooldown": _flood_threads(server, keys, requests),
        }
    finally:
        server.close()


# -- memory -----------------------------------------------------------------------------


async def _traced(action: Callable[[], Awaitable[object]]) -> int:
    """Bytes still allocated after ``action()`` ran (transient garbage excluded)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        await action()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


async def memory_per_token(keys: AlgKeys, tokens: Sequence[str], *, bound: int) -> dict[str, Any]:
    """Bytes retained per cached token, and proof that the caches stay bounded.

    Header values arrive as bytes (as from a server) and are decoded inside the measured
    region, so the strings the caches keep are counted.
    """
    count = len(tokens)
    raw = [f"Bearer {t}".encode("latin-1") for t in tokens]
    warm = [f"Bearer {mint(keys)}".encode("latin-1") for _ in range(5)]

    verifier = apps.verifier(keys)

    async def verify_all(headers: Sequence[bytes]) -> None:
        for header in headers:
            verifier.verify(header.decode("latin-1")[len("Bearer ") :])

    await verify_all(warm)
    verifier_bytes = await _traced(lambda: verify_all(raw))

    app = InvalidTokenMiddleware(_null_app, verifier=apps.verifier(keys), realm=apps.REALM)
    base = asgi_scope(apps.PATH, None)

    async def drive(headers: Sequence[bytes]) -> None:
        for header in headers:
            request = dict(base)
            request["headers"] = [*base["headers"], (b"authorization", header)]
            await app(request, _receive, _discard)

    await drive(warm)
    middleware_bytes = await _traced(lambda: drive(raw))

    bounded = JWTVerifier(
        key=keys.verifying,
        algorithms=[keys.alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        cache_size=bound,
    )
    for token in tokens:
        bounded.verify(token)
    return {
        "tokens": count,
        "token_chars": round(sum(map(len, tokens)) / count),
        "verifier_bytes_per_token": round(verifier_bytes / count),
        "middleware_bytes_per_token": round(middleware_bytes / count),
        "bounded_cache_size": bound,
        "bounded_cache_held": len(bounded._cache or ()),  # noqa: SLF001 - its size is the point
        "header_cache_bound": _KNOWN_HEADERS,
        "header_cache_held": app.guard.extractor._known.cache_info().currsize,  # noqa: SLF001
    }


async def _null_app(_scope: Scope, _receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(_message: Message) -> None:
    return None
