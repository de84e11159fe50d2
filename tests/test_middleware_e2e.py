"""Both middlewares end to end: Starlette under uvicorn, hypercorn and granian, Flask under
waitress.

One table of requests runs against every server over real sockets and pins the exact
status, challenge, body, ``Content-Type`` and ``Cache-Control``; a second test checks
that the servers answer every row with identical bytes. The remaining tests pin where
the token may come from, CORS, the log, interception of the application's failures and
401s, the public paths, anonymous access, CORS preflight,
lifespan and a threaded server under load. Each server starts once per module.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from structlog.testing import capture_logs

from support.servers import (
    MAIN_OPTIONS,
    RELAXED_OPTIONS,
    client,
    make_fastapi_app,
    make_flask_app,
    make_starlette_app,
    run_granian,
    run_hypercorn,
    run_uvicorn,
    run_waitress,
    success_body,
)
from support.tokens import OTHER_SECRET, claims, mint, tamper_signature

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping

SERVERS = ["uvicorn", "hypercorn", "granian", "waitress"]
FORM = "application/x-www-form-urlencoded"
NOW = int(time.time())


def _token(**overrides: Any) -> tuple[dict[str, Any], str]:
    payload = claims(**{"scope": "orders:write", **overrides})
    return payload, mint(payload=payload)


def _unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


VALID_CLAIMS, VALID = _token()
_, EXPIRED = _token(iat=NOW - 7200, exp=NOW - 3600)
_, NOT_YET_VALID = _token(nbf=NOW + 3600)
_, WRONG_AUDIENCE = _token(aud="https://other.example")
_, WRONG_ISSUER = _token(iss="https://evil.example")
_, READ_ONLY = _token(scope="orders:read")
_, OTHER_VALID = _token(sub="user-2")
BAD_SIGNATURE = tamper_signature(VALID)
FORGED = mint(payload=claims(scope="orders:write"), key=OTHER_SECRET)
ALG_NONE = _unsigned(claims(scope="orders:write"))
OVERSIZED = "A" * 9000  # > 8 KiB, < h11's 16 KiB and waitress's 256 KiB head limits
MALFORMED = "not$a*token!"


def bearer(token: str) -> list[tuple[str, str]]:
    """The headers of a request presenting ``token`` the usual way."""
    return [("authorization", f"Bearer {token}")]


def problem(reason: str, status: int, title: str, error: str | None, detail: str) -> bytes:
    """The exact body bytes the middleware sends for a failure."""
    document = {
        "type": f"tag:invalidtoken-mw,2026:reason:{reason}",
        "title": title,
        "status": status,
        "detail": detail,
        "error": error,
        "error_description": detail,
        "reason": reason,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def fragments(*tokens: str) -> tuple[str, ...]:
    """What must never be echoed: each token and each of its segments of 16+ characters."""
    parts = set(tokens) | {s for t in tokens for s in t.split(".") if len(s) >= 16}
    return tuple(sorted(parts))


@dataclass(frozen=True)
class Case:
    """One request and the exact answer both servers must give."""

    headers: list[tuple[str, str]]
    status: int
    challenge: str | None
    body: bytes
    reason: str | None = None
    method: str = "GET"
    content_type: str = "application/json"
    secrets: tuple[str, ...] = ()


def _rejection(
    headers: list[tuple[str, str]],
    *,
    reason: str,
    status: int,
    title: str,
    error: str | None,
    detail: str,
    challenge: str,
    secrets: tuple[str, ...] = (),
    method: str = "GET",
    content_type: str = "application/json",
) -> Case:
    body = b"" if method == "HEAD" else problem(reason, status, title, error, detail)
    return Case(headers, status, challenge, body, reason, method, content_type, secrets)


MISSING_DETAIL = "This resource requires a bearer token in the Authorization header."
EXPIRED_DETAIL = "The access token expired. Obtain a new one and retry."
EXPIRED_CHALLENGE = (
    f'Bearer realm="orders", error="invalid_token", error_description="{EXPIRED_DETAIL}"'
)
SEVERAL_DETAIL = "The request carries more than one access token; send exactly one."
SEVERAL_CHALLENGE = (
    f'Bearer realm="orders", error="invalid_request", error_description="{SEVERAL_DETAIL}"'
)
SCOPE_DETAIL = "The access token does not grant the scope this request requires."
SCOPE_CHALLENGE = (
    'Bearer realm="orders", error="insufficient_scope",'
    f' error_description="{SCOPE_DETAIL}", scope="orders:write"'
)


def _invalid_token(
    token: str, reason: str, title: str, detail: str, *, header: str | None = None
) -> Case:
    return _rejection(
        [("authorization", header or f"Bearer {token}")],
        reason=reason,
        status=401,
        title=title,
        error="invalid_token",
        detail=detail,
        challenge=f'Bearer realm="orders", error="invalid_token", error_description="{detail}"',
        secrets=fragments(token),
    )


CASES = [
    pytest.param(
        _rejection(
            [],
            reason="missing_token",
            status=401,
            title="Authentication required",
            error=None,
            detail=MISSING_DETAIL,
            challenge='Bearer realm="orders"',
        ),
        id="missing",
    ),
    pytest.param(
        _rejection(
            [("authorization", "Basic dXNlcjpwYXNzd29yZA==")],
            reason="missing_token",
            status=401,
            title="Authentication required",
            error=None,
            detail=MISSING_DETAIL,
            challenge='Bearer realm="orders"',
            secrets=("dXNlcjpwYXNzd29yZA==",),
        ),
        id="basic",
    ),
    pytest.param(
        _rejection(
            [("authorization", "Bearer")],
            reason="invalid_request",
            status=400,
            title="Invalid authentication request",
            error="invalid_request",
            detail="The request names the Bearer scheme but carries no token.",
            challenge='Bearer realm="orders", error="invalid_request", error_description='
            '"The request names the Bearer scheme but carries no token."',
        ),
        id="bearer-empty",
    ),
    pytest.param(
        _invalid_token(
            MALFORMED,
            "malformed_token",
            "Malformed access token",
            "The access token is malformed: it contains characters a bearer token cannot contain.",
        ),
        id="malformed-characters",
    ),
    pytest.param(
        _invalid_token(
            VALID,
            "malformed_token",
            "Malformed access token",
            "The access token is malformed: it is wrapped in quotes. Send the token without them.",
            header=f'Bearer "{VALID}"',
        ),
        id="quotes",
    ),
    pytest.param(
        _rejection(
            [("authorization", f"Bearer {VALID}"), ("authorization", f"Bearer {OTHER_VALID}")],
            reason="invalid_request",
            status=400,
            title="Invalid authentication request",
            error="invalid_request",
            detail=SEVERAL_DETAIL,
            challenge=SEVERAL_CHALLENGE,
            secrets=fragments(VALID, OTHER_VALID),
        ),
        id="two-authorization-headers",
    ),
    pytest.param(
        _rejection(
            [("authorization", f"Bearer {VALID}"), ("authorization", "Basic dXNlcjpwYXNz")],
            reason="invalid_request",
            status=400,
            title="Invalid authentication request",
            error="invalid_request",
            detail=SEVERAL_DETAIL,
            challenge=SEVERAL_CHALLENGE,
            secrets=fragments(VALID),
        ),
        id="bearer-and-basic-headers",
    ),
    pytest.param(
        _rejection(
            [("authorization", "Basic dXNlcjpwYXNz"), ("authorization", f"Bearer {VALID}")],
            reason="invalid_request",
            status=400,
            title="Invalid authentication request",
            error="invalid_request",
            detail=SEVERAL_DETAIL,
            challenge=SEVERAL_CHALLENGE,
            secrets=fragments(VALID),
        ),
        id="basic-and-bearer-headers",
    ),
    pytest.param(
        _invalid_token(
            OVERSIZED,
            "malformed_token",
            "Malformed access token",
            "The access token is malformed: it is larger than this service accepts. Send the"
            " access token, not another kind of token or document.",
        ),
        id="oversized",
    ),
    pytest.param(
        Case(
            bearer(VALID),
            200,
            None,
            success_body("GET", VALID_CLAIMS, ""),
            secrets=fragments(VALID),
        ),
        id="valid",
    ),
    pytest.param(
        _invalid_token(EXPIRED, "expired", "Access token expired", EXPIRED_DETAIL),
        id="expired",
    ),
    pytest.param(
        _invalid_token(
            NOT_YET_VALID,
            "not_yet_valid",
            "Access token not yet valid",
            "The access token is not valid yet. The clocks of the client, the issuer and this"
            " service may disagree.",
        ),
        id="not-yet-valid",
    ),
    pytest.param(
        _invalid_token(
            WRONG_AUDIENCE,
            "wrong_audience",
            "Wrong audience",
            "The access token was issued for another audience.",
        ),
        id="wrong-audience",
    ),
    pytest.param(
        _invalid_token(
            WRONG_ISSUER,
            "wrong_issuer",
            "Wrong issuer",
            "The access token was issued by an issuer this service does not trust.",
        ),
        id="wrong-issuer",
    ),
    pytest.param(
        _invalid_token(
            BAD_SIGNATURE,
            "bad_signature",
            "Invalid signature",
            "The access token signature is invalid.",
        ),
        id="tampered-signature",
    ),
    pytest.param(
        _invalid_token(
            FORGED,
            "bad_signature",
            "Invalid signature",
            "The access token signature is invalid.",
        ),
        id="signed-with-another-key",
    ),
    pytest.param(
        _invalid_token(
            ALG_NONE,
            "algorithm_not_allowed",
            "Signing algorithm not allowed",
            "The access token is not signed (alg none); this service requires a signature.",
        ),
        id="alg-none",
    ),
    pytest.param(
        _rejection(
            bearer(READ_ONLY),
            reason="insufficient_scope",
            status=403,
            title="Insufficient scope",
            error="insufficient_scope",
            detail=SCOPE_DETAIL,
            challenge=SCOPE_CHALLENGE,
            secrets=fragments(READ_ONLY),
        ),
        id="insufficient-scope",
    ),
    pytest.param(
        _rejection(
            bearer(EXPIRED),
            reason="expired",
            status=401,
            title="Access token expired",
            error="invalid_token",
            detail=EXPIRED_DETAIL,
            challenge=EXPIRED_CHALLENGE,
            secrets=fragments(EXPIRED),
            method="HEAD",
        ),
        id="head-has-no-body",
    ),
    pytest.param(
        _rejection(
            [*bearer(EXPIRED), ("accept", "application/problem+json")],
            reason="expired",
            status=401,
            title="Access token expired",
            error="invalid_token",
            detail=EXPIRED_DETAIL,
            challenge=EXPIRED_CHALLENGE,
            secrets=fragments(EXPIRED),
            content_type="application/problem+json",
        ),
        id="accept-problem-json",
    ),
]


# -- servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uvicorn_main() -> Iterator[str]:
    """The Starlette app with the usual options, under uvicorn."""
    with run_uvicorn(make_starlette_app(**MAIN_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def hypercorn_main() -> Iterator[str]:
    """The Starlette app with the usual options, under hypercorn."""
    with run_hypercorn(make_starlette_app(**MAIN_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def granian_main() -> Iterator[str]:
    """The Starlette app with the usual options, under granian."""
    with run_granian(make_starlette_app(**MAIN_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def waitress_main() -> Iterator[str]:
    """The Flask app with the usual options, under waitress (8 threads)."""
    with run_waitress(make_flask_app(**MAIN_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def uvicorn_relaxed() -> Iterator[str]:
    """The Starlette app with every opt-in on, under uvicorn."""
    with run_uvicorn(make_starlette_app(**RELAXED_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def hypercorn_relaxed() -> Iterator[str]:
    """The Starlette app with every opt-in on, under hypercorn."""
    with run_hypercorn(make_starlette_app(**RELAXED_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def granian_relaxed() -> Iterator[str]:
    """The Starlette app with every opt-in on, under granian."""
    with run_granian(make_starlette_app(**RELAXED_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def waitress_relaxed() -> Iterator[str]:
    """The Flask app with every opt-in on, under waitress."""
    with run_waitress(make_flask_app(**RELAXED_OPTIONS)) as url:
        yield url


@pytest.fixture(scope="module")
def uvicorn_fastapi() -> Iterator[str]:
    """A FastAPI app with the usual options, under uvicorn."""
    with run_uvicorn(make_fastapi_app(**MAIN_OPTIONS)) as url:
        yield url


@pytest.fixture(params=SERVERS)
def main(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of the usual configuration, once per server."""
    with client(request.getfixturevalue(f"{request.param}_main")) as main_client:
        yield main_client


@pytest.fixture(params=SERVERS)
def relaxed(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """A client of the every-opt-in configuration, once per server."""
    with client(request.getfixturevalue(f"{request.param}_relaxed")) as relaxed_client:
        yield relaxed_client


def send(client: httpx.Client, case: Case, url: str = "/orders") -> httpx.Response:
    """Send ``case``'s request; headers go out exactly as listed, duplicates included."""
    return client.request(case.method, url, headers=case.headers)


def rejected_events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    """The ``auth_rejected`` events among captured log entries."""
    return [entry for entry in logs if entry["event"] == "auth_rejected"]


# -- the table -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_table_exact_answer(main: httpx.Client, case: Case) -> None:
    """Each row gets its exact status, challenge, body, media type and cache policy."""
    response = send(main, case)
    no_store = None if case.status == 200 else "no-store"
    expected = (case.status, case.challenge, case.content_type, no_store, case.body)
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.headers.get("content-type"),
        response.headers.get("cache-control"),
        response.content,
    )


@pytest.mark.parametrize("case", CASES)
def test_table_servers_send_identical_answers(
    uvicorn_main: str, hypercorn_main: str, granian_main: str, waitress_main: str, case: Case
) -> None:
    """uvicorn, hypercorn, granian and waitress answer each row with the same status,
    headers and body bytes."""
    answers = []
    for url in (uvicorn_main, hypercorn_main, granian_main, waitress_main):
        with client(url) as http:
            response = send(http, case)
        answers.append(
            (
                response.status_code,
                response.headers.get_list("www-authenticate"),
                response.headers.get("content-type"),
                response.headers.get("cache-control"),
                response.content,
            )
        )
    expected = answers[:1] * len(answers)
    assert expected == answers


@pytest.mark.parametrize("case", CASES)
def test_token_never_echoed(main: httpx.Client, case: Case) -> None:
    """No token, nor any long segment of one, appears in a response header, body or log."""
    with capture_logs() as logs:
        response = send(main, case)
    written = [*(f"{k}: {v}" for k, v in response.headers.multi_items()), response.text]
    expected: list[tuple[str, str]] = []
    assert expected == [(s[:20], w[:40]) for s in case.secrets for w in written if s in w]
    assert expected == [(s[:20], "log") for s in case.secrets if s in repr(logs)]


@pytest.mark.parametrize("case", CASES)
def test_one_event_per_rejection(main: httpx.Client, case: Case) -> None:
    """A rejected request logs exactly one auth_rejected event with its reason; success none."""
    with capture_logs() as logs:
        send(main, case)
    expected = [] if case.reason is None else [(case.reason, case.status, "warning")]
    assert expected == [(e["reason"], e["status"], e["log_level"]) for e in rejected_events(logs)]


# -- where the token may come from -----------------------------------------------------


def test_query_token_ignored_by_default(main: httpx.Client) -> None:
    """With the query method off (the default), ?access_token= is ignored: a bare 401."""
    response = main.get("/orders", params={"access_token": VALID})
    expected = (401, 'Bearer realm="orders"', "missing_token")
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.json()["reason"],
    )


def test_body_token_ignored_by_default(main: httpx.Client) -> None:
    """With the body method off (the default), a form-body access_token is ignored."""
    response = main.post("/orders", content=f"access_token={VALID}", headers={"content-type": FORM})
    expected = (401, 'Bearer realm="orders"')
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


def test_query_token_accepted_and_private(relaxed: httpx.Client) -> None:
    """When on, a query token is accepted and the response is marked Cache-Control: private."""
    response = relaxed.get("/orders", params={"access_token": VALID})
    expected = (200, "private", success_body("GET", VALID_CLAIMS, ""))
    assert expected == (
        response.status_code,
        response.headers.get("cache-control"),
        response.content,
    )


def test_header_token_response_not_marked_private(relaxed: httpx.Client) -> None:
    """Only a query-token request gets Cache-Control: private; a header token leaves it alone."""
    response = relaxed.get("/orders", headers=bearer(VALID))
    expected = (200, None)
    assert expected == (response.status_code, response.headers.get("cache-control"))


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        pytest.param(
            f"access_token={VALID}&access_token={OTHER_VALID}", SEVERAL_DETAIL, id="repeated"
        ),
        pytest.param("access_token=", "The access_token parameter is empty.", id="empty"),
    ],
)
def test_repeated_or_empty_query_token_is_400(
    relaxed: httpx.Client, query: str, detail: str
) -> None:
    """A repeated or empty access_token parameter is a 400 invalid_request."""
    response = relaxed.get(f"/orders?{query}")
    challenge = f'Bearer realm="orders", error="invalid_request", error_description="{detail}"'
    expected = (400, challenge, "invalid_request")
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.json()["reason"],
    )


def test_header_and_query_token_is_400(relaxed: httpx.Client) -> None:
    """A token in the header and another in the query is a 400 invalid_request."""
    response = relaxed.get("/orders", params={"access_token": VALID}, headers=bearer(VALID))
    expected = (400, SEVERAL_CHALLENGE)
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


def test_form_body_token_accepted_and_body_replayed(relaxed: httpx.Client) -> None:
    """A form-body token is accepted, and the application still receives the whole body."""
    body = f"item=42&access_token={VALID}&note=" + "x" * 5000
    response = relaxed.post("/orders", content=body, headers={"content-type": FORM})
    expected = (200, success_body("POST", VALID_CLAIMS, body))
    assert expected == (response.status_code, response.content)


@pytest.mark.parametrize(
    ("method", "content_type"),
    [
        pytest.param("POST", "application/json", id="json-post"),
        pytest.param("POST", "text/plain", id="text-post"),
        pytest.param("GET", FORM, id="form-get"),
    ],
)
def test_body_token_only_in_form_posts(
    relaxed: httpx.Client, method: str, content_type: str
) -> None:
    """An access_token in a non-form body, or in a GET body, is ignored (here: anonymous)."""
    body = f"access_token={VALID}"
    response = relaxed.request(
        method, "/orders", content=body, headers={"content-type": content_type}
    )
    expected = (200, success_body(method, None, body))
    assert expected == (response.status_code, response.content)


# -- public paths, anonymous access, CORS ----------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/health/live"])
def test_excluded_path_is_public(main: httpx.Client, path: str) -> None:
    """An excluded path, and everything below it, is served without a token."""
    response = main.get(path)
    expected = (200, None)
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


def test_excluded_path_is_not_a_prefix_match(main: httpx.Client) -> None:
    """'/healthz' is not public when '/health' is: exclusion matches whole path segments."""
    response = main.get("/healthz")
    expected = (401, 'Bearer realm="orders"')
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


def test_optional_without_token_is_anonymous(relaxed: httpx.Client) -> None:
    """With optional=True a request without any token reaches the app with claims None."""
    response = relaxed.get("/orders")
    expected = (200, success_body("GET", None, ""))
    assert expected == (response.status_code, response.content)


def test_optional_bad_token_is_still_refused(relaxed: httpx.Client) -> None:
    """With optional=True a bad token is still a 401 with its precise challenge."""
    response = relaxed.get("/orders", headers=bearer(EXPIRED))
    expected = (401, EXPIRED_CHALLENGE)
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


def test_cors_preflight_answered_without_reaching_the_app(main: httpx.Client) -> None:
    """A CORS preflight (OPTIONS, Origin, Access-Control-Request-Method) needs no token, and
    the middleware answers it with a bare 204: the app's OPTIONS handler (which would add
    Access-Control-Allow-Origin) never runs without a token."""
    headers = {"origin": "https://app.example", "access-control-request-method": "POST"}
    response = main.options("/orders", headers=headers)
    expected = (204, None, None, b"")
    assert expected == (
        response.status_code,
        response.headers.get("access-control-allow-origin"),
        response.headers.get("www-authenticate"),
        response.content,
    )


def test_options_without_request_method_is_not_a_preflight(main: httpx.Client) -> None:
    """OPTIONS with an Origin but no Access-Control-Request-Method is authenticated."""
    response = main.options("/orders", headers={"origin": "https://app.example"})
    expected = (401, 'Bearer realm="orders"')
    assert expected == (response.status_code, response.headers.get("www-authenticate"))


@pytest.mark.parametrize(
    ("path", "token", "challenge"),
    [
        pytest.param("/orders", EXPIRED, EXPIRED_CHALLENGE, id="middleware-rejection"),
        pytest.param("/app-401/bare", VALID, 'Bearer realm="orders"', id="app-bare-401"),
    ],
)
def test_cors_exposes_the_challenge(
    main: httpx.Client, path: str, token: str, challenge: str
) -> None:
    """With an Origin, a 401 lists www-authenticate in Access-Control-Expose-Headers."""
    response = main.get(path, headers=[*bearer(token), ("origin", "https://app.example")])
    expected = (401, challenge, ["www-authenticate"])
    assert expected == (
        response.status_code,
        response.headers.get("www-authenticate"),
        response.headers.get_list("access-control-expose-headers"),
    )


def test_no_expose_header_without_origin(main: httpx.Client) -> None:
    """Without an Origin (not a CORS request) no Access-Control-Expose-Headers is added."""
    response = main.get("/orders", headers=bearer(EXPIRED))
    expected = (401, None)
    assert expected == (
        response.status_code,
        response.headers.get("access-control-expose-headers"),
    )


# -- failures raised by the application ------------------------------------------------

APP_SERVERS = ["uvicorn_main", "hypercorn_main", "granian_main", "uvicorn_fastapi", "waitress_main"]
APP_SERVER_IDS = ["starlette", "starlette-hypercorn", "starlette-granian", "fastapi", "flask"]


@pytest.mark.parametrize("server", APP_SERVERS, ids=APP_SERVER_IDS)
@pytest.mark.parametrize(
    ("path", "own_token"),
    [
        pytest.param("/raise/auth-failure", READ_ONLY, id="AuthFailure"),
        pytest.param("/raise/expired", EXPIRED, id="jwt.ExpiredSignatureError"),
    ],
)
def test_app_failure_rendered_like_the_middlewares_own(
    request: pytest.FixtureRequest, server: str, path: str, own_token: str
) -> None:
    """An endpoint's AuthFailure or PyJWT error gets exactly the middleware's own answer (the
    Flask app sets PROPAGATE_EXCEPTIONS=True, without which Flask answers 500 itself)."""
    answers = []
    with client(request.getfixturevalue(server)) as http:
        for token in (own_token, VALID):
            with capture_logs() as logs:
                response = http.get(path, headers=bearer(token))
            answers.append(
                (
                    response.status_code,
                    [
                        (k, v)
                        for k, v in response.headers.multi_items()
                        if k not in {"date", "server"}
                    ],
                    response.content,
                    [e["reason"] for e in rejected_events(logs)],
                )
            )
    expected, actual = answers
    assert expected == actual


# -- 401s produced by the application -------------------------------------------------


def test_bare_app_401_gets_a_challenge(main: httpx.Client) -> None:
    """A 401 from the application without WWW-Authenticate gets the bare Bearer challenge."""
    response = main.get("/app-401/bare", headers=bearer(VALID))
    expected = (401, ['Bearer realm="orders"'])
    assert expected == (response.status_code, response.headers.get_list("www-authenticate"))


def test_app_401_with_own_challenge_left_alone(main: httpx.Client) -> None:
    """A 401 from the application with its own challenge is not touched."""
    response = main.get("/app-401/own", headers=bearer(VALID))
    expected = (401, ['Basic realm="legacy"'])
    assert expected == (response.status_code, response.headers.get_list("www-authenticate"))


def test_add_missing_challenge_off_leaves_app_401_alone(relaxed: httpx.Client) -> None:
    """With add_missing_challenge=False, a bare 401 from the application stays bare."""
    response = relaxed.get("/app-401/bare")
    expected: tuple[int, list[str]] = (401, [])
    assert expected == (response.status_code, response.headers.get_list("www-authenticate"))


def test_started_stream_is_never_turned_into_a_401(main: httpx.Client) -> None:
    """An AuthFailure raised after a streamed response started only cuts the stream short."""
    with (
        capture_logs() as logs,
        main.stream("GET", "/stream-then-fail", headers=bearer(VALID)) as response,
    ):
        head = (response.status_code, response.headers.get("www-authenticate"))
        with pytest.raises(httpx.RemoteProtocolError):
            response.read()
    expected: tuple[tuple[int, None], list[MutableMapping[str, Any]]] = ((200, None), [])
    assert expected == (head, rejected_events(logs))


# -- lifespan and load -----------------------------------------------------------------


@pytest.mark.parametrize("server", ["uvicorn_main", "hypercorn_main", "granian_main"])
def test_lifespan_startup_runs_under_asgi_servers(
    request: pytest.FixtureRequest, server: str
) -> None:
    """The lifespan scope passes through: Starlette's startup ran and its state reaches requests."""
    with client(request.getfixturevalue(server)) as http:
        response = http.get("/health")
    expected = {"lifespan_started": True, "status": "ok"}
    assert expected == response.json()


KINDS = [("valid", "expired", "missing")[i % 3] for i in range(50)]


def test_threaded_waitress_answers_every_request_correctly(waitress_main: str) -> None:
    """8 threads x 50 requests mixing valid, expired and missing tokens all get the right answer."""
    subjects = [f"user-{n}" for n in range(8)]
    valid_by_subject = {sub: _token(sub=sub)[1] for sub in subjects}

    def worker(sub: str) -> list[tuple[int, str | None, str | None]]:
        results = []
        with client(waitress_main) as http:
            for kind in KINDS:
                headers = {"valid": bearer(valid_by_subject[sub]), "expired": bearer(EXPIRED)}
                response = http.get("/orders", headers=headers.get(kind, []))
                claims_sub = (
                    response.json()["claims"]["sub"] if response.status_code == 200 else None
                )
                results.append(
                    (response.status_code, response.headers.get("www-authenticate"), claims_sub)
                )
        return results

    with ThreadPoolExecutor(max_workers=8) as pool:
        actual = list(pool.map(worker, subjects))
    answers = {
        "valid": (200, None),
        "expired": (401, EXPIRED_CHALLENGE),
        "missing": (401, 'Bearer realm="orders"'),
    }
    expected = [
        [(*answers[kind], sub if kind == "valid" else None) for kind in KINDS] for sub in subjects
    ]
    assert expected == actual
