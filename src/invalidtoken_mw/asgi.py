"""InvalidTokenMiddleware: the pure ASGI adapter (http and websocket).

Only translates ASGI into :class:`~invalidtoken_mw.guard.Guard` calls. ``lifespan``
and unknown scope types pass straight through; per-request state lives in locals.
On success the claims are in ``scope["state"]["token_claims"]`` (Starlette's
``request.state.token_claims``). Failures raised by the application below (an
:class:`~invalidtoken_mw.AuthFailure` or a PyJWT ``InvalidTokenError``) are answered
like the middleware's own, as long as the response has not started; a 401 from the
application without a challenge gets one. A CORS preflight is answered here with a
bare 204 and never reaches the application, unless ``preflight_passthrough`` is on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from invalidtoken_mw.extract import TokenSource
from invalidtoken_mw.guard import (
    PREFLIGHT_STATUS,
    Guard,
    failure_from_exception,
    is_cors_preflight,
)
from invalidtoken_mw.log import RequestFacts
from invalidtoken_mw.reasons import AuthFailure
from invalidtoken_mw.render import RenderedFailure

__all__ = ["ASGIApp", "InvalidTokenMiddleware", "Message", "Receive", "Scope", "Send"]

# The ASGI 3 callable types (the same shapes as starlette.types, without importing it).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_MAX_FORM_BYTES = 1 << 20  # a form body larger than this is not searched for a token
_WS_DENIAL = "websocket.http.response"
_POLICY_VIOLATION = 1008  # RFC 6455 §7.4.1
# Messages that answer a websocket handshake: after one, the middleware cannot deny.
_WS_ANSWERS = frozenset({"websocket.accept", "websocket.close", "websocket.http.response.start"})
_PREFLIGHT_ANSWER = RenderedFailure(PREFLIGHT_STATUS, (), b"")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _field_lines(scope: Scope, name: bytes) -> list[str]:
    """Every value of header ``name``, in the order received."""
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


def _app_path(scope: Scope) -> str:
    """The path below the mount point, like WSGI's ``PATH_INFO`` (public paths match it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] or "/" if root and path.startswith(root) else path


def _is_preflight(scope: Scope) -> bool:
    """Whether an OPTIONS request is a CORS preflight (:func:`is_cors_preflight`)."""
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    query = scope.get("query_string", b"").decode("latin-1")
    return is_cors_preflight(scope["method"], headers, query)


async def _buffer_body(receive: Receive) -> tuple[bytes, Receive]:
    """Read the body (up to a limit) and return it with a ``receive`` that replays it."""
    chunks: list[Message] = []
    size = 0
    more = True
    while more and size <= _MAX_FORM_BYTES:
        message = await receive()
        chunks.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(m.get("body", b"") for m in chunks) if size <= _MAX_FORM_BYTES else b""

    async def replay() -> Message:
        return chunks.pop(0) if chunks else await receive()

    return body, replay


class InvalidTokenMiddleware(Guard[ASGIApp]):
    """Authenticate bearer tokens for an ASGI application; see :class:`Guard` for options.

    ``app.add_middleware(InvalidTokenMiddleware, verifier=verifier, realm="orders")``
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate an http or websocket request, then call the application."""
        kind = scope["type"]
        if kind != "http" and kind != "websocket":  # noqa: PLR1714 - cheaper than a tuple test
            await self.app(scope, receive, send)
            return
        public = self.has_public_paths and self.is_public(_app_path(scope))
        if not public and scope.get("method") == "OPTIONS" and _is_preflight(scope):
            if not self.preflight_passthrough:
                # Nothing protected may run without a token: a CORS layer outside this
                # middleware has already answered, or the browser gets no CORS headers.
                await _send_answer(send, _PREFLIGHT_ANSWER, "http.response")
                return
            public = True  # for the CORS layer inside the application
        if public:
            # Public: no token needed, but the app may still refuse (FastAPI's
            # TokenClaims on a public route, a bare 401), and that is answered as usual.
            scope.setdefault("state", {})["token_claims"] = None
            await self._call_app(scope, receive, send, None, private=False)
            return
        claims, token, private, receive, refused = await self._authenticate(scope, receive)
        if refused is not None:
            await self._deny(scope, send, refused, token)
            return
        scope.setdefault("state", {})["token_claims"] = claims
        self._count_accepted(scope, token)
        await self._call_app(scope, receive, send, token, private=private)

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, token: str | None, *, private: bool
    ) -> None:
        """Call the application; answer failures it raises before its response starts.

        For http, a 401 without a challenge gets one and a query-token response gets
        ``Cache-Control: private``; for websocket, a failure raised before the handshake
        is answered is denied like the middleware's own.
        """
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            kind = message["type"]
            if kind == "http.response.start":
                started = True
                if message["status"] == 401 or private:  # noqa: PLR2004
                    message = self._patch_start(scope, message, private=private)
            elif kind in _WS_ANSWERS:
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            raised = failure_from_exception(exc)
            if raised is None or started:
                raise
            await self._deny(scope, send, raised, token)

    def _count_accepted(self, scope: Scope, token: str | None) -> None:
        if self.events.log_accepted:
            self.events.accepted(self._facts(scope), token)
        else:
            self.events.count_accepted()

    async def _authenticate(
        self, scope: Scope, receive: Receive
    ) -> tuple[dict[str, Any] | None, str | None, bool, Receive, AuthFailure | None]:
        """Find and verify the token: ``(claims, token, private, receive, failure)``.

        ``receive`` is replaced when the body had to be read for a form token;
        ``private`` is true for a query-string token (RFC 6750 §2.3).
        """
        extractor = self.extractor
        authorization = [v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"]
        token: str | None = None
        try:
            body = None
            if (
                extractor.allow_body
                and scope["type"] == "http"
                and extractor.wants_body(scope["method"], _header(scope, b"content-type"))
            ):
                raw, receive = await _buffer_body(receive)
                body = raw.decode("latin-1")
            query = (
                scope.get("query_string", b"").decode("latin-1") if extractor.allow_query else ""
            )
            found = self.extract(authorization, query, body)
            if found is None:
                return None, None, False, receive, None
            token = found.token
            claims = await self.verifier.verify_async(token)
            if self.scopes:
                self.authorize(claims)
        except AuthFailure as failure:
            return None, token, False, receive, failure
        return claims, token, found.source is TokenSource.QUERY, receive, None

    def _patch_start(self, scope: Scope, message: Message, *, private: bool) -> Message:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
        ]
        patched = self.patch_app_headers(
            message["status"], headers, cors=_header(scope, b"origin") is not None, private=private
        )
        return {
            **message,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in patched],
        }

    def _facts(self, scope: Scope) -> RequestFacts:
        client: Any = scope.get("client")
        rid = self.request_id_header
        forwarded = self.client_ip_header
        return RequestFacts(
            method=scope.get("method", "GET"),
            path=scope.get("path", ""),
            client_ip=self.client_ip(
                client[0] if client else None,
                _field_lines(scope, forwarded.encode("latin-1")) if forwarded else None,
            ),
            user_agent=_header(scope, b"user-agent"),
            request_id=_header(scope, rid.encode("latin-1")) if rid else None,
        )

    async def _deny(
        self, scope: Scope, send: Send, failure: AuthFailure, token: str | None
    ) -> None:
        answer = self.reject(
            failure,
            self._facts(scope),
            token=token,
            accept=_header(scope, b"accept"),
            origin=_header(scope, b"origin"),
        )
        if scope["type"] == "http":
            await _send_answer(send, answer, "http.response")
        elif _WS_DENIAL in (scope.get("extensions") or {}):
            await _send_answer(send, answer, _WS_DENIAL)
        else:
            await send(
                {
                    "type": "websocket.close",
                    "code": _POLICY_VIOLATION,
                    "reason": failure.reason.value,
                }
            )


async def _send_answer(send: Send, answer: RenderedFailure, prefix: str) -> None:
    await send(
        {
            "type": f"{prefix}.start",
            "status": answer.status,
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers],
        }
    )
    await send({"type": f"{prefix}.body", "body": answer.body})
