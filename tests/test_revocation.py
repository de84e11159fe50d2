"""MemoryRevocationStore: revocation by (iss, jti) and by subject, expiry, bounds, threads.

Also the verifier's ``revocation=`` hook with the in-memory store: a revoked token is
``revoked`` (401 ``invalid_token``), also when its valid verdict was cached, and two
encodings of the same claims are one token.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from invalidtoken_mw import AuthFailure, JWTVerifier, MemoryRevocationStore, Reason
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, hs256_raw, mint

OTHER_ISSUER = "https://other-issuer.example"


def verifier(store: MemoryRevocationStore) -> JWTVerifier:
    """The HS256 test verifier checking ``store``."""
    return JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )


def reason_of(check: JWTVerifier, token: str) -> str:
    """``valid`` or the reason ``check`` refuses ``token`` with."""
    try:
        check.verify(token)
    except AuthFailure as failure:
        return failure.reason.value
    return "valid"


def test_token_is_revoked_by_issuer_and_jti() -> None:
    """A revoked (iss, jti) is revoked; another jti or the same jti of another issuer is not."""
    store = MemoryRevocationStore()
    store.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 3600)
    checks = [
        {"iss": ISSUER, "jti": "t-1"},
        {"iss": ISSUER, "jti": "t-2"},
        {"iss": OTHER_ISSUER, "jti": "t-1"},
        {"jti": "t-1"},
    ]
    assert [True, False, False, False] == [store.is_revoked(c) for c in checks]


def test_two_encodings_of_one_token_are_both_revoked() -> None:
    """Revocation is keyed by the claims: the same claims serialised differently stay revoked."""
    store = MemoryRevocationStore()
    check = verifier(store)
    payload = claims(jti="same-claims")
    compact = hs256_raw({"alg": "HS256", "typ": "JWT"}, json.dumps(payload))
    spaced = hs256_raw({"typ": "JWT", "alg": "HS256"}, json.dumps(payload, indent=2))
    assert compact != spaced
    assert ["valid", "valid"] == [reason_of(check, compact), reason_of(check, spaced)]
    store.revoke(jti="same-claims", issuer=ISSUER, expires_at=payload["exp"])
    assert ["revoked", "revoked"] == [reason_of(check, compact), reason_of(check, spaced)]


def test_subject_revocation_covers_only_tokens_issued_before() -> None:
    """Without leeway, a subject revocation hits tokens with iat < before or no iat, of that
    subject and issuer."""
    store = MemoryRevocationStore(leeway=0)
    before = time.time()
    store.revoke_subject("user-42", issuer=ISSUER, before=before)
    cases: dict[str, dict[str, Any]] = {
        "issued before": {"iss": ISSUER, "sub": "user-42", "iat": before - 1},
        "issued at the moment": {"iss": ISSUER, "sub": "user-42", "iat": before},
        "issued after": {"iss": ISSUER, "sub": "user-42", "iat": before + 1},
        "no iat": {"iss": ISSUER, "sub": "user-42"},
        "other subject": {"iss": ISSUER, "sub": "user-43", "iat": before - 1},
        "other issuer": {"iss": OTHER_ISSUER, "sub": "user-42", "iat": before - 1},
    }
    expected = {
        "issued before": True,
        "issued at the moment": False,
        "issued after": False,
        "no iat": True,
        "other subject": False,
        "other issuer": False,
    }
    assert expected == {name: store.is_revoked(c) for name, c in cases.items()}


def test_subject_revocation_defaults_to_now() -> None:
    """Without ``before`` a subject revocation covers tokens issued until the call (no leeway)."""
    store = MemoryRevocationStore(leeway=0)
    issued = time.time() - 1
    store.revoke_subject("user-42", issuer=ISSUER)
    fresh = {"iss": ISSUER, "sub": "user-42", "iat": time.time() + 1}
    assert (True, False) == (
        store.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": issued}),
        store.is_revoked(fresh),
    )


def test_an_earlier_subject_revocation_never_shortens_a_later_one() -> None:
    """Revoking a subject again with an earlier ``before`` keeps the later cut-off."""
    store = MemoryRevocationStore()
    now = time.time()
    store.revoke_subject("user-42", issuer=ISSUER, before=now)
    store.revoke_subject("user-42", issuer=ISSUER, before=now - 100)
    assert store.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": now - 50})


@pytest.mark.parametrize(
    ("leeway", "expired_for", "expected"),
    [
        pytest.param(0, 1, (False, 0), id="expired-no-leeway"),
        pytest.param(60, 120, (False, 0), id="expired-past-leeway"),
        pytest.param(60, 30, (True, 1), id="expired-within-leeway"),
    ],
)
def test_revoking_an_expired_token_is_a_no_op(
    leeway: float, expired_for: float, expected: tuple[bool, int]
) -> None:
    """A token already past exp + leeway is not stored; one within the leeway still is."""
    store = MemoryRevocationStore(leeway=leeway)
    store.revoke(jti="old", issuer=ISSUER, expires_at=time.time() - expired_for)
    assert expected == (
        store.is_revoked({"iss": ISSUER, "jti": "old"}),
        len(store),
    )


def test_entries_expire_with_the_token() -> None:
    """Token and subject entries disappear after exp (and the lifetime): the store empties."""
    store = MemoryRevocationStore(leeway=0, max_token_lifetime=1)
    now = time.time()
    store.revoke(jti="short", issuer=ISSUER, expires_at=now + 1)
    store.revoke_subject("user-42", issuer=ISSUER, before=now)
    revoked = {"iss": ISSUER, "jti": "short", "sub": "user-42", "iat": now - 1}
    assert (2, True) == (len(store), store.is_revoked(revoked))
    time.sleep(max(0.0, now + 1.1 - time.time()))
    assert (0, False) == (len(store), store.is_revoked(revoked))


def test_store_is_bounded() -> None:
    """Past ``maxsize`` entries per kind the oldest are dropped: memory stays bounded."""
    store = MemoryRevocationStore(maxsize=10)
    expires = time.time() + 3600
    for number in range(50):
        store.revoke(jti=f"t-{number}", issuer=ISSUER, expires_at=expires)
        store.revoke_subject(f"user-{number}", issuer=ISSUER)
    latest = {"iss": ISSUER, "jti": "t-49"}
    assert (20, True) == (len(store), store.is_revoked(latest))


def test_concurrent_revocations_and_checks_are_consistent() -> None:
    """16 threads revoking and checking at once lose no entry and see their own revocations."""
    store = MemoryRevocationStore()
    expires = time.time() + 3600

    def work(thread: int) -> list[bool]:
        seen = []
        for number in range(200):
            identity = {"iss": ISSUER, "jti": f"{thread}-{number}"}
            before = store.is_revoked(identity)
            store.revoke(jti=identity["jti"], issuer=ISSUER, expires_at=expires)
            seen.append(not before and store.is_revoked(identity))
        return seen

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16)))
    assert ([True] * 200 * 16, 3200) == ([s for r in results for s in r], len(store))


def test_async_methods_match_the_sync_ones() -> None:
    """revoke_async, revoke_subject_async and is_revoked_async behave as their sync forms."""
    store = MemoryRevocationStore()
    now = time.time()

    async def scenario() -> list[bool]:
        await store.revoke_async(jti="t-1", issuer=ISSUER, expires_at=now + 60)
        await store.revoke_subject_async("user-42", issuer=ISSUER, before=now)
        identities: list[dict[str, Any]] = [
            {"iss": ISSUER, "jti": "t-1"},
            {"iss": ISSUER, "jti": "t-2"},
            {"iss": ISSUER, "sub": "user-42", "iat": now - 1},
            {"iss": ISSUER, "sub": "user-42", "iat": now + 61},  # past the 60 s leeway
        ]
        return [await store.is_revoked_async(i) for i in identities]

    assert [True, False, True, False] == asyncio.run(scenario())


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"maxsize": 0}, id="maxsize"),
        pytest.param({"max_token_lifetime": 0}, id="max_token_lifetime"),
    ],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any]) -> None:
    """A store that could hold nothing, or forget subjects at once, is refused loudly."""
    with pytest.raises(ValueError, match="must be"):
        MemoryRevocationStore(**options)


def test_verifier_refuses_a_revoked_token_as_invalid_token() -> None:
    """Through JWTVerifier a revoked token is reason revoked: 401 with error invalid_token."""
    store = MemoryRevocationStore()
    payload = claims(jti="t-verify")
    store.revoke(jti="t-verify", issuer=ISSUER, expires_at=payload["exp"])
    with pytest.raises(AuthFailure) as caught:
        verifier(store).verify(mint(payload=payload))
    reason = caught.value.reason
    assert (Reason.REVOKED, 401, "invalid_token") == (reason, reason.status, reason.error)


def test_cached_valid_token_is_refused_once_revoked() -> None:
    """A token whose valid verdict is cached is refused after its revocation (sync and async)."""
    store = MemoryRevocationStore()
    check = verifier(store)
    payload = claims(jti="t-cached")
    token = mint(payload=payload)

    async def verdicts() -> tuple[str, str]:
        before = reason_of(check, token)
        await check.verify_async(token)
        store.revoke(jti="t-cached", issuer=ISSUER, expires_at=payload["exp"])
        try:
            await check.verify_async(token)
        except AuthFailure as failure:
            return before, failure.reason.value
        return before, "valid"

    assert ("valid", "revoked") == asyncio.run(verdicts())
    assert "revoked" == reason_of(check, token)


def test_subject_revocation_refuses_only_older_tokens_of_the_subject() -> None:
    """Through JWTVerifier a subject revocation refuses the old token and accepts a newer one."""
    store = MemoryRevocationStore()
    check = verifier(store)
    now = int(time.time())
    old = mint(payload=claims(sub="user-42", iat=now - 200))
    new = mint(payload=claims(sub="user-42", iat=now))  # 100 s after, beyond the 60 s leeway
    other = mint(payload=claims(sub="user-43", iat=now - 200))
    store.revoke_subject("user-42", issuer=ISSUER, before=now - 100)
    assert ["revoked", "valid", "valid"] == [reason_of(check, t) for t in (old, new, other)]


def test_verifier_refuses_a_revocation_object_without_is_revoked() -> None:
    """Passing something that is not a store fails at construction with a how-to message."""
    with pytest.raises(TypeError, match="MemoryRevocationStore"):
        JWTVerifier(key=SECRET, algorithms=["HS256"], revocation=object())  # type: ignore[arg-type]
