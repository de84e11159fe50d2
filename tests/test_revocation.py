"""The revocation-store contract, kept by both stores; then MemoryRevocationStore's own.

Every contract test runs twice through the ``make_store`` fixture: against
:class:`~invalidtoken_mw.MemoryRevocationStore` and against
:class:`~invalidtoken_mw.RedisRevocationStore` on a real ``redis-server`` on loopback
(its local cache off, so every check reaches Redis). The contract: revocation by
(iss, jti) and by subject, expiry, the async forms, threads, and the verifier's
``revocation=`` hook: a revoked token is ``revoked`` (401 ``invalid_token``), also when
its valid verdict was cached, and two encodings of the same claims are one token.
Store-specific behaviour stays with each store: bounds and timing below for the memory
store, keys, TTLs, pub/sub and outages in ``test_redis_store.py``.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from invalidtoken_mw import (
    AuthFailure,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
    RedisRevocationStore,
)
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, hs256_raw, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from support.redis_server import RedisServer

    Store = MemoryRevocationStore | RedisRevocationStore
    MakeStore = Callable[..., Store]

OTHER_ISSUER = "https://other-issuer.example"


@pytest.fixture(params=["memory", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    """Build stores of one kind with the given ``leeway``/``max_token_lifetime``; close them."""
    made: list[RedisRevocationStore] = []
    if request.param == "memory":
        yield MemoryRevocationStore
        return
    server: RedisServer = request.getfixturevalue("redis_server")

    def make(**options: Any) -> RedisRevocationStore:
        store = RedisRevocationStore(server.url, prefix="contract:", local_cache_ttl=0, **options)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def verifier(store: Store) -> JWTVerifier:
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


async def close_on_loop(store: Store) -> None:
    """Close what ``store`` opened on the running loop before ``asyncio.run`` closes it.

    The Redis store's asyncio client belongs to one event loop and must be closed on it
    (an ASGI app does this at lifespan shutdown); the memory store holds nothing.
    """
    if isinstance(store, RedisRevocationStore):
        await store.aclose()


# -- the contract, against both stores --------------------------------------------------


def test_token_is_revoked_by_issuer_and_jti(make_store: MakeStore) -> None:
    """A revoked (iss, jti) is revoked; another jti or the same jti of another issuer is not."""
    store = make_store()
    store.revoke(jti="t-1", issuer=ISSUER, expires_at=time.time() + 3600)
    checks = [
        {"iss": ISSUER, "jti": "t-1"},
        {"iss": ISSUER, "jti": "t-2"},
        {"iss": OTHER_ISSUER, "jti": "t-1"},
        {"jti": "t-1"},
    ]
    assert [True, False, False, False] == [store.is_revoked(c) for c in checks]


def test_two_encodings_of_one_token_are_both_revoked(make_store: MakeStore) -> None:
    """Revocation is keyed by the claims: the same claims serialised differently stay revoked."""
    store = make_store()
    check = verifier(store)
    payload = claims(jti="same-claims")
    compact = hs256_raw({"alg": "HS256", "typ": "JWT"}, json.dumps(payload))
    spaced = hs256_raw({"typ": "JWT", "alg": "HS256"}, json.dumps(payload, indent=2))
    assert compact != spaced
    assert ["valid", "valid"] == [reason_of(check, compact), reason_of(check, spaced)]
    store.revoke(jti="same-claims", issuer=ISSUER, expires_at=payload["exp"])
    assert ["revoked", "revoked"] == [reason_of(check, compact), reason_of(check, spaced)]


def test_subject_revocation_covers_only_tokens_issued_before(make_store: MakeStore) -> None:
    """Without leeway, a subject revocation hits tokens with iat < before or no iat, of that
    subject and issuer."""
    store = make_store(leeway=0)
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


def test_subject_revocation_defaults_to_now(make_store: MakeStore) -> None:
    """Without ``before`` a subject revocation covers tokens issued until the call (no leeway)."""
    store = make_store(leeway=0)
    issued = time.time() - 1
    store.revoke_subject("user-42", issuer=ISSUER)
    fresh = {"iss": ISSUER, "sub": "user-42", "iat": time.time() + 1}
    assert store.is_revoked({"iss": ISSUER, "sub": "user-42", "iat": issued})
    assert not store.is_revoked(fresh)


def test_an_earlier_subject_revocation_never_shortens_a_later_one(make_store: MakeStore) -> None:
    """Revoking a subject again with an earlier ``before`` keeps the later cut-off."""
    store = make_store()
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
    make_store: MakeStore, leeway: float, expired_for: float, expected: tuple[bool, int]
) -> None:
    """A token already past exp + leeway is not stored; one within the leeway still is."""
    store = make_store(leeway=leeway)
    store.revoke(jti="old", issuer=ISSUER, expires_at=time.time() - expired_for)
    assert expected == (
        store.is_revoked({"iss": ISSUER, "jti": "old"}),
        len(store),
    )


def test_concurrent_revocations_and_checks_are_consistent(make_store: MakeStore) -> None:
    """16 threads revoking and checking at once lose no entry and see their own revocations."""
    store = make_store()
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


def test_async_methods_match_the_sync_ones(make_store: MakeStore) -> None:
    """revoke_async, revoke_subject_async and is_revoked_async behave as their sync forms."""
    store = make_store()
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
        try:
            return [await store.is_revoked_async(i) for i in identities]
        finally:
            await close_on_loop(store)

    assert [True, False, True, False] == asyncio.run(scenario())


def test_verifier_refuses_a_revoked_token_as_invalid_token(make_store: MakeStore) -> None:
    """Through JWTVerifier a revoked token is reason revoked: 401 with error invalid_token."""
    store = make_store()
    payload = claims(jti="t-verify")
    store.revoke(jti="t-verify", issuer=ISSUER, expires_at=payload["exp"])
    with pytest.raises(AuthFailure) as caught:
        verifier(store).verify(mint(payload=payload))
    reason = caught.value.reason
    assert (Reason.REVOKED, 401, "invalid_token") == (reason, reason.status, reason.error)


def test_cached_valid_token_is_refused_once_revoked(make_store: MakeStore) -> None:
    """A token whose valid verdict is cached is refused after its revocation (sync and async)."""
    store = make_store()
    check = verifier(store)
    payload = claims(jti="t-cached")
    token = mint(payload=payload)

    async def verdicts() -> tuple[str, str, str]:
        before = reason_of(check, token)
        await check.verify_async(token)
        store.revoke(jti="t-cached", issuer=ISSUER, expires_at=payload["exp"])
        try:
            await check.verify_async(token)
        except AuthFailure as failure:
            after = failure.reason.value
        else:
            after = "valid"
        # The sync verdict is taken before the loop's clients are closed.
        sync_after = await asyncio.to_thread(reason_of, check, token)
        await close_on_loop(store)
        return before, after, sync_after

    before, after, sync_after = asyncio.run(verdicts())
    assert ("valid", "revoked") == (before, after)
    assert "revoked" == sync_after


def test_subject_revocation_refuses_only_older_tokens_of_the_subject(make_store: MakeStore) -> None:
    """Through JWTVerifier a subject revocation refuses the old token and accepts a newer one."""
    store = make_store()
    check = verifier(store)
    now = int(time.time())
    old = mint(payload=claims(sub="user-42", iat=now - 200))
    new = mint(payload=claims(sub="user-42", iat=now))  # 100 s after, beyond the 60 s leeway
    other = mint(payload=claims(sub="user-43", iat=now - 200))
    store.revoke_subject("user-42", issuer=ISSUER, before=now - 100)
    assert ["revoked", "valid", "valid"] == [reason_of(check, t) for t in (old, new, other)]


# -- MemoryRevocationStore's own --------------------------------------------------------


def test_entries_expire_with_the_token() -> None:
    """Token and subject entries disappear after exp (and the lifetime): the store empties."""
    store = MemoryRevocationStore(leeway=0, max_token_lifetime=1)
    now = time.time()
    store.revoke(jti="short", issuer=ISSUER, expires_at=now + 1)
    store.revoke_subject("user-42", issuer=ISSUER, before=now)
    revoked = {"iss": ISSUER, "jti": "short", "sub": "user-42", "iat": now - 1}
    assert 2 == len(store)
    assert store.is_revoked(revoked)
    time.sleep(max(0.0, now + 1.1 - time.time()))
    assert 0 == len(store)
    assert not store.is_revoked(revoked)


def test_store_is_bounded() -> None:
    """Past ``maxsize`` entries per kind the oldest are dropped: memory stays bounded."""
    store = MemoryRevocationStore(maxsize=10)
    expires = time.time() + 3600
    for number in range(50):
        store.revoke(jti=f"t-{number}", issuer=ISSUER, expires_at=expires)
        store.revoke_subject(f"user-{number}", issuer=ISSUER)
    latest = {"iss": ISSUER, "jti": "t-49"}
    assert 20 == len(store)
    assert store.is_revoked(latest)


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


def test_verifier_refuses_a_revocation_object_without_is_revoked() -> None:
    """Passing something that is not a store fails at construction with a how-to message."""
    with pytest.raises(TypeError, match="MemoryRevocationStore"):
        JWTVerifier(key=SECRET, algorithms=["HS256"], revocation=object())  # type: ignore[arg-type]
