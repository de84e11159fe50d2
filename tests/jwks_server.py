"""A real local JWKS server for tests, whose behaviour a test can switch at any time."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["ok", "garbage", "not_object", "empty", "status_500", "slow", "trickle", "redirect"]


class JWKSServer:
    """Serves ``jwks`` at ``/jwks.json`` on 127.0.0.1 in a background thread.

    Switch ``mode`` to make it misbehave ("slow" waits ``delay`` before answering, "trickle"
    sends the body a byte at a time, "redirect" sends every path but ``/moved`` to
    ``redirect_to``), put extra response headers (``Cache-Control``,
    ``Age``) in ``headers``, and
    read ``requests`` for the number of requests it answered or started answering.
    """

    def __init__(self, port: int = 0) -> None:
        """Start serving on ``port`` (0: a free one; a fixed one brings a stopped server back)."""
        self.jwks: dict[str, Any] = {"keys": []}
        self.mode: Mode = "ok"
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.redirect_to = ""
        self._count = 0
        self._lock = threading.Lock()
        # Set on stop so that handlers sleeping in "slow" mode finish at once.
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = False
        # A short poll interval makes stop() (shutdown) return quickly.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self._running = True

    @property
    def url(self) -> str:
        """The JWKS URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/jwks.json"

    @property
    def requests(self) -> int:
        """The number of requests received."""
        with self._lock:
            return self._count

    def add_key(self, jwk: dict[str, Any]) -> None:
        """Publish one more key (a rotation)."""
        self.jwks = {"keys": [*self.jwks["keys"], jwk]}

    def stop(self) -> None:
        """Stop serving and close the listening socket; connections are then refused."""
        if self._running:
            self._running = False
            self._released.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def _count_request(self) -> None:
        with self._lock:
            self._count += 1

    def _answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        self._count_request()
        mode = self.mode
        if mode == "slow":
            self._released.wait(self.delay)
        headers = {"Content-Type": "application/json", **self.headers}
        bodies = {
            "garbage": b"{not json",
            "not_object": b"[1, 2, 3]",
            "empty": b'{"keys": []}',
            "status_500": b'{"error": "boom"}',
        }
        if mode == "redirect" and path != "/moved":
            return 302, {"Location": self.redirect_to}, b""
        status = 500 if mode == "status_500" else 200
        return status, headers, bodies.get(mode, json.dumps(self.jwks).encode())


def _make_handler(server: JWKSServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = server._answer(self.path)  # noqa: SLF001 - part of the server
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "trickle":
                    for i in range(len(body)):
                        if server._released.wait(0.02):  # noqa: SLF001 - part of the server
                            break
                        self.wfile.write(body[i : i + 1])
                else:
                    self.wfile.write(body)
            except OSError:
                # The client gave up (a timeout test); nothing to answer.
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature is http.server's
            """Keep test output quiet."""

    return Handler
