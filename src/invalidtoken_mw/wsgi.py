"""InvalidTokenWSGIMiddleware: the WSGI adapter (PEP 3333).

Only translates WSGI for its :class:`~invalidtoken_mw.guard.Guard`, so it sends the
same status, headers and body bytes as the ASGI middleware for the same failure. On
success the claims are in ``environ["invalidtoken_mw.claims"]``. Per-request state
lives in locals, so one instance serves a threaded server safely. A CORS preflight is
answered with a bare 204 and never reaches the application, unless
``preflight_passthrough`` is on.
"""

from __future__ import annotations

import functools
import io
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from invalidtoken_mw.guard import (
    ENVIRON_CLIENT_ID,
    ENVIRON_SUB,
    MAX_FORM_BYTES,
    AuthOutcome,
    Guard,
    Rejected,
    note_environ,
)

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from invalidtoken_mw.settings import GuardSettings

__all__ = ["CLAIMS_KEY", "InvalidTokenWSGIMiddleware"]

CLAIMS_KEY = "invalidtoken_mw.claims"
"""The WSGI environ key holding a verified request's claims (``None`` when anonymous)."""
# PEP 3333's application signature; _typeshed's is not importable at run time.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@functools.lru_cache(maxsize=64)  # names come from the code and the settings only
def _environ_key(name: str) -> str:
    key = name.upper().replace("-", "_")
    return key if key in {"CONTENT_TYPE", "CONTENT_LENGTH"} else "HTTP_" + key


# The environ keys of the headers the guard asks for on every request.
_KEYS = {name: _environ_key(name) for name in ("authorization", "content-type", "origin")}


class _Request:
    """The guard's view of a WSGI environ (:class:`~invalidtoken_mw.guard.RequestView`)."""

    __slots__ = ("environ", "method")

    def __init__(self, environ: WSGIEnvironment) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "GET")

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", ""))

    def header(self, name: str) -> str | None:
        value = self.environ.get(_KEYS.get(name) or _environ_key(name))
        return None if value is None else str(value)

    def field_lines(self, name: str) -> list[str]:
        # The server has joined repeated header lines into one value (PEP 3333, CGI).
        value = self.environ.get(_KEYS.get(name) or _environ_key(name))
        return [] if value is None else [value]

    def query_string(self) -> str:
        return str(self.environ.get("QUERY_STRING", ""))

    def full_path(self) -> str:
        # PEP 3333 strings carry the raw bytes as latin-1; the path is UTF-8, as ASGI
        # servers and Werkzeug decode it.
        raw = self.environ.get("SCRIPT_NAME", "") + self.environ.get("PATH_INFO", "")
        return str(raw.encode("latin-1", "replace").decode("utf-8", "replace"))

    def peer(self) -> str | None:
        return self.environ.get("REMOTE_ADDR")

    def target(self) -> tuple[str, str]:
        """The scheme and the path as sent (percent-encoded), for DPoP's ``htu``."""
        return request_target(self.environ)

    def note(self, outcome: AuthOutcome) -> None:
        if outcome.reason is None:
            # An acceptance, on every request: the two keys set here, one call fewer.
            _, _, sub, client_id = outcome
            if sub is not None:
                self.environ[ENVIRON_SUB] = sub
            if client_id is not None:
                self.environ[ENVIRON_CLIENT_ID] = client_id
        else:
            note_environ(self.environ, outcome)

    def read_form(self) -> str | None:
        """Read a form body for the token and put an equivalent stream back."""
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length <= 0 or length > MAX_FORM_BYTES:
            return None
        raw = self.environ["wsgi.input"].read(length)
        self.environ["wsgi.input"] = io.BytesIO(raw)
        return str(raw.decode("latin-1"))


class InvalidTokenWSGIMiddleware:
    """Authenticate bearer tokens for a WSGI application.

    ``app.wsgi_app = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=verifier)``: the
    keywords are the fields of :class:`~invalidtoken_mw.GuardSettings`; or pass
    ``settings=GuardSettings(...)``, or a ready ``guard=Guard(...)``.
    """

    def __init__(
        self,
        app: WSGIApp,
        /,
        *,
        guard: Guard | None = None,
        settings: GuardSettings | None = None,
        **options: Any,  # noqa: ANN401 - the GuardSettings fields
    ) -> None:
        """Hold ``app`` and the guard that decides its requests."""
        self.app = app
        self.guard = Guard.for_adapter(guard, settings, options)

    def stats(self) -> dict[str, int]:
        """Rejections by reason, and ``accepted``, since start-up (see :meth:`Guard.stats`)."""
        return self.guard.stats()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate the request, then call the application."""
        request = _Request(environ)
        guard = self.guard
        outcome = guard.authenticate(request)
        if isinstance(outcome, Rejected):
            return _send(start_response, outcome, None)
        environ[CLAIMS_KEY] = outcome.claims
        private = outcome.private
        started = False

        def watch(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> object:
            nonlocal started
            started = True
            if status.startswith("401") or private:
                headers = guard.finish_headers(int(status[:3]), headers, request, private=private)
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, watch)
        except Exception as exc:
            refused = guard.reject(exc, request, token=outcome.token)
            if refused is None:
                raise
            # start_response may be called again, with exc_info, until the body starts.
            return _send(start_response, refused, sys.exc_info() if started else None)


def request_target(environ: WSGIEnvironment) -> tuple[str, str]:
    """A WSGI environ's scheme and the path as sent, without the query.

    The request line's own target (``REQUEST_URI``, ``RAW_URI``) when the server gives
    it; otherwise the decoded ``SCRIPT_NAME`` and ``PATH_INFO``, encoded again.
    """
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        return scheme, raw.split("?", 1)[0]
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return scheme, quote(path.encode("latin-1", "replace"))


def _send(
    start_response: StartResponse, refused: Rejected, exc_info: OptExcInfo | None
) -> list[bytes]:
    answer = refused.answer
    start_response(
        f"{answer.status} {HTTPStatus(answer.status).phrase}", list(answer.headers), exc_info
    )
    return [answer.body]
