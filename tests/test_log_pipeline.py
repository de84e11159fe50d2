"""The event through real renderer pipelines configured the way applications configure them.

Each test configures structlog (restoring the previous configuration afterwards), sends
rejected requests through a middleware and parses what reached the file or the stdlib
handler. ``docs/logging.md`` is checked against the same output: its sample lines must
have exactly the fields the library produces for their reason.
"""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import structlog

from invalidtoken_mw import Reason, otel_field_names
from invalidtoken_mw.log import OTEL_FIELD_NAMES
from support.rejections import (
    EXPIRED_FOR_S,
    PEER,
    REQUEST_ID,
    USER_AGENT,
    asgi_middleware,
    call_asgi,
    call_wsgi,
    rejections,
    wsgi_middleware,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from structlog.typing import Processor

    from support.rejections import Rejection

DOCS = Path(__file__).parent.parent / "docs" / "logging.md"
SERVER_FAULTS = {
    Reason.KEY_UNAVAILABLE,
    Reason.REVOCATION_UNAVAILABLE,
    Reason.INTROSPECTION_UNAVAILABLE,
    Reason.DPOP_REPLAY_UNAVAILABLE,
}


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """Put back the structlog configuration and clear bound context after each test."""
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def bind_context(app: Any) -> Any:
    """Wrap an ASGI app so each request binds a trace id, like a correlation middleware."""

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        structlog.contextvars.bind_contextvars(trace_id="trace-7")
        try:
            await app(scope, receive, send)
        finally:
            structlog.contextvars.clear_contextvars()

    return wrapper


def json_processors(*extra: Processor) -> list[Processor]:
    """The processor chain of the documented JSON recipe, with ``extra`` before the renderer."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *extra,
        structlog.processors.JSONRenderer(),
    ]


def send_every_reason(adapter: str, cases: list[Rejection]) -> None:
    """Send one request per case through the ``adapter`` middleware."""
    requests = [("/orders", case.headers()) for case in cases]
    if adapter == "asgi":
        call_asgi(bind_context(asgi_middleware(cases)), requests)
    else:
        call_wsgi(wsgi_middleware(cases), requests)


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file, one object per line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def produce_json_file(tmp_path: Path, adapter: str, cases: list[Rejection]) -> Path:
    """Configure the JSON recipe writing to a file, send every case, return the file."""
    path = tmp_path / "app.log"
    with path.open("w", encoding="utf-8") as file:
        structlog.configure(
            processors=json_processors(), logger_factory=structlog.WriteLoggerFactory(file)
        )
        send_every_reason(adapter, cases)
    return path


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_json_file_has_one_parseable_line_per_rejected_request(
    tmp_path: Path, adapter: str
) -> None:
    """A JSON-lines file gets one auth_rejected line per reason, with its facts and no token."""
    cases = rejections()
    path = produce_json_file(tmp_path, adapter, cases)
    lines = json_lines(path)
    expected = [(c.reason.value, c.reason.error, c.reason.status, "auth_rejected") for c in cases]
    assert expected == [(e["reason"], e["error"], e["status"], e["event"]) for e in lines]
    levels = ["error" if c.reason in SERVER_FAULTS else "warning" for c in cases]
    assert levels == [e["level"] for e in lines]
    assert {PEER[0]} == {e["client_ip"] for e in lines}
    assert {(USER_AGENT, REQUEST_ID)} == {(e["user_agent"], e["request_id"]) for e in lines}
    text = path.read_text(encoding="utf-8")
    for case in cases:
        if case.token is not None:
            assert case.token not in text
            assert case.token.split(".")[-1] not in text  # not even the signature


def test_contextvars_bound_by_the_app_appear_in_the_event(tmp_path: Path) -> None:
    """A trace id the application binds with bind_contextvars is in every line (ASGI)."""
    path = produce_json_file(tmp_path, "asgi", rejections())
    assert {"trace-7"} == {line["trace_id"] for line in json_lines(path)}


def test_expired_line_carries_expired_for_s(tmp_path: Path) -> None:
    """The expired line tells how long ago the token expired, as an integer."""
    path = produce_json_file(tmp_path, "asgi", rejections())
    [line] = [e for e in json_lines(path) if e["reason"] == "expired"]
    assert EXPIRED_FOR_S <= line["expired_for_s"] <= EXPIRED_FOR_S + 2


# -- docs/logging.md stays honest ------------------------------------------------------

_SAMPLE = re.compile(r"^`(?P<reason>[a-z_]+)`\n\n```json\n(?P<line>\{.*\})\n```$", re.MULTILINE)


def doc_samples() -> dict[str, dict[str, Any]]:
    """The sample JSON line of each reason in docs/logging.md."""
    return {m["reason"]: json.loads(m["line"]) for m in _SAMPLE.finditer(DOCS.read_text("utf-8"))}


def doc_table(heading: str) -> list[list[str]]:
    """The rows (cells without backticks) of the first table after ``heading`` in the docs."""
    text = DOCS.read_text("utf-8").split(heading, 1)[1]
    rows: list[list[str]] = []
    for line in text.splitlines():
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip().replace("`", "") for cell in line.strip("|").split("|")])
    return rows[1:]


def test_docs_have_one_sample_per_reason() -> None:
    """docs/logging.md shows exactly one sample line for every reason, in Reason order."""
    assert [r.value for r in Reason] == list(doc_samples())


def test_docs_samples_have_exactly_the_fields_the_library_logs(tmp_path: Path) -> None:
    """Each documented sample has exactly the fields the JSON recipe logs for its reason."""
    path = produce_json_file(tmp_path, "asgi", rejections())
    produced = {line["reason"]: set(line) - {"trace_id"} for line in json_lines(path)}
    documented = {reason: set(sample) for reason, sample in doc_samples().items()}
    assert produced == documented


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_docs_samples_have_the_right_facts(reason: Reason) -> None:
    """Each sample shows its reason's error code, status, level and a 16-hex fingerprint."""
    sample = doc_samples()[reason.value]
    expected_level = "error" if reason in SERVER_FAULTS else "warning"
    assert (reason.error, reason.status, expected_level, "auth_rejected") == (
        sample["error"],
        sample["status"],
        sample["level"],
        sample["event"],
    )
    if "token_fingerprint" in sample:
        assert re.fullmatch(r"[0-9a-f]{16}", sample["token_fingerprint"])


def test_docs_schema_table_lists_every_field() -> None:
    """Every field of every sample (bar renderer-added level/timestamp) is in the schema table."""
    documented = set()
    for row in doc_table("## Schema"):
        documented |= {name.strip() for name in row[0].split(",")}
    used = set().union(*doc_samples().values()) - {"level", "timestamp"}
    assert set() == used - documented
    assert {"suppressed", "unexpected_error"} <= documented - used


def test_docs_otel_table_matches_the_processor() -> None:
    """The OpenTelemetry rename table in the docs is the one otel_field_names applies."""
    assert OTEL_FIELD_NAMES == dict(doc_table("## OpenTelemetry field names"))


# -- other renderers and routes the application may choose -----------------------------


@pytest.mark.parametrize(
    ("renderer", "check"),
    [
        (structlog.processors.LogfmtRenderer(), "reason=expired error=invalid_token"),
        (structlog.processors.KeyValueRenderer(), "reason='expired'"),
        (structlog.dev.ConsoleRenderer(colors=False), "reason=expired"),
    ],
    ids=["logfmt", "keyvalue", "console"],
)
def test_text_renderers_chosen_by_the_app_render_the_event(
    tmp_path: Path, renderer: Processor, check: str
) -> None:
    """The event renders through logfmt, key=value and console renderers, one line each."""
    cases = [c for c in rejections() if c.reason is Reason.EXPIRED]
    path = tmp_path / "app.log"
    with path.open("w", encoding="utf-8") as file:
        structlog.configure(
            processors=[structlog.processors.add_log_level, renderer],
            logger_factory=structlog.WriteLoggerFactory(file),
        )
        send_every_reason("asgi", cases)
    [line] = path.read_text("utf-8").splitlines()
    assert check in line
    assert "auth_rejected" in line
    assert cases[0].token is not None
    assert cases[0].token not in line


def test_orjson_renderer_writes_bytes_lines(tmp_path: Path) -> None:
    """With orjson as the serializer and a bytes logger, every reason renders and parses."""
    cases = rejections()
    path = tmp_path / "app.log"
    with path.open("wb") as file:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            logger_factory=structlog.BytesLoggerFactory(file),
        )
        send_every_reason("asgi", cases)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [c.reason.value for c in cases] == [e["reason"] for e in lines]


def test_otel_field_names_in_the_app_chain(tmp_path: Path) -> None:
    """With otel_field_names in the chain the JSON line carries the semantic-convention names."""
    cases = [c for c in rejections() if c.reason is Reason.EXPIRED]
    path = tmp_path / "app.log"
    with path.open("w", encoding="utf-8") as file:
        structlog.configure(
            processors=json_processors(otel_field_names),
            logger_factory=structlog.WriteLoggerFactory(file),
        )
        send_every_reason("asgi", cases)
    [line] = json_lines(path)
    expected = {"error.type": "expired", "http.response.status_code": 401, "url.path": "/orders"}
    assert expected == {k: line[k] for k in expected}
    assert set() == set(OTEL_FIELD_NAMES) & set(line)


class _Records(logging.Handler):
    """A stdlib handler keeping its records."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def stdlib_logger() -> Iterator[tuple[io.StringIO, _Records]]:
    """Route the 'invalidtoken_mw' stdlib logger to a JSON-formatting handler and a recorder."""
    logger = logging.getLogger("invalidtoken_mw")
    stream = io.StringIO()
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ]
    )
    json_handler = logging.StreamHandler(stream)
    json_handler.setFormatter(formatter)
    records = _Records()
    saved = (logger.level, logger.propagate)
    logger.addHandler(json_handler)
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield stream, records
    finally:
        logger.removeHandler(json_handler)
        logger.removeHandler(records)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def test_stdlib_logging_route(stdlib_logger: tuple[io.StringIO, _Records]) -> None:
    """Routed to stdlib logging, events land at WARNING or ERROR as JSON with bound context."""
    stream, records = stdlib_logger
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    cases = rejections()
    send_every_reason("asgi", cases)
    levels = [logging.ERROR if c.reason in SERVER_FAULTS else logging.WARNING for c in cases]
    assert levels == [r.levelno for r in records.records]
    assert {"invalidtoken_mw"} == {r.name for r in records.records}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [c.reason.value for c in cases] == [e["reason"] for e in lines]
    assert {"trace-7"} == {e["trace_id"] for e in lines}


def test_library_never_configures_structlog(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building middlewares and rejecting requests never calls structlog.configure()."""
    structlog.configure(
        processors=json_processors(), logger_factory=structlog.ReturnLoggerFactory()
    )
    before = structlog.get_config()

    def forbidden(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the library must not configure structlog")

    for name in ("configure", "configure_once", "reset_defaults"):
        monkeypatch.setattr(structlog, name, forbidden)
    send_every_reason("asgi", rejections())
    send_every_reason("wsgi", rejections())
    monkeypatch.undo()
    assert before == structlog.get_config()
