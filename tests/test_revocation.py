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
import math
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
    RedisRevocationStore,
    revocation,
)
from invalidtoken_mw.revocation import (
    check_revocation,
    check_revocation_async,
    revocation_keys,
    subject_revoked,
)
from support.tokens import AUDIENCE, ISSUER, SECRET, claims, hs256_raw, json_values, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

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
        # The contract is about answers, not deadlines (those are test_redis_store.py's):
        # a generous timeout keeps 16 threads on a loaded CI machine from timing out.
        options.setdefault("timeout", 5.0)
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


BEYOND_FLOAT = 10**309  # float(BEYOND_FLOAT) raises OverflowError


@pytest.mark.parametrize(
    ("iat", "expected"),
    [
        pytest.param(-BEYOND_FLOAT, "revoked", id="int-below-any-float"),
        pytest.param(BEYOND_FLOAT, "kept", id="int-above-any-float"),
        pytest.param(-(10**4000), "revoked", id="int-4000-digits-below"),
        pytest.param(-1.5e308, "revoked", id="float-far-past"),
        pytest.param(1.5e308, "kept", id="float-far-future"),
        pytest.param(-math.inf, "revoked", id="minus-inf"),
        pytest.param(math.inf, "kept", id="inf"),
        pytest.param(math.nan, "revoked", id="nan-is-no-iat"),
        pytest.param("0", "revoked", id="string-is-no-iat"),
        pytest.param(True, "revoked", id="bool-is-no-iat"),
        pytest.param(None, "revoked", id="no-iat"),
    ],
)
def test_subject_revocation_judges_any_iat_by_the_rules(
    make_store: MakeStore, iat: object, expected: str
) -> None:
    """Any iat a signed token may carry: no exception, and covered iff issued before (sync/async).

    A number that is no moment (NaN, a string, a boolean) counts as no iat: covered.
    """
    store = make_store()
    store.revoke_subject("user-absurd", issuer=ISSUER)
    identity = {"iss": ISSUER, "sub": "user-absurd", "iat": iat}
    other = {"iss": ISSUER, "sub": "user-fine", "iat": iat}

    async def checked_async() -> bool:
        try:
            return await store.is_revoked_async(identity)
        finally:
            await close_on_loop(store)

    answers = (store.is_revoked(identity), asyncio.run(checked_async()), store.is_revoked(other))
    covered = expected == "revoked"
    assert (covered, covered, False) == answers


@pytest.mark.parametrize(
    ("expires_at", "expected"),
    [
        pytest.param(BEYOND_FLOAT, "revoked", id="int-above-any-float"),
        pytest.param(math.inf, "revoked", id="inf"),
        pytest.param(1.5e308, "revoked", id="float-far-future"),
        pytest.param(-BEYOND_FLOAT, "already expired", id="int-below-any-float"),
        pytest.param(-math.inf, "already expired", id="minus-inf"),
    ],
)
def test_a_token_revoked_until_any_exp_is_revoked_or_already_expired(
    make_store: MakeStore, expires_at: float, expected: str
) -> None:
    """revoke() with an exp beyond any float never raises: a future one revokes, a past one not."""
    store = make_store()
    stored = store.revoke(jti="absurd-exp", issuer=ISSUER, expires_at=expires_at)
    revoked = store.is_revoked({"iss": ISSUER, "jti": "absurd-exp"})
    assert (expected == "revoked",) * 2 == (stored, revoked)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda s: s.revoke(jti="j", issuer=ISSUER, expires_at=math.nan), id="exp-nan"),
        pytest.param(lambda s: s.revoke(jti="j", issuer=ISSUER, expires_at="1"), id="exp-string"),
        pytest.param(lambda s: s.revoke_subject("u", issuer=ISSUER, before=math.inf), id="inf"),
        pytest.param(lambda s: s.revoke_subject("u", issuer=ISSUER, before=math.nan), id="nan"),
        pytest.param(lambda s: s.revoke_subject("u", issuer=ISSUER, before=BEYOND_FLOAT), id="big"),
    ],
)
def test_revoking_with_a_moment_that_is_no_time_is_refused(
    make_store: MakeStore, call: Callable[[Store], object]
) -> None:
    """NaN, or an endless subject revocation: a ValueError naming the argument, nothing stored."""
    store = make_store()
    with pytest.raises(ValueError, match=r"^(expires_at|before) must be"):
        call(store)
    assert 0 == len(store)


@settings(max_examples=300, deadline=None)
@given(
    iat=st.one_of(
        st.integers(),
        st.integers(min_value=-(10**400), max_value=10**400),
        st.floats(allow_nan=True, allow_infinity=True),
        json_values,
    ),
    before=st.floats(min_value=-1e300, max_value=1e300),
    leeway=st.floats(min_value=0, max_value=1e6),
)
def test_revocation_keys_never_raise_and_order_iat_exactly(
    iat: object, before: float, leeway: float
) -> None:
    """For any claim value the identity is read without an exception, and a numeric iat is
    compared with the revocation moment exactly (as a fraction), however large."""
    if isinstance(iat, bool) or not isinstance(iat, (int, float)):
        exact = True  # no usable iat: covered
    elif isinstance(iat, int) or math.isfinite(iat):
        exact = Fraction(iat) < Fraction(before + leeway)
    else:
        exact = math.isnan(iat) or iat < 0  # NaN is no usable iat: covered
    identity = revocation_keys({"iss": ISSUER, "sub": "s", "iat": iat})
    assert exact == subject_revoked(identity[3], before, leeway)


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


# -- check_revocation: the verifier's way to ask any store ----------------------------------


class RaisingStore:
    """A store of the application's own whose every check raises ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def is_revoked(self, _claims: Mapping[str, Any]) -> bool:
        """Raise the error."""
        raise self.error

    async def is_revoked_async(self, _claims: Mapping[str, Any]) -> bool:
        """Raise the error."""
        raise self.error


@pytest.fixture
def fresh_store_error_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh throttle for ``revocation_store_error``, so no earlier test's event hides ours."""
    throttle = revocation._Throttle(interval=1.0)  # noqa: SLF001 - reset between tests
    monkeypatch.setattr(revocation, "_store_error_log", throttle)


def both_checks(store: Any, identity: dict[str, Any]) -> list[object]:
    """What check_revocation and check_revocation_async give: the answer, or what they raise."""

    async def checked_async() -> bool:
        return await check_revocation_async(store, identity)

    def answer_of(check: Callable[[], bool]) -> object:
        try:
            return check()
        except AuthFailure as failure:
            return failure

    return [
        answer_of(lambda: check_revocation(store, identity)),
        answer_of(lambda: asyncio.run(checked_async())),
    ]


@pytest.mark.usefixtures("fresh_store_error_log")
@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("db down for user-secret"),
        KeyError("user-secret"),
        OverflowError(),
        TypeError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_exception_from_a_store_is_revocation_unavailable(error: Exception) -> None:
    """Any exception: 503 revocation_unavailable naming its type; one store-error event (the
    second within a second is throttled) with type names only, never a claim value."""
    identity = {"iss": ISSUER, "sub": "user-secret", "jti": "jti-secret"}
    with capture_logs() as logs:
        results = both_checks(RaisingStore(error), identity)
    failures = [r for r in results if isinstance(r, AuthFailure)]
    assert [
        (Reason.REVOCATION_UNAVAILABLE, 503, {"error_type": type(error).__name__}, error)
    ] * 2 == [(f.reason, f.status, dict(f.context), f.__cause__) for f in failures]
    assert [
        {
            "event": "revocation_store_error",
            "log_level": "error",
            "error_type": type(error).__name__,
            "store": "RaisingStore",
        }
    ] == logs


def test_a_throttled_store_error_is_counted_in_the_next_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Store errors left out of the log within the interval are counted in the next event."""
    clock = [100.0]
    throttle = revocation._Throttle(interval=1.0, clock=lambda: clock[0])  # noqa: SLF001
    monkeypatch.setattr(revocation, "_store_error_log", throttle)
    store = RaisingStore(RuntimeError())
    with capture_logs() as logs:
        for step in (0.0, 0.3, 0.3, 0.5):  # at 100, 100.3, 100.6, then 101.1: a second later
            clock[0] += step
            with pytest.raises(AuthFailure):
                check_revocation(store, {})
    assert [None, 2] == [e.get("suppressed") for e in logs]


@pytest.mark.usefixtures("fresh_store_error_log")
def test_an_auth_failure_from_a_store_passes_unchanged() -> None:
    """A store's own AuthFailure (e.g. Redis unreachable) is raised as it is, nothing logged."""
    failure = AuthFailure(Reason.REVOKED, context={"by": "own-store"})
    with capture_logs() as logs:
        results = both_checks(RaisingStore(failure), {})
    assert ([failure, failure], []) == (results, logs)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), asyncio.CancelledError()], ids=repr)
def test_what_is_not_an_exception_is_not_swallowed(error: BaseException) -> None:
    """KeyboardInterrupt and a cancelled task go on up: they are not the store's answer."""
    with pytest.raises(type(error)):
        check_revocation(RaisingStore(error), {})


def test_check_revocation_returns_the_stores_answer() -> None:
    """A working store's answer is returned as a bool, sync and async."""
    store = MemoryRevocationStore()
    store.revoke(jti="t", issuer=ISSUER, expires_at=time.time() + 60)
    revoked, kept = {"iss": ISSUER, "jti": "t"}, {"iss": ISSUER, "jti": "u"}
    assert [True, True, False, False] == [*both_checks(store, revoked), *both_checks(store, kept)]
