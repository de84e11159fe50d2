"""Optional rejection counters: Prometheus and OpenTelemetry.

Both are off unless their library is installed (extras ``prometheus`` and ``otel``)
and an instance is passed to the middleware as ``metrics=[...]``. Anything with a
``record(reason)`` method works, so other backends need no change here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from invalidtoken_mw.reasons import Reason

__all__ = ["OpenTelemetryMetrics", "PrometheusMetrics", "RejectionRecorder"]

COUNTER_NAME = "invalidtoken_rejections"
COUNTER_HELP = "Requests refused by invalidtoken-mw, by reason and HTTP status."


class RejectionRecorder(Protocol):
    """Something that counts rejections."""

    def record(self, reason: Reason) -> None:
        """Count one rejected request."""
        ...  # pragma: no cover - protocol


class PrometheusMetrics:
    """``invalidtoken_rejections_total{reason, status}`` as a Prometheus counter.

    Args:
        registry: The ``prometheus_client`` registry (default: the global one).

    Raises:
        ImportError: ``prometheus_client`` is not installed; install the extra
            ``invalidtoken-mw[prometheus]``.
    """

    def __init__(self, registry: Any = None) -> None:  # noqa: ANN401 - optional dependency's type
        """Create (once per registry) the counter."""
        try:
            import prometheus_client  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "PrometheusMetrics needs: pip install 'invalidtoken-mw[prometheus]'"
            ) from exc
        kwargs = {} if registry is None else {"registry": registry}
        self.counter = prometheus_client.Counter(
            COUNTER_NAME, COUNTER_HELP, ("reason", "status"), **kwargs
        )

    def record(self, reason: Reason) -> None:
        """Increment the counter for ``reason``."""
        self.counter.labels(reason=reason.value, status=str(reason.status)).inc()


class OpenTelemetryMetrics:
    """An OpenTelemetry counter ``invalidtoken.rejections`` with ``reason`` and status.

    Args:
        meter: An OpenTelemetry ``Meter`` (default: ``metrics.get_meter("invalidtoken_mw")``).

    Raises:
        ImportError: ``opentelemetry-api`` is not installed; install the extra
            ``invalidtoken-mw[otel]``.
    """

    def __init__(self, meter: Any = None) -> None:  # noqa: ANN401 - optional dependency's type
        """Create the counter on ``meter``."""
        try:
            from opentelemetry import metrics  # noqa: PLC0415 - optional dependency
        except ImportError as exc:
            raise ImportError(
                "OpenTelemetryMetrics needs: pip install 'invalidtoken-mw[otel]'"
            ) from exc
        meter = meter if meter is not None else metrics.get_meter("invalidtoken_mw")
        self.counter = meter.create_counter(
            "invalidtoken.rejections", unit="{request}", description=COUNTER_HELP
        )

    def record(self, reason: Reason) -> None:
        """Add one to the counter for ``reason``."""
        self.counter.add(
            1, {"invalidtoken.reason": reason.value, "http.response.status_code": reason.status}
        )
