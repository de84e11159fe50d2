"""A key the issuer withdraws from its JWKS stops working, through real servers.

The JWKS is served by a real HTTP server on loopback and the middleware by uvicorn or
waitress. A token signed by the withdrawn key, whether brand new or verified (and
remembered) before, is refused ``unknown_key``:

- within one scheduled refresh of the key set (its lifetime capped by ``jwks_max_age``);
- at once after ``JWTVerifier.refresh_keys()`` (or ``refresh_keys_async()``), which an
  operator retiring a compromised key calls without waiting for the cool-down.

A key whose material changes under the same ``kid`` is a withdrawn key too: what it
verified is checked again (``bad_signature``). Keys still jwks keep working, and
what they verified stays remembered.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware, JWTVerifier
from invalidtoken_mw.jwks import JWKSCache
from support.servers import run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, KIDS, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from starlette.requests import Request

    from support.jwks_server import JWKSServer
    from support.tokens import Keys

WITHDRAWN = KIDS["RS256"]
KEPT = KIDS["ES256"]
SLACK = 2.0  # a busy 2-core machine: scheduling, the fetch thread, the HTTP round trips


def rs256() -> str:
    """A fresh token signed by the key that will be withdrawn."""
    return mint("RS256", headers={"kid": WITHDRAWN})


def es256() -> str:
    """A fresh token signed by a key that stays jwks."""
    return mint("ES256", headers={"kid": KEPT})


def verifier_for(jwks: JWKSServer, **options: Any) -> JWTVerifier:
    return JWTVerifier(
        jwks_url=jwks.url,
        algorithms=["RS256", "ES256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_cooldown=0.2,
        **options,
    )


def withdraw(jwks: JWKSServer, kid: str) -> None:
    jwks.jwks = {"keys": [key for key in jwks.jwks["keys"] if key.get("kid") != kid]}


async def _orders(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def asgi_app(verifier: JWTVerifier) -> InvalidTokenMiddleware:
    return InvalidTokenMiddleware(Starlette(routes=[Route("/orders", _orders)]), verifier=verifier)


def wsgi_app(verifier: JWTVerifier) -> InvalidTokenWSGIMiddleware:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = json.dumps({"sub": environ["invalidtoken_mw.claims"]["sub"]}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    return InvalidTokenWSGIMiddleware(app, verifier=verifier)


SERVERS = pytest.mark.parametrize("server", ["uvicorn", "waitress"])


def serve(server: str, verifier: JWTVerifier) -> Any:
    if server == "uvicorn":
        return run_uvicorn(asgi_app(verifier))
    return run_waitress(wsgi_app(verifier), threads=4)


def answer(http: httpx.Client, token: str) -> str:
    """``"ok"`` or the reason of the refusal."""
    response = http.get("/orders", headers={"authorization": f"Bearer {token}"})
    if response.status_code == 200:
        return "ok"
    return str(response.json()["reason"])


def client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=10)


@SERVERS
def test_withdrawn_key_refused_within_one_scheduled_refresh(jwks: JWKSServer, server: str) -> None:
    """With a 1 s key-set lifetime, a withdrawn key's tokens (old and new) are refused in ~1 s."""
    verifier = verifier_for(jwks, jwks_max_age=1)
    remembered = rs256()
    with serve(server, verifier) as base, client(base) as http:
        assert ("ok", "ok") == (answer(http, remembered), answer(http, es256()))
        withdraw(jwks, WITHDRAWN)
        fetches = jwks.requests
        started = time.monotonic()
        while answer(http, remembered) == "ok" and time.monotonic() - started < 1 + SLACK:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        after = (answer(http, remembered), answer(http, rs256()), answer(http, es256()))
    assert ("unknown_key", "unknown_key", "ok") == after
    assert elapsed < 1 + SLACK
    # One refresh of the set sufficed (a second may have started for the unknown kid).
    assert 1 <= jwks.requests - fetches <= 2


@SERVERS
@pytest.mark.parametrize("api", ["sync", "async"])
def test_refresh_keys_refuses_withdrawn_key_at_once(
    jwks: JWKSServer, server: str, api: str
) -> None:
    """refresh_keys() fetches now (cool-down or not); remembered verdicts of the key go too."""
    verifier = verifier_for(jwks)  # default lifetime: an hour
    remembered, kept = rs256(), es256()
    with serve(server, verifier) as base, client(base) as http:
        assert ("ok", "ok") == (answer(http, remembered), answer(http, kept))
        withdraw(jwks, WITHDRAWN)
        assert "ok" == answer(http, remembered)  # the hour has not passed
        fetches = jwks.requests
        if api == "async":
            asyncio.run(verifier.refresh_keys_async())
        else:
            verifier.refresh_keys()
        assert 1 == jwks.requests - fetches
        after = (answer(http, remembered), answer(http, rs256()), answer(http, kept))
    assert ("unknown_key", "unknown_key", "ok") == after


def test_key_changed_under_the_same_kid_is_checked_again(jwks: JWKSServer, keys: Keys) -> None:
    """New material under an old kid: what the old material verified is bad_signature now."""
    verifier = verifier_for(jwks)
    remembered = rs256()
    with serve("uvicorn", verifier) as base, client(base) as http:
        assert "ok" == answer(http, remembered)
        other = {**keys.rsa_other_jwk(), "kid": WITHDRAWN, "alg": "RS256"}
        withdraw(jwks, WITHDRAWN)
        jwks.add_key(other)
        verifier.refresh_keys()
        assert "bad_signature" == answer(http, remembered)


def test_unchanged_keys_keep_their_remembered_verdicts(jwks: JWKSServer) -> None:
    """A refresh that republishes the same keys leaves remembered tokens alone: no re-check."""
    verifier = verifier_for(jwks)
    token = es256()
    assert "sub" in verifier.verify(token)
    key = verifier.keys.key_for(KEPT, "ES256")
    version = verifier.keys.version
    verifier.refresh_keys()
    assert (key, version) == (verifier.keys.key_for(KEPT, "ES256"), verifier.keys.version)


def test_max_age_is_capped_at_an_hour_by_default(jwks: JWKSServer) -> None:
    """A JWKS served with max-age=86400 is fetched again after an hour, not a day."""
    now = [1000.0]
    jwks.headers["Cache-Control"] = "max-age=86400"
    cache = JWKSCache(jwks.url, clock=lambda: now[0])
    cache.get_key(KEPT)
    now[0] += 3600 * 0.8 + 1  # due: a refresh starts in the background
    cache.get_key(KEPT)
    deadline = time.monotonic() + 5
    while jwks.requests < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 2 == jwks.requests


@pytest.mark.parametrize("value", [0, -1, float("inf"), float("nan")])
def test_jwks_max_age_must_be_positive_and_finite(jwks: JWKSServer, value: float) -> None:
    with pytest.raises(ValueError, match="jwks_max_age"):
        verifier_for(jwks, jwks_max_age=value)
