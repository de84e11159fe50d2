"""Misbehaving Redis endpoints on loopback: a fake RESP server and a trickling proxy.

:func:`fake_resp_server` speaks just enough RESP to look like Redis to a client, but
answers chosen commands with the wrong reply type (an integer to ``MGET``, an error or
a bare integer to the connection handshake). :func:`trickle_proxy` forwards to a real
``redis-server`` and sends Redis's answers back one byte at a time, ``delay`` seconds
apart, as a congested or hostile network path would. Both run in daemon threads, bound
127.0.0.1 on a free port, and close every connection on exit.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 1024  # many clients connect at once; the default 5 drops SYNs

    def __init__(self, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.guard = threading.Lock()

    def track(self, sock: socket.socket) -> None:
        with self.guard:
            self.connections.add(sock)

    def close_all(self) -> None:
        self.stopping.set()
        with self.guard:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.connections.clear()


@contextlib.contextmanager
def _serving(handler: type[socketserver.BaseRequestHandler]) -> Iterator[_Server]:
    server = _Server(handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.close_all()
        server.server_close()
        thread.join(5)


def _read_command(stream: socketserver.StreamRequestHandler) -> list[bytes] | None:
    """One RESP command (an array of bulk strings, or an inline line); ``None`` at EOF."""
    line = stream.rfile.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        return line.split()
    items = []
    for _ in range(int(line[1:])):
        size = int(stream.rfile.readline()[1:])
        items.append(stream.rfile.read(size + 2)[:-2])
    return items


# What a healthy Redis 7 answers redis-py's connection handshake (RESP3 ``HELLO 3``).
_HANDSHAKE = {
    b"HELLO": b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n",
    b"PING": b"+PONG\r\n",
}


class _FakeRedisHandler(socketserver.StreamRequestHandler):
    replies: ClassVar[Mapping[bytes, bytes]] = {}

    def handle(self) -> None:
        assert isinstance(self.server, _Server)
        self.server.track(self.request)
        while (command := _read_command(self)) is not None:
            if not command:
                continue
            name = command[0].upper()
            if name == b"CLIENT" and len(command) > 1:
                name = b"CLIENT " + command[1].upper()
            reply = self.replies.get(name, _HANDSHAKE.get(name, b"+OK\r\n"))
            self.wfile.write(reply)
            self.wfile.flush()


@contextlib.contextmanager
def fake_resp_server(replies: Mapping[bytes, bytes]) -> Iterator[str]:
    """A RESP server answering each command name in ``replies`` with those raw bytes.

    Command names are upper case; ``CLIENT`` subcommands are keyed ``b"CLIENT SETINFO"``.
    The handshake (``HELLO``) is answered as Redis 7 does unless ``replies`` says
    otherwise; any other command is answered ``+OK``. Yields its ``redis://`` URL.
    """
    handler = type("Handler", (_FakeRedisHandler,), {"replies": dict(replies)})
    with _serving(handler) as server:
        yield f"redis://127.0.0.1:{server.server_address[1]}/0"


class TrickleProxy:
    """A running :func:`trickle_proxy`: its URL, and the delays a test may change.

    ``delay`` drips each answer one byte per ``delay`` seconds; ``latency`` holds
    each answer that long, then sends it whole (a distant Redis).
    """

    def __init__(self, upstream: tuple[str, int], delay: float) -> None:
        """Remember where to forward and how slowly; the URL is set once it listens."""
        self.upstream = upstream
        self.delay = delay
        self.latency = 0.0
        self.url = ""


class _TrickleHandler(socketserver.BaseRequestHandler):
    proxy: ClassVar[TrickleProxy]

    def handle(self) -> None:
        assert isinstance(self.server, _Server)
        server = self.server
        client: socket.socket = self.request
        try:
            backend = socket.create_connection(self.proxy.upstream, timeout=5)
        except OSError:
            return
        backend.settimeout(None)
        server.track(client)
        server.track(backend)
        forward = threading.Thread(target=_pump, args=(client, backend, server), daemon=True)
        forward.start()
        # Redis -> client, one byte at a time while a delay is set.
        while not server.stopping.is_set():
            try:
                data = backend.recv(4096)
            except OSError:
                break
            if not data:
                break
            if not _drip(client, data, self.proxy, server):
                return
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)


def _drip(client: socket.socket, data: bytes, proxy: TrickleProxy, server: _Server) -> bool:
    """Send ``data`` at once (no delay) or byte by byte; ``False`` once the link is gone."""
    try:
        if proxy.delay <= 0:
            if proxy.latency > 0 and server.stopping.wait(proxy.latency):
                return False
            client.sendall(data)
            return True
        for index in range(len(data)):
            if server.stopping.wait(proxy.delay):
                return False
            client.sendall(data[index : index + 1])
    except OSError:
        return False
    return True


def _pump(source: socket.socket, target: socket.socket, server: _Server) -> None:
    """Client -> Redis at full speed."""
    while not server.stopping.is_set():
        try:
            data = source.recv(4096)
            if not data:
                break
            target.sendall(data)
        except OSError:
            break
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def trickle_proxy(port: int, delay: float = 0.0) -> Iterator[TrickleProxy]:
    """A proxy to the Redis on ``port`` that drips its answers, one byte per ``delay`` s.

    Yields the running proxy; set its ``delay`` (``0``: full speed) at any time, and
    it applies from the next byte, on open connections and new ones (whose handshake
    is then slow too).
    """
    proxy = TrickleProxy(("127.0.0.1", port), delay)
    handler = type("Handler", (_TrickleHandler,), {"proxy": proxy})
    with _serving(handler) as server:
        proxy.url = f"redis://127.0.0.1:{server.server_address[1]}/0"
        yield proxy
