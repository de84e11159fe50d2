"""InvalidTokenMiddleware at the ASGI message level, with hand-written receive and send.

Fast checks of what the servers cannot show directly: which scopes pass through
untouched, that a started response is never rewritten, that the form-body method
replays the body exactly, and the websocket close code without the denial-response
extension. The last tests drive the WSGI middleware with the folded ``Authorization``
values that WSGI servers produce from repeated headers.
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING, Any

import pytest

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    Reason,
)
from support.servers import make_verifier
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from starlette.types import Message, Receive, Scope, Send

VALID_CLAIMS = claims()
VALID = mint(payload=VALID_CLAIMS)
FORM = b"application/x-www-form-urlencoded"


class Script:
    """A ``receive`` that hands out scripted messages, then ``http.disconnect`` forever."""

    def __init__(self, *messages: Message) -> None:
        self.messages = list(messages)
        self.calls = 0

    async def __call__(self) -> Message:
        """Return the next scripted message."""
        self.calls += 1
        return self.messages.pop(0) if self.messages else {"type": "http.disconnect"}


class Recorder:
    """A ``send`` that records every message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        """Record ``message``."""
        self.messages.append(message)


def http_scope(
    *,
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = (),
    path: str = "/orders",
) -> Scope:
    """A minimal HTTP scope as a server would build it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def bearer(token: str = VALID) -> tuple[bytes, bytes]:
    """An Authorization header presenting ``token``."""
    return (b"authorization", f"Bearer {token}".encode())


def middleware(app: Any, **options: Any) -> InvalidTokenMiddleware:
    """The middleware around ``app`` with the test verifier."""
    return InvalidTokenMiddleware(app, verifier=make_verifier(), realm="orders", **options)


def run(app: Any, scope: Scope, receive: Receive, send: Send) -> None:
    """Run one ASGI call to completion."""
    asyncio.run(app(scope, receive, send))


# -- scopes that pass straight through -------------------------------------------------


@pytest.mark.parametrize("kind", ["lifespan", "webtransport"])
def test_non_http_scopes_pass_straight_through(kind: str) -> None:
    """lifespan and unknown scope types reach the app with the same scope, receive and send."""
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    scope: Scope = {"type": kind, "asgi": {"version": "3.0"}, "state": {}}
    receive, send = Script(), Recorder()
    run(middleware(app), scope, receive, send)
    expected = [(scope, receive, send)]
    assert expected == seen
    assert {} == scope["state"]


def test_lifespan_protocol_runs_through_the_middleware() -> None:
    """The lifespan startup and shutdown messages travel through unchanged."""

    async def app(_scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    receive = Script({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    send = Recorder()
    run(middleware(app), {"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    expected = [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    assert expected == send.messages


# -- responses that have already started -----------------------------------------------


@pytest.mark.parametrize("status", [200, 401])
def test_started_response_is_never_touched(status: int) -> None:
    """An AuthFailure after http.response.start propagates; nothing is sent in its place."""
    started: list[Message] = [
        {"type": "http.response.start", "status": status, "headers": [(b"x-app", b"1")]},
        {"type": "http.response.body", "body": b"partial", "more_body": True},
    ]

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        for message in started:
            await send(dict(message))
        raise AuthFailure("expired")

    send = Recorder()
    with pytest.raises(AuthFailure):
        run(
            middleware(app, add_missing_challenge=False),
            http_scope(headers=[bearer()]),
            Script(),
            send,
        )
    expected = started
    assert expected == send.messages


def test_failure_before_start_is_rendered() -> None:
    """The same AuthFailure raised before the response starts becomes the 401 answer."""

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise AuthFailure("expired")

    send = Recorder()
    run(middleware(app), http_scope(headers=[bearer()]), Script(), send)
    expected = (["http.response.start", "http.response.body"], 401)
    assert expected == ([m["type"] for m in send.messages], send.messages[0]["status"])


# -- the form-body method replays the body ---------------------------------------------


def body_app(received: list[Message], claims_seen: list[Any]) -> Any:
    """An app that reads the whole body, one receive more, and answers 204."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        claims_seen.append(scope["state"]["token_claims"])
        more = True
        while more:
            message = await receive()
            received.append(message)
            more = message.get("more_body", False)
        received.append(await receive())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def test_body_token_found_and_body_replayed_chunk_by_chunk() -> None:
    """A form-body token split across chunks is found, and the app receives every chunk."""
    body = f"item=42&access_token={VALID}&note=ok".encode()
    chunks: list[Message] = [
        {"type": "http.request", "body": body[:20], "more_body": True},
        {"type": "http.request", "body": body[20:60], "more_body": True},
        {"type": "http.request", "body": body[60:], "more_body": False},
    ]
    received: list[Message] = []
    claims_seen: list[Any] = []
    send = Recorder()
    scope = http_scope(method="POST", headers=[(b"content-type", FORM)])
    run(
        middleware(body_app(received, claims_seen), allow_body_token=True),
        scope,
        Script(*chunks),
        send,
    )
    expected = ([*chunks, {"type": "http.disconnect"}], [VALID_CLAIMS], 204)
    assert expected == (received, claims_seen, send.messages[0]["status"])


def test_body_larger_than_the_search_limit_still_reaches_the_app() -> None:
    """A form body over 1 MiB is not searched for a token, but the app still gets all of it."""
    chunk = b"x" * 65536
    chunks: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": i < 19} for i in range(20)
    ]
    received: list[Message] = []
    claims_seen: list[Any] = []
    scope = http_scope(method="POST", headers=[(b"content-type", FORM), bearer()])
    app = middleware(body_app(received, claims_seen), allow_body_token=True)
    run(app, scope, Script(*chunks), Recorder())
    expected = (20 * len(chunk), [VALID_CLAIMS])
    assert expected == (sum(len(m.get("body", b"")) for m in received), claims_seen)


def test_non_form_body_is_not_read_by_the_middleware() -> None:
    """With the body method on, a JSON body is left for the app: the middleware never receives."""
    message: Message = {"type": "http.request", "body": b'{"access_token": "x"}'}
    receive = Script(message)
    calls_before_app: list[int] = []

    async def app(_scope: Scope, receive_: Receive, send: Send) -> None:
        calls_before_app.append(receive.calls)
        await receive_()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    scope = http_scope(method="POST", headers=[(b"content-type", b"application/json"), bearer()])
    run(middleware(app, allow_body_token=True), scope, receive, Recorder())
    expected = [0]
    assert expected == calls_before_app


# -- websocket without the denial-response extension -----------------------------------


def websocket_scope(extensions: dict[str, Any] | None) -> Scope:
    """A websocket scope without credentials; ``extensions`` as the server advertises."""
    scope = http_scope(path="/ws")
    scope.update(type="websocket", scheme="ws")
    del scope["method"]
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


@pytest.mark.parametrize("extensions", [None, {}, {"websocket.http.response.other": {}}])
def test_websocket_without_extension_closes_with_1008(
    extensions: dict[str, Any] | None,
) -> None:
    """Without websocket.http.response the handshake is refused with close code 1008."""
    called: list[bool] = []

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        called.append(True)

    send = Recorder()
    run(middleware(app), websocket_scope(extensions), Script({"type": "websocket.connect"}), send)
    expected: tuple[list[Message], list[bool]] = (
        [{"type": "websocket.close", "code": 1008, "reason": "missing_token"}],
        [],
    )
    assert expected == (send.messages, called)


def test_websocket_with_extension_gets_http_denial() -> None:
    """With websocket.http.response the denial is an HTTP 401 carrying the challenge."""
    send = Recorder()
    scope = websocket_scope({"websocket.http.response": {}})

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise AssertionError("the app must not be called")

    run(middleware(app), scope, Script({"type": "websocket.connect"}), send)
    start, body = send.messages
    expected = (
        "websocket.http.response.start",
        401,
        (b"www-authenticate", b'Bearer realm="orders"'),
    )
    assert expected == (start["type"], start["status"], start["headers"][-1])
    assert "websocket.http.response.body" == body["type"]


def test_websocket_app_failure_before_accept_is_denied() -> None:
    """An AuthFailure raised by a websocket route before accepting is denied like our own."""
    scope = websocket_scope(None)
    scope["headers"] = [bearer()]

    async def app(_scope: Scope, _receive: Receive, _send: Send) -> None:
        raise AuthFailure(Reason.INSUFFICIENT_SCOPE, scopes=["orders:read"])

    send = Recorder()
    run(middleware(app), scope, Script({"type": "websocket.connect"}), send)
    expected = [{"type": "websocket.close", "code": 1008, "reason": "insufficient_scope"}]
    assert expected == send.messages


def test_websocket_app_failure_after_accept_is_not_touched() -> None:
    """After the handshake is accepted, a failure from the route propagates untouched."""
    scope = websocket_scope(None)
    scope["headers"] = [bearer()]

    async def app(_scope: Scope, _receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})
        raise AuthFailure(Reason.EXPIRED)

    send = Recorder()
    with pytest.raises(AuthFailure):
        run(middleware(app), scope, Script({"type": "websocket.connect"}), send)
    assert [{"type": "websocket.accept"}] == send.messages


# -- WSGI: repeated Authorization headers arrive folded --------------------------------


@pytest.mark.parametrize(
    "folded",
    [
        pytest.param(f"Bearer {VALID}, Bearer {VALID}", id="waitress-bearer-bearer"),
        pytest.param(f"Bearer {VALID},Bearer {VALID}", id="gunicorn-bearer-bearer"),
        pytest.param(f"Bearer {VALID}, Basic dXNlcjpwYXNz", id="waitress-bearer-basic"),
        pytest.param(f"Bearer {VALID},Basic dXNlcjpwYXNz", id="gunicorn-bearer-basic"),
        pytest.param(f"Basic dXNlcjpwYXNz, Bearer {VALID}", id="waitress-basic-bearer"),
        pytest.param(f"Basic dXNlcjpwYXNz,bearer {VALID}", id="gunicorn-basic-bearer"),
    ],
)
def test_wsgi_folded_authorization_headers_are_400(folded: str) -> None:
    """Two Authorization headers folded into one WSGI value are a 400, as under ASGI."""
    statuses: list[str] = []

    def app(_environ: dict[str, Any], _start_response: Any) -> list[bytes]:
        raise AssertionError("the app must not be called")

    wsgi = InvalidTokenWSGIMiddleware(app, verifier=make_verifier(), realm="orders")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/orders",
        "QUERY_STRING": "",
        "HTTP_AUTHORIZATION": folded,
        "wsgi.input": io.BytesIO(),
    }

    def start_response(
        status: str, _headers: list[tuple[str, str]], _exc_info: object = None
    ) -> Callable[[bytes], object]:
        statuses.append(status)
        return lambda _data: None

    wsgi(environ, start_response)
    expected = ["400 Bad Request"]
    assert expected == statuses
