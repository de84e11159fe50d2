"""JWTVerifier with a JWKS: choosing keys by ``kid``, rotation, refreshes, outages, and the
``jku``/``x5u``/``jwk`` headers and hostile kids that must never choose a key.

JWKS-backed tests run against the real local server of ``support.jwks_server`` (the
``jwks`` and ``attacker`` fixtures of conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from invalidtoken_mw.reasons import AuthFailure, Reason
from support.jwks_server import JWKSServer
from support.tokens import (
    KIDS,
    Keys,
    claims,
    hs256_raw,
    mint,
)
from support.verifying import (
    APIS,
    ASYMMETRIC,
    COOLDOWN,
    HS256,
    jwks_verifier,
    signed_with_kid,
    static_verifier,
    verdict,
)

# -- JWKS ------------------------------------------------------------------------------


@APIS
@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_jwks_key_chosen_by_kid_verifies(jwks: JWKSServer, alg: str, api: str) -> None:
    """A token whose kid names a published key of its algorithm is accepted via JWKS."""
    token = signed_with_kid(alg, KIDS[alg])
    expected = ("valid", 1)
    assert expected == (verdict(jwks_verifier(jwks), token, api), jwks.requests)


@APIS
def test_unknown_kid_is_unknown_key_after_one_refresh(jwks: JWKSServer, api: str) -> None:
    """An unknown kid causes one refresh (after the cool-down), then unknown_key, no more."""
    # A cool-down long enough that the second unknown kid surely falls inside it.
    verifier = jwks_verifier(jwks, jwks_cooldown=0.3)
    expected_first = "valid"
    assert expected_first == verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    time.sleep(0.35)
    first = verdict(verifier, signed_with_kid("ES256", "no-such-kid"), api)
    requests_after_first = jwks.requests
    second = verdict(verifier, signed_with_kid("ES256", "another-unknown-kid"), api)
    expected = ("unknown_key", 2, "unknown_key", 2)
    assert expected == (first, requests_after_first, second, jwks.requests)


@APIS
def test_rotated_key_is_accepted_without_a_restart(jwks: JWKSServer, api: str) -> None:
    """A key published after start-up verifies once the cool-down allows a refresh."""
    verifier = jwks_verifier(jwks)
    expected = "valid"
    assert expected == verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    rotated = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(rotated.public_key(), as_dict=True), "kid": "ec-2", "alg": "ES256"}
    jwks.add_key(jwk)
    time.sleep(COOLDOWN * 1.5)
    token = mint("ES256", key=rotated, headers={"kid": "ec-2"})
    expected_after_rotation = ("valid", 2)
    assert expected_after_rotation == (verdict(verifier, token, api), jwks.requests)


def test_unknown_key_verdict_is_not_cached(jwks: JWKSServer) -> None:
    """A token refused as unknown_key is accepted once its key is published."""
    verifier = jwks_verifier(jwks)
    rotated = ec.generate_private_key(ec.SECP256R1())
    token = mint("ES256", key=rotated, headers={"kid": "ec-new"})
    expected = "unknown_key"
    assert expected == verdict(verifier, token)
    jwks.add_key({**ECAlgorithm.to_jwk(rotated.public_key(), as_dict=True), "kid": "ec-new"})
    time.sleep(COOLDOWN * 1.5)
    expected = "valid"
    assert expected == verdict(verifier, token)


def test_concurrent_unknown_kids_share_one_fetch(jwks: JWKSServer) -> None:
    """64 threads verifying unknown kids at once cause a single JWKS fetch."""
    verifier = jwks_verifier(jwks, jwks_cooldown=5.0)
    tokens = [signed_with_kid("ES256", f"unknown-{i}") for i in range(64)]
    with ThreadPoolExecutor(max_workers=64) as pool:
        verdicts = list(pool.map(lambda t: verdict(verifier, t), tokens))
    expected = (["unknown_key"] * 64, 1)
    assert expected == (verdicts, jwks.requests)


@APIS
@pytest.mark.parametrize(
    ("token_alg", "kid"),
    [
        pytest.param("RS256", "ec-1", id="rsa-token-names-ec-key"),
        pytest.param("PS256", "rsa-1", id="ps256-names-jwk-declaring-rs256"),
        pytest.param("ES256", "ed-1", id="es256-names-okp-key"),
    ],
)
def test_jwks_key_must_fit_the_token_algorithm(
    jwks: JWKSServer, token_alg: str, kid: str, api: str
) -> None:
    """A kid naming a key of another algorithm is algorithm_not_allowed (RFC 8725 §3.1)."""
    token = signed_with_kid(token_alg, kid)
    expected = "algorithm_not_allowed"
    assert expected == verdict(jwks_verifier(jwks), token, api)


@APIS
@pytest.mark.parametrize("jwk_alg", ["RS256", None], ids=["jwk-with-alg", "jwk-no-alg"])
def test_jwks_key_confusion_with_hs256_allowed(
    jwks: JWKSServer, keys: Keys, jwk_alg: str | None, api: str
) -> None:
    """Even with HS256 allowlisted, an HMAC keyed with a published RSA key never verifies."""
    jwk = keys.jwk("RS256", "rsa-1")
    if jwk_alg is None:
        del jwk["alg"]
    jwks.jwks = {"keys": [jwk]}
    verifier = jwks_verifier(jwks, algorithms=["RS256", "HS256"])
    forged = hs256_raw({**HS256, "kid": "rsa-1"}, claims(), keys.rsa_public_pem())
    expected = "algorithm_not_allowed"
    assert expected == verdict(verifier, forged, api)


def _attacker_headers(attacker: JWKSServer, keys: Keys, kid: str) -> dict[str, Any]:
    """jku, x5u and jwk headers pointing at the attacker's server and key."""
    return {"kid": kid, "jku": attacker.url, "x5u": attacker.url, "jwk": keys.rsa_other_jwk()}


@APIS
def test_jku_x5u_jwk_headers_are_never_fetched_static_key(
    attacker: JWKSServer, keys: Keys, api: str
) -> None:
    """A forged token pointing at the attacker's keys is bad_signature and nothing is fetched."""
    headers = _attacker_headers(attacker, keys, "attacker")
    forged = mint("RS256", key=keys.rsa_other, headers=headers)
    honest = mint("RS256", headers=headers)
    verifier = static_verifier("RS256")
    verdicts = (verdict(verifier, forged, api), verdict(verifier, honest, api))
    expected = (("bad_signature", "valid"), 0)
    assert expected == (verdicts, attacker.requests)


@APIS
def test_jku_x5u_jwk_headers_are_never_fetched_jwks(
    jwks: JWKSServer, attacker: JWKSServer, keys: Keys, api: str
) -> None:
    """Via JWKS, only the configured URL is asked; the attacker's kid is unknown_key."""
    verifier = jwks_verifier(jwks)
    forged = mint(
        "RS256", key=keys.rsa_other, headers=_attacker_headers(attacker, keys, "attacker")
    )
    honest = mint("RS256", headers=_attacker_headers(attacker, keys, "rsa-1"))
    verdicts = (verdict(verifier, forged, api), verdict(verifier, honest, api))
    expected = (("unknown_key", "valid"), 0, 1)
    assert expected == (verdicts, attacker.requests, jwks.requests)


HOSTILE_KIDS = [
    pytest.param("../../../etc/passwd", id="kid-path-traversal"),
    pytest.param("1' OR '1'='1'; DROP TABLE keys; --", id="kid-sql"),
    pytest.param("rsa-1\r\nX-Injected: yes", id="kid-crlf"),
    pytest.param("rsa-1\x00", id="kid-nul"),
    pytest.param("", id="kid-empty"),
    pytest.param("https://attacker.example/jwks.json", id="kid-url"),
    pytest.param("__class__", id="kid-dunder"),
    pytest.param("RSA-1", id="kid-case"),
]


@APIS
@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_hostile_kid_is_only_a_dictionary_key_jwks(jwks: JWKSServer, kid: str, api: str) -> None:
    """With JWKS, a kid that looks like a path, SQL or a header is just not found: unknown_key."""
    token = signed_with_kid("RS256", kid)
    expected = ("unknown_key", 1)
    assert expected == (verdict(jwks_verifier(jwks), token, api), jwks.requests)


@APIS
@pytest.mark.parametrize("kid", HOSTILE_KIDS)
def test_hostile_kid_is_ignored_with_a_static_key(kid: str, api: str) -> None:
    """With a static key the kid plays no part: a correctly signed token is accepted."""
    token = signed_with_kid("RS256", kid)
    expected = "valid"
    assert expected == verdict(static_verifier("RS256"), token, api)


@APIS
def test_jwks_down_without_cached_keys_is_key_unavailable(api: str) -> None:
    """JWKS unreachable before any key was cached: key_unavailable, a 503, never a 401."""
    server = JWKSServer()
    server.stop()
    verifier = jwks_verifier(server)
    token = signed_with_kid("RS256", "rsa-1")
    call = verifier.verify if api == "sync" else (lambda t: asyncio.run(verifier.verify_async(t)))
    with pytest.raises(AuthFailure) as info:
        call(token)
    expected = (Reason.KEY_UNAVAILABLE, 503, None)
    assert expected == (info.value.reason, info.value.status, info.value.error)


@APIS
@pytest.mark.parametrize("mode", ["status_500", "garbage", "not_object", "empty"])
def test_jwks_broken_without_cached_keys_is_key_unavailable(
    jwks: JWKSServer, mode: Any, api: str
) -> None:
    """A JWKS answering errors or junk before any key was cached gives key_unavailable."""
    jwks.mode = mode
    verdicts = verdict(jwks_verifier(jwks), signed_with_kid("RS256", "rsa-1"), api)
    expected = "key_unavailable"
    assert expected == verdicts


def test_key_unavailable_is_not_cached(jwks: JWKSServer) -> None:
    """A token refused while the JWKS was broken is accepted once it recovers."""
    verifier = jwks_verifier(jwks)
    token = signed_with_kid("RS256", "rsa-1")
    jwks.mode = "status_500"
    expected = "key_unavailable"
    assert expected == verdict(verifier, token)
    jwks.mode = "ok"
    time.sleep(COOLDOWN * 1.5)
    expected = "valid"
    assert expected == verdict(verifier, token)


@APIS
def test_cached_keys_keep_serving_while_jwks_is_down(jwks: JWKSServer, api: str) -> None:
    """After the JWKS goes down, cached keys still verify new tokens and a failed refresh warns."""
    verifier = jwks_verifier(jwks)
    expected = "valid"
    assert expected == verdict(verifier, signed_with_kid("RS256", "rsa-1"), api)
    jwks.stop()
    time.sleep(COOLDOWN * 1.5)
    with structlog.testing.capture_logs() as logs:
        unknown = verdict(verifier, signed_with_kid("RS256", "rotated-away"), api)
        known = verdict(verifier, signed_with_kid("ES256", "ec-1"), api)
    events = [(e["event"], e["log_level"], e["serving_stale"]) for e in logs]
    assert "unknown_key" == unknown
    assert "valid" == known
    assert [("jwks_refresh_failed", "warning", True)] == events
