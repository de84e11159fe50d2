"""Key-set health: every JWKS and discovery fetch failure names its cause, and explain shows it.

Each failure is produced by a real local HTTP server (or a closed port) and read twice:
from the ``jwks_refresh_failed`` / ``discovery_failed`` event, and from explain's
``signature`` check (the library call and the command line).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from structlog.testing import capture_logs

from invalidtoken_mw import JWTVerifier
from invalidtoken_mw.explain import explain
from invalidtoken_mw.testing import LocalIssuer
from support.discovery_server import OIDC, DiscoveryServer
from support.jwks_server import JWKSServer
from support.redis_server import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from support.jwks_server import Mode


def token(kid: str = "rsa-1") -> str:
    """A token shaped enough for a key lookup (its signature is never reached)."""
    segments = [{"alg": "RS256", "kid": kid}, {"sub": "user-42"}]
    header, claims = (jwt.utils.base64url_encode(json.dumps(s).encode()).decode() for s in segments)
    return f"{header}.{claims}.c2lnbmF0dXJl"


def signature_detail(judge: JWTVerifier) -> tuple[str | None, str]:
    """explain()'s verdict and its signature check's detail."""
    report = explain(judge, token())
    [check] = [c for c in report.checks if c.name == "signature"]
    assert check.passed is False
    return (None if report.failure is None else report.failure.reason.value), check.detail


def refused_by_jwks(url: str, **options: Any) -> tuple[Mapping[str, Any], str]:
    """The one jwks_refresh_failed event and explain's detail for a verifier of ``url``."""
    judge = JWTVerifier(jwks_url=url, algorithms=["RS256"], **options)
    with capture_logs() as logs:
        reason, detail = signature_detail(judge)
    assert "key_unavailable" == reason
    # Only this verifier's events: a cache another test left behind may refresh in the
    # background while these logs are captured.
    here = url.split("?", 1)[0]
    events = [e for e in logs if e["event"] == "jwks_refresh_failed" and e.get("url") == here]
    assert 1 == len(events), logs
    assert "hunter2" not in repr(events)
    return events[0], detail


@pytest.fixture
def server() -> Iterator[JWKSServer]:
    """A JWKS server whose mode the test switches."""
    jwks = JWKSServer()
    try:
        yield jwks
    finally:
        jwks.stop()


@pytest.fixture
def idp() -> Iterator[DiscoveryServer]:
    """A server answering whatever document a test publishes at any path."""
    served = DiscoveryServer()
    try:
        yield served
    finally:
        served.stop()


@pytest.mark.parametrize(
    ("mode", "cause", "words"),
    [
        ("status_500", "http_status", "HTTP 500"),
        ("garbage", "not_json", "not JSON"),
        ("not_object", "not_a_key_set", "no 'keys' list"),
        ("empty", "no_usable_key", "none of the 0 keys"),
    ],
)
def test_a_bad_jwks_response_names_its_cause(
    server: JWKSServer, mode: Mode, cause: str, words: str
) -> None:
    """Each kind of bad answer is logged with its cause and sentence, and explain says it."""
    server.mode = mode
    event, detail = refused_by_jwks(server.url + "?api_key=hunter2")
    assert (cause, server.url) == (event["cause"], event["url"])
    assert words in event["detail"]
    assert detail == f"the signing keys could not be fetched ({cause}): {event['detail']}"
    if cause == "http_status":
        assert 500 == event["status_code"]


def test_a_404_carries_its_status_code(idp: DiscoveryServer) -> None:
    """The status of a refused fetch is a field of its own, not folded into a class name."""
    event, detail = refused_by_jwks(idp.origin + "/keys")
    assert ("http_status", 404) == (event["cause"], event["status_code"])
    assert "HTTP 404" in detail


def test_jwks_url_pointing_at_the_discovery_document_says_so(idp: DiscoveryServer) -> None:
    """jwks_url set to the openid-configuration: named as such, with its jwks_uri as the fix."""
    idp.publish(OIDC, idp.metadata(idp.origin))
    event, detail = refused_by_jwks(idp.origin + OIDC)
    assert "discovery_document" == event["cause"]
    assert idp.jwks_uri in event["detail"]
    assert "issuer_url" in event["hint"]
    assert "discovery" in detail
    assert idp.jwks_uri in detail


def test_a_closed_port_is_connection_refused() -> None:
    """Nothing listening: connection_refused, not URLError."""
    event, detail = refused_by_jwks(f"http://127.0.0.1:{free_port()}/jwks.json")
    assert ("connection_refused", "URLError") == (event["cause"], event["error_type"])
    assert "refused" in detail


def test_a_slow_server_is_a_timeout(server: JWKSServer) -> None:
    """An answer that does not come within jwks_timeout: timeout."""
    server.mode, server.delay = "slow", 2.0
    event, detail = refused_by_jwks(server.url, jwks_timeout=0.3)
    assert "timeout" == event["cause"]
    assert "(timeout)" in detail


def test_https_to_a_plain_http_server_is_a_tls_error(server: JWKSServer) -> None:
    """A TLS handshake that fails (here: the server speaks plain HTTP) is tls_error."""
    event, detail = refused_by_jwks(server.url.replace("http://", "https://"))
    assert "tls_error" == event["cause"]
    assert "TLS" in detail


def test_a_name_that_does_not_resolve_is_a_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host name resolution failure is dns_failure.

    The resolver is replaced by one that fails as glibc does for an unknown name, so the
    test sends no query off this machine.
    """

    def unknown(*_args: object, **_kwargs: object) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    event, detail = refused_by_jwks("http://keys.example.invalid/jwks.json")
    assert "dns_failure" == event["cause"]
    assert "DNS" in detail


# -- discovery --------------------------------------------------------------------------


def refused_by_discovery(issuer: str) -> tuple[Mapping[str, Any], str]:
    """The one discovery_failed event and explain's detail for a verifier of ``issuer``."""
    judge = JWTVerifier(issuer_url=issuer, algorithms=["RS256"])
    with capture_logs() as logs:
        reason, detail = signature_detail(judge)
    assert "key_unavailable" == reason
    [event] = [e for e in logs if e["event"] == "discovery_failed"]
    return event, detail


def test_an_issuer_outage_is_http_status_503_and_explain_says_so() -> None:
    """LocalIssuer down (503 everywhere): discovery_failed http_status 503, shown by explain."""
    with LocalIssuer() as issuer:
        issuer.available = False
        event, detail = refused_by_discovery(issuer.issuer)
    assert ("http_status", 503) == (event["cause"], event["status_code"])
    assert "(http_status): the server answered HTTP 503" in detail


def test_an_issuer_mismatch_shows_both_issuers(idp: DiscoveryServer) -> None:
    """The document's issuer differs by a trailing slash: explain shows both to compare."""
    idp.publish(OIDC, idp.metadata(idp.origin))
    event, detail = refused_by_discovery(idp.origin + "/")
    assert "issuer_mismatch" == event["cause"]
    assert repr(idp.origin) in detail
    assert repr(idp.origin + "/") in detail


def test_a_dead_issuer_is_connection_refused() -> None:
    """No metadata server at all: connection_refused, on the metadata URL."""
    origin = f"http://127.0.0.1:{free_port()}"
    event, _ = refused_by_discovery(origin)
    assert ("connection_refused", origin + OIDC) == (event["cause"], event["url"])


def test_last_failure_is_readable_on_the_key_source(server: JWKSServer) -> None:
    """JWKSCache.last_failure says the latest cause, and clears after a good fetch."""
    server.mode = "garbage"
    judge = JWTVerifier(jwks_url=server.url, algorithms=["RS256"], jwks_cooldown=0.05)
    with capture_logs():
        signature_detail(judge)
    keys: Any = judge.keys
    assert keys.last_failure == "not_json: the response is not JSON"


# -- the command line ---------------------------------------------------------------------


def test_cli_explain_shows_why_the_keys_are_missing(idp: DiscoveryServer) -> None:
    """`invalidtoken-mw explain --jwks-url <the discovery document>` prints the cause and fix."""
    idp.publish(OIDC, idp.metadata(idp.origin))
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    jwks_url = ("--jwks-url", idp.origin + OIDC)
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-m", "invalidtoken_mw", "explain", token(), "--json", *jwks_url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=environment,
    )
    report = json.loads(done.stdout)
    [signature] = [c for c in report["checks"] if c["name"] == "signature"]
    assert ("key_unavailable", False) == (report["reason"], signature["passed"])
    assert "(discovery_document)" in signature["detail"]
    assert f"set jwks_url to its jwks_uri {idp.jwks_uri}" in signature["detail"]
