"""Field-name mappings (OpenTelemetry, ECS, Datadog) through real renderer pipelines.

Every reason goes through the ASGI middleware; the lines are rendered the way the
log stacks' own tools render them (Elastic's ``ecs_logging.StructlogFormatter``, which
turns dotted names into nested objects and refuses a name that is both a value and an
object) and parsed back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ecs_logging
import pytest
import structlog

from invalidtoken_mw import Reason
from invalidtoken_mw.log import (
    DATADOG_FIELD_NAMES,
    ECS_FIELD_NAMES,
    OTEL_FIELD_NAMES,
    datadog_field_names,
    ecs_field_names,
    otel_field_names,
)
from support.rejections import PEER, USER_AGENT, asgi_middleware, call_asgi, rejections

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from structlog.typing import EventDict, Processor

    Mapper = Callable[[object, str, EventDict], EventDict]

DOCS = Path(__file__).parent.parent / "docs" / "logging.md"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    was_configured = structlog.is_configured()
    saved = structlog.get_config()
    try:
        yield
    finally:
        if was_configured:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()


def _ecs_renderer() -> Processor:
    # ecs_logging types event_dict as dict, structlog as MutableMapping: same object.
    formatter = ecs_logging.StructlogFormatter()
    return lambda logger, name, event_dict: formatter(logger, name, dict(event_dict))


def _lines(tmp_path: Path, processors: list[Processor]) -> list[dict[str, Any]]:
    """Every reason through the ASGI middleware, rendered by ``processors``, parsed."""
    cases = rejections()
    path = tmp_path / "app.log"
    with path.open("w", encoding="utf-8") as file:
        structlog.configure(
            processors=processors, logger_factory=structlog.WriteLoggerFactory(file)
        )
        call_asgi(asgi_middleware(cases), [("/orders", case.headers()) for case in cases])
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(cases) == len(lines)
    return lines


def test_otel_names_survive_elasticsearch_nesting(tmp_path: Path) -> None:
    """With otel_field_names, ECS nesting works: ``error`` is an object, not a string too.

    Before the fix the event kept a string ``error`` beside ``error.type`` and the ECS
    formatter raised TypeError on the first event.
    """
    lines = _lines(tmp_path, [otel_field_names, _ecs_renderer()])
    assert [r.value for r in Reason] == [line["error"]["type"] for line in lines]
    assert [r.error for r in Reason] == [line["invalidtoken"]["error"] for line in lines]
    assert {401, 400, 403, 503} == {line["http"]["response"]["status_code"] for line in lines}


def test_ecs_field_names_give_ecs_documents(tmp_path: Path) -> None:
    """ecs_field_names + Elastic's formatter: ECS objects, no colliding names, no token."""
    lines = _lines(tmp_path, [ecs_field_names, _ecs_renderer()])
    for reason, line in zip(Reason, lines, strict=True):
        assert "auth_rejected" == line["message"]
        assert {
            "action": "auth_rejected",
            "category": ["authentication"],
            "outcome": "failure",
            "reason": reason.value,
        } == line["event"]
        expected_error = {"type": reason.value, "message": reason.description}
        if reason.error:
            expected_error["code"] = reason.error
        assert expected_error == line["error"]
        assert reason.status == line["http"]["response"]["status_code"]
        assert {"path": "/orders"} == line["url"]
        assert {"ip": PEER[0]} == line["client"]
        assert {"original": USER_AGENT} == line["user_agent"]
        # Old names left are objects of the schema now ("error", "user_agent"), not ours.
        assert {} == {k: line[k] for k in ECS_FIELD_NAMES if not isinstance(line.get(k, {}), dict)}


def test_datadog_field_names_free_the_reserved_status(tmp_path: Path) -> None:
    """datadog_field_names: standard attributes, ``status`` left to the log level."""
    processors: list[Processor] = [
        structlog.processors.add_log_level,
        datadog_field_names,
        structlog.processors.EventRenamer("message"),
        structlog.processors.JSONRenderer(),
    ]
    lines = _lines(tmp_path, processors)
    for reason, line in zip(Reason, lines, strict=True):
        assert reason.status == line["http.status_code"]
        assert reason.value == line["error.kind"]
        assert reason.description == line["error.message"]
        assert reason.error == line.get("error.code")
        assert "/orders" == line["http.url_details.path"]
        assert PEER[0] == line["network.client.ip"]
        assert USER_AGENT == line["http.useragent"]
        assert "auth_rejected" == line["message"]
        assert set() == {"status", "error", "event"} & set(line)
        assert set() == set(DATADOG_FIELD_NAMES) & set(line)


@pytest.mark.parametrize(
    ("processor", "user_key"),
    [(ecs_field_names, "user.id"), (datadog_field_names, "usr.id"), (otel_field_names, "sub")],
)
def test_only_an_accepted_tokens_sub_is_named_the_user(processor: Mapper, user_key: str) -> None:
    """A refused token's sub is unverified: only auth_accepted maps it to the user id."""
    accepted = processor(None, "debug", {"event": "auth_accepted", "sub": "user-1"})
    refused = processor(None, "warning", {"event": "auth_rejected", "sub": "user-1"})
    assert "user-1" == accepted[user_key]
    assert "user-1" == refused["sub"]


@pytest.mark.parametrize("processor", [otel_field_names, ecs_field_names, datadog_field_names])
def test_other_events_pass_untouched(processor: Mapper) -> None:
    """The application's own events keep their names."""
    event = {"event": "order_created", "status": 201, "error": None}
    assert {"event": "order_created", "status": 201, "error": None} == processor(
        None, "info", event
    )


@pytest.mark.parametrize(
    ("heading", "names"),
    [
        ("## OpenTelemetry field names", OTEL_FIELD_NAMES),
        ("## ECS field names", ECS_FIELD_NAMES),
        ("## Datadog field names", DATADOG_FIELD_NAMES),
    ],
)
def test_the_docs_tables_are_the_mappings(heading: str, names: dict[str, str]) -> None:
    """Each rename table of docs/logging.md is the one its processor applies."""
    text = DOCS.read_text("utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip().replace("`", "") for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ][1:]
    assert names == {row[0]: row[1] for row in rows}
