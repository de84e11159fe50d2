"""Refusals on the current OpenTelemetry span: attributes and one span event.

The library never starts a span. When a request is refused and the span current at that
moment is recording (the server span of ``opentelemetry-instrumentation-asgi`` or
``-wsgi``, a framework instrumentation, or one the application started), that span gets
the attributes of :data:`SPAN_ATTRIBUTES` and one event named :data:`SPAN_EVENT`.

There is nothing to switch on: an application that records traces has imported
``opentelemetry.trace`` and installed an SDK, and only then can a span be recording.
The library never imports OpenTelemetry itself (it only looks in ``sys.modules``), so
without it, without an SDK or with a sampled-out span, a refusal costs one dictionary
lookup, or that plus ``get_current_span()`` and ``is_recording()``; an accepted request
costs nothing. The token never reaches a span: only the reason, the RFC 6750 error code,
the status and, read untrusted from the claims, the client id.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from invalidtoken_mw._jose import JWS_SHAPE, decode_object
from invalidtoken_mw.claims import CLIENT_ID_CLAIMS, client_id

if TYPE_CHECKING:
    from invalidtoken_mw.reasons import AuthFailure

__all__ = ["CLIENT_ID_CLAIMS", "SPAN_ATTRIBUTES", "SPAN_EVENT", "annotate_current_span"]

SPAN_EVENT = "invalidtoken.auth_rejected"
"""The name of the one span event added per refusal (namespaced, as OpenTelemetry asks)."""

SPAN_ATTRIBUTES: dict[str, str] = {
    "invalidtoken.reason": "the reason of the refusal (a Reason value), always",
    "invalidtoken.status": "the HTTP status answered (int), always",
    "invalidtoken.error": "the RFC 6750 error code, when the answer has one",
    "invalidtoken.client_id": "the client the token names (untrusted), when it names one",
}
"""The attributes set on the current span (and on its event), with what they hold.

The event also carries ``error.type`` (the reason): the span itself does not, because
OpenTelemetry's HTTP conventions do not count a 4xx as a server span's failure, and
``error.type`` on a span marks it failed.
"""

_MAX_CLIENT_ID = 200
_MAX_TOKEN = 16384


def annotate_current_span(failure: AuthFailure, token: str | None) -> None:
    """Put ``failure`` on the current span, if one is recording; never start a span."""
    # A recording span needs an SDK, and an SDK imports opentelemetry.trace: if the
    # application has not imported it, nothing can be recording and nothing is imported.
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    reason = failure.reason
    attributes: dict[str, str | int] = {
        "invalidtoken.reason": reason.value,
        "invalidtoken.status": reason.status,
    }
    if reason.error:
        attributes["invalidtoken.error"] = reason.error
    client_id = _client_id(token) if token else None
    if client_id:
        attributes["invalidtoken.client_id"] = client_id
    span.set_attributes(attributes)
    span.add_event(SPAN_EVENT, {"error.type": reason.value, **attributes})


def _client_id(token: str) -> str | None:
    """The client the token names, read without trusting it; ``None`` if none or odd."""
    if len(token) > _MAX_TOKEN or not JWS_SHAPE.fullmatch(token):
        return None
    value = client_id(decode_object(token.split(".", 2)[1]) or {})
    if value is not None and value.isprintable() and value.strip():
        return value[:_MAX_CLIENT_ID]
    return None
