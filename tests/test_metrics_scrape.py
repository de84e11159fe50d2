"""Metrics that behave: scraped over HTTP from uvicorn and waitress, and read from an SDK.

Each test runs real requests, with tokens from a :class:`LocalIssuer` whose metadata and
key set are really fetched (or whose outage really fails), through a real server, then
scrapes ``/metrics`` over HTTP (``prometheus_client``'s ASGI and WSGI exposition apps,
served by the same server) or collects an OpenTelemetry SDK ``InMemoryMetricReader``.
Key-fetch counters are process-wide, so they are compared before and after.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import prometheus_client
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthEventLog,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    OpenTelemetryMetrics,
    PrometheusMetrics,
    Reason,
)
from invalidtoken_mw.testing import LocalIssuer
from support.servers import run_uvicorn, run_waitress

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from starlette.requests import Request

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def rejected(scrape: Samples, reason: Reason) -> float:
    key = (("reason", reason.value), ("status", str(reason.status)))
    return scrape[("invalidtoken_rejections_total", key)]


def fetches(scrape: Samples, source: str, outcome: str) -> float:
    key = (("outcome", outcome), ("source", source))
    return scrape[("invalidtoken_key_fetches_total", key)]


def failures(scrape: Samples, source: str, cause: str) -> float:
    key = (("cause", cause), ("source", source))
    return scrape[("invalidtoken_key_fetch_failures_total", key)]


@pytest.fixture
def issuers() -> Iterator[tuple[LocalIssuer, LocalIssuer]]:
    """An issuer that answers, and one in an outage (every path 503)."""
    with LocalIssuer() as up, LocalIssuer() as down:
        down.available = False
        yield up, down


def ok_asgi(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def asgi_app(up: LocalIssuer, down: LocalIssuer, registry: Any) -> Starlette:
    """/metrics (exposition), /api (issuer up) and /down (issuer down), one registry.

    Each protected mount gets its own PrometheusMetrics on the same registry: the
    second registration reuses the first one's instruments.
    """

    def protected(issuer: LocalIssuer) -> Any:
        inner = Starlette(routes=[Route("/orders", ok_asgi)])
        return InvalidTokenMiddleware(
            inner, verifier=issuer.verifier(), metrics=[PrometheusMetrics(registry)]
        )

    return Starlette(
        routes=[
            Mount("/metrics", prometheus_client.make_asgi_app(registry)),
            Mount("/api", protected(up)),
            Mount("/down", protected(down)),
        ]
    )


def test_prometheus_scrape_over_http_from_uvicorn(issuers: tuple[LocalIssuer, LocalIssuer]) -> None:
    """Before any request every reason is at 0; after, counts, fetches and the key-set gauges."""
    up, down = issuers
    registry = prometheus_client.CollectorRegistry()
    app = asgi_app(up, down, registry)
    with capture_logs(), run_uvicorn(app) as url, httpx.Client(base_url=url) as http:
        before = samples(http.get("/metrics/").text)
        answers = [http.get("/api/orders", headers=up.headers()).status_code for _ in range(3)]
        answers.append(http.get("/api/orders", headers=up.headers("expired")).status_code)
        answers.append(http.get("/api/orders").status_code)
        answers.append(http.get("/down/orders", headers=down.headers()).status_code)
        scraped = http.get("/metrics/")
    after = samples(scraped.text)
    assert [200, 200, 200, 401, 401, 503] == answers
    assert dict.fromkeys(Reason, 0.0) == {r: rejected(before, r) for r in Reason}
    assert 0.0 == before[("invalidtoken_accepted_total", ())]
    expected = dict.fromkeys(Reason, 0.0)
    expected |= {Reason.EXPIRED: 1.0, Reason.MISSING_TOKEN: 1.0, Reason.KEY_UNAVAILABLE: 1.0}
    assert expected == {r: rejected(after, r) for r in Reason}
    assert 3.0 == after[("invalidtoken_accepted_total", ())]
    # One metadata and one key-set fetch for the issuer that is up, one failed metadata
    # fetch (HTTP 503) for the one that is down.
    assert 1.0 == fetches(after, "discovery", "success") - fetches(before, "discovery", "success")
    assert 1.0 == fetches(after, "jwks", "success") - fetches(before, "jwks", "success")
    assert 1.0 == fetches(after, "discovery", "failure") - fetches(before, "discovery", "failure")
    assert 1.0 == failures(after, "discovery", "http_status") - failures(
        before, "discovery", "http_status"
    )
    now = time.time()
    last = after[("invalidtoken_key_last_success_timestamp_seconds", (("source", "jwks"),))]
    age = after[("invalidtoken_key_set_age_seconds", ())]
    assert last <= now
    assert 0.0 <= age <= now - last + 1.0
    text = scraped.text
    assert "# TYPE invalidtoken_accepted_total counter" in text
    assert "# TYPE invalidtoken_key_set_age_seconds gauge" in text


def test_prometheus_scrape_over_http_from_waitress(
    issuers: tuple[LocalIssuer, LocalIssuer],
) -> None:
    """The WSGI middleware counts the same, scraped from waitress."""
    up, _ = issuers
    registry = prometheus_client.CollectorRegistry()
    exposition = prometheus_client.make_wsgi_app(registry)

    def ok(_environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    protected = InvalidTokenWSGIMiddleware(
        ok, verifier=up.verifier(), metrics=[PrometheusMetrics(registry)]
    )

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/metrics":
            scrape: Iterable[bytes] = exposition(environ, start_response)
            return scrape
        return protected(environ, start_response)

    with capture_logs(), run_waitress(app) as url, httpx.Client(base_url=url) as http:
        before = samples(http.get("/metrics").text)
        answers = [http.get("/orders", headers=up.headers()).status_code for _ in range(2)]
        answers.append(http.get("/orders", headers=up.headers("unknown-key")).status_code)
        after = samples(http.get("/metrics").text)
    assert [200, 200, 401] == answers
    assert all(rejected(before, r) == 0.0 for r in Reason)
    assert (2.0, 1.0) == (
        after[("invalidtoken_accepted_total", ())],
        rejected(after, Reason.UNKNOWN_KEY),
    )
    # The unknown kid forced one more key-set fetch than the first request's.
    assert fetches(after, "jwks", "success") - fetches(before, "jwks", "success") >= 1.0


def test_a_second_prometheus_metrics_on_one_registry_is_harmless() -> None:
    """Two instances on one registry (and on the default one) share the instruments."""
    registry = prometheus_client.CollectorRegistry()
    first, second = PrometheusMetrics(registry), PrometheusMetrics(registry)
    PrometheusMetrics()
    PrometheusMetrics()  # the default registry: an app factory called twice
    with capture_logs():
        AuthEventLog(metrics=[first]).count_accepted()
        log = AuthEventLog(metrics=[second])
        log.count_accepted()
        first.record(Reason.REVOKED)
        second.record(Reason.REVOKED)
    value = registry.get_sample_value
    assert (2.0, 2.0) == (
        value("invalidtoken_accepted_total"),
        value("invalidtoken_rejections_total", {"reason": "revoked", "status": "401"}),
    )
    del log
    gc.collect()
    # A middleware that is gone keeps its count: a counter never goes down.
    assert 2.0 == value("invalidtoken_accepted_total")


# -- OpenTelemetry --------------------------------------------------------------------------


def otel_points(reader: InMemoryMetricReader) -> dict[str, dict[tuple[Any, ...], float]]:
    """Every data point, by instrument name and sorted attributes."""
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, dict[tuple[Any, ...], float]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    points.setdefault(metric.name, {})[key] = point.value  # type: ignore[union-attr]
    return points


def test_opentelemetry_instruments_after_real_requests(
    issuers: tuple[LocalIssuer, LocalIssuer],
) -> None:
    """The SDK reads the same: rejections at 0, accepted, fetches by error.type, gauges."""
    up, down = issuers
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("test")
    inner = Starlette(routes=[Route("/orders", ok_asgi)])
    app = Starlette(
        routes=[
            Mount(
                "/api",
                InvalidTokenMiddleware(
                    inner, verifier=up.verifier(), metrics=[OpenTelemetryMetrics(meter)]
                ),
            ),
            Mount(
                "/down",
                InvalidTokenMiddleware(
                    inner,
                    verifier=down.verifier(),
                    metrics=[
                        OpenTelemetryMetrics(meter)  # the same meter again: shared instruments
                    ],
                ),
            ),
        ]
    )
    try:
        before = otel_points(reader)
        with capture_logs(), run_uvicorn(app) as url, httpx.Client(base_url=url) as http:
            answers = [http.get("/api/orders", headers=up.headers()).status_code for _ in "ab"]
            answers.append(http.get("/api/orders", headers=up.headers("expired")).status_code)
            answers.append(http.get("/down/orders", headers=down.headers()).status_code)
        after = otel_points(reader)
    finally:
        provider.shutdown()
    assert [200, 200, 401, 503] == answers
    zero = {(("error.type", r.value), ("http.response.status_code", r.status)): 0 for r in Reason}
    assert zero == before["invalidtoken.rejections"]
    assert {(): 0} == before["invalidtoken.accepted"]
    counted = {**zero}
    counted[(("error.type", "expired"), ("http.response.status_code", 401))] = 1
    counted[(("error.type", "key_unavailable"), ("http.response.status_code", 503))] = 1
    assert counted == after["invalidtoken.rejections"]
    assert {(): 2} == after["invalidtoken.accepted"]
    fetched_before, fetched = before["invalidtoken.key.fetches"], after["invalidtoken.key.fetches"]
    failed = (("error.type", "http_status"), ("invalidtoken.key.source", "discovery"))
    jwks_ok = (("invalidtoken.key.source", "jwks"),)
    assert (1, 1) == (
        fetched[failed] - fetched_before[failed],
        fetched[jwks_ok] - fetched_before[jwks_ok],
    )
    [last] = [v for k, v in after["invalidtoken.key.last_success_time"].items() if k == jwks_ok]
    [age] = after["invalidtoken.key_set.age"].values()
    assert last <= time.time()
    assert age >= 0.0


def test_a_second_opentelemetry_metrics_on_one_meter_is_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two instances on one meter create each instrument once (no SDK duplicate warning)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("test")
    try:
        with caplog.at_level(logging.WARNING):
            first, second = OpenTelemetryMetrics(meter), OpenTelemetryMetrics(meter)
        with capture_logs():
            AuthEventLog(metrics=[first]).count_accepted()
            AuthEventLog(metrics=[second]).count_accepted()
            second.record(Reason.EXPIRED)
        points = otel_points(reader)
    finally:
        provider.shutdown()
    assert [] == [r.getMessage() for r in caplog.records if "instrument" in r.getMessage()]
    assert {(): 2} == points["invalidtoken.accepted"]
    key = (("error.type", "expired"), ("http.response.status_code", 401))
    assert 1 == points["invalidtoken.rejections"][key]


# -- docs/metrics.md ------------------------------------------------------------------------


def test_metrics_md_lists_every_metric_with_its_type_and_labels() -> None:
    """Every exported Prometheus family has a row in docs/metrics.md with its type and labels."""
    registry = prometheus_client.CollectorRegistry()
    PrometheusMetrics(registry)
    families = list(registry.collect())
    documented = (Path(__file__).parents[1] / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = {
        cells[0].strip("`"): (cells[1], cells[2])
        for line in documented.splitlines()
        if line.startswith("| `invalidtoken_")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    exported = {}
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {k for s in family.samples for k in s.labels}
        exported[name] = family.type
        if labels:
            assert labels == {label.strip("` ") for label in rows[name][1].split(",")}, name
    assert exported == {name: kind for name, (kind, _) in rows.items()}
