"""InvalidTokenWSGIMiddleware: the WSGI adapter (PEP 3333).

Only translates WSGI into :class:`~invalidtoken_mw.guard.Guard` calls, so it sends
the same status, headers and body bytes as the ASGI middleware for the same failure.
On success the claims are in ``environ["invalidtoken_mw.claims"]``. Per-request state
lives in locals, so one instance serves a threaded server safely. A CORS preflight is
answered here with a bare 204 and never reaches the application, unless
``preflight_passthrough`` is on.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from invalidtoken_mw.extract import TokenSource
from invalidtoken_mw.guard import (
    PREFLIGHT_STATUS,
    Guard,
    failure_from_exception,
    is_cors_preflight,
)
from invalidtoken_mw.log import RequestFacts
from invalidtoken_mw.reasons import AuthFailure

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["CLAIMS_KEY", "InvalidTokenWSGIMiddleware"]

CLAIMS_KEY = "invalidtoken_mw.claims"
# PEP 3333's application signature; _typeshed's is not importable at run time.
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_MAX_FORM_BYTES = 1 << 20


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _is_preflight(environ: WSGIEnvironment) -> bool:
    """Whether an OPTIONS request is a CORS preflight (:func:`is_cors_preflight`)."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    headers["content-length"] = environ.get("CONTENT_LENGTH") or "0"
    return is_cors_preflight("OPTIONS", headers, environ.get("QUERY_STRING", ""))


def _read_form(environ: WSGIEnvironment) -> str | None:
    """Read a form body for the token and put an equivalent stream back."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length <= 0 or length > _MAX_FORM_BYTES:
        return None
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    return str(raw.decode("latin-1"))


class InvalidTokenWSGIMiddleware(Guard[WSGIApp]):
    """Authenticate bearer tokens for a WSGI application; see :class:`Guard` for options.

    ``app.wsgi_app = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=verifier)``
    """

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Authenticate the request, then call the application."""
        method = environ.get("REQUEST_METHOD", "GET")
        public = self.has_public_paths and self.is_public(environ.get("PATH_INFO", ""))
        if not public and method == "OPTIONS" and _is_preflight(environ):
            if not self.preflight_passthrough:
                # Nothing protected may run without a token: a CORS layer outside this
                # middleware has already answered, or the browser gets no CORS headers.
                start_response(_status_line(PREFLIGHT_STATUS), [])
                return []
            public = True  # for the CORS layer inside the application
        if public:
            environ[CLAIMS_KEY] = None
            # A public route may still raise AuthFailure or answer 401: handled as elsewhere.
            return self._call_app(environ, start_response, None, private=False)
        header = environ.get("HTTP_AUTHORIZATION")
        token: str | None = None
        source: TokenSource | None = None
        try:
            body = None
            if self.extractor.allow_body and self.extractor.wants_body(
                method, environ.get("CONTENT_TYPE")
            ):
                body = _read_form(environ)
            found = self.extract(
                [] if header is None else [header], environ.get("QUERY_STRING", ""), body
            )
            claims = None
            if found is not None:
                token, source = found.token, found.source
                claims = self.authorize(self.verifier.verify(token))
        except AuthFailure as failure:
            return self._deny(environ, start_response, failure, token, None)
        environ[CLAIMS_KEY] = claims
        if self.events.log_accepted:
            self.events.accepted(self._facts(environ), token)
        else:
            self.events.count_accepted()
        return self._call_app(environ, start_response, token, private=source is TokenSource.QUERY)

    def _call_app(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        token: str | None,
        *,
        private: bool,
    ) -> Iterable[bytes]:
        started = False

        def watch(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> object:
            nonlocal started
            started = True
            if status.startswith("401") or private:
                headers = self.patch_app_headers(
                    int(status[:3]), headers, cors="HTTP_ORIGIN" in environ, private=private
                )
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, watch)
        except Exception as exc:
            failure = failure_from_exception(exc)
            if failure is None:
                raise
            # start_response may be called again, with exc_info, until the body starts.
            return self._deny(
                environ, start_response, failure, token, sys.exc_info() if started else None
            )

    def _facts(self, environ: WSGIEnvironment) -> RequestFacts:
        def header(name: str | None) -> str | None:
            return environ.get("HTTP_" + name.upper().replace("-", "_")) if name else None

        # The server has joined repeated header lines into one value (PEP 3333, CGI).
        return RequestFacts(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
            client_ip=self.client_ip(environ.get("REMOTE_ADDR"), header(self.client_ip_header)),
            user_agent=environ.get("HTTP_USER_AGENT"),
            request_id=header(self.request_id_header),
        )

    def _deny(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        failure: AuthFailure,
        token: str | None,
        exc_info: OptExcInfo | None,
    ) -> Iterable[bytes]:
        answer = self.reject(
            failure,
            self._facts(environ),
            token=token,
            accept=environ.get("HTTP_ACCEPT"),
            origin=environ.get("HTTP_ORIGIN"),
        )
        start_response(_status_line(answer.status), list(answer.headers), exc_info)
        return [answer.body]
