"""Calling the middlewares directly, the way a server does: raw ASGI messages, a raw environ.

No HTTP client sits in between, so a test can send what a client library would refuse
(CR, LF or NUL in a header, invalid UTF-8, several ``Authorization`` lines) and calls
cost microseconds, which the fuzz and concurrency tests need. Header values are bytes,
as ASGI carries them; the WSGI environ gets them decoded as latin-1 (PEP 3333), with
several lines folded into one as a WSGI server folds them.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from invalidtoken_mw.asgi import ASGIApp, Message

PEER = ("203.0.113.7", 50123)


@dataclass(frozen=True)
class Answer:
    """What an application sent back: status, header pairs (latin-1 text) and body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Request:
    """A request as raw bytes, the way a server hands it over."""

    authorization: tuple[bytes, ...] = ()
    query: bytes = b""
    body: bytes = b""
    method: str = "GET"
    content_type: str | None = None
    accept: str | None = None
    path: str = "/orders"


def folded(values: Sequence[bytes]) -> str | None:
    """The single ``HTTP_AUTHORIZATION`` a WSGI server makes of several header lines."""
    return ", ".join(v.decode("latin-1") for v in values) if values else None


async def call_asgi_async(app: ASGIApp, request: Request) -> Answer:
    """Call an ASGI application with one http request; collect what it sends."""
    headers = [(b"authorization", value) for value in request.authorization]
    if request.content_type is not None:
        headers.append((b"content-type", request.content_type.encode("latin-1")))
    if request.accept is not None:
        headers.append((b"accept", request.accept.encode("latin-1")))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": request.path,
        "raw_path": request.path.encode(),
        "root_path": "",
        "query_string": request.query,
        "headers": headers,
        "client": PEER,
        "server": ("testserver", 80),
    }
    incoming: list[Message] = [{"type": "http.request", "body": request.body, "more_body": False}]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, *bodies = sent
    return Answer(
        start["status"],
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]],
        b"".join(m.get("body", b"") for m in bodies),
    )


def call_asgi(app: ASGIApp, request: Request) -> Answer:
    """:func:`call_asgi_async` in a fresh event loop."""
    return asyncio.run(call_asgi_async(app, request))


def call_wsgi(app: Callable[..., Iterable[bytes]], request: Request) -> Answer:
    """Call a WSGI application with a PEP 3333 environ built from the raw request."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": request.path,
        "QUERY_STRING": request.query.decode("latin-1"),
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": PEER[0],
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    authorization = folded(request.authorization)
    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    if request.content_type is not None:
        environ["CONTENT_TYPE"] = request.content_type
    if request.accept is not None:
        environ["HTTP_ACCEPT"] = request.accept
    started: list[tuple[str, list[tuple[str, str]]]] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], _exc_info: Any = None
    ) -> Callable[[bytes], object]:
        started.append((status, headers))
        return written.append

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    [(status, headers)] = started[-1:]
    return Answer(int(status[:3]), list(headers), b"".join(written) + body)
