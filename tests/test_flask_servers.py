"""Flask through waitress, as users run it: the extension, and the plain WSGI recipe's limits.

The two Flask rows of the framework matrix (``support.frameworks.flask`` and
``support.frameworks.flask_wsgi``) are served by waitress and each answer is compared,
byte for byte (status, challenge, content type, cache control, body), with what the
plain ``InvalidTokenWSGIMiddleware`` sends for the same failure around a bare WSGI
application (the reference, also under waitress).

The plain recipe (``app.wsgi_app = InvalidTokenWSGIMiddleware(app.wsgi_app, ...)``) is
tested as production runs it, without ``PROPAGATE_EXCEPTIONS``: a failure a view raises
gets Flask's own 500 page, which is why the docs steer Flask users to the extension.
Other tests set ``PROPAGATE_EXCEPTIONS=True`` to test the middleware's own handling of
raised failures with a Flask app; the last test here shows that this setting (which
debug and testing mode imply) is what makes the difference.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest

from invalidtoken_mw import AuthFailure, InvalidTokenWSGIMiddleware, Reason, check_scopes
from support.frameworks import flask as flask_extension
from support.frameworks import flask_wsgi
from support.servers import client, make_verifier, run_waitress
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from types import ModuleType

    import httpx

NOW = int(time.time())
VALID = mint()
READ = mint(payload=claims(scope="orders:read"))
ADMIN = mint(payload=claims(scope="orders:admin"))
READ_WRITE = mint(payload=claims(scope="orders:read orders:write"))
EXPIRED = mint(payload=claims(iat=NOW - 7200, exp=NOW - 3600))
COMPARED = ("www-authenticate", "content-type", "cache-control")
Answer = tuple[int, dict[str, str | None], bytes]


def own_body(failure: AuthFailure) -> Mapping[str, Any]:
    """An application's own error envelope."""
    return {"error": {"code": failure.reason.value, "message": failure.description}}


def _reference_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A bare WSGI app: the same routes, failures raised where a bare app can raise them."""
    path = environ["PATH_INFO"]
    found = environ.get("invalidtoken_mw.claims") or {}
    if path == "/raise":
        raise AuthFailure(Reason.REVOKED)
    if path == "/raise-pyjwt":
        raise jwt.ExpiredSignatureError("expired")
    if path == "/scopes-any":
        check_scopes(found, ["orders:read", "orders:admin"], any_of=True)
    if path == "/scopes-all":
        check_scopes(found, ["orders:read", "orders:write"])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": found.get("sub")}).encode()]


def reference(*, error_body: Callable[[AuthFailure], Mapping[str, Any]] | None = None) -> Any:
    """The plain middleware's answers: the bytes every Flask answer must match."""
    return InvalidTokenWSGIMiddleware(
        _reference_app,
        verifier=make_verifier(),
        realm="orders",
        optional_paths=["/optional"],
        error_body=error_body,
    )


def answer(http: httpx.Client, path: str, token: str | None = None) -> Answer:
    """Status, the compared headers and the body of one GET."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = http.get(path, headers=headers)
    return (
        response.status_code,
        {name: response.headers.get(name) for name in COMPARED},
        response.content,
    )


@pytest.fixture(scope="module")
def expected() -> Iterator[httpx.Client]:
    """The reference, under waitress."""
    with run_waitress(reference()) as url, client(url) as http:
        yield http


@pytest.fixture(scope="module", params=[flask_extension, flask_wsgi], ids=["extension", "wsgi"])
def framework(request: pytest.FixtureRequest) -> ModuleType:
    """One of the two Flask rows."""
    module: ModuleType = request.param
    return module


@pytest.fixture(scope="module")
def served(framework: ModuleType) -> Iterator[httpx.Client]:
    """The row's application, under waitress."""
    with run_waitress(framework.build(make_verifier())) as url, client(url) as http:
        yield http


@pytest.mark.parametrize(
    ("path", "token"),
    [
        pytest.param("/protected", None, id="no-token"),
        pytest.param("/protected", EXPIRED, id="expired"),
        pytest.param("/protected", f"{VALID}x", id="bad-signature"),
        pytest.param("/optional", EXPIRED, id="optional-expired"),
    ],
)
def test_refusals_match_the_plain_middleware(
    served: httpx.Client, expected: httpx.Client, path: str, token: str | None
) -> None:
    """The refusal of a missing or bad token is the plain middleware's, byte for byte."""
    assert answer(expected, path, token) == answer(served, path, token)


@pytest.mark.parametrize(
    ("token", "sub"), [pytest.param(None, None, id="anonymous"), pytest.param(VALID, "user-1")]
)
def test_optional_route(served: httpx.Client, token: str | None, sub: str | None) -> None:
    """The optional route: anonymous gets None, a valid token its subject."""
    response = served.get(
        "/optional", headers={} if token is None else {"Authorization": f"Bearer {token}"}
    )
    assert (200, {"sub": sub}) == (response.status_code, response.json())


def test_bare_401_from_a_view_gets_the_challenge(served: httpx.Client) -> None:
    """abort(401) in a view goes out with the bare challenge (Flask's own body kept)."""
    status, headers, _ = answer(served, "/bare-401", VALID)
    assert (401, 'Bearer realm="orders"') == (status, headers["www-authenticate"])


def test_custom_error_body(framework: ModuleType) -> None:
    """error_body shapes the body; status, challenge and headers stay the library's."""
    built = framework.build(make_verifier(), error_body=own_body)
    with (
        run_waitress(built) as url,
        client(url) as http,
        run_waitress(reference(error_body=own_body)) as reference_url,
        client(reference_url) as reference_http,
    ):
        got = [answer(http, "/protected", token) for token in (None, EXPIRED)]
        want = [answer(reference_http, "/protected", token) for token in (None, EXPIRED)]
    assert want == got
    assert b'"code":"expired"' in got[1][2]


RAISED = [
    pytest.param("/raise", VALID, id="AuthFailure"),
    pytest.param("/raise-pyjwt", VALID, id="pyjwt"),
    pytest.param("/scopes-any", VALID, id="scopes-any-none"),
    pytest.param("/scopes-all", READ, id="scopes-all-one-missing"),
]


@pytest.mark.parametrize(("path", "token"), RAISED)
def test_extension_renders_what_views_raise(expected: httpx.Client, path: str, token: str) -> None:
    """Failures raised in views (and the scope decorators') get the plain middleware's answer."""
    with run_waitress(flask_extension.build(make_verifier())) as url, client(url) as http:
        assert answer(expected, path, token) == answer(http, path, token)


@pytest.mark.parametrize(
    ("path", "token"),
    [
        pytest.param("/scopes-any", READ, id="any-first"),
        pytest.param("/scopes-any", ADMIN, id="any-second"),
        pytest.param("/scopes-all", READ_WRITE, id="all"),
    ],
)
def test_extension_scope_decorators_let_granted_tokens_through(path: str, token: str) -> None:
    """require_any_scope takes either scope; require_scopes takes a token with both."""
    with run_waitress(flask_extension.build(make_verifier())) as url, client(url) as http:
        response = http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert (200, {"ok": True}) == (response.status_code, response.json())


@pytest.mark.parametrize(("path", "token"), RAISED)
def test_plain_wsgi_recipe_answers_500_to_what_views_raise(path: str, token: str) -> None:
    """The documented limit: behind the plain middleware, Flask answers a raised failure 500.

    Flask's ``handle_exception`` turns the exception into its own 500 page before the
    middleware sees it; no challenge, no log event. docs/flask.md says so and steers
    to the extension (and flask_wsgi.UNSUPPORTED names these columns).
    """
    with run_waitress(flask_wsgi.build(make_verifier())) as url, client(url) as http:
        status, headers, body = answer(http, path, token)
    assert (500, None) == (status, headers["www-authenticate"])
    assert b"Internal Server Error" in body
    assert {"raise", "scopes"} == set(flask_wsgi.UNSUPPORTED)


def test_plain_wsgi_recipe_works_only_when_flask_propagates_exceptions(
    expected: httpx.Client,
) -> None:
    """PROPAGATE_EXCEPTIONS (implied by debug and testing mode) lets the middleware render it.

    So the plain recipe behaves in development and under a test client, then answers
    500 in production: the reason the docs recommend the extension instead.
    """
    app = flask_wsgi.build(make_verifier())
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with run_waitress(app) as url, client(url) as http:
        assert answer(expected, "/raise", VALID) == answer(http, "/raise", VALID)


@pytest.mark.parametrize("module", [flask_extension, flask_wsgi], ids=["extension", "wsgi"])
def test_head_refusal_keeps_the_get_answers_length(module: ModuleType) -> None:
    """HEAD gets the headers of the GET answer, Content-Length included (RFC 9110 §9.3.2)."""
    with (
        run_waitress(reference()) as reference_base,
        client(reference_base) as reference_http,
        run_waitress(module.build(make_verifier())) as base,
        client(base) as http,
    ):
        for headers in ({}, {"Authorization": f"Bearer {EXPIRED}"}):
            expected = reference_http.head("/protected", headers=headers)
            got = http.head("/protected", headers=headers)
            assert got.status_code == expected.status_code == 401
            assert got.content == b""
            for name in (*COMPARED, "content-length"):
                assert got.headers.get(name) == expected.headers.get(name), name
            assert int(got.headers["content-length"]) > 0
