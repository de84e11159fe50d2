"""What the client sent, through real servers: the description, the challenge, the log.

Starlette on uvicorn (the ASGI middleware) and Flask on waitress (the WSGI extension)
refuse the wrong kinds of credential; each answer names the kind in the challenge's
``error_description`` and the body, the ``auth_rejected`` event carries ``token_kind``,
and no part of the token appears in the answer or the event.
"""

from __future__ import annotations

import base64
import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask, jsonify
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import InvalidTokenMiddleware
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.flask import InvalidToken
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from flask.typing import ResponseReturnValue
    from starlette.requests import Request
    from structlog.typing import EventDict

_LOG_LOCK = threading.Lock()  # capture_logs configures structlog globally

GITHUB_PAT = "ghp_" + "".join("aB3dE5gH7j"[(i * 3) % 10] for i in range(36))
SLACK_BOT = "xoxb-1234567890-1234567890123-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2"
BASIC = base64.b64encode(b"alice:correct horse battery").decode()
ID_TOKEN = mint(
    "HS256",
    claims(aud="orders-web", azp="orders-web", nonce="n-0S6_WzA2Mj"),
    key=SECRET,
)
EXPIRED = mint("HS256", claims(exp=1_000_000_000, iat=999_999_000), key=SECRET)

CASES = {
    "github": (GITHUB_PAT, "malformed_token", "github_personal_access_token"),
    "slack": (SLACK_BOT, "malformed_token", "slack_bot_token"),
    "basic": (BASIC, "malformed_token", "basic_credentials"),
    "id_token": (ID_TOKEN, "wrong_audience", "id_token"),
}
SENTENCES = {
    "github_personal_access_token": Sentence.KIND_GITHUB_PERSONAL_ACCESS_TOKEN,
    "slack_bot_token": Sentence.KIND_SLACK_BOT_TOKEN,
    "basic_credentials": Sentence.KIND_BASIC_CREDENTIALS,
    "id_token": Sentence.KIND_ID_TOKEN,
}


async def _orders(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _starlette() -> Starlette:
    app = Starlette(routes=[Route("/orders", _orders)])
    app.add_middleware(
        InvalidTokenMiddleware,
        verifier=make_verifier(),
        log_rate_limit=None,
        log_accepted=True,
    )
    return app


def _flask() -> Flask:
    app = Flask("kinds")
    InvalidToken(app, verifier=make_verifier(), log_rate_limit=None, log_accepted=True)

    @app.route("/orders")
    def orders() -> ResponseReturnValue:
        return jsonify(ok=True)

    return app


@pytest.fixture(scope="module", params=["uvicorn", "waitress"])
def http(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "uvicorn":
        with run_uvicorn(_starlette()) as base, client(base) as session:
            yield session
    else:
        with run_waitress(_flask()) as base, client(base) as session:
            yield session


def _get(http: httpx.Client, token: str) -> tuple[httpx.Response, list[EventDict]]:
    with _LOG_LOCK, capture_logs() as logs:
        response = http.get("/orders", headers={"authorization": f"Bearer {token}"})
    return response, [e for e in logs if e["event"] in {"auth_rejected", "auth_accepted"}]


def _no_part_of(token: str, *texts: str) -> None:
    """No 16-character run of the token (nor the whole) appears in any of ``texts``."""
    for text in texts:
        assert token not in text
        for start in range(0, max(1, len(token) - 15), 4):
            assert token[start : start + 16] not in text


@pytest.mark.parametrize("case", list(CASES))
def test_the_refusal_names_what_was_sent(http: httpx.Client, case: str) -> None:
    token, reason, kind = CASES[case]
    response, [event] = _get(http, token)
    sentence = SENTENCES[kind]
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'error_description="{sentence}"' in challenge
    body: dict[str, Any] = response.json()
    assert body["error_description"] == sentence
    assert (event["reason"], event["token_kind"]) == (reason, kind)
    _no_part_of(token, challenge, response.text, json.dumps(event, default=str))


def test_an_access_token_keeps_its_own_description(http: httpx.Client) -> None:
    """An expired access token is not a wrong kind: the description is the reason's own."""
    response, [event] = _get(http, EXPIRED)
    assert response.status_code == 401
    assert response.json()["error_description"] == Sentence.EXPIRED
    assert (event["reason"], event["token_kind"]) == ("expired", "jws")


def test_an_accepted_token_gets_no_kind(http: httpx.Client) -> None:
    """The kind is looked at only on refusal: the accepted event has none."""
    response, [event] = _get(http, mint("HS256", claims(), key=SECRET))
    assert response.status_code == 200
    assert event["event"] == "auth_accepted"
    assert "token_kind" not in event
