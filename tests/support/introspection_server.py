"""A loopback RFC 7662 introspection endpoint for fault injection, switchable at any time.

Not an authorization server: it answers what the test put in ``tokens`` (a token's
introspection response; any other token is ``{"active": false}``) and misbehaves on
demand. The tests against a real authorization server live elsewhere.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote_plus

Mode = Literal["ok", "slow", "garbage", "status_500", "no_active", "not_object", "redirect"]

CLIENT_ID = "orders-api"
CLIENT_SECRET = "s3cret:with spaces&symbols=+/"


class Seen(NamedTuple):
    """One request as the server saw it."""

    authorization: str | None
    form: dict[str, str]
    basic: tuple[str, str] | None  # the decoded client_secret_basic pair, if any


class IntrospectionServer:
    """Serves ``POST /introspect`` on 127.0.0.1 in a background thread.

    ``mode``: ``"ok"`` answers from ``tokens``; ``"slow"`` waits ``delay`` seconds first;
    ``"garbage"`` answers 200 with text that is not JSON; ``"status_500"`` a 500;
    ``"no_active"`` a JSON object without ``active``; ``"not_object"`` a JSON list;
    ``"redirect"`` a 307 to another path. Wrong client credentials get a 401, as from a
    real server. ``seen`` lists every request (its ``Authorization`` header and form).
    """

    def __init__(self) -> None:
        """Start serving on a free port."""
        self.tokens: dict[str, dict[str, Any]] = {}
        self.mode: Mode = "ok"
        self.delay = 0.0
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The introspection endpoint's URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/introspect"

    @property
    def calls(self) -> int:
        """How many introspection requests arrived."""
        with self._lock:
            return len(self.seen)

    def stop(self) -> None:
        """Stop serving and close the listening socket (slow handlers return at once)."""
        self._released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def _answer(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if self.mode == "slow":
            self._released.wait(self.delay)
        fault = _FAULTS.get(self.mode)
        if fault is not None:
            return fault
        client = seen.basic or (seen.form.get("client_id", ""), seen.form.get("client_secret", ""))
        if client != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"Content-Type": "application/json"}, b'{"error":"invalid_client"}'
        document = self.tokens.get(seen.form.get("token", ""), {"active": False})
        return 200, {"Content-Type": "application/json"}, json.dumps(document).encode()


_JSON = {"Content-Type": "application/json"}
_FAULTS: dict[str, tuple[int, dict[str, str], bytes]] = {
    "garbage": (200, {"Content-Type": "text/html"}, b"<html>Gateway</html>"),
    "status_500": (500, _JSON, b'{"error":"server_error"}'),
    "redirect": (307, {"Location": "/elsewhere"}, b""),
    "not_object": (200, _JSON, b"[true]"),
    "no_active": (200, _JSON, b'{"scope":"orders:write"}'),
}


class _Server(ThreadingHTTPServer):
    # The default backlog (5) drops connections the verifier's 8 workers open at once,
    # and a dropped SYN is retried only a second later: longer than the tests' timeouts.
    request_queue_size = 128


def _basic(header: str | None) -> tuple[str, str] | None:
    if header is None or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return unquote_plus(user), unquote_plus(password)


def _make_handler(server: IntrospectionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            form = {name: values[0] for name, values in parse_qs(body).items()}
            authorization = self.headers.get("Authorization")
            seen = Seen(authorization, form, _basic(authorization))
            server._record(seen)  # noqa: SLF001 - part of the server
            status, headers, answer = server._answer(seen)  # noqa: SLF001 - part of the server
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                # The client gave up (a timeout test); nothing to answer.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature is http.server's
            """Keep test output quiet."""

    return Handler
