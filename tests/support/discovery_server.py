"""A real local identity provider's metadata and key set, whose answers a test can switch."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OIDC = "/.well-known/openid-configuration"
RFC8414 = "/.well-known/oauth-authorization-server"


class DiscoveryServer:
    """Serves metadata documents and a JWKS at ``/jwks.json`` on 127.0.0.1 from a thread.

    ``documents`` maps a path to ``(status, body)``; any other path is 404. ``delay``
    holds every answer back that many seconds; ``hits`` counts requests per path.
    """

    def __init__(self) -> None:
        """Start serving on a free port."""
        self.documents: dict[str, tuple[int, bytes]] = {}
        self.jwks: dict[str, Any] = {"keys": []}
        self.jwks_status = 200
        self.delay = 0.0
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self._running = True

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def jwks_uri(self) -> str:
        """The key set's URL."""
        return f"{self.origin}/jwks.json"

    def publish(self, path: str, document: dict[str, Any] | bytes, status: int = 200) -> None:
        """Answer ``path`` with ``document`` (JSON-encoded unless bytes) and ``status``."""
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (status, body)

    def metadata(self, issuer: str, **members: Any) -> dict[str, Any]:
        """A metadata document for ``issuer`` naming this server's key set."""
        return {
            "issuer": issuer,
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": ["RS256"],
            **members,
        }

    def count(self, path: str) -> int:
        """Requests received for ``path``."""
        with self._lock:
            return self.hits.get(path, 0)

    def stop(self) -> None:
        """Stop serving; connections are then refused."""
        if self._running:
            self._running = False
            self._released.set()
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def _answer(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1
        if self.delay:
            self._released.wait(self.delay)
        if path == "/jwks.json":
            return self.jwks_status, json.dumps(self.jwks).encode()
        return self.documents.get(path, (404, b'{"error": "not found"}'))


def _make_handler(server: DiscoveryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = server._answer(self.path)  # noqa: SLF001 - part of the server
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's
            """Keep test output quiet."""

    return Handler
