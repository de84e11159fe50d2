"""In-process calls and interleaved timing blocks.

ASGI applications are awaited directly with a prebuilt scope (copied per call, as a
server builds a fresh one); WSGI applications are called with a prebuilt environ and
their iterable is consumed and closed; a floor is a plain function called with arguments
prepared from the token. No sockets, no server: what is left is the application's own
cost. Memory is measured apart, with ``tracemalloc`` (:func:`asgi_retained`).

The blocks of every stack of a scenario are interleaved, the order rotated each round,
so a noisy neighbour on the machine slows every stack alike instead of one.
"""

from __future__ import annotations

import gc
import io
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = MutableMapping[str, Any]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# (first request index, number of calls) -> elapsed nanoseconds
Runner = Callable[[int, int], Awaitable[int]]

PATH = "/orders"
_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


def asgi_scope(authorization: str | None) -> dict[str, Any]:
    """A ``GET /orders`` scope as uvicorn builds it, with an optional Authorization header."""
    headers = [(b"host", b"api.example.com"), (b"user-agent", b"bench/1.0"), (b"accept", b"*/*")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("latin-1")))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("203.0.113.7", 51234),
        "server": ("127.0.0.1", 8000),
    }


def wsgi_environ(authorization: str | None) -> dict[str, Any]:
    """A PEP 3333 ``GET /orders`` environ, with an optional Authorization header."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_HOST": "api.example.com",
        "HTTP_USER_AGENT": "bench/1.0",
        "HTTP_ACCEPT": "*/*",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    return environ


async def _receive() -> Message:
    return _REQUEST


async def _discard(_message: Message) -> None:
    return None


def _status_recorder(statuses: list[int]) -> Callable[[Message], Awaitable[None]]:
    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    return send


def _wsgi_call(app: WSGIApp, environ: dict[str, Any], start_response: Callable[..., Any]) -> None:
    body = app(dict(environ), start_response)
    for _chunk in body:
        pass
    close = getattr(body, "close", None)
    if close is not None:
        close()


def asgi_runner(app: ASGIApp, authorizations: Sequence[str | None]) -> Runner:
    """Await ``app`` once per call, cycling through the requests."""
    scopes = [asgi_scope(a) for a in authorizations]

    async def run(start: int, calls: int) -> int:
        began = time.perf_counter_ns()
        for index in range(start, start + calls):
            await app(dict(scopes[index % len(scopes)]), _receive, _discard)
        return time.perf_counter_ns() - began

    return run


def wsgi_runner(app: WSGIApp, authorizations: Sequence[str | None]) -> Runner:
    """Call ``app`` once per call, consuming and closing the response iterable."""
    environs = [wsgi_environ(a) for a in authorizations]

    def start_response(_status: str, _headers: object, _exc: object = None) -> None:
        return None

    async def run(start: int, calls: int) -> int:
        began = time.perf_counter_ns()
        for index in range(start, start + calls):
            _wsgi_call(app, environs[index % len(environs)], start_response)
        return time.perf_counter_ns() - began

    return run


def call_runner(function: Callable[..., object], arguments: Sequence[tuple[Any, ...]]) -> Runner:
    """Call ``function`` once per call with the next prepared arguments."""

    async def run(start: int, calls: int) -> int:
        began = time.perf_counter_ns()
        for index in range(start, start + calls):
            function(*arguments[index % len(arguments)])
        return time.perf_counter_ns() - began

    return run


async def asgi_status(app: ASGIApp, authorization: str | None) -> int:
    """The status ``app`` answers one request with (each stack is checked before timing)."""
    statuses: list[int] = []
    await app(asgi_scope(authorization), _receive, _status_recorder(statuses))
    return statuses[0]


def wsgi_status(app: WSGIApp, authorization: str | None) -> int:
    """The status ``app`` answers one request with."""
    statuses: list[int] = []

    def start_response(status: str, _headers: object, _exc: object = None) -> None:
        statuses.append(int(status[:3]))

    _wsgi_call(app, wsgi_environ(authorization), start_response)
    return statuses[0]


async def asgi_retained(app: ASGIApp, authorizations: Sequence[str | None]) -> float:
    """Bytes ``app`` still holds after one request per authorization, per request.

    Python allocations traced by ``tracemalloc`` from the first request to the last, after
    a full collection: what the calls left garbage is gone, what a cache keeps is counted.
    Each scope (and so the header bytes the token is read from) is built for its call, so
    whatever the application keeps of the request is new and counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for authorization in authorizations:
            await app(asgi_scope(authorization), _receive, _discard)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / len(authorizations)


@dataclass(frozen=True)
class Plan:
    """How long to time: blocks per stack, the target length of one block, call bounds."""

    blocks: int
    block_seconds: float
    min_calls: int
    max_calls: int
    warmup_calls: int


@dataclass
class Timed:
    """One stack being timed in a scenario: its runner and its per-block samples (µs/call)."""

    name: str
    runner: Runner
    distinct: int | None = None  # requests that may each be used once (a fresh-token pool)
    calls: int = 0
    cursor: int = 0
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median over the blocks of the mean µs per call."""
        return statistics.median(self.samples)


async def _block(timed: Timed, calls: int) -> float:
    gc.collect()
    gc.disable()  # a collection triggered by one stack's garbage must not bill the next
    try:
        elapsed = await timed.runner(timed.cursor, calls)
    finally:
        gc.enable()
    timed.cursor += calls
    return elapsed / calls / 1000


async def interleave(entries: Sequence[Timed], plan: Plan) -> None:
    """Warm up and calibrate every stack, then time ``plan.blocks`` rotated rounds."""
    for timed in entries:
        warm = plan.warmup_calls
        if timed.distinct is not None:
            warm = min(warm, max(1, timed.distinct // (plan.blocks + 2)))
        first = await _block(timed, warm)  # first calls: lazy set-up, imports, caches
        per_call = min(first, await _block(timed, warm))  # a noise spike must not shrink blocks
        calls = int(plan.block_seconds * 1e6 / max(per_call, 0.01))
        calls = max(plan.min_calls, min(plan.max_calls, calls))
        if timed.distinct is not None:  # never reuse a fresh token: it would hit a cache
            calls = max(1, min(calls, (timed.distinct - timed.cursor) // plan.blocks))
        timed.calls = calls
    for round_index in range(plan.blocks):
        shift = round_index % len(entries)
        for timed in [*entries[shift:], *entries[:shift]]:
            timed.samples.append(await _block(timed, timed.calls))
