"""InvalidTokenMiddleware: the pure ASGI adapter (http and websocket).

Only translates ASGI for its :class:`~invalidtoken_mw.guard.Guard`, which decides.
``lifespan`` and unknown scope types pass straight through; per-request state lives in
locals. On success the claims are in ``scope["state"]["token_claims"]`` (Starlette's
``request.state.token_claims``). Failures raised by the application below (an
:class:`~invalidtoken_mw.AuthFailure` or a PyJWT ``InvalidTokenError``) are answered
like the guard's own, as long as the response has not started; a 401 from the
application without a challenge gets one. A CORS preflight is answered with a bare 204
and never reaches the application, unless ``preflight_passthrough`` is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from invalidtoken_mw.guard import (
    MAX_FORM_BYTES,
    STATE_KEY,
    AuthOutcome,
    Guard,
    Rejected,
    note_scope,
)

if TYPE_CHECKING:
    from invalidtoken_mw.settings import GuardSettings

__all__ = ["ASGIApp", "InvalidTokenMiddleware", "Message", "Receive", "Scope", "Send"]

# The ASGI 3 callable types (the same shapes as starlette.types, without importing it).
Scope = MutableMapping[str, Any]
"""An ASGI connection scope."""
Message = MutableMapping[str, Any]
"""An ASGI event message, received or sent."""
Receive = Callable[[], Awaitable[Message]]
"""The ASGI ``receive`` callable."""
Send = Callable[[Message], Awaitable[None]]
"""The ASGI ``send`` callable."""
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""

_WS_DENIAL = "websocket.http.response"
_POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1
# Messages that answer a websocket handshake: after one, the middleware cannot deny.
_WS_ANSWERS = frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"})
# The http scheme a websocket scope's scheme stands for (DPoP's htu is an http URI).
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}

# Header names the guard asks for on every request, as ASGI carries them.
_NAMES = {
    name: name.encode("latin-1")
    for name in ("authorization", "content-type", "origin", "dpop", "host")
}


class _Request:
    """The guard's view of an ASGI scope (:class:`~invalidtoken_mw.guard.AsyncRequestView`)."""

    __slots__ = ("method", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive  # replaced when the body had to be read for a form token
        self.method: str = scope.get("method", "GET")

    @property
    def path(self) -> str:
        """The path below the mount point, like WSGI's ``PATH_INFO``."""
        path: str = self.scope["path"]
        root: str = self.scope.get("root_path", "")
        return path[len(root) :] or "/" if root and path.startswith(root) else path

    def header(self, name: str) -> str | None:
        key = _NAMES.get(name) or name.encode("latin-1")
        for field, value in self.scope["headers"]:
            if field == key:
                return str(value.decode("latin-1"))
        return None

    def field_lines(self, name: str) -> list[str]:
        key = _NAMES.get(name) or name.encode("latin-1")
        # A loop, not a comprehension: called on every request, and a comprehension
        # costs a function object and a frame of its own (before Python 3.12).
        lines = []
        for field, value in self.scope["headers"]:
            if field == key:
                lines.append(value.decode("latin-1"))
        return lines

    def query_string(self) -> str:
        return str(self.scope.get("query_string", b"").decode("latin-1"))

    def full_path(self) -> str:
        return str(self.scope.get("path", ""))

    def peer(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    def target(self) -> tuple[str, str]:
        """The scheme and the path as sent (percent-encoded), for DPoP's ``htu``."""
        return request_target(self.scope)

    def note(self, outcome: AuthOutcome) -> None:
        if outcome.reason is None:
            # An acceptance, on every request: nothing to merge, one call fewer.
            self.scope.setdefault("state", {})[STATE_KEY] = outcome
        else:
            note_scope(self.scope, outcome)

    def route(self) -> str | None:
        """The route template, once a router has matched the request.

        Starlette and FastAPI put the matched route in ``scope["route"]`` (a failure the
        application raised, or a per-route middleware); Litestar names it in
        ``scope["path_template"]`` or by its ``route_handler``. Before routing: ``None``.
        """
        scope = self.scope
        template = scope.get("path_template")
        if isinstance(template, str):
            return template
        path = getattr(scope.get("route"), "path", None)
        if isinstance(path, str):
            return path
        paths = getattr(scope.get("route_handler"), "paths", None)
        if isinstance(paths, (set, frozenset)) and len(paths) == 1:
            (only,) = paths
            return only if isinstance(only, str) else None
        return None

    async def read_form(self) -> str | None:
        """Read the body (up to a limit); ``receive`` then replays it to the application."""
        if self.scope["type"] != "http":
            return None
        chunks: list[Message] = []
        size = 0
        more = True
        while more and size <= MAX_FORM_BYTES:
            message = await self.receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        receive = self.receive

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        self.receive = replay
        if size > MAX_FORM_BYTES:
            return None
        return b"".join(m.get("body", b"") for m in chunks).decode("latin-1")


class InvalidTokenMiddleware:
    """Authenticate bearer tokens for an ASGI application.

    ``app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm="orders")``:
    the keywords are the fields of :class:`~invalidtoken_mw.GuardSettings`; or pass
    ``settings=GuardSettings(...)``, or a ready ``guard=Guard(...)``.
    """

    def __init__(
        self,
        app: ASGIApp,
        /,
        *,
        guard: Guard | None = None,
        settings: GuardSettings | None = None,
        **options: Any,  # noqa: ANN401 - the GuardSettings fields
    ) -> None:
        """Hold ``app`` and the guard that decides its requests."""
        self.app = app
        self.guard = Guard.for_adapter(guard, settings, options)
        #: Whether a request's route makes its token optional (``None``: no such routes).
        #: Set by a framework helper that knows the routes (FastAPI's ``install``); the
        #: plain middleware leaves it ``None`` and pays one test for it.
        self.optional_route: Callable[[Scope], bool] | None = None

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (see :meth:`Guard.stats`)."""
        return self.guard.stats()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an http or websocket request, then call the application."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":  # noqa: PLR1714 - cheaper than a tuple test
            await self.app(scope, receive, send)
            return
        request = _Request(scope, receive)
        optional_route = self.optional_route
        if optional_route is None:
            outcome = await self.guard.authenticate_async(request)
        else:
            outcome = await self.guard.authenticate_async(request, optional=optional_route(scope))
        if isinstance(outcome, Rejected):
            await _deny(scope, send, outcome)
            return
        scope.setdefault("state", {})["token_claims"] = outcome.claims
        token, private = outcome.token, outcome.private
        started = False

        # A plain function handing back send's awaitable, not a coroutine of its own:
        # the caller awaits it all the same, and no extra frame runs per message.
        def watch(message: Message) -> Awaitable[None]:
            nonlocal started
            kind = message["type"]
            if kind == "http.response.start":
                started = True
                if message["status"] == 401 or private:  # noqa: PLR2004
                    message = self._finish(request, message, private=private)
            elif kind in _WS_ANSWERS:
                started = True
            return send(message)

        try:
            await self.app(scope, request.receive, watch)
        except Exception as exc:
            refused = None if started else self.guard.reject(exc, request, token=token)
            if refused is None:
                raise
            await _deny(scope, send, refused)

    def _finish(self, request: _Request, message: Message, *, private: bool) -> Message:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
        ]
        finished = self.guard.finish_headers(message["status"], headers, request, private=private)
        return {
            **message,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in finished],
        }


def request_target(scope: Scope) -> tuple[str, str]:
    """An ASGI scope's scheme (``ws`` read as ``http``) and raw path, without the query."""
    scheme = str(scope.get("scheme") or "http")
    scheme = _HTTP_SCHEMES.get(scheme, scheme)
    raw = scope.get("raw_path")
    if raw and type(raw) is bytes:
        return scheme, raw.decode("latin-1").partition("?")[0]
    return scheme, quote(str(scope.get("root_path", "")) + str(scope.get("path", "")))


async def _deny(scope: Scope, send: Send, refused: Rejected) -> None:
    """Send the guard's answer: http, a websocket denial response, or a close."""
    if scope["type"] == "http":
        prefix = "http.response"
    elif _WS_DENIAL in (scope.get("extensions") or {}):
        prefix = _WS_DENIAL
    else:
        reason = refused.failure.reason.value if refused.failure else ""
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION, "reason": reason})
        return
    answer = refused.answer
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    await send({"type": f"{prefix}.start", "status": answer.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": answer.body})
