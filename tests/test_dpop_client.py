"""DPoP end to end: requests-oauth2client's proofs against real uvicorn and waitress servers.

The proofs are made by a DPoP client this project did not write (requests-oauth2client's
``DPoPKey`` and ``DPoPToken``, on jwskate); the access tokens are minted by our
:class:`~invalidtoken_mw.testing.LocalIssuer` with ``cnf.jkt`` set to that client key's
thumbprint as the client computes it. Replay, the Redis-shared replay cache across two
middleware instances and the nonce flow (the client retries on ``use_dpop_nonce``) run
through real servers too.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from requests_oauth2client import DPoPKey, DPoPToken
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware
from invalidtoken_mw.dpop import DPoPVerifier
from invalidtoken_mw.redis_store import RedisReplayCache
from invalidtoken_mw.testing import LocalIssuer
from support.redis_server import running_redis
from support.servers import run_uvicorn, run_waitress

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence
    from pathlib import Path

    from starlette.requests import Request

SECRET = b"nonce-secret-for-tests-0123456789"
ALGS = "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """One local issuer for the module (ES256, a discovery document and a JWK Set)."""
    with contextlib.closing(LocalIssuer()) as local:
        yield local


async def _claims(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def _asgi(
    issuer: LocalIssuer,
    on_shutdown: Sequence[Callable[[], Any]] = (),
    **options: Any,
) -> InvalidTokenMiddleware:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        for close in on_shutdown:
            await close()

    app = Starlette(routes=[Route("/orders", _claims, methods=["GET", "POST"])], lifespan=lifespan)
    return InvalidTokenMiddleware(app, verifier=issuer.verifier(), realm="orders", **options)


def _wsgi(issuer: LocalIssuer, **options: Any) -> InvalidTokenWSGIMiddleware:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        sub = environ["invalidtoken_mw.claims"]["sub"]
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"sub": sub}).encode()]

    return InvalidTokenWSGIMiddleware(app, verifier=issuer.verifier(), realm="orders", **options)


def _bound(issuer: LocalIssuer, key: DPoPKey) -> DPoPToken:
    """A token bound to ``key`` (``cnf.jkt`` = the client's own thumbprint)."""
    token = issuer.token(cnf={"jkt": key.dpop_jkt})
    return DPoPToken(token, _dpop_key=key)


@pytest.fixture(params=["uvicorn", "waitress"])
def server(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Iterator[Callable[..., str]]:
    """A factory serving the middleware (``dpop_*`` options) under uvicorn or waitress."""
    with contextlib.ExitStack() as stack:

        def serve(**options: Any) -> str:
            if request.param == "uvicorn":
                return stack.enter_context(run_uvicorn(_asgi(issuer, **options)))
            return stack.enter_context(run_waitress(_wsgi(issuer, **options)))

        yield serve


def test_independent_client_proof_is_accepted(
    server: Callable[..., str], issuer: LocalIssuer
) -> None:
    """A real ES256 proof from requests-oauth2client with a bound token: 200, twice."""
    base = server(dpop="required")
    key = DPoPKey.generate(alg="ES256")
    auth = _bound(issuer, key)
    with requests.Session() as session:
        for _ in range(2):  # a fresh proof each time
            answer = session.get(f"{base}/orders?page=2", auth=auth, timeout=10)
            assert answer.status_code == 200, answer.headers
            assert answer.json() == {"sub": "user-1"}
        answer = session.post(f"{base}/orders", auth=auth, timeout=10)
        assert answer.status_code == 200


def test_replayed_proof_is_refused(server: Callable[..., str], issuer: LocalIssuer) -> None:
    """The same proof sent twice: the second is ``dpop_replayed`` (invalid_dpop_proof)."""
    base = server(dpop="allowed")
    key = DPoPKey.generate(alg="ES256")
    auth = _bound(issuer, key)
    prepared = requests.Request("GET", f"{base}/orders").prepare()
    prepared = auth(prepared)
    headers = {"Authorization": prepared.headers["Authorization"], "DPoP": prepared.headers["DPoP"]}
    first = requests.get(f"{base}/orders", headers=headers, timeout=10)
    second = requests.get(f"{base}/orders", headers=headers, timeout=10)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["reason"] == "dpop_replayed"
    challenge = second.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP realm="orders", error="invalid_dpop_proof"')
    assert f'algs="{ALGS}"' in challenge
    assert ', Bearer realm="orders"' in challenge


def test_bound_token_as_bearer_is_refused(server: Callable[..., str], issuer: LocalIssuer) -> None:
    """RFC 9449 §7.2: a DPoP-bound token presented as Bearer is refused (no downgrade)."""
    base = server(dpop="allowed")
    key = DPoPKey.generate(alg="ES256")
    token = issuer.token(cnf={"jkt": key.dpop_jkt})
    answer = requests.get(
        f"{base}/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.json()["reason"] == "dpop_bound_bearer"
    assert answer.headers["WWW-Authenticate"].startswith(
        'Bearer realm="orders", error="invalid_token"'
    )
    plain = requests.get(
        f"{base}/orders", headers={"Authorization": f"Bearer {issuer.token()}"}, timeout=10
    )
    assert plain.status_code == 200


def test_key_mismatch_is_refused(server: Callable[..., str], issuer: LocalIssuer) -> None:
    """A token bound to another key than the proof's: ``dpop_key_mismatch``."""
    base = server(dpop="required")
    key, other = DPoPKey.generate(alg="ES256"), DPoPKey.generate(alg="ES256")
    auth = DPoPToken(issuer.token(cnf={"jkt": other.dpop_jkt}), _dpop_key=key)
    prepared = auth(requests.Request("GET", f"{base}/orders").prepare())
    answer = requests.get(f"{base}/orders", headers=dict(prepared.headers), timeout=10)
    assert answer.status_code == 401
    assert answer.json()["reason"] == "dpop_key_mismatch"
    assert answer.headers["WWW-Authenticate"] == (
        'DPoP realm="orders", error="invalid_token", error_description="The access token is'
        f' bound to another key than the DPoP proof.", algs="{ALGS}"'
    )


def test_nonce_flow_with_independent_client(
    server: Callable[..., str], issuer: LocalIssuer
) -> None:
    """Nonces on: the client's first proof gets ``use_dpop_nonce`` and a ``DPoP-Nonce``;
    requests-oauth2client retries with it by itself and gets through."""
    base = server(dpop="required", dpop_nonce_secret=SECRET)
    key = DPoPKey.generate(alg="ES256")
    auth = _bound(issuer, key)
    with requests.Session() as session:
        answer = session.get(f"{base}/orders", auth=auth, timeout=10)
    assert answer.status_code == 200, answer.headers
    # The client took the nonce from our DPoP-Nonce header (it retried by itself).
    assert key.rs_nonce is not None
    assert DPoPVerifier(nonce_secret=SECRET).nonce_accepted(key.rs_nonce)
    # Without a nonce: the answer a client sees first.
    fresh = DPoPKey.generate(alg="ES256")
    prepared = _bound(issuer, fresh)(requests.Request("GET", f"{base}/orders").prepare())
    first = requests.get(f"{base}/orders", headers=dict(prepared.headers), timeout=10)
    assert first.status_code == 401
    assert first.json()["reason"] == "dpop_nonce_required"
    assert DPoPVerifier(nonce_secret=SECRET).nonce_accepted(first.headers["DPoP-Nonce"])
    assert first.headers["WWW-Authenticate"].startswith(
        'DPoP realm="orders", error="use_dpop_nonce"'
    )


def test_redis_replay_cache_is_shared(tmp_path: Path, issuer: LocalIssuer) -> None:
    """Two middleware instances (two uvicorn servers) share one real redis-server: a
    proof accepted by one is a replay for the other."""
    key = DPoPKey.generate(alg="ES256")
    auth = _bound(issuer, key)
    with running_redis(tmp_path) as redis_server, contextlib.ExitStack() as stack:
        bases = []
        for _ in range(2):
            cache = RedisReplayCache(redis_server.url, prefix="e2e:dpop:")
            stack.callback(cache.close)
            app = _asgi(issuer, [cache.aclose], dpop="required", dpop_replay_cache=cache)
            bases.append(stack.enter_context(run_uvicorn(app)))
        # Both servers answer on 127.0.0.1 at different ports: htu names the first.
        prepared = auth(requests.Request("GET", f"{bases[0]}/orders").prepare())
        headers = {
            "Authorization": prepared.headers["Authorization"],
            "DPoP": prepared.headers["DPoP"],
            "Host": bases[0].removeprefix("http://"),
        }
        first = requests.get(f"{bases[0]}/orders", headers=headers, timeout=10)
        second = requests.get(f"{bases[1]}/orders", headers=headers, timeout=10)
    assert first.status_code == 200
    assert second.status_code == 401
    assert second.json()["reason"] == "dpop_replayed"


@contextlib.contextmanager
def _silent_redis() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a blackholed Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join()
        for connection in [*held, listener]:
            connection.close()


def test_a_silent_redis_is_a_prompt_503_never_a_hang(
    server: Callable[..., str], issuer: LocalIssuer
) -> None:
    """Redis accepts but never answers: each DPoP request is refused 503
    dpop_replay_unavailable within a few timeouts (it once waited redis-py's 5 s)."""
    key = DPoPKey.generate(alg="ES256")
    auth = _bound(issuer, key)
    with _silent_redis() as url:
        cache = RedisReplayCache(url, timeout=0.2)
        base = server(dpop="required", dpop_replay_cache=cache)
        for _ in range(2):
            began = time.monotonic()
            answer = requests.get(f"{base}/orders", auth=auth, timeout=10)
            assert answer.status_code == 503
            assert answer.json()["reason"] == "dpop_replay_unavailable"
            assert time.monotonic() - began < 2.0
        cache.close()
