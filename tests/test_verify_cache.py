"""JWTVerifier's verdict caches: valid verdicts until exp (plus leeway) or the TTL, lasting
refusals in the negative cache, neither shared nor grown, thread-safe.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from invalidtoken_mw.reasons import Reason
from support.tokens import (
    OTHER_SECRET,
    claims,
    hs256_raw,
    mint,
    tamper_claims,
)
from support.verifying import (
    APIS,
    HS256,
    count_decodes,
    failure_of,
    static_verifier,
    verdict,
)


def test_verified_token_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """The second verify of the same token answers from the cache without decoding."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    first, second = verifier.verify(token), verifier.verify(token)
    assert (first, 1) == (second, counter.calls)


def test_cached_token_with_async_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """verify_async shares the cache with verify."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    first = verifier.verify(token)
    second = asyncio.run(verifier.verify_async(token))
    assert (first, 1) == (second, counter.calls)


def _freeze_time(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """Make invalidtoken_mw.verify read ``moment`` as the current time."""
    monkeypatch.setattr("invalidtoken_mw.verify.time.time", lambda: moment)


@APIS
@pytest.mark.parametrize(
    ("leeway", "later", "expected"),
    [
        pytest.param(0, 99, "valid", id="before-exp"),
        pytest.param(0, 100, "expired", id="at-exp"),
        pytest.param(0, 101, "expired", id="after-exp"),
        pytest.param(30, 129, "valid", id="within-leeway"),
        pytest.param(30, 131, "expired", id="beyond-leeway"),
    ],
)
def test_cached_token_still_expires_at_exp_plus_leeway(
    monkeypatch: pytest.MonkeyPatch, leeway: int, later: int, expected: str, api: str
) -> None:
    """A cached verdict ends at exp + leeway, answered from the cache without a decode."""
    now = int(time.time())
    verifier = static_verifier(leeway=leeway)
    counter = count_decodes(verifier, monkeypatch)
    token = mint(payload=claims(exp=now + 100, iat=now))
    verifier.verify(token)
    _freeze_time(monkeypatch, now + later)
    assert (expected, 1) == (verdict(verifier, token, api), counter.calls)


def test_numeric_string_exp_is_never_cached_as_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exp PyJWT would read as a number (a numeric string) is refused, then and later."""
    now = int(time.time())
    verifier = static_verifier(leeway=0)
    token = hs256_raw(HS256, claims(exp=str(now + 100)))
    assert "malformed_token" == verdict(verifier, token)
    _freeze_time(monkeypatch, now + 101)
    assert "malformed_token" == verdict(verifier, token)


def test_cache_ttl_bounds_a_cached_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past cache_ttl a token is decoded again even though it has not expired."""
    verifier = static_verifier(cache_ttl=0.05)
    counter = count_decodes(verifier, monkeypatch)
    token = mint()
    verifier.verify(token)
    time.sleep(0.1)
    verifier.verify(token)
    expected = 2
    assert expected == counter.calls


def test_cache_size_zero_disables_both_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """With cache_size=0 every verify decodes, valid and forged tokens alike."""
    verifier = static_verifier(cache_size=0)
    counter = count_decodes(verifier, monkeypatch)
    good, forged = mint(), mint(key=OTHER_SECRET)
    verdicts = [verdict(verifier, t) for t in (good, good, forged, forged)]
    expected = (["valid", "valid", "bad_signature", "bad_signature"], 4)
    assert expected == (verdicts, counter.calls)


def test_returned_claims_are_copies() -> None:
    """Mutating a returned dict, even a nested list or object, never changes the next result."""
    payload = claims(
        scp=["read"],
        cnf={"jkt": "abc"},
        realm_access={"roles": ["user"], "meta": {"tags": ["a"]}},
        groups=[{"id": 1, "tags": ["x"]}, "plain", [["deep"]]],
    )
    verifier = static_verifier()
    token = mint(payload=payload)
    first = verifier.verify(token)
    first["sub"] = "admin"
    first["scp"].append("admin")
    first["cnf"]["jkt"] = "evil"
    first["realm_access"]["roles"].append("admin")
    first["realm_access"]["meta"]["tags"].clear()
    first["groups"][0]["tags"].append("y")
    first["groups"][2][0].append("deeper")
    second = verifier.verify(token)
    second["scp"].append("write")
    assert payload == verifier.verify(token)


def test_negative_cache_decodes_a_forged_token_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same forged token twice costs one decode and gets the same verdict."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    forged = mint(key=OTHER_SECRET)
    first, second = failure_of(verifier, forged), failure_of(verifier, forged)
    expected = (Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE, 1)
    assert expected == (first.reason, second.reason, counter.calls)


def test_negative_cache_hits_do_not_share_or_grow_one_exception() -> None:
    """Each cached refusal is a fresh AuthFailure, so tracebacks do not pile up on one object."""
    verifier = static_verifier()
    forged = mint(key=OTHER_SECRET)
    failures = [failure_of(verifier, forged) for _ in range(3)]
    expected = 3
    assert expected == len({id(f) for f in failures})


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(mint(payload=claims(exp=int(time.time()) - 7200)), id="expired"),
        pytest.param(mint(payload=claims(aud="other")), id="wrong-audience"),
        pytest.param("a.b", id="malformed"),
    ],
)
def test_negative_cache_covers_lasting_verdicts(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    """Expired, wrong-audience and malformed verdicts are remembered: at most one decode."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    assert verdict(verifier, token) == verdict(verifier, token)
    assert counter.calls <= 1


def test_negative_cache_ttl_zero_disables_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """With negative_cache_ttl=0 a forged token is decoded every time."""
    verifier = static_verifier(negative_cache_ttl=0)
    counter = count_decodes(verifier, monkeypatch)
    forged = mint(key=OTHER_SECRET)
    verdict(verifier, forged)
    verdict(verifier, forged)
    expected = 2
    assert expected == counter.calls


def test_not_yet_valid_verdict_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """A not_yet_valid token is decoded again each time, since it will become valid."""
    verifier = static_verifier()
    counter = count_decodes(verifier, monkeypatch)
    token = mint(payload=claims(nbf=int(time.time()) + 600))
    verdicts = [verdict(verifier, token), verdict(verifier, token)]
    expected = (["not_yet_valid", "not_yet_valid"], 2)
    assert expected == (verdicts, counter.calls)


def test_cache_is_thread_safe_under_a_mix_of_tokens() -> None:
    """16 threads x 500 verifies of mixed tokens always get a cacheless verifier's verdict."""
    now = int(time.time())
    tokens = [
        *(mint(payload=claims(sub=f"user-{i}")) for i in range(6)),
        mint(key=OTHER_SECRET),
        mint(payload=claims(exp=now - 7200)),
        mint(payload=claims(aud="other")),
        mint(payload=claims(nbf=now + 600)),
        "not.a.jwt",
        tamper_claims(mint(), sub="admin"),
    ]
    reference = static_verifier(cache_size=0)
    expected = [verdict(reference, t) for t in tokens]
    shared = static_verifier(cache_size=8)

    def run(offset: int) -> list[tuple[int, str]]:
        picks = [(offset + i) % len(tokens) for i in range(500)]
        return [(i, verdict(shared, tokens[i])) for i in picks]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = [pair for batch in pool.map(run, range(16)) for pair in batch]
    wrong = [(i, got) for i, got in results if got != expected[i]]
    expected_shape: tuple[list[tuple[int, str]], int] = ([], 16 * 500)
    assert expected_shape == (wrong, len(results))
