"""Refusals on the current OpenTelemetry span, through real servers and real instrumentation.

uvicorn serves a Starlette app wrapped by ``opentelemetry-instrumentation-asgi``; waitress
serves a Flask app wrapped by ``opentelemetry-instrumentation-wsgi``. Both record into an
SDK ``TracerProvider`` (given to the instrumentation, not installed globally) with an
``InMemorySpanExporter``: each request must give exactly the one server span the
instrumentation makes, and a refused one must carry our attributes and one event.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiTracing
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as WsgiTracing
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from invalidtoken_mw import AuthEventLog, AuthFailure, EventRateLimiter, Reason, RequestFacts
from invalidtoken_mw.tracing import SPAN_EVENT
from support.servers import (
    MAIN_OPTIONS,
    REQUIRED_SCOPE,
    client,
    make_flask_app,
    make_starlette_app,
    run_uvicorn,
    run_waitress,
)
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from opentelemetry.sdk.trace import ReadableSpan

CLIENT = "orders-batch-client"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """An in-memory exporter behind a fresh SDK provider (see :func:`provider`)."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """An SDK tracer provider exporting every span at once to ``exporter``."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


def _asgi(provider: TracerProvider) -> AbstractContextManager[str]:
    # Without the per-message "send"/"receive" spans, one request is one server span.
    app = AsgiTracing(
        make_starlette_app(**MAIN_OPTIONS),
        tracer_provider=provider,
        exclude_spans=["receive", "send"],
    )
    return run_uvicorn(app)


def _wsgi(provider: TracerProvider) -> AbstractContextManager[str]:
    app = make_flask_app(**MAIN_OPTIONS)
    app.wsgi_app = WsgiTracing(app.wsgi_app, tracer_provider=provider)  # type: ignore[method-assign]
    return run_waitress(app)


SERVERS: dict[str, Callable[[TracerProvider], AbstractContextManager[str]]] = {
    "uvicorn+asgi": _asgi,
    "waitress+wsgi": _wsgi,
}


def _one_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    # The server span ends after the response is sent: wait for it briefly.
    deadline = time.monotonic() + 5
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    spans = exporter.get_finished_spans()
    exporter.clear()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ours(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k.startswith("invalidtoken.")}


@pytest.mark.parametrize("server", SERVERS)
def test_the_server_span_of_a_refusal_carries_the_reason_and_one_event(
    server: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Refused requests annotate the instrumentation's span; accepted ones leave it alone."""
    expired = mint(payload=claims(azp=CLIENT, exp=int(time.time()) - 60))
    unscoped = mint(payload=claims(client_id=CLIENT, scope="orders:read"))
    scoped = mint(payload=claims(azp=CLIENT, scope=REQUIRED_SCOPE))
    with SERVERS[server](provider) as base_url, client(base_url) as http:
        assert http.get("/orders").status_code == 401
        missing = _one_span(exporter)
        assert http.get("/orders", headers=_bearer(expired)).status_code == 401
        refused = _one_span(exporter)
        assert http.get("/orders", headers=_bearer(unscoped)).status_code == 403
        forbidden = _one_span(exporter)
        assert http.get("/orders", headers=_bearer(scoped)).status_code == 200
        accepted = _one_span(exporter)
        assert http.get("/health").status_code == 200
        public = _one_span(exporter)

    assert {"invalidtoken.reason": "missing_token", "invalidtoken.status": 401} == _ours(missing)
    assert {
        "invalidtoken.reason": "expired",
        "invalidtoken.status": 401,
        "invalidtoken.error": "invalid_token",
        "invalidtoken.client_id": CLIENT,
    } == _ours(refused)
    assert {
        "invalidtoken.reason": "insufficient_scope",
        "invalidtoken.status": 403,
        "invalidtoken.error": "insufficient_scope",
        "invalidtoken.client_id": CLIENT,
    } == _ours(forbidden)
    [event] = refused.events
    assert (SPAN_EVENT, {"error.type": "expired", **_ours(refused)}) == (
        event.name,
        dict(event.attributes or {}),
    )
    assert [SPAN_EVENT] == [event.name for event in missing.events]
    assert [SPAN_EVENT] == [event.name for event in forbidden.events]
    # The instrumentation's own verdict on the span stays its own: no error.type from us.
    assert "error.type" not in (refused.attributes or {})
    for span in (accepted, public):
        assert ((), {}) == (span.events, _ours(span))
    everything = json.dumps([span.to_json() for span in (missing, refused, forbidden, accepted)])
    for token in (expired, unscoped, scoped):
        assert token.split(".")[1][:16] not in everything


def test_a_refusal_the_log_suppresses_still_reaches_the_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The flood limit governs the log only: every sampled refusal is on its span."""
    events = AuthEventLog(rate_limit=EventRateLimiter(1, 0.001))
    tracer = provider.get_tracer("test")
    for _ in range(3):
        with tracer.start_as_current_span("GET /orders"):
            events.rejected(AuthFailure(Reason.EXPIRED), RequestFacts("GET", "/orders"), None)
    spans = exporter.get_finished_spans()
    assert [[SPAN_EVENT]] * 3 == [[event.name for event in span.events] for span in spans]


def test_a_span_that_is_not_recording_is_left_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """No span of our own is started, and a non-recording current span gets nothing."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF  # noqa: PLC0415

    events = AuthEventLog()
    events.rejected(AuthFailure(Reason.EXPIRED), RequestFacts("GET", "/orders"), None)
    sampled_out = TracerProvider(sampler=ALWAYS_OFF)
    sampled_out.add_span_processor(SimpleSpanProcessor(exporter))
    with sampled_out.get_tracer("test").start_as_current_span("GET /orders") as span:
        events.rejected(AuthFailure(Reason.EXPIRED), RequestFacts("GET", "/orders"), None)
        assert not span.is_recording()
    assert () == exporter.get_finished_spans()
    assert provider is not None


def test_the_library_never_imports_opentelemetry_itself() -> None:
    """Refusing a request in a process that never imported OpenTelemetry imports none."""
    code = (
        "import sys\n"
        "from invalidtoken_mw import AuthEventLog, AuthFailure, Reason, RequestFacts\n"
        "AuthEventLog().rejected(AuthFailure(Reason.EXPIRED), RequestFacts('GET', '/'), 'a.b.c')\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.rstrip().endswith("[]"), result.stdout


@pytest.fixture(autouse=True)
def _no_global_provider() -> Iterator[None]:
    """These tests hand the provider to the instrumentation: nothing global is installed."""
    from opentelemetry import trace  # noqa: PLC0415

    before = trace.get_tracer_provider()
    yield
    assert trace.get_tracer_provider() is before
