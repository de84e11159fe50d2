"""Rejection counters (Prometheus, OpenTelemetry), stats() and the auth_accepted event.

Counters are checked on private registries and an SDK meter provider with an in-memory
reader; the Prometheus exposition is also scraped from the ``/metrics`` route of a
Starlette app served by uvicorn.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import prometheus_client
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthEventLog,
    AuthFailure,
    EventRateLimiter,
    InvalidTokenMiddleware,
    OpenTelemetryMetrics,
    PrometheusMetrics,
    Reason,
    RequestFacts,
)
from support.rejections import (
    FINGERPRINT_KEY,
    PEER,
    REQUEST_ID,
    REQUIRED_SCOPE,
    USER_AGENT,
    asgi_middleware,
    call_asgi,
    call_wsgi,
    doc_token,
    rejections,
    scripted_verifier,
    wsgi_middleware,
)
from support.servers import run_uvicorn

if TYPE_CHECKING:
    from collections.abc import Iterator

    from starlette.requests import Request

FACTS = RequestFacts("GET", "/orders", "203.0.113.7")
COUNTER = "invalidtoken_rejections_total"


def prometheus_value(registry: prometheus_client.CollectorRegistry, reason: Reason) -> float:
    """The counter's value for ``reason`` (0.0 when it never counted it)."""
    labels = {"reason": reason.value, "status": str(reason.status)}
    return registry.get_sample_value(COUNTER, labels) or 0.0


# -- Prometheus ------------------------------------------------------------------------


def test_prometheus_counts_by_reason_and_status() -> None:
    """Each rejection increments invalidtoken_rejections_total{reason, status} once."""
    registry = prometheus_client.CollectorRegistry()
    log = AuthEventLog(metrics=[PrometheusMetrics(registry)])
    with capture_logs():
        for reason in [Reason.EXPIRED, Reason.EXPIRED, Reason.KEY_UNAVAILABLE]:
            log.rejected(AuthFailure(reason), FACTS, None)
    assert (2.0, 1.0, 0.0) == (
        prometheus_value(registry, Reason.EXPIRED),
        prometheus_value(registry, Reason.KEY_UNAVAILABLE),
        prometheus_value(registry, Reason.REVOKED),
    )
    assert 1.0 == registry.get_sample_value(COUNTER, {"reason": "key_unavailable", "status": "503"})


def test_prometheus_counts_rejections_whose_log_event_was_suppressed() -> None:
    """Metrics count every rejection, including those the flood limit kept out of the log."""
    registry = prometheus_client.CollectorRegistry()
    limiter = EventRateLimiter(1, 1.0, clock=lambda: 0.0)
    log = AuthEventLog(rate_limit=limiter, metrics=[PrometheusMetrics(registry)])
    with capture_logs() as events:
        for _ in range(7):
            log.rejected(AuthFailure(Reason.REVOKED), FACTS, None)
    assert (1, 7.0) == (len(events), prometheus_value(registry, Reason.REVOKED))


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_prometheus_counts_every_reason_through_the_middleware(adapter: str) -> None:
    """Through either middleware, one request per reason counts one per reason and status."""
    registry = prometheus_client.CollectorRegistry()
    cases = rejections()
    requests = [("/orders", case.headers()) for case in cases]
    with capture_logs():
        if adapter == "asgi":
            call_asgi(asgi_middleware(cases, metrics=[PrometheusMetrics(registry)]), requests)
        else:
            call_wsgi(wsgi_middleware(cases, metrics=[PrometheusMetrics(registry)]), requests)
    assert dict.fromkeys(Reason, 1.0) == {r: prometheus_value(registry, r) for r in Reason}


def test_metrics_are_off_unless_enabled() -> None:
    """A middleware without metrics=[...] touches no Prometheus counter."""
    cases = rejections()
    labels = {"reason": "expired", "status": "401"}
    before = prometheus_client.REGISTRY.get_sample_value(COUNTER, labels)
    with capture_logs():
        call_asgi(asgi_middleware(cases), [("/orders", case.headers()) for case in cases])
    assert before == prometheus_client.REGISTRY.get_sample_value(COUNTER, labels)


def test_metrics_entry_without_record_is_refused() -> None:
    """An entry of metrics without a record() method fails at construction."""
    with pytest.raises(TypeError, match=r"record\(reason\)"):
        AuthEventLog(metrics=[object()])  # type: ignore[list-item]


def test_prometheus_metrics_needs_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus_client, PrometheusMetrics says which extra to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"invalidtoken-mw\[prometheus\]"):
        PrometheusMetrics()


# -- OpenTelemetry ---------------------------------------------------------------------


@pytest.fixture
def otel_reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    """An SDK meter provider whose metrics are read in memory; shut down afterwards."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        yield reader, provider
    finally:
        provider.shutdown()


def otel_points(reader: InMemoryMetricReader) -> dict[tuple[str, int], float]:
    """The invalidtoken.rejections sums, keyed by their (reason, status) attributes."""
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[tuple[str, int], float] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != "invalidtoken.rejections":
                    continue
                assert "{request}" == metric.unit
                assert isinstance(metric.data, Sum)
                assert metric.data.is_monotonic
                for point in metric.data.data_points:
                    attributes: dict[str, Any] = dict(point.attributes or {})
                    key = (
                        attributes.pop("error.type"),
                        attributes.pop("http.response.status_code"),
                    )
                    assert {} == attributes
                    points[key] = point.value
    return points


def test_opentelemetry_counts_by_reason_and_status(
    otel_reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    """The OpenTelemetry counter records each rejection with reason and status attributes."""
    reader, provider = otel_reader
    log = AuthEventLog(metrics=[OpenTelemetryMetrics(provider.get_meter("test"))])
    with capture_logs():
        for reason in [Reason.EXPIRED, Reason.EXPIRED, Reason.REVOCATION_UNAVAILABLE]:
            log.rejected(AuthFailure(reason), FACTS, None)
    zero = {(r.value, r.status): 0 for r in Reason}
    assert {**zero, ("expired", 401): 2, ("revocation_unavailable", 503): 1} == otel_points(reader)


def test_opentelemetry_and_prometheus_together_through_the_middleware(
    otel_reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    """Both counters, given together to the middleware, count every rejection."""
    reader, provider = otel_reader
    registry = prometheus_client.CollectorRegistry()
    cases = rejections()
    metrics = [PrometheusMetrics(registry), OpenTelemetryMetrics(provider.get_meter("test"))]
    with capture_logs():
        call_asgi(
            asgi_middleware(cases, metrics=metrics),
            [("/orders", case.headers()) for case in cases],
        )
    assert {(r.value, r.status): 1 for r in Reason} == otel_points(reader)
    assert dict.fromkeys(Reason, 1.0) == {r: prometheus_value(registry, r) for r in Reason}


def test_opentelemetry_without_sdk_is_a_no_op() -> None:
    """With only the API installed and no provider set, recording silently does nothing."""
    OpenTelemetryMetrics().record(Reason.EXPIRED)


def test_opentelemetry_metrics_needs_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-api, OpenTelemetryMetrics says which extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"invalidtoken-mw\[otel\]"):
        OpenTelemetryMetrics()


# -- stats() and auth_accepted ---------------------------------------------------------


def iso(epoch: int) -> str:
    """An epoch time as the events write it beside the number."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_token() -> str:
    """A token the scripted verifiers accept, carrying the required scope."""
    return doc_token(Reason.REVOKED, int(time.time()), scope=REQUIRED_SCOPE)


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_stats_counts_rejections_by_reason_and_acceptances(adapter: str) -> None:
    """stats() counts rejections by reason and accepted requests, not public paths."""
    cases = {c.reason: c for c in rejections()}
    token = valid_token()
    expired, missing = cases[Reason.EXPIRED], cases[Reason.MISSING_TOKEN]
    good = ("/orders", [("authorization", f"Bearer {token}")])
    requests = [("/orders", expired.headers())] * 2 + [("/orders", missing.headers())]
    requests += [good] * 3 + [("/health", [])]
    options: dict[str, Any] = {"exclude_paths": ["/health"]}
    app: InvalidTokenMiddleware | Any
    with capture_logs():
        if adapter == "asgi":
            app = asgi_middleware([expired], valid=[token], **options)
            call_asgi(app, requests)
        else:
            app = wsgi_middleware([expired], valid=[token], **options)
            call_wsgi(app, requests)
    assert {"expired": 2, "missing_token": 1, "accepted": 3} == app.stats()


def test_stats_is_a_snapshot() -> None:
    """Changing the dict stats() returned does not change the counts."""
    log = AuthEventLog()
    with capture_logs():
        log.rejected(AuthFailure(Reason.EXPIRED), FACTS, None)
    snapshot = log.stats()
    snapshot["expired"] = 99
    log.count_accepted()
    assert {"expired": 1, "accepted": 1} == log.stats()


@pytest.mark.parametrize("log_accepted", [True, False])
@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_auth_accepted_debug_event_only_when_enabled(adapter: str, log_accepted: bool) -> None:  # noqa: FBT001
    """log_accepted=True logs one auth_accepted debug event per accepted request; else nothing."""
    token = valid_token()
    headers = [
        ("authorization", f"Bearer {token}"),
        ("user-agent", USER_AGENT),
        ("x-request-id", REQUEST_ID),
    ]
    with capture_logs() as events:
        if adapter == "asgi":
            app: Any = asgi_middleware([], valid=[token], log_accepted=log_accepted)
            [response] = call_asgi(app, [("/orders", headers)])
            status = response.status_code
        else:
            app = wsgi_middleware([], valid=[token], log_accepted=log_accepted)
            [status] = call_wsgi(app, [("/orders", headers)])
    assert 200 == status
    expected = {
        "event": "auth_accepted",
        "log_level": "debug",
        "method": "GET",
        "path": "/orders",
        "client_ip": PEER[0],
        "user_agent": USER_AGENT,
        "request_id": REQUEST_ID,
        "token_fingerprint": AuthEventLog(fingerprint_key=FINGERPRINT_KEY).fingerprint(token),
    }
    # The audit trail: the verified claims of the default log_claims, times also in ISO.
    claims_ = jwt.decode(token, options={"verify_signature": False})
    expected.update({k: claims_[k] for k in ("iss", "sub", "aud", "jti", "exp", "iat")})
    expected["scopes"] = claims_["scope"].split()
    expected.update({f"{k}_at": iso(claims_[k]) for k in ("exp", "iat")})
    assert ([expected] if log_accepted else []) == events
    assert {"accepted": 1} == app.stats()


def test_auth_accepted_for_an_anonymous_request_has_no_fingerprint() -> None:
    """With optional=True an anonymous request's auth_accepted event carries no fingerprint."""
    app = asgi_middleware([], optional=True, log_accepted=True)
    with capture_logs() as events:
        call_asgi(app, [("/orders", [])])
    [event] = events
    assert "auth_accepted" == event["event"]
    assert "token_fingerprint" not in event


# -- a real /metrics endpoint ----------------------------------------------------------


def test_metrics_endpoint_of_a_running_app_is_scraped() -> None:
    """A uvicorn-served Starlette app exposes the counters on /metrics, matching the log."""
    registry = prometheus_client.CollectorRegistry()

    async def metrics(_request: Request) -> Response:
        return Response(
            prometheus_client.generate_latest(registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    async def orders(_request: Request) -> Response:
        return PlainTextResponse("ok")

    cases = {c.reason: c for c in rejections()}
    token = valid_token()
    app = Starlette(routes=[Route("/metrics", metrics), Route("/orders", orders)])
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=scripted_verifier(cases.values(), valid=[token]),
        exclude_paths=["/metrics"],
        metrics=[PrometheusMetrics(registry)],
        scopes=[REQUIRED_SCOPE],
    )
    sent = [Reason.EXPIRED, Reason.EXPIRED, Reason.MISSING_TOKEN, Reason.INSUFFICIENT_SCOPE]
    sent += [Reason.KEY_UNAVAILABLE]
    with capture_logs() as events, run_uvicorn(app) as url, httpx.Client(base_url=url) as client:
        statuses = [client.get("/orders", headers=cases[r].headers()).status_code for r in sent]
        accepted = client.get("/orders", headers={"authorization": f"Bearer {token}"})
        scrape = client.get("/metrics")
    assert [r.status for r in sent] == statuses
    assert (200, 200) == (accepted.status_code, scrape.status_code)
    lines = scrape.text.splitlines()
    for line in [
        'invalidtoken_rejections_total{reason="expired",status="401"} 2.0',
        'invalidtoken_rejections_total{reason="missing_token",status="401"} 1.0',
        'invalidtoken_rejections_total{reason="insufficient_scope",status="403"} 1.0',
        'invalidtoken_rejections_total{reason="key_unavailable",status="503"} 1.0',
    ]:
        assert line in lines
    [family] = [f for f in text_string_to_metric_families(scrape.text) if f.name == COUNTER[:-6]]
    assert ("counter", 5.0) == (
        family.type,
        sum(s.value for s in family.samples if s.name == COUNTER),
    )
    assert 5 == len([e for e in events if e["event"] == "auth_rejected"])
