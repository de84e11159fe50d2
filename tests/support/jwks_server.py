"""A real local JWKS server for tests, whose behaviour a test can switch at any time."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import socket

Mode = Literal[
    "ok",
    "garbage",
    "not_object",
    "empty",
    "status_500",
    "slow",
    "trickle",
    "trickle_head",
    "trickle_chunks",
    "redirect",
]


class JWKSServer:
    """Serves ``jwks`` at ``/jwks.json`` on 127.0.0.1 in a background thread.

    Switch ``mode`` to make it misbehave ("slow" waits ``delay`` before answering, "trickle"
    sends the body a byte at a time, "trickle_head" sends the status line and headers one
    byte every ``delay`` seconds, "trickle_chunks" sends a chunked body whose chunk-size
    line comes one byte every ``delay`` seconds, "redirect" sends every path but
    ``/moved`` to ``redirect_to``), put extra response headers (``Cache-Control``,
    ``Age``) in ``headers``, and
    read ``requests`` for the number of requests it answered or started answering.
    With ``tls`` (a server-side context) it speaks HTTPS, shaking hands in the
    connection's own thread.
    """

    def __init__(self, port: int = 0, *, tls: ssl.SSLContext | None = None) -> None:
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
        self._server = _Server(("127.0.0.1", port), _make_handler(self))
        self._server.tls = tls
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
        scheme = "http" if self._server.tls is None else "https"
        return f"{scheme}://{host!s}:{port}/jwks.json"

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

    def _trickled(self, mode: str) -> list[tuple[bytes, bool]]:
        """The raw response of a trickling mode: pieces, each sent slowly (True) or at once."""
        self._count_request()
        body = json.dumps(self.jwks).encode()
        if mode == "trickle_head":
            head = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            )
            return [(head, True), (body, False)]
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        # A chunk size padded with zeros is valid (RFC 9112 section 7.1) and long to send.
        size = b"%040x\r\n" % len(body)
        return [(head, False), (size, True), (body + b"\r\n0\r\n\r\n", False)]

    def _send_slowly(
        self, handler: BaseHTTPRequestHandler, pieces: list[tuple[bytes, bool]]
    ) -> None:
        for data, slowly in pieces:
            if not slowly:
                handler.wfile.write(data)
                continue
            for i in range(len(data)):
                if self._released.wait(self.delay):
                    return
                handler.wfile.write(data[i : i + 1])


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that can speak TLS, one handshake per connection thread."""

    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Shake hands (with ``tls``), then answer; a client refusing the certificate is let go."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        connection: socket.socket = request
        try:
            tls_connection = self.tls.wrap_socket(connection, server_side=True)
        except (ssl.SSLError, OSError):
            # The client refused the certificate, or gave up during the handshake.
            return
        with tls_connection:
            super().finish_request(tls_connection, client_address)


def _make_handler(server: JWKSServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if server.mode in {"trickle_head", "trickle_chunks"}:
                self.close_connection = True
                pieces = server._trickled(server.mode)  # noqa: SLF001 - part of the server
                # The client may give up at its deadline (the point of these modes).
                with contextlib.suppress(OSError):
                    server._send_slowly(self, pieces)  # noqa: SLF001 - part of the server
                return
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
