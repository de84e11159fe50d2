"""Key rotation inside the JWKS cool-down, through uvicorn and waitress on loopback.

An unknown ``kid`` (a probe, a token from another environment) starts the cool-down;
seconds later the issuer publishes a new key and signs with it. The first request
carrying that key must be accepted: the key set can be fetched, and the last fetch is
older than ``min_interval`` (1 s by default). Before the early fetch existed it was
refused ``unknown_key`` for the rest of the cool-down (5 s by default), while the
description told clients not to retry.

A flood of random ``kid`` values, by contrast, still costs at most one fetch per
cool-down window: the early fetch belongs to the first new ``kid`` after a fetch, and a
flood's later ``kid`` values are all other ones.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import (
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWKSCache,
    JWTVerifier,
    Reason,
)
from support.servers import run_uvicorn, run_waitress
from support.tokens import AUDIENCE, ISSUER, KIDS, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from starlette.requests import Request

    from invalidtoken_mw.keys import KeySource
    from support.jwks_server import JWKSServer

KID = KIDS["ES256"]
MIN_INTERVAL = 1.0  # JWKSCache's default
SERVERS = pytest.mark.parametrize("serve", ["uvicorn", "waitress"])


async def _orders(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def _wsgi_orders(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    claims = environ["invalidtoken_mw.claims"]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"sub": claims["sub"]}).encode()]


def verifier(jwks: JWKSServer, keys: KeySource | None = None) -> JWTVerifier:
    """ES256 tokens from ``jwks`` (defaults: 5 s cool-down, 1 s min interval), no verdict cache."""
    source: dict[str, Any] = {"jwks_url": jwks.url} if keys is None else {"keys": keys}
    return JWTVerifier(
        algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, cache_size=0, **source
    )


@contextlib.contextmanager
def serving(serve: str, judge: JWTVerifier) -> Iterator[httpx.Client]:
    """The protected ``/orders`` route behind uvicorn (ASGI) or waitress (WSGI)."""
    if serve == "uvicorn":
        asgi = InvalidTokenMiddleware(Starlette(routes=[Route("/orders", _orders)]), verifier=judge)
        server = run_uvicorn(asgi)
    else:
        server = run_waitress(InvalidTokenWSGIMiddleware(_wsgi_orders, verifier=judge))
    with server as base_url, httpx.Client(base_url=base_url, trust_env=False, timeout=10) as http:
        yield http


def answer(http: httpx.Client, token: str) -> tuple[int, str]:
    """The status and the reason (``ok`` for a 200) of one request with ``token``."""
    response = http.get("/orders", headers={"authorization": f"Bearer {token}"})
    reason = "ok" if response.status_code == 200 else str(response.json()["reason"])
    return response.status_code, reason


def rotate(jwks: JWKSServer, kid: str) -> ec.EllipticCurvePrivateKey:
    """Publish a fresh P-256 key under ``kid``, as an issuer does when it rotates."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwks.add_key({**public, "kid": kid, "use": "sig", "alg": "ES256"})
    return private


@SERVERS
def test_key_published_after_an_unknown_kid_probe_is_accepted_on_first_use(
    jwks: JWKSServer, serve: str
) -> None:
    """A probe starts the 5 s cool-down; a key published after it verifies its first token."""
    with serving(serve, verifier(jwks)) as http:
        probe = mint("ES256", headers={"kid": "probe"})
        assert answer(http, probe) == (401, "unknown_key")
        assert jwks.requests == 1
        # The prober retries in a loop meanwhile: the same kid spends no early fetch.
        for _ in range(4):
            time.sleep(MIN_INTERVAL / 4)
            assert answer(http, probe) == (401, "unknown_key")
        private = rotate(jwks, "ec-2026-07")
        time.sleep(0.1)
        first = answer(http, mint("ES256", headers={"kid": "ec-2026-07"}, key=private))
        assert (first, jwks.requests) == ((200, "ok"), 2)
        assert answer(http, mint("ES256", headers={"kid": KID})) == (200, "ok")
        assert jwks.requests == 2


@SERVERS
def test_new_key_right_after_a_fetch_is_accepted_on_the_retry_a_second_later(
    jwks: JWKSServer, serve: str
) -> None:
    """Within min_interval of a fetch a new key is refused; the retry the sentence invites wins."""
    with serving(serve, verifier(jwks)) as http:
        assert answer(http, mint("ES256", headers={"kid": KID})) == (200, "ok")
        private = rotate(jwks, "ec-2026-07")
        token = mint("ES256", headers={"kid": "ec-2026-07"}, key=private)
        assert answer(http, token) == (401, "unknown_key")
        time.sleep(MIN_INTERVAL + 0.1)
        assert (answer(http, token), jwks.requests) == ((200, "ok"), 2)
    assert "retry once a few seconds later" in Reason.UNKNOWN_KEY.description


@SERVERS
def test_random_kid_flood_costs_one_fetch_per_cooldown_window(jwks: JWKSServer, serve: str) -> None:
    """Random kids for 2.5 s with a 1 s cool-down: every one refused, one fetch per window."""
    cooldown, duration = 1.0, 2.5
    keys = JWKSCache(jwks.url, cooldown=cooldown, min_interval=0.2)
    with serving(serve, verifier(jwks, keys)) as http:
        assert answer(http, mint("ES256", headers={"kid": KID})) == (200, "ok")
        started = time.monotonic()
        refused = set()
        sent = 0
        while time.monotonic() - started < duration:
            refused.add(answer(http, mint("ES256", headers={"kid": uuid.uuid4().hex})))
            sent += 1
        elapsed = time.monotonic() - started
    assert (refused, sent > 100) == ({(401, "unknown_key")}, True)
    # The first fetch, then at most one per window the flood spans (the early fetch
    # would double it); at least one: the cool-down does end.
    assert 2 <= jwks.requests <= 1 + math.ceil(elapsed / cooldown)
