"""WebSocket handshakes through InvalidTokenMiddleware under uvicorn.

uvicorn's websockets implementation advertises the ``websocket.http.response``
extension, so a bad token is denied before ``accept`` with a real HTTP answer: the
status, the challenge and the JSON body of an ordinary rejection. (Without the
extension the middleware closes with 1008; see test_middleware_unit.py.)
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from support.servers import MAIN_OPTIONS, make_starlette_app, run_uvicorn
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

NOW = int(time.time())
VALID = mint(payload=claims(scope="orders:write"))
EXPIRED = mint(payload=claims(scope="orders:write", iat=NOW - 7200, exp=NOW - 3600))
READ_ONLY = mint(payload=claims(scope="orders:read"))
EXPIRED_DETAIL = "The access token expired. Obtain a new one and retry."
SCOPE_DETAIL = "The access token does not grant the scope this request requires."


@pytest.fixture(scope="module")
def ws_url() -> Iterator[str]:
    """The Starlette app with the usual options under uvicorn; its websocket endpoint."""
    with run_uvicorn(make_starlette_app(**MAIN_OPTIONS)) as url:
        yield url.replace("http://", "ws://") + "/ws"


def denial(url: str, headers: list[tuple[str, str]]) -> InvalidStatus:
    """Open a handshake that must be refused, and return the refusal."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=headers, proxy=None, open_timeout=5).close()
    return refused.value


def test_valid_token_is_accepted(ws_url: str) -> None:
    """A valid token opens the connection and the endpoint sees the claims."""
    with connect(
        ws_url, additional_headers=[("authorization", f"Bearer {VALID}")], proxy=None
    ) as websocket:
        message = json.loads(websocket.recv(timeout=5))
    expected = {"sub": "user-1"}
    assert expected == message


@pytest.mark.parametrize(
    ("headers", "status", "challenge", "reason"),
    [
        pytest.param([], 401, 'Bearer realm="orders"', "missing_token", id="missing"),
        pytest.param(
            [("authorization", f"Bearer {EXPIRED}")],
            401,
            f'Bearer realm="orders", error="invalid_token", error_description="{EXPIRED_DETAIL}"',
            "expired",
            id="expired",
        ),
        pytest.param(
            [("authorization", f"Bearer {READ_ONLY}")],
            403,
            'Bearer realm="orders", error="insufficient_scope",'
            f' error_description="{SCOPE_DETAIL}", scope="orders:write"',
            "insufficient_scope",
            id="insufficient-scope",
        ),
    ],
)
def test_bad_token_denied_before_accept_with_http_answer(
    ws_url: str, headers: list[tuple[str, str]], status: int, challenge: str, reason: str
) -> None:
    """A bad handshake gets the HTTP status, challenge and body of an ordinary rejection."""
    refusal = denial(ws_url, headers)
    response = refusal.response
    body: dict[str, Any] = json.loads(response.body or b"null")
    expected = (status, challenge, "application/json", "no-store", status, reason)
    assert expected == (
        response.status_code,
        response.headers["www-authenticate"],
        response.headers["content-type"],
        response.headers["cache-control"],
        body["status"],
        body["reason"],
    )


def test_one_event_per_denied_handshake(ws_url: str) -> None:
    """A denied handshake logs exactly one auth_rejected event, and never the token."""
    with capture_logs() as logs:
        denial(ws_url, [("authorization", f"Bearer {EXPIRED}")])
    events = [e for e in logs if e["event"] == "auth_rejected"]
    assert [("expired", 401, "/ws")] == [(e["reason"], e["status"], e["path"]) for e in events]
    assert EXPIRED not in repr(logs)
