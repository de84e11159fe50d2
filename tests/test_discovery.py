"""JWTVerifier(issuer_url=...): the issuer's metadata, fetched from real local HTTP servers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import AuthFailure, DiscoveryKeys, InvalidTokenMiddleware, JWTVerifier, Reason
from invalidtoken_mw.discovery import _MetadataError, _read_metadata, metadata_urls
from invalidtoken_mw.explain import explain
from support.discovery_server import OIDC, RFC8414, DiscoveryServer
from support.servers import run_uvicorn
from support.tokens import AUDIENCE, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator, MutableMapping

    from starlette.requests import Request

    from support.tokens import Keys

KID = "rsa-1"
NO_ALG = "rsa-no-alg"  # an RSA key without alg: it may verify RS* and PS*


@pytest.fixture
def idp(keys: Keys) -> Iterator[DiscoveryServer]:
    server = DiscoveryServer()
    no_alg = {k: v for k, v in keys.jwk("RS256", NO_ALG).items() if k != "alg"}
    server.jwks = {"keys": [keys.jwk("RS256", KID), keys.jwk("ES256", "ec-1"), no_alg]}
    yield server
    server.stop()


def issued(issuer: str, alg: str = "RS256", kid: str = KID, **overrides: Any) -> str:
    return mint(alg, claims(iss=issuer, **overrides), headers={"kid": kid})


def verifier(issuer_url: str, **options: Any) -> JWTVerifier:
    options.setdefault("jwks_timeout", 1.0)
    return JWTVerifier(issuer_url=issuer_url, audience=AUDIENCE, **options)


def source(judge: JWTVerifier) -> DiscoveryKeys:
    keys = judge.keys
    assert isinstance(keys, DiscoveryKeys)
    return keys


def refusal(judge: JWTVerifier, token: str) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        judge.verify(token)
    return caught.value


def discovery_events(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "discovery_failed"]


# -- finding the document --------------------------------------------------------


def test_oidc_discovery_gives_the_keys_the_issuer_and_the_algorithms(
    idp: DiscoveryServer,
) -> None:
    issuer = idp.origin + "/"
    idp.publish(OIDC, idp.metadata(issuer))
    judge = verifier(issuer)
    assert 0 == idp.count(OIDC)  # lazily: nothing fetched at construction
    assert "user-1" == judge.verify(issued(issuer))["sub"]
    metadata = source(judge).metadata
    assert metadata is not None
    assert (issuer, idp.jwks_uri, ("RS256",)) == (
        metadata.issuer,
        metadata.jwks_uri,
        metadata.algorithms,
    )
    assert (idp.origin + OIDC) == metadata.url
    assert (1, 0) == (idp.count(OIDC), idp.count(RFC8414))
    # The expected iss is issuer_url, exactly: no slash added or removed.
    assert Reason.WRONG_ISSUER is refusal(judge, issued(idp.origin)).reason


def test_rfc8414_document_when_there_is_no_openid_configuration(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    idp.publish(RFC8414, idp.metadata(issuer))
    judge = verifier(issuer)
    assert "user-1" == judge.verify(issued(issuer))["sub"]
    assert (1, 1) == (idp.count(OIDC), idp.count(RFC8414))
    metadata = source(judge).metadata
    assert metadata is not None
    assert (idp.origin + RFC8414) == metadata.url


@pytest.mark.parametrize(
    "published",
    [
        "/realms/acme" + OIDC,  # OpenID Connect Discovery §4: appended
        OIDC + "/realms/acme",  # RFC 8414 §5's form for OpenID Connect
        RFC8414 + "/realms/acme",  # RFC 8414 §3.1: inserted between host and path
    ],
)
def test_an_issuer_with_a_path(idp: DiscoveryServer, published: str) -> None:
    issuer = idp.origin + "/realms/acme"
    idp.publish(published, idp.metadata(issuer))
    judge = verifier(issuer)
    assert "user-1" == judge.verify(issued(issuer))["sub"]
    tried = ["/realms/acme" + OIDC, OIDC + "/realms/acme", RFC8414 + "/realms/acme"]
    assert tried.index(published) + 1 == sum(idp.count(p) for p in tried)
    assert 0 == idp.count(OIDC) + idp.count(RFC8414)  # the path is never dropped


def test_metadata_urls_for_issuers_with_and_without_a_path() -> None:
    assert (
        "https://id.example.com/.well-known/openid-configuration",
        "https://id.example.com/.well-known/oauth-authorization-server",
    ) == metadata_urls("https://id.example.com/")
    assert (
        "https://id.example.com/t/1/.well-known/openid-configuration",
        "https://id.example.com/.well-known/openid-configuration/t/1",
        "https://id.example.com/.well-known/oauth-authorization-server/t/1",
    ) == metadata_urls("https://id.example.com/t/1/")


# -- an unusable document: 503 key_unavailable and one event naming the cause -----


@pytest.mark.parametrize(
    ("document", "status", "cause", "facts"),
    [
        ({"issuer": "WRONG", "jwks_uri": "x"}, 200, "issuer_mismatch", {"document_issuer"}),
        ({"issuer": "SAME"}, 200, "no_jwks_uri", set()),
        ({"issuer": "SAME", "jwks_uri": 7}, 200, "no_jwks_uri", set()),
        (b"<html>sign in</html>", 200, "not_json", set()),
        (b"[1, 2]", 200, "not_json_object", set()),
        ({"issuer": "SAME", "jwks_uri": "ftp://x/keys"}, 200, "jwks_uri_not_https", {"jwks_uri"}),
        ({"issuer": "SAME", "jwks_uri": "http:///keys"}, 200, "bad_jwks_uri", {"jwks_uri"}),
        ({"error": "boom"}, 500, "http_status", {"status_code", "detail"}),
    ],
)
def test_an_unusable_document_answers_key_unavailable_and_says_why(
    idp: DiscoveryServer,
    document: dict[str, Any] | bytes,
    status: int,
    cause: str,
    facts: set[str],
) -> None:
    issuer = idp.origin + "/"
    if isinstance(document, dict) and document.get("issuer") == "SAME":
        document = {**document, "issuer": issuer}
    idp.publish(OIDC, document, status)
    judge = verifier(issuer)
    with capture_logs() as logs:
        failure = refusal(judge, issued(issuer))
    assert Reason.KEY_UNAVAILABLE is failure.reason
    assert 503 == failure.status
    [event] = discovery_events(logs)
    assert cause == event["cause"]
    assert facts <= set(event)
    assert (issuer, idp.origin + OIDC) == (event["issuer"], event["url"])
    # A 5xx is an outage at the right place, not a document elsewhere: no fallback.
    assert 0 == idp.count(RFC8414)


def test_the_issuer_mismatch_event_shows_the_documents_issuer(idp: DiscoveryServer) -> None:
    idp.publish(OIDC, idp.metadata(idp.origin))  # the document has no trailing slash
    with capture_logs() as logs:
        failure = refusal(verifier(idp.origin + "/"), issued(idp.origin + "/"))
    assert Reason.KEY_UNAVAILABLE is failure.reason
    [event] = discovery_events(logs)
    assert repr(idp.origin) == event["document_issuer"]


def test_no_document_anywhere_is_a_404(idp: DiscoveryServer) -> None:
    with capture_logs() as logs:
        failure = refusal(verifier(idp.origin), issued(idp.origin))
    assert Reason.KEY_UNAVAILABLE is failure.reason
    [event] = discovery_events(logs)
    assert ("http_status", 404, idp.origin + RFC8414) == (
        event["cause"],
        event["status_code"],
        event["url"],
    )
    assert (1, 1) == (idp.count(OIDC), idp.count(RFC8414))


def test_an_https_issuer_never_takes_keys_over_plain_http() -> None:
    body = json.dumps({"issuer": "https://id.example", "jwks_uri": "http://id.example/k"})
    with pytest.raises(_MetadataError) as caught:
        _read_metadata(body.encode(), "https://id.example", "https://id.example" + OIDC)
    assert "jwks_uri_not_https" == caught.value.cause


def test_a_metadata_server_too_slow_is_key_unavailable_within_the_timeout(
    idp: DiscoveryServer,
) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer))
    idp.delay = 3.0
    judge = verifier(issuer, jwks_timeout=0.3)
    started = time.monotonic()
    with capture_logs() as logs:
        failure = refusal(judge, issued(issuer))
        time.sleep(0.1)  # the fetch thread logs once its deadline passed
    assert time.monotonic() - started < 1.0
    assert Reason.KEY_UNAVAILABLE is failure.reason
    [event] = discovery_events(logs)
    assert ("timeout", "TimeoutError") == (event["cause"], event["error_type"])


# -- the JWKS rules: cool-down, stale-while-error, single flight ------------------


def test_a_failed_discovery_is_retried_only_after_the_cool_down(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    judge = verifier(issuer, jwks_cooldown=0.3)
    token = issued(issuer)
    for _ in range(5):
        assert Reason.KEY_UNAVAILABLE is refusal(judge, token).reason
    assert 1 == source(judge).fetch_count
    idp.publish(OIDC, idp.metadata(issuer))
    time.sleep(0.35)
    assert "user-1" == judge.verify(token)["sub"]
    assert 2 == source(judge).fetch_count


def test_once_loaded_the_metadata_and_keys_outlive_an_outage(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer))
    judge = verifier(issuer, jwks_cooldown=0.05, cache_size=0)
    assert "user-1" == judge.verify(issued(issuer))["sub"]
    idp.documents.clear()  # the metadata is gone: 404
    idp.jwks_status = 500  # and the key set fails
    with capture_logs() as logs, pytest.raises(AuthFailure) as caught:
        judge.refresh_keys()
    assert Reason.KEY_UNAVAILABLE is caught.value.reason
    assert [True] == [e["serving_stale"] for e in logs if e["event"] == "jwks_refresh_failed"]
    # Stale while error: the keys fetched before still verify.
    assert "user-1" == judge.verify(issued(issuer, jti="after"))["sub"]
    assert 1 == idp.count(OIDC)


def test_concurrent_first_requests_share_one_fetch(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer))
    idp.delay = 0.3
    judge = verifier(issuer)
    tokens = [issued(issuer, jti=str(i)) for i in range(16)]
    start = threading.Barrier(16)

    def first(token: str) -> str:
        start.wait()
        return str(judge.verify(token)["jti"])

    with ThreadPoolExecutor(16) as pool:
        assert [str(i) for i in range(16)] == list(pool.map(first, tokens))
    assert (1, 1, 1) == (source(judge).fetch_count, idp.count(OIDC), idp.count("/jwks.json"))


def test_concurrent_first_tasks_share_one_fetch_and_never_block_the_loop(
    idp: DiscoveryServer,
) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer))
    idp.delay = 0.3
    judge = verifier(issuer)

    async def main() -> tuple[list[str], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.create_task(ticker())
        verified = await asyncio.gather(
            *(judge.verify_async(issued(issuer, jti=str(i))) for i in range(8))
        )
        beat.cancel()
        return [str(c["jti"]) for c in verified], ticks

    jtis, ticks = asyncio.run(main())
    assert [str(i) for i in range(8)] == jtis
    assert ticks >= 20  # the loop ran on while both fetches (0.3 s each) were in flight
    assert (1, 1) == (idp.count(OIDC), idp.count("/jwks.json"))


# -- algorithms: the advertised asymmetric ones, never none or HMAC ---------------


def test_algorithms_default_to_the_advertised_asymmetric_ones(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    advertised = ["none", "HS256", "RS256", "ES256"]
    idp.publish(OIDC, idp.metadata(issuer, id_token_signing_alg_values_supported=advertised))
    judge = verifier(issuer)
    assert "user-1" == judge.verify(issued(issuer))["sub"]
    assert "user-1" == judge.verify(issued(issuer, "ES256", "ec-1"))["sub"]
    metadata = source(judge).metadata
    assert metadata is not None
    assert ("RS256", "ES256") == metadata.algorithms
    hs256 = jwt.encode(claims(iss=issuer), SECRET, algorithm="HS256", headers={"kid": KID})
    unsigned = jwt.encode(claims(iss=issuer), "", algorithm="none")
    # An RSA key that may verify PS256, but the issuer does not say it signs PS256.
    ps256 = issued(issuer, "PS256", NO_ALG)
    for token in (hs256, unsigned, ps256):
        assert Reason.ALGORITHM_NOT_ALLOWED is refusal(judge, token).reason


def test_an_issuer_advertising_only_hmac_needs_algorithms_configured(
    idp: DiscoveryServer,
) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer, id_token_signing_alg_values_supported=["HS256"]))
    with capture_logs() as logs:
        failure = refusal(verifier(issuer), issued(issuer))
    assert Reason.KEY_UNAVAILABLE is failure.reason
    assert ["no_asymmetric_algorithm"] == [e["cause"] for e in discovery_events(logs)]
    # Algorithms given by the operator are used as given.
    assert "user-1" == verifier(issuer, algorithms=["RS256"]).verify(issued(issuer))["sub"]


def test_explicit_algorithms_are_not_narrowed_by_the_metadata(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer))  # advertises RS256 only
    judge = verifier(issuer, algorithms=["PS256"])
    assert "user-1" == judge.verify(issued(issuer, "PS256", NO_ALG))["sub"]


# -- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sources",
    [
        {},
        {"issuer_url": "https://id.example/", "jwks_url": "https://id.example/keys"},
        {"issuer_url": "https://id.example/", "key": SECRET},
    ],
)
def test_exactly_one_key_source(sources: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"exactly one of key=.*issuer_url="):
        JWTVerifier(algorithms=["RS256"], **sources)


@pytest.mark.parametrize(
    "url",
    ["id.example.com", "ftp://id.example/", "https://u:p@id.example/", "https://id.example/?a=b"],
)
def test_an_unusable_issuer_url_is_refused_at_construction(url: str) -> None:
    with pytest.raises(ValueError, match="issuer_url"):
        JWTVerifier(issuer_url=url)


def test_algorithms_are_still_required_without_issuer_url() -> None:
    with pytest.raises(ValueError, match="algorithms is required"):
        JWTVerifier(jwks_url="https://id.example/keys")


# -- through a real server ----------------------------------------------------------


def _app(judge: JWTVerifier) -> Starlette:
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.state.token_claims["sub"]})

    async def health(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/me", me), Route("/health", health)])
    return InvalidTokenMiddleware(app, verifier=judge, exclude_paths=("/health",))  # type: ignore[return-value]


def test_under_uvicorn_the_first_request_discovers_without_blocking_others(
    idp: DiscoveryServer,
) -> None:
    issuer = idp.origin + "/"
    idp.publish(OIDC, idp.metadata(issuer))
    idp.delay = 0.5  # each of the two fetches (metadata, then the JWKS): 1 s in all
    # A generous fetch timeout: the test is about the event loop, not the deadline, and
    # a loaded CI machine can stretch a 0.5 s answer past 1 s.
    judge = verifier(issuer, jwks_timeout=3.0)
    with run_uvicorn(_app(judge)) as base, httpx.Client(base_url=base) as http:
        answers: list[httpx.Response] = []
        first = threading.Thread(
            target=lambda: answers.append(
                http.get("/me", headers={"Authorization": f"Bearer {issued(issuer)}"})
            )
        )
        first.start()
        time.sleep(0.1)
        started = time.monotonic()
        assert 200 == http.get("/health").status_code
        # The loop is free while discovery runs: a blocked loop would answer after the
        # remaining ~0.9 s of fetching.
        assert time.monotonic() - started < 0.6
        first.join()
        [answer] = answers
        assert (200, {"sub": "user-1"}) == (answer.status_code, answer.json())


def test_under_uvicorn_an_invalid_document_is_503_key_unavailable(idp: DiscoveryServer) -> None:
    issuer = idp.origin + "/"
    idp.publish(OIDC, idp.metadata(idp.origin))  # issuer mismatch
    with run_uvicorn(_app(verifier(issuer))) as base, capture_logs() as logs:
        answer = httpx.get(base + "/me", headers={"Authorization": f"Bearer {issued(issuer)}"})
    assert 503 == answer.status_code
    assert "key_unavailable" == answer.json()["reason"]
    assert ["issuer_mismatch"] == [e["cause"] for e in discovery_events(logs)]


def test_explain_accepts_issuer_url(idp: DiscoveryServer) -> None:
    issuer = idp.origin + "/"
    idp.publish(OIDC, idp.metadata(issuer))
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-m",
            "invalidtoken_mw",
            "explain",
            issued(issuer),
            "--json",
            "--issuer-url",
            issuer,
            "--audience",
            AUDIENCE,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    report = json.loads(done.stdout)
    assert (0, True, 200) == (done.returncode, report["valid"], report["status"])
    assert {"name": "alg", "passed": True, "detail": "RS256 is allowed (RS256)"} == (
        report["checks"][1]
    )


def test_explain_names_the_algorithms_the_issuer_advertises(idp: DiscoveryServer) -> None:
    issuer = idp.origin
    idp.publish(OIDC, idp.metadata(issuer, id_token_signing_alg_values_supported=["ES256"]))
    report = explain(verifier(issuer), issued(issuer, "PS256", NO_ALG))
    assert report.failure is not None
    assert Reason.ALGORITHM_NOT_ALLOWED is report.failure.reason
    [alg] = [check for check in report.checks if check.name == "alg"]
    assert (False, "PS256 is not allowed (ES256)") == (alg.passed, alg.detail)
