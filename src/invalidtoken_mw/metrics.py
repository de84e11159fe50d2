"""Optional metrics: Prometheus and OpenTelemetry.

Both are off unless their library is installed (extras ``prometheus`` and ``otel``)
and an instance is passed to the middleware as ``metrics=[...]``. Anything with a
``record(reason)`` method works, so other backends need no change here; one that also
has ``watch_accepted(count)`` is handed a function returning the middleware's number
of accepted requests, to read when it is scraped.

What each backend shows (docs/metrics.md has the full table):

- rejections by reason and status, every reason present at zero from start-up;
- accepted requests, read at scrape time from the count the middleware keeps anyway,
  so an accepted request costs nothing more with metrics on;
- JWKS and issuer-metadata fetches by outcome and failure cause, the time of the last
  successful fetch, and the age of the key set in use (process-wide, read at scrape
  time from the key sources that are alive).

Creating a second instance on the same Prometheus registry or OpenTelemetry meter
(an application factory called twice, a test suite) reuses the first one's
instruments instead of failing.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from invalidtoken_mw import _keyhealth
from invalidtoken_mw.reasons import Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["OpenTelemetryMetrics", "PrometheusMetrics", "RejectionRecorder"]

COUNTER_NAME = "invalidtoken_rejections"
COUNTER_HELP = "Requests refused by invalidtoken-mw, by reason and HTTP status."
ACCEPTED_HELP = "Requests invalidtoken-mw let through (valid token, or none where optional)."
_FETCHES_HELP = "Fetches of signing keys (JWKS) and issuer metadata (discovery), by outcome."
_FAILURES_HELP = "Failed fetches of signing keys or issuer metadata, by cause."
_LAST_SUCCESS_HELP = (
    "Unix time of the last successful fetch, per source (the oldest among the key sources in use)."
)
_AGE_HELP = "Seconds since the oldest JWK Set in use was fetched."

# One set of instruments per Prometheus registry and per OpenTelemetry meter.
_SHARED_LOCK = threading.Lock()
_PROMETHEUS: weakref.WeakKeyDictionary[Any, _PrometheusInstruments] = weakref.WeakKeyDictionary()
_OPENTELEMETRY: weakref.WeakKeyDictionary[Any, _OpenTelemetryInstruments] = (
    weakref.WeakKeyDictionary()
)


class RejectionRecorder(Protocol):
    """Something that counts rejections."""

    def record(self, reason: Reason) -> None:
        """Count one rejected request."""
        ...  # pragma: no cover - protocol


class _AcceptedCounts:
    """The acceptance counts of every middleware a metrics instance was given to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: list[Callable[[], int]] = []

    def add(self, count: Callable[[], int]) -> None:
        # Kept after the middleware is gone: the counter must never go down.
        with self._lock:
            self._counts.append(count)

    def total(self) -> int:
        with self._lock:
            counts = list(self._counts)
        return sum(count() for count in counts)


# -- Prometheus ----------------------------------------------------------------------------


class _PrometheusInstruments:
    """The counters and the scrape-time collector registered once on one registry."""

    def __init__(self, prometheus_client: Any, registry: Any) -> None:  # noqa: ANN401 - optional dependency
        self.rejections = prometheus_client.Counter(
            COUNTER_NAME, COUNTER_HELP, ("reason", "status"), registry=registry
        )
        # Every label pair exists from start-up at 0, so rate() and absent() work at once.
        self.children = {
            reason: self.rejections.labels(reason=reason.value, status=str(reason.status))
            for reason in Reason
        }
        self.accepted = _AcceptedCounts()
        registry.register(_ScrapeTimeCollector(self.accepted))


class _ScrapeTimeCollector:
    """Families computed when scraped: acceptances and key-set health, no hot-path cost."""

    def __init__(self, accepted: _AcceptedCounts) -> None:
        from prometheus_client import metrics_core  # noqa: PLC0415 - optional dependency

        self._core = metrics_core
        self._accepted = accepted

    def describe(self) -> list[Any]:
        """The families' names, so registering does not scrape."""
        return list(self._families(empty=True))

    def collect(self) -> Iterator[Any]:
        """The current values."""
        return self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[Any]:
        core = self._core
        accepted = core.CounterMetricFamily("invalidtoken_accepted", ACCEPTED_HELP)
        fetches = core.CounterMetricFamily(
            "invalidtoken_key_fetches", _FETCHES_HELP, labels=("source", "outcome")
        )
        failures = core.CounterMetricFamily(
            "invalidtoken_key_fetch_failures", _FAILURES_HELP, labels=("source", "cause")
        )
        last = core.GaugeMetricFamily(
            "invalidtoken_key_last_success_timestamp_seconds",
            _LAST_SUCCESS_HELP,
            labels=("source",),
        )
        age = core.GaugeMetricFamily("invalidtoken_key_set_age_seconds", _AGE_HELP)
        if not empty:
            accepted.add_metric((), self._accepted.total())
            health = _keyhealth.health()
            for (source, outcome), value in health.fetches.items():
                fetches.add_metric((source, outcome), value)
            for (source, cause), value in health.failures.items():
                failures.add_metric((source, cause), value)
            for source, when in health.last_success.items():
                last.add_metric((source,), when)
            if health.key_set_age is not None:
                age.add_metric((), health.key_set_age)
        yield from (accepted, fetches, failures, last, age)


class PrometheusMetrics:
    """Prometheus counters and gauges for a middleware (see the module docstring).

    ``invalidtoken_rejections_total{reason,status}``, ``invalidtoken_accepted_total``,
    ``invalidtoken_key_fetches_total{source,outcome}``,
    ``invalidtoken_key_fetch_failures_total{source,cause}``,
    ``invalidtoken_key_last_success_timestamp_seconds{source}`` and
    ``invalidtoken_key_set_age_seconds``. A second instance on the same registry shares
    the first one's instruments.

    Args:
        registry: The ``prometheus_client`` registry (default: the global one).

    Raises:
        ImportError: ``prometheus_client`` is not installed; install the extra
            ``invalidtoken-mw[prometheus]``.
    """

    def __init__(self, registry: Any = None) -> None:  # noqa: ANN401 - optional dependency's type
        """Create (once per registry) the instruments, or reuse those already there."""
        try:
            import prometheus_client  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "PrometheusMetrics needs: pip install 'invalidtoken-mw[prometheus]'"
            ) from exc
        registry = prometheus_client.REGISTRY if registry is None else registry
        with _SHARED_LOCK:
            instruments = _PROMETHEUS.get(registry)
            if instruments is None:
                instruments = _PrometheusInstruments(prometheus_client, registry)
                _PROMETHEUS[registry] = instruments
        self._instruments = instruments
        self.counter = instruments.rejections

    def record(self, reason: Reason) -> None:
        """Increment the rejection counter for ``reason``."""
        self._instruments.children[reason].inc()

    def watch_accepted(self, count: Callable[[], int]) -> None:
        """Add ``count`` (a middleware's acceptances so far) to the accepted counter."""
        self._instruments.accepted.add(count)


# -- OpenTelemetry ---------------------------------------------------------------------------


_SOURCE = "invalidtoken.key.source"
_ERROR_TYPE = "error.type"  # OpenTelemetry semantic conventions: why an operation failed
_STATUS = "http.response.status_code"


class _OpenTelemetryInstruments:
    """The instruments created once on one meter."""

    def __init__(self, meter: Any) -> None:  # noqa: ANN401 - optional dependency's type
        from opentelemetry.metrics import Observation  # noqa: PLC0415 - optional dependency

        self.rejections = meter.create_counter(
            "invalidtoken.rejections", unit="{request}", description=COUNTER_HELP
        )
        self.attributes = {
            reason: {_ERROR_TYPE: reason.value, _STATUS: reason.status} for reason in Reason
        }
        for attributes in self.attributes.values():
            # Every reason is exported from start-up, at 0.
            self.rejections.add(0, attributes)
        self.accepted = _AcceptedCounts()

        def accepted(_options: Any) -> list[Any]:  # noqa: ANN401 - CallbackOptions
            return [Observation(self.accepted.total())]

        def fetches(_options: Any) -> list[Any]:  # noqa: ANN401
            health = _keyhealth.health()
            observed = [
                Observation(value, {_SOURCE: source})
                for (source, outcome), value in health.fetches.items()
                if outcome == "success"
            ]
            observed += [
                Observation(value, {_SOURCE: source, _ERROR_TYPE: cause})
                for (source, cause), value in health.failures.items()
            ]
            return observed

        def last_success(_options: Any) -> list[Any]:  # noqa: ANN401
            return [
                Observation(when, {_SOURCE: source})
                for source, when in _keyhealth.health().last_success.items()
            ]

        def age(_options: Any) -> list[Any]:  # noqa: ANN401
            seconds = _keyhealth.health().key_set_age
            return [] if seconds is None else [Observation(seconds)]

        meter.create_observable_counter(
            "invalidtoken.accepted", [accepted], unit="{request}", description=ACCEPTED_HELP
        )
        meter.create_observable_counter(
            "invalidtoken.key.fetches", [fetches], unit="{fetch}", description=_FETCHES_HELP
        )
        meter.create_observable_gauge(
            "invalidtoken.key.last_success_time",
            [last_success],
            unit="s",
            description=_LAST_SUCCESS_HELP,
        )
        meter.create_observable_gauge(
            "invalidtoken.key_set.age", [age], unit="s", description=_AGE_HELP
        )


class OpenTelemetryMetrics:
    """OpenTelemetry instruments for a middleware (see the module docstring).

    ``invalidtoken.rejections`` (counter; ``error.type`` is the reason,
    ``http.response.status_code`` the status), ``invalidtoken.accepted`` (observable
    counter), ``invalidtoken.key.fetches`` (observable counter by
    ``invalidtoken.key.source``, with ``error.type`` the cause of a failed fetch),
    ``invalidtoken.key.last_success_time`` and ``invalidtoken.key_set.age`` (observable
    gauges, seconds). A second instance on the same meter shares the instruments.

    Args:
        meter: An OpenTelemetry ``Meter`` (default: ``metrics.get_meter("invalidtoken_mw")``).

    Raises:
        ImportError: ``opentelemetry-api`` is not installed; install the extra
            ``invalidtoken-mw[otel]``.
    """

    def __init__(self, meter: Any = None) -> None:  # noqa: ANN401 - optional dependency's type
        """Create the instruments on ``meter``, or reuse those already there."""
        try:
            from opentelemetry import metrics  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "OpenTelemetryMetrics needs: pip install 'invalidtoken-mw[otel]'"
            ) from exc
        meter = meter if meter is not None else metrics.get_meter("invalidtoken_mw")
        with _SHARED_LOCK:
            instruments = _OPENTELEMETRY.get(meter)
            if instruments is None:
                instruments = _OpenTelemetryInstruments(meter)
                _OPENTELEMETRY[meter] = instruments
        self._instruments = instruments
        self.counter = instruments.rejections

    def record(self, reason: Reason) -> None:
        """Add one to the rejection counter for ``reason``."""
        instruments = self._instruments
        instruments.rejections.add(1, instruments.attributes[reason])

    def watch_accepted(self, count: Callable[[], int]) -> None:
        """Add ``count`` (a middleware's acceptances so far) to ``invalidtoken.accepted``."""
        self._instruments.accepted.add(count)
