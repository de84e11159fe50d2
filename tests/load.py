"""Load test: a real uvicorn and a real waitress on loopback, a mixed stream, every answer checked.

Each server runs in its own process (this script, with ``--serve``) and protects one
route with the middleware: Starlette under uvicorn with ``InvalidTokenMiddleware``, a
plain WSGI application under waitress with ``InvalidTokenWSGIMiddleware``. The route
answers the token's ``sub``. A concurrent httpx client (one keep-alive connection per
thread) first sends every token of the pool once (the warm-up), then a shuffled stream
of ``--requests`` requests per server:

=========  =====  =========================================================
kind       share  expected answer
=========  =====  =========================================================
valid      50 %   200 and the token's own ``sub``
expired    10 %   401 ``expired``, ``error="invalid_token"``
forged     10 %   401 ``bad_signature``
garbage    10 %   401 ``malformed_token``
missing    10 %   401 ``missing_token`` with the bare challenge
revoked    10 %   401 ``revoked`` (the server's memory store holds the ``jti``)
=========  =====  =========================================================

It reports throughput, p50/p90/p99 latency and the server's RSS at start, after the
warm-up, half-way and at the end, and exits 1 on any wrong answer, any 5xx, any
transport error or an RSS growth after the warm-up beyond ``--max-rss-growth-mib``.

    python tests/load.py --requests 20000 --concurrency 16
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import jwt

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

ISSUER = "https://id.example.com/"
AUDIENCE = "api://orders"
REALM = "orders"
PATH = "/orders"
BARE_CHALLENGE = f'Bearer realm="{REALM}"'
SERVERS = ("uvicorn", "waitress")
START_TIMEOUT = 30.0
# kind -> share of the stream (per cent) and distinct tokens in the pool
MIX: dict[str, tuple[int, int]] = {
    "valid": (50, 400),
    "expired": (10, 100),
    "forged": (10, 100),
    "garbage": (10, 100),
    "missing": (10, 1),
    "revoked": (10, 100),
}
REASONS = {
    "expired": "expired",
    "forged": "bad_signature",
    "garbage": "malformed_token",
    "missing": "missing_token",
    "revoked": "revoked",
}


# -- the servers (child processes) ---------------------------------------------------------


def _verifier(secret: bytes, revoked: int) -> Any:
    from invalidtoken_mw import JWTVerifier, MemoryRevocationStore  # noqa: PLC0415

    store = MemoryRevocationStore()
    for index in range(revoked):
        store.revoke(jti=f"revoked-{index}", issuer=ISSUER, expires_at=time.time() + 86400)
    return JWTVerifier(
        key=secret, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )


def _quiet_structlog() -> None:
    """Render the library's events as JSON on stderr (a file the parent keeps), not stdout."""
    import structlog  # noqa: PLC0415

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def serve_uvicorn(secret: bytes, revoked: int) -> None:
    """Serve Starlette with InvalidTokenMiddleware under uvicorn; print the port first."""
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.responses import PlainTextResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    from invalidtoken_mw import InvalidTokenMiddleware  # noqa: PLC0415

    async def orders(request: Any) -> PlainTextResponse:
        return PlainTextResponse(request.state.token_claims["sub"])

    async def health(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route(PATH, orders), Route("/health", health)])
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=_verifier(secret, revoked),
        realm=REALM,
        exclude_paths=["/health"],
    )
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says TCP; with proto 0 every response waits ~40 ms (Nagle +
    # delayed ACK) on a keep-alive connection.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


def serve_waitress(secret: bytes, revoked: int) -> None:
    """Serve a WSGI app with InvalidTokenWSGIMiddleware under waitress; print the port first."""
    import waitress  # noqa: PLC0415

    from invalidtoken_mw import InvalidTokenWSGIMiddleware  # noqa: PLC0415

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        claims = environ["invalidtoken_mw.claims"]
        body = b"ok" if claims is None else claims["sub"].encode()
        start_response(
            "200 OK", [("content-type", "text/plain"), ("content-length", str(len(body)))]
        )
        return [body]

    guarded = InvalidTokenWSGIMiddleware(
        app, verifier=_verifier(secret, revoked), realm=REALM, exclude_paths=["/health"]
    )
    server = waitress.create_server(guarded, host="127.0.0.1", port=0, threads=8)
    print(f"PORT {server.effective_port}", flush=True)
    server.run()


# -- the stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One request of the stream and the answer due."""

    kind: str
    authorization: str | None
    sub: str | None = None


def _token(secret: bytes, **claims: str | int) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def make_pool(secret: bytes) -> dict[str, list[Item]]:
    """The distinct requests of each kind (``MIX``); revoked jtis match the server's store."""
    other = secrets.token_bytes(32)
    now = int(time.time())
    count = {kind: size for kind, (_, size) in MIX.items()}
    return {
        "valid": [
            Item("valid", f"Bearer {_token(secret, sub=f'user-{n}', jti=f'v-{n}')}", f"user-{n}")
            for n in range(count["valid"])
        ],
        "expired": [
            Item("expired", f"Bearer {_token(secret, sub='e', iat=now - 7200, exp=now - 3600)}")
            for _ in range(count["expired"])
        ],
        "forged": [
            Item("forged", f"Bearer {_token(other, sub=f'f-{n}')}") for n in range(count["forged"])
        ],
        "garbage": [
            Item("garbage", f"Bearer {secrets.token_urlsafe(24 + n % 40)}")
            for n in range(count["garbage"])
        ],
        "missing": [Item("missing", None)],
        "revoked": [
            Item("revoked", f"Bearer {_token(secret, sub=f'r-{n}', jti=f'revoked-{n}')}")
            for n in range(count["revoked"])
        ],
    }


def make_stream(pool: dict[str, list[Item]], requests: int, seed: int) -> list[Item]:
    """``requests`` items in the proportions of ``MIX``, shuffled reproducibly."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible shuffle, not a secret
    stream: list[Item] = []
    for kind, (share, _) in MIX.items():
        wanted = requests * share // 100
        stream += [pool[kind][i % len(pool[kind])] for i in range(wanted)]
    stream += [pool["valid"][i] for i in range(requests - len(stream))]
    rng.shuffle(stream)
    return stream


def problem(item: Item, response: httpx.Response) -> str | None:
    """What is wrong with ``response`` as the answer to ``item`` (``None``: it is right)."""
    status = response.status_code
    if item.kind == "valid":
        return None if (status, response.text) == (200, item.sub) else f"{status} {response.text!r}"
    challenge = response.headers.get("www-authenticate", "")
    try:
        reason = response.json().get("reason")
    except ValueError:
        reason = None
    if status != 401 or reason != REASONS[item.kind]:
        return f"{status} reason={reason!r}"
    if item.kind == "missing":
        return None if challenge == BARE_CHALLENGE else f"challenge {challenge!r}"
    return None if 'error="invalid_token"' in challenge else f"challenge {challenge!r}"


@dataclass
class Tally:
    """What one phase of the stream produced."""

    sent: int = 0
    wrong: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    latencies: list[float] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, item: Item, latency: float, issue: str | None, status: int | None) -> None:
        """Count one answer."""
        with self.lock:
            self.sent += 1
            self.latencies.append(latency)
            if status is None:
                self.transport_errors += 1
            elif status >= 500:
                self.server_errors += 1
            if issue is not None:
                self.wrong += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{item.kind}: {issue}")


def send_all(base_url: str, items: Sequence[Item], concurrency: int, tally: Tally) -> float:
    """Send ``items`` from ``concurrency`` threads (one client each); return the elapsed seconds."""

    def worker(share: Sequence[Item]) -> None:
        with httpx.Client(base_url=base_url, trust_env=False, timeout=10.0) as client:
            for item in share:
                headers = (
                    {} if item.authorization is None else {"authorization": item.authorization}
                )
                started = time.perf_counter()
                try:
                    response = client.get(PATH, headers=headers)
                except httpx.HTTPError as exc:
                    tally.record(item, time.perf_counter() - started, type(exc).__name__, None)
                    continue
                latency = time.perf_counter() - started
                tally.record(item, latency, problem(item, response), response.status_code)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as executor:
        list(executor.map(worker, [items[n::concurrency] for n in range(concurrency)]))
    return time.perf_counter() - started


# -- running a server --------------------------------------------------------------------------


def rss_mib(pid: int) -> float | None:
    """The resident set size of process ``pid`` in MiB (Linux ``/proc``), or ``None``."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


@contextlib.contextmanager
def running(server: str, secret: bytes, revoked: int, log: Path) -> Iterator[tuple[str, int]]:
    """Start ``server`` in a child process; yield its base URL and pid; always stop it."""
    command = [sys.executable, __file__, "--serve", server, "--revoked", str(revoked)]
    env = {**os.environ, "INVALIDTOKEN_LOAD_SECRET": secret.hex()}
    with log.open("wb") as errors:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL, env=env
        )
    try:
        port = _read_port(process)
        base_url = f"http://127.0.0.1:{port}"
        _wait_healthy(base_url, process)
        yield base_url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
    line = process.stdout.readline().decode() if ready else ""
    if not line.startswith("PORT "):
        raise RuntimeError(f"the server did not start (got {line!r})")
    return int(line.split()[1])


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=base_url, trust_env=False, timeout=1.0) as client:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/health").status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError("the server did not become healthy")


@dataclass
class Result:
    """The figures of one server's run."""

    server: str
    requests: int
    concurrency: int
    seconds: float
    throughput: float
    wrong: int
    server_errors: int
    transport_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    rss_start_mib: float | None
    rss_warm_mib: float | None
    rss_half_mib: float | None
    rss_end_mib: float | None
    examples: list[str]

    @property
    def rss_growth_mib(self) -> float | None:
        """RSS growth after the warm-up."""
        if self.rss_warm_mib is None or self.rss_end_mib is None:
            return None
        return self.rss_end_mib - self.rss_warm_mib


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_server(server: str, args: argparse.Namespace, log: Path) -> Result:
    """Warm one server up, stream to it, and measure."""
    secret = secrets.token_bytes(32)
    pool = make_pool(secret)
    warmup = [item for items in pool.values() for item in items]
    stream = make_stream(pool, args.requests, args.seed)
    half = len(stream) // 2
    with running(server, secret, MIX["revoked"][1], log) as (base_url, pid):
        rss_start = rss_mib(pid)
        warm = Tally()
        send_all(base_url, warmup, args.concurrency, warm)
        rss_warm = rss_mib(pid)
        tally = Tally()
        seconds = send_all(base_url, stream[:half], args.concurrency, tally)
        rss_half = rss_mib(pid)
        seconds += send_all(base_url, stream[half:], args.concurrency, tally)
        rss_end = rss_mib(pid)
    latencies = tally.latencies or [0.0]
    return Result(
        server=server,
        requests=tally.sent,
        concurrency=args.concurrency,
        seconds=round(seconds, 2),
        throughput=round(tally.sent / seconds, 1) if seconds else 0.0,
        wrong=tally.wrong + warm.wrong,
        server_errors=tally.server_errors + warm.server_errors,
        transport_errors=tally.transport_errors + warm.transport_errors,
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p90_ms=round(percentile(latencies, 0.90) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        rss_start_mib=_round(rss_start),
        rss_warm_mib=_round(rss_warm),
        rss_half_mib=_round(rss_half),
        rss_end_mib=_round(rss_end),
        examples=warm.examples + tally.examples,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def failures(result: Result, max_growth: float) -> list[str]:
    """Why ``result`` fails the run (empty: it passes)."""
    found = []
    if result.wrong:
        found.append(f"{result.wrong} wrong answers, e.g. {result.examples}")
    if result.server_errors:
        found.append(f"{result.server_errors} answers with a 5xx status")
    if result.transport_errors:
        found.append(f"{result.transport_errors} transport errors")
    growth = result.rss_growth_mib
    if growth is not None and growth > max_growth:
        found.append(f"RSS grew {growth:.1f} MiB after the warm-up (limit {max_growth} MiB)")
    return found


def report(results: Iterable[Result]) -> str:
    """A plain-text table of the figures."""
    header = (
        "server     requests  conc  seconds  req/s   p50 ms  p90 ms  p99 ms  max ms"
        "  wrong  5xx  RSS start/warm/half/end MiB"
    )
    lines = [header]
    for r in results:
        rss = "/".join(
            "-" if v is None else f"{v:.1f}"
            for v in (r.rss_start_mib, r.rss_warm_mib, r.rss_half_mib, r.rss_end_mib)
        )
        lines.append(
            f"{r.server:<9} {r.requests:>9} {r.concurrency:>5} {r.seconds:>8.1f}"
            f" {r.throughput:>6.0f} {r.p50_ms:>8.2f} {r.p90_ms:>7.2f} {r.p99_ms:>7.2f}"
            f" {r.max_ms:>7.1f} {r.wrong:>6} {r.server_errors:>4}  {rss}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads")
    parser.add_argument("--servers", default=",".join(SERVERS), help="uvicorn,waitress")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the shuffle")
    parser.add_argument(
        "--max-rss-growth-mib",
        type=float,
        default=8.0,
        help="fail if a server's RSS grows more than this after the warm-up",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--revoked", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is None and (args.requests < 1 or args.concurrency < 1):
        parser.error("--requests and --concurrency must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test (or, with ``--serve``, be one of its servers)."""
    args = parse_args(argv)
    if args.serve is not None:
        _quiet_structlog()
        secret = bytes.fromhex(os.environ["INVALIDTOKEN_LOAD_SECRET"])
        {"uvicorn": serve_uvicorn, "waitress": serve_waitress}[args.serve](secret, args.revoked)
        return 0
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    results = []
    problems = []
    with tempfile.TemporaryDirectory() as directory:
        for server in servers:
            log = Path(directory) / f"{server}.log"
            try:
                result = run_server(server, args, log)
            except RuntimeError as exc:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                problems.append(f"{server}: {exc}\n{tail}")
                continue
            results.append(result)
            problems += [f"{server}: {p}" for p in failures(result, args.max_rss_growth_mib)]
    print(report(results))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    for text in problems:
        print(f"FAIL {text}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
