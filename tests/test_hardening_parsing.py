"""Parsing hardening (issue 13, defects 8, 9 and 11) through real servers.

Starlette under uvicorn and Flask under waitress, both with query and body tokens on
and the ``admin`` scope required, answer requests whose bytes two parsers could read
differently:

=========================================  ============================================
request                                    expected
=========================================  ============================================
header token + ``?access%5Ftoken=``        400 ``invalid_request``: the application's
(or ``%61ccess_token``, any spelling)      own query parser sees that second token
``?access%5Ftoken=<token>`` alone          200, the very token the application sees
header token + ``;access_token=``          400 ``invalid_request``: ';'-splitting
                                           parsers see a second token
header token + a 40 KB form body           200: long forms are parsed, not refused
``scope: "read\\u00a0admin"`` and other    403 ``insufficient_scope``: only U+0020
non-space whitespace                       separates scopes (RFC 6749 §3.3)
claims with U+202E, U+2066, U+200B ...     the ``auth_rejected`` event holds no format,
                                           control or line-separator character
=========================================  ============================================
"""

from __future__ import annotations

import time
import unicodedata
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from flask import request as flask_request
from hypothesis import given
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    granted_scopes,
)
from support.servers import WSGI_CLAIMS_KEY, client, make_verifier, run_uvicorn, run_waitress
from support.strategies import NQCHARS, scope_claim_values
from support.tokens import AUDIENCE, claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from starlette.requests import Request

SERVERS = ["uvicorn", "waitress"]
SCOPE = "admin"
FORM = "application/x-www-form-urlencoded"
OPTIONS: dict[str, Any] = {
    "realm": "api",
    "allow_query_token": True,
    "allow_body_token": True,
    "scopes": [SCOPE],
    "log_rate_limit": None,
}
HEADER_TOKEN = mint(payload=claims(sub="header-user", scope=SCOPE))
OTHER_TOKEN = mint(payload=claims(sub="query-user", scope=SCOPE))  # sent as a parameter


# -- the applications: each reports what its own parser sees ---------------------------


async def _echo(request: Request) -> JSONResponse:
    token_claims = request.state.token_claims
    return JSONResponse(
        {
            "sub": token_claims["sub"],
            "query_tokens": request.query_params.getlist("access_token"),
            "body_bytes": len(await request.body()),
        }
    )


def starlette_app() -> Starlette:
    """Starlette reading the query with its own parser (``request.query_params``)."""
    app = Starlette(routes=[Route("/echo", _echo, methods=["GET", "POST"])])
    app.add_middleware(InvalidTokenMiddleware, verifier=make_verifier(), **OPTIONS)
    return app


def flask_app() -> Flask:
    """Flask reading the query and form with Werkzeug's parsers (``args``, ``form``)."""
    app = Flask("hardening")

    @app.route("/echo", methods=["GET", "POST"])
    def echo() -> dict[str, Any]:
        token_claims = flask_request.environ[WSGI_CLAIMS_KEY]
        body = flask_request.get_data()
        return {
            "sub": token_claims["sub"],
            "query_tokens": flask_request.args.getlist("access_token"),
            "body_bytes": len(body),
        }

    app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, verifier=make_verifier(), **OPTIONS
    )
    return app


@pytest.fixture(scope="module", params=SERVERS)
def base_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each application under its real server, started once per module."""
    if request.param == "uvicorn":
        with run_uvicorn(starlette_app()) as url:
            yield url
    else:
        with run_waitress(flask_app()) as url:
            yield url


def _get(
    base_url: str, query: str = "", *, token: str | None = HEADER_TOKEN, form: str | None = None
) -> httpx.Response:
    """GET (or, with ``form``, POST a form) ``/echo?<query>``, the query sent byte for byte."""
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    target = f"/echo?{query}" if query else "/echo"
    with client(base_url) as http:
        if form is None:
            return http.get(target, headers=headers)
        return http.post(target, headers={**headers, "content-type": FORM}, content=form)


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    return response.status_code, response.json()["error"], response.json()["reason"]


# -- defect 8: percent-encoded access_token names ---------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(f"access%5Ftoken={OTHER_TOKEN}", id="access%5Ftoken"),
        pytest.param(f"%61ccess_token={OTHER_TOKEN}", id="%61ccess_token"),
        pytest.param(f"x=1&access%5ftoken={OTHER_TOKEN}", id="lower-case-escape"),
        pytest.param(f"%61%63%63%65%73%73%5F%74%6F%6B%65%6E={OTHER_TOKEN}", id="all-encoded"),
    ],
)
def test_header_token_plus_encoded_query_name_is_invalid_request(base_url: str, query: str) -> None:
    """The application's parser reads these names as access_token: a second token, a 400."""
    response = _get(base_url, query)
    assert (400, "invalid_request", "invalid_request") == _refusal(response)


def test_encoded_query_name_alone_is_the_token_the_application_sees(base_url: str) -> None:
    """The extractor verifies exactly the token the application's own parser finds."""
    response = _get(base_url, f"access%5Ftoken={OTHER_TOKEN}", token=None)
    expected = (200, "query-user", [OTHER_TOKEN])
    actual = (response.status_code, response.json()["sub"], response.json()["query_tokens"])
    assert expected == actual


def test_encoded_body_name_alone_is_the_token(base_url: str) -> None:
    """A form-body token under an encoded name is verified as the body token."""
    response = _get(base_url, token=None, form=f"x=1&access%5Ftoken={OTHER_TOKEN}")
    assert (200, "query-user") == (response.status_code, response.json()["sub"])


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("access_token=a&%61ccess_token=b", id="literal-and-encoded"),
        pytest.param("%61ccess_token=a&access%5Ftoken=b", id="two-encoded"),
    ],
)
def test_access_token_repeated_under_another_spelling_is_invalid_request(
    base_url: str, query: str
) -> None:
    """Two spellings of the name are two tokens."""
    response = _get(base_url, query, token=None)
    assert (400, "invalid_request", "invalid_request") == _refusal(response)


@pytest.mark.parametrize(
    ("query", "form"),
    [
        pytest.param(f"x=1;access_token={OTHER_TOKEN}", None, id="query"),
        pytest.param("", f"x=1;access_token={OTHER_TOKEN}", id="body"),
        pytest.param("", f"access%5Ftoken={OTHER_TOKEN}", id="body-encoded-name"),
    ],
)
def test_header_token_plus_a_token_other_parsers_see_is_invalid_request(
    base_url: str, query: str, form: str | None
) -> None:
    """A token only ';'-splitting parsers (Bottle, old python-multipart) see is still one."""
    response = _get(base_url, query, form=form)
    assert (400, "invalid_request", "invalid_request") == _refusal(response)


def test_header_token_with_a_long_form_is_accepted(base_url: str) -> None:
    """A 40 KB form (five times max_token_bytes) is parsed for a token, not refused."""
    form = "&".join(f"field{i}=value%20{i}" for i in range(2500))
    response = _get(base_url, form=form)
    expected = (200, "header-user", len(form))
    actual = (response.status_code, response.json()["sub"], response.json()["body_bytes"])
    assert expected == actual


def test_header_token_with_other_parameters_is_accepted(base_url: str) -> None:
    """Escapes and semicolons elsewhere in the query change nothing."""
    response = _get(base_url, "q=caf%C3%A9;latte&page=2")
    expected: tuple[int, str, list[str]] = (200, "header-user", [])
    actual = (response.status_code, response.json()["sub"], response.json()["query_tokens"])
    assert expected == actual


# -- defect 9: scopes split on spaces only -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("scope", "read\u00a0admin", id="no-break-space"),
        pytest.param("scope", "read\u3000admin", id="ideographic-space"),
        pytest.param("scope", "read\u2028admin", id="line-separator"),
        pytest.param("scope", "read\x1cadmin", id="file-separator"),
        pytest.param("scope", "read\tadmin", id="tab"),
        pytest.param("scope", "read\nadmin", id="line-feed"),
        pytest.param("scp", "read\u00a0admin", id="scp-string"),
        pytest.param("scp", ["read", "\u2003admin"], id="scp-list-item-with-em-space"),
        pytest.param("scope", "read admin\u200b", id="zero-width-space-after"),
    ],
)
def test_scope_split_on_other_whitespace_grants_nothing(
    base_url: str, name: str, value: object
) -> None:
    """Only U+0020 separates scopes: each of these tokens lacks ``admin`` (403)."""
    token = mint(payload=claims(**{name: value}))
    response = _get(base_url, token=token)
    assert (403, "insufficient_scope", "insufficient_scope") == _refusal(response)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("scope", "read admin", id="space-separated"),
        pytest.param("scope", " read  admin ", id="extra-spaces"),
        pytest.param("scp", ["read", "admin"], id="scp-list"),
    ],
)
def test_scope_separated_by_spaces_grants_admin(base_url: str, name: str, value: object) -> None:
    """The control: space-separated or listed, ``admin`` is granted."""
    token = mint(payload=claims(**{name: value}))
    assert 200 == _get(base_url, token=token).status_code


@given(scope=scope_claim_values(), scp=scope_claim_values())
def test_granted_scopes_are_always_rfc6749_scope_tokens(scope: object, scp: object) -> None:
    """Every granted scope is a scope-token and one whole space-separated part or list item."""
    granted = granted_scopes({"scope": scope, "scp": scp})
    parts: set[object] = set()
    for value in (scope, scp):
        parts.update(value.split(" ") if isinstance(value, str) else value)  # type: ignore[arg-type]
    assert [] == [s for s in granted if not s or set(s) - set(NQCHARS) or s not in parts]


# -- defect 11: format characters never reach the log ------------------------------------

_SPOOFING = {
    "sub": "user\u202egnp.exe",  # RIGHT-TO-LEFT OVERRIDE: shows as "userexe.png"
    "iss": "https://issuer.example\u2066\u2069\u200b",
    "jti": "j\ufeff\u2028\u2029\U000e0041d",
    "aud": [AUDIENCE, "a\u200db\u061cc"],
}
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_format_characters_from_claims_never_reach_the_log(base_url: str) -> None:
    """A refused token whose claims carry bidi overrides logs them without those characters."""
    now = int(time.time())
    token = mint(
        payload=claims(iat=now - 7200, exp=now - 3600, **_SPOOFING),
        headers={"kid": "key\u202e1"},
    )
    with capture_logs() as captured:
        response = _get(base_url, token=token)
    events = [e for e in captured if e["event"] == "auth_rejected"]
    assert (401, 1) == (response.status_code, len(events))
    event = events[0]
    unsafe = [
        (key, f"U+{ord(char):04X}")
        for key, value in event.items()
        for text in _strings(value)
        for char in text
        if unicodedata.category(char) in _UNSAFE_CATEGORIES
    ]
    assert [] == unsafe
    expected = ("usergnp.exe", "key1", "jd", [AUDIENCE, "abc"])
    assert expected == (event["sub"], event["kid"], event["jti"], event["aud"])
