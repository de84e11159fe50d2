"""Per-route policy in the guard: optional tokens, any-of scopes, the app's error body.

``optional_paths`` and ``Guard.authenticate(..., optional=True)`` make a token optional
for some requests only: no token goes through anonymously, a token that is sent is
verified and a bad one refused. ``Guard.check_scopes`` is the one route-level scope check
(app-wide scopes plus the route's, all of them or any one). ``error_body`` shapes the
body of every answer. The middleware-level behaviour is checked through uvicorn and
waitress.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import (
    Accepted,
    AuthFailure,
    Guard,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    Reason,
    check_scopes,
)
from invalidtoken_mw.testing import parse_challenges
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextlib import AbstractContextManager

    from starlette.requests import Request as StarletteRequest

# -- any-of scopes ---------------------------------------------------------------------


def test_any_of_accepts_any_one_scope() -> None:
    check_scopes({"scope": "orders:admin"}, ["orders:read", "orders:admin"], any_of=True)
    check_scopes({"scp": ["orders:read"]}, ["orders:read", "orders:admin"], any_of=True)
    check_scopes({}, [], any_of=True)


def test_any_of_refusal_names_every_alternative_and_says_one_will_do() -> None:
    with pytest.raises(AuthFailure) as refused:
        check_scopes({"scope": "profile"}, ["orders:read", "orders:admin"], any_of=True)
    failure = refused.value
    assert failure.reason is Reason.INSUFFICIENT_SCOPE
    assert failure.scopes == ("orders:read", "orders:admin")
    assert "any one of them" in failure.description
    assert failure.context == {
        "missing_scopes": ["orders:read", "orders:admin"],
        "scopes_rule": "any",
    }


def test_all_of_is_still_the_default() -> None:
    with pytest.raises(AuthFailure) as refused:
        check_scopes({"scope": "orders:read"}, ["orders:read", "orders:write"])
    assert refused.value.context == {"missing_scopes": ["orders:write"]}


def test_guard_check_scopes_joins_the_app_wide_scopes() -> None:
    guard = Guard(verifier=make_verifier(), scopes=["api"])
    guard.check_scopes({"scope": "api orders:read"}, ["orders:read", "orders:admin"], any_of=True)
    guard.check_scopes({"scope": "api orders:read orders:write"}, ["orders:read", "orders:write"])
    with pytest.raises(AuthFailure) as refused:
        guard.check_scopes({"scope": "orders:read"}, ["orders:read"], any_of=True)
    assert refused.value.scopes == ("api",)  # the app-wide scope is what is missing
    with pytest.raises(AuthFailure) as refused:
        guard.check_scopes({"scope": "api"}, ["orders:read", "orders:write"])
    assert refused.value.scopes == ("api", "orders:read", "orders:write")
    with pytest.raises(AuthFailure):
        guard.check_scopes({}, ["orders:read"], any_of=True)


# -- optional per path and per request, through real servers ----------------------------


async def _whoami(request: StarletteRequest) -> JSONResponse:
    found: dict[str, Any] | None = request.state.token_claims
    return JSONResponse({"sub": None if found is None else found["sub"]})


def _starlette(**options: Any) -> Starlette:
    app = Starlette(
        routes=[Route("/feed", _whoami), Route("/feed/live", _whoami), Route("/orders", _whoami)]
    )
    return InvalidTokenMiddleware(app, verifier=make_verifier(), realm="orders", **options)  # type: ignore[return-value]


def _wsgi(**options: Any) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        found = environ["invalidtoken_mw.claims"]
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"sub": None if found is None else found["sub"]}).encode()]

    return InvalidTokenWSGIMiddleware(app, verifier=make_verifier(), realm="orders", **options)


@pytest.fixture(params=["uvicorn", "waitress"])
def serve(request: pytest.FixtureRequest) -> Callable[..., AbstractContextManager[str]]:
    """A function serving an app built with the given options under the server."""
    if request.param == "uvicorn":
        return lambda **options: run_uvicorn(_starlette(**options))
    return lambda **options: run_waitress(_wsgi(**options))


def test_optional_paths_let_anonymous_requests_through(serve: Callable[..., Any]) -> None:
    with serve(optional_paths=["/feed"]) as base, client(base) as http:
        assert http.get("/feed").json() == {"sub": None}
        assert http.get("/feed/live").status_code != 401  # below it too (prefix match)
        good = http.get("/feed", headers={"Authorization": f"Bearer {mint()}"})
        assert good.json() == {"sub": "user-1"}
        expired = mint(payload=claims(iat=1, exp=2))
        bad = http.get("/feed", headers={"Authorization": f"Bearer {expired}"})
        assert bad.status_code == 401
        assert bad.json()["reason"] == "expired"
        garbled = http.get("/feed", headers={"Authorization": "Bearer not a token"})
        assert garbled.status_code in {400, 401}
        # Other paths still need a token.
        refused = http.get("/orders")
        assert refused.status_code == 401
        assert refused.json()["reason"] == "missing_token"
        assert parse_challenges(refused.headers["www-authenticate"])[0].params == {
            "realm": "orders"
        }


def test_error_body_option_shapes_every_middleware_answer(serve: Callable[..., Any]) -> None:
    def envelope(failure: AuthFailure) -> dict[str, object]:
        return {"error": failure.reason.value}

    with serve(error_body=envelope) as base, client(base) as http:
        answer = http.get("/orders", headers={"Accept": "application/problem+json"})
        assert answer.status_code == 401
        assert answer.content == b'{"error":"missing_token"}'
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["content-length"] == str(len(answer.content))
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["www-authenticate"] == 'Bearer realm="orders"'


class _View:
    """The smallest RequestView: a path and an Authorization header."""

    def __init__(self, authorization: str | None = None, path: str = "/x") -> None:
        self.method = "GET"
        self.path = path
        self._authorization = authorization

    def header(self, name: str) -> str | None:
        return self._authorization if name == "authorization" else None

    def field_lines(self, name: str) -> list[str]:
        value = self.header(name)
        return [] if value is None else [value]

    def query_string(self) -> str:
        return ""

    def full_path(self) -> str:
        return self.path

    def peer(self) -> str | None:
        return None

    def read_form(self) -> str | None:
        return None


def test_authenticate_optional_for_one_request() -> None:
    guard = Guard(verifier=make_verifier())
    anonymous = guard.authenticate(_View(), optional=True)
    assert isinstance(anonymous, Accepted)
    assert anonymous.claims is None
    refused = guard.authenticate(_View())
    assert getattr(refused, "failure", None) is not None
    accepted = guard.authenticate(_View(f"Bearer {mint()}"), optional=True)
    assert isinstance(accepted, Accepted)
    assert accepted.claims is not None
    assert accepted.claims["sub"] == "user-1"
    bad = guard.authenticate(_View(f"Bearer {mint(payload=claims(aud='other'))}"), optional=True)
    failure = getattr(bad, "failure", None)
    assert failure is not None
    assert failure.reason is Reason.WRONG_AUDIENCE


def test_authenticate_async_optional_for_one_request() -> None:
    class _AsyncView(_View):
        async def read_form(self) -> str | None:  # type: ignore[override]
            return None

    guard = Guard(verifier=make_verifier())
    anonymous = asyncio.run(guard.authenticate_async(_AsyncView(), optional=True))
    assert isinstance(anonymous, Accepted)
    assert anonymous.claims is None
    refused = asyncio.run(guard.authenticate_async(_AsyncView()))
    assert getattr(refused, "failure", None) is not None


def test_optional_paths_must_be_paths() -> None:
    with pytest.raises(ValueError, match="optional_paths entries must start with '/'"):
        Guard(verifier=make_verifier(), optional_paths=["feed"])
