"""No 500 from a signed claim or a revocation store, on every adapter, through real servers.

- A token signed by the trusted key may carry an ``iat`` or ``exp`` beyond any float
  (``-10**309``, ``10**309``): valid JSON numbers. With a revocation store configured,
  each is judged by the rules (revoked, expired, not yet valid or accepted), never
  answered 500, with the memory store and with Redis; a token revoked until such an
  ``exp`` stays revoked.
- A store of the application's own (the ``RevocationStore`` protocol) that raises
  answers 503 ``revocation_unavailable`` with ``Retry-After``, an ``auth_rejected``
  event naming the error type and one ``revocation_store_error`` event naming only
  types; an ``AuthFailure`` it raises is answered as it is.

Each test serves one adapter: Starlette (``InvalidTokenMiddleware``) and FastAPI
(``install``) under uvicorn, Flask with ``InvalidTokenWSGIMiddleware`` and with the
``InvalidToken`` extension under waitress. The servers run in threads of this process,
so ``structlog.testing.capture_logs`` sees every event.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from flask import Flask, g
from flask import Response as FlaskResponse
from flask import request as flask_request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
    RedisRevocationStore,
    revocation,
)
from invalidtoken_mw.fastapi import install
from invalidtoken_mw.flask import InvalidToken
from support.servers import run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Mapping

    from starlette.requests import Request

    from invalidtoken_mw.revocation import RevocationStore
    from support.redis_server import RedisServer

ADAPTERS = ["starlette-uvicorn", "fastapi-uvicorn", "flask-middleware-waitress", "flask-extension"]
BEYOND_FLOAT = 10**309  # float(BEYOND_FLOAT) raises OverflowError
REVOKED_SUBJECT = "signed-out-everywhere"
ENDLESS_JTI = "revoked-until-forever"
# Year 9999, the latest expiry the Redis store writes.
LATEST_EXPIRY = 253_402_300_799


@pytest.fixture(autouse=True)
def fresh_store_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh throttle for ``revocation_store_error``, so no earlier test's event hides ours."""
    throttle = revocation._Throttle(interval=1.0)  # noqa: SLF001 - reset between tests
    monkeypatch.setattr(revocation, "_store_error_log", throttle)


# -- one small application, four adapters -------------------------------------------------


def make_verifier(store: RevocationStore) -> JWTVerifier:
    """The HS256 test verifier checking ``store``."""
    return JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )


def asgi_lifespan(store: RevocationStore) -> Any:
    """Close the Redis store's connections on the serving loop at shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        yield
        if isinstance(store, RedisRevocationStore):
            await store.aclose()

    return lifespan


async def asgi_orders(request: Request) -> PlainTextResponse:
    """Answer the subject the middleware verified."""
    return PlainTextResponse(request.state.token_claims["sub"])


def flask_app(adapter: str, store: RevocationStore) -> Flask:
    """Flask answering the verified subject, protected by ``adapter``."""
    app = Flask("revocation-hardening")

    @app.route("/orders")
    def orders() -> FlaskResponse:
        if adapter == "flask-extension":
            return FlaskResponse(g.token_claims["sub"], mimetype="text/plain")
        claims_ = flask_request.environ["invalidtoken_mw.claims"]
        return FlaskResponse(claims_["sub"], mimetype="text/plain")

    if adapter == "flask-extension":
        InvalidToken(app, verifier=make_verifier(store), realm="orders")
    else:
        app.wsgi_app = InvalidTokenWSGIMiddleware(  # type: ignore[method-assign]
            app.wsgi_app, verifier=make_verifier(store), realm="orders"
        )
    return app


@contextlib.contextmanager
def serving(adapter: str, store: RevocationStore) -> Iterator[httpx.Client]:
    """A client of ``/orders`` served by ``adapter`` with ``store``; the store closed after."""
    if adapter == "starlette-uvicorn":
        starlette = Starlette(routes=[Route("/orders", asgi_orders)], lifespan=asgi_lifespan(store))
        starlette.add_middleware(
            InvalidTokenMiddleware, verifier=make_verifier(store), realm="orders"
        )
        server = run_uvicorn(starlette)
    elif adapter == "fastapi-uvicorn":
        fastapi = FastAPI(openapi_url=None, lifespan=asgi_lifespan(store))
        fastapi.router.routes.append(Route("/orders", asgi_orders))
        install(fastapi, verifier=make_verifier(store), realm="orders")
        server = run_uvicorn(fastapi)
    else:
        server = run_waitress(flask_app(adapter, store))
    try:
        with server as url, httpx.Client(base_url=url, trust_env=False, timeout=10) as http:
            yield http
    finally:
        if isinstance(store, RedisRevocationStore):
            store.close()  # the sync path's loop and the subscriber (again after aclose: no-op)


def outcome(answer: httpx.Response) -> tuple[int, str]:
    """``(status, reason)`` of a refusal, ``(200, subject)`` of an acceptance."""
    if answer.status_code == 200:
        return 200, answer.text
    if answer.headers.get("content-type", "").startswith("application/json"):
        return answer.status_code, answer.json()["reason"]
    return answer.status_code, answer.text[:80]


def get(http: httpx.Client, token: str) -> httpx.Response:
    """``GET /orders`` with ``token``."""
    return http.get("/orders", headers={"authorization": f"Bearer {token}"})


# -- signed claims beyond any float ---------------------------------------------------------


def absurd_rows() -> dict[str, tuple[dict[str, Any], tuple[int, str]]]:
    """Each row: the claims signed by the trusted key, and the answer due."""
    huge, ok = BEYOND_FLOAT, "user-1"
    return {
        "iat -1e309, subject revoked": (claims(sub=REVOKED_SUBJECT, iat=-huge), (401, "revoked")),
        "iat -1e309": (claims(iat=-huge), (200, ok)),
        "iat +1e309": (claims(iat=huge), (401, "not_yet_valid")),
        "exp +1e309": (claims(exp=huge), (200, ok)),
        "exp +1e309, subject revoked": (claims(sub=REVOKED_SUBJECT, exp=huge), (401, "revoked")),
        "exp -1e309": (claims(exp=-huge), (401, "expired")),
        "iat -1e309 and exp +1e309": (claims(iat=-huge, exp=huge), (200, ok)),
    }


def check_absurd_claims(adapter: str, store: MemoryRevocationStore | RedisRevocationStore) -> None:
    """Send every row through ``adapter`` with a subject revoked; then revoke a token for ever.

    The rows are checked first, so a 500 shows as such even where revoking until
    ``exp`` 10**309 would fail too.
    """
    store.revoke_subject(REVOKED_SUBJECT, issuer=ISSUER)
    rows = absurd_rows()
    endless = mint(payload=claims(jti=ENDLESS_JTI, iat=-BEYOND_FLOAT, exp=BEYOND_FLOAT))
    with serving(adapter, store) as http, capture_logs() as logs:
        answers = {name: outcome(get(http, mint(payload=c))) for name, (c, _) in rows.items()}
        assert {name: due for name, (_, due) in rows.items()} == answers
        before_revocation = outcome(get(http, endless))
        assert store.revoke(jti=ENDLESS_JTI, issuer=ISSUER, expires_at=BEYOND_FLOAT)
        after_revocation = outcome(get(http, endless))
    assert ((200, "user-1"), (401, "revoked")) == (before_revocation, after_revocation)
    refused = [reason for status, reason in answers.values() if status != 200]
    rejected = [e["reason"] for e in logs if e["event"] == "auth_rejected"]
    assert [*refused, "revoked"] == rejected
    assert [] == [e for e in logs if e["log_level"] == "error"]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_signed_times_beyond_any_float_with_a_memory_store_never_answer_500(adapter: str) -> None:
    """iat/exp of +-10**309 with MemoryRevocationStore: judged by the rules, never 500."""
    check_absurd_claims(adapter, MemoryRevocationStore())


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_signed_times_beyond_any_float_with_redis_never_answer_500(
    adapter: str, redis_server: RedisServer
) -> None:
    """The same with RedisRevocationStore; the endless revocation still expires, in year 9999."""
    store = RedisRevocationStore(redis_server.url, prefix="absurd:", local_cache_ttl=0)
    check_absurd_claims(adapter, store)
    with redis.Redis.from_url(redis_server.url) as admin:
        keys = sorted(admin.keys("absurd:*"))
        expiries = [admin.expiretime(key) for key in keys]
    assert 2 == len(keys)  # the subject and the token
    assert all(0 < at <= LATEST_EXPIRY + 1 for at in expiries), expiries


# -- a revocation store of the application's own ---------------------------------------------


class FlakyStore:
    """An application's own store (the ``RevocationStore`` protocol) over a failing backend."""

    def is_revoked(self, claims_: Mapping[str, Any]) -> bool:
        """Answer as the backend does for this subject."""
        subject = claims_.get("sub")
        if subject == "store-down":
            # The message carries a claim value: it must reach neither client nor log.
            raise RuntimeError(f"backend unreachable while checking {subject}")
        if subject == "store-refuses":
            raise AuthFailure(Reason.REVOKED, context={"refused_by": "own-store"})
        return subject == "revoked-in-store"

    async def is_revoked_async(self, claims_: Mapping[str, Any]) -> bool:
        """The same answer (nothing to wait for)."""
        return self.is_revoked(claims_)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_store_that_raises_answers_503_revocation_unavailable(adapter: str) -> None:
    """RuntimeError from the store: 503 with Retry-After and the logged error type, twice.

    Its ``AuthFailure`` passes unchanged; a store answering ``True`` revokes; the second
    failure within a second logs its ``auth_rejected`` event, not another store error.
    """
    subjects = ["store-down", "store-down", "store-refuses", "revoked-in-store", "user-1"]
    with serving(adapter, FlakyStore()) as http, capture_logs() as logs:
        answers = [get(http, mint(payload=claims(sub=s))) for s in subjects]
    assert [
        (503, "revocation_unavailable"),
        (503, "revocation_unavailable"),
        (401, "revoked"),
        (401, "revoked"),
        (200, "user-1"),
    ] == [outcome(a) for a in answers]
    down = answers[0]
    assert ("www-authenticate" not in down.headers, "retry-after" in down.headers) == (True, True)
    rejected = [
        (e["reason"], e["log_level"], e.get("error_type"), e.get("refused_by"))
        for e in logs
        if e["event"] == "auth_rejected"
    ]
    assert [
        ("revocation_unavailable", "error", "RuntimeError", None),
        ("revocation_unavailable", "error", "RuntimeError", None),
        ("revoked", "warning", None, "own-store"),
        ("revoked", "warning", None, None),
    ] == rejected
    store_errors = [e for e in logs if e["event"] == revocation.STORE_ERROR_EVENT]
    assert [
        {
            "event": "revocation_store_error",
            "log_level": "error",
            "error_type": "RuntimeError",
            "store": "FlakyStore",
        }
    ] == store_errors
    assert not any("backend unreachable" in repr(e) for e in logs)
    assert all("backend unreachable" not in a.text for a in answers)
