"""Revocation across processes: two uvicorn app processes and the ``revoke`` command.

Each app process (:mod:`support.revocation_app`) has its own middleware, verifier, Redis store
and connections, with a 30 s local cache: a revocation made through one process, or
by an operator with ``invalidtoken-mw revoke``, must reach the other through the
pub/sub channel within one second. The command's other forms, usage errors and an
unreachable Redis are pinned by exit code and message.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import redis

from invalidtoken_mw import RedisRevocationStore
from support.redis_server import AppProcess, RedisServer, free_port, running_redis, wait_until
from support.tokens import ISSUER, SECRET, claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

PREFIX = "e2e:"
CHANNEL = f"{PREFIX}revocations"
TESTS = Path(__file__).parent
COMMAND = str(Path(sys.executable).with_name("invalidtoken-mw"))
REVOKED_CHALLENGE = (
    'Bearer realm="orders", error="invalid_token",'
    ' error_description="The access token has been revoked."'
)


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module's app processes and commands."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def apps(
    shared_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two app processes, A and B, sharing the module's Redis; yields their base URLs."""
    logs = tmp_path_factory.mktemp("apps")
    with contextlib.ExitStack() as stack:
        processes = []
        for name in ("a", "b"):
            process = AppProcess(
                [
                    *("uvicorn", "support.revocation_app:app", "--app-dir", str(TESTS)),
                    *("--host", "127.0.0.1", "--port", "{port}", "--lifespan", "on"),
                    *("--log-level", "warning", "--no-access-log"),
                ],
                redis_url=shared_redis.url,
                settings={"SECRET": SECRET.decode(), "PREFIX": PREFIX, "CACHE_TTL": "30"},
                log=logs / f"{name}.log",
            )
            stack.callback(process.stop)
            processes.append(process)
        for process in processes:
            process.wait_ready()
        yield processes[0].url, processes[1].url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An HTTP client ignoring proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=5) as client:
        yield client


@pytest.fixture
def store(shared_redis: RedisServer) -> Iterator[RedisRevocationStore]:
    """A store without local cache, to see what the command wrote."""
    store = RedisRevocationStore(shared_redis.url, prefix=PREFIX, local_cache_ttl=0)
    yield store
    store.close()


def status(http: httpx.Client, base_url: str, token: str) -> int:
    """The status ``base_url`` answers ``GET /orders`` with ``token``."""
    return http.get(f"{base_url}/orders", headers={"authorization": f"Bearer {token}"}).status_code


def wait_for_both_subscribed(shared_redis: RedisServer) -> None:
    """Wait until both app processes listen on the channel (each starts on first check)."""
    with redis.Redis.from_url(shared_redis.url) as admin:
        assert wait_until(lambda: admin.pubsub_numsub(CHANNEL)[0][1] >= 2, 5) < math.inf
    time.sleep(0.05)  # each subscriber flushes right after subscribing; let that pass


def revoke_command(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``invalidtoken-mw revoke`` with ``args``."""
    return subprocess.run(  # noqa: S603
        [COMMAND, "revoke", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# -- two processes ------------------------------------------------------------------------


def test_revocation_through_process_a_is_enforced_by_process_b_within_a_second(
    apps: tuple[str, str], shared_redis: RedisServer, http: httpx.Client
) -> None:
    """B, caching the token as valid, answers 401 revoked within 1 s of A's revocation."""
    url_a, url_b = apps
    payload = claims(jti="e2e-jti")
    token = mint(payload=payload)
    assert [200, 200] == [status(http, url_a, token), status(http, url_b, token)]
    wait_for_both_subscribed(shared_redis)
    assert 200 == status(http, url_b, token)
    revocation = {"jti": "e2e-jti", "expires_at": payload["exp"]}
    assert 204 == http.post(f"{url_a}/revoke", json=revocation).status_code
    elapsed = wait_until(lambda: status(http, url_b, token) == 401, 1.0)
    answer = http.get(f"{url_b}/orders", headers={"authorization": f"Bearer {token}"})
    assert elapsed < 1.0
    assert REVOKED_CHALLENGE == answer.headers["www-authenticate"]
    assert "revoked" == answer.json()["reason"]
    other = mint(payload=claims(jti="e2e-other"))
    assert [401, 200] == [status(http, url_a, token), status(http, url_b, other)]


def test_operator_subject_revocation_reaches_both_processes_within_a_second(
    apps: tuple[str, str], shared_redis: RedisServer, http: httpx.Client
) -> None:
    """``revoke --subject`` by an operator makes both processes refuse the subject's token."""
    now = int(time.time())
    token = mint(payload=claims(sub="user-e2e", iat=now - 200, jti="e2e-sub"))
    assert [200, 200] == [status(http, url, token) for url in apps]
    wait_for_both_subscribed(shared_redis)
    assert [200, 200] == [status(http, url, token) for url in apps]
    done = revoke_command(
        "--redis-url", shared_redis.url, "--prefix", PREFIX, "--subject", "user-e2e",
        "--issuer", ISSUER, "--before", str(now - 100),
    )  # fmt: skip
    start = time.monotonic()
    refused = wait_until(lambda: [status(http, url, token) for url in apps] == [401, 401], 1.0)
    assert 0 == done.returncode
    assert f"revoked subject=user-e2e issuer={ISSUER}\n" == done.stdout
    assert time.monotonic() - start < 1.0
    assert refused < 1.0
    fresh = mint(payload=claims(sub="user-e2e", iat=now))  # beyond the cut-off plus leeway
    assert [200, 200] == [status(http, url, fresh) for url in apps]


# -- the revoke command --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["argument", "stdin"])
def test_revoke_token_writes_its_issuer_and_jti(
    shared_redis: RedisServer, store: RedisRevocationStore, source: str
) -> None:
    """``revoke --token`` (or ``--token -`` and stdin) revokes by iss and jti, until exp."""
    payload = claims(jti=f"cli-token-{source}")
    token = mint(payload=payload)
    done = revoke_command(
        "--redis-url", shared_redis.url, "--prefix", PREFIX,
        "--token", "-" if source == "stdin" else token,
        stdin=token if source == "stdin" else None,
    )  # fmt: skip
    expected = f"revoked jti={payload['jti']} issuer={ISSUER} until exp={payload['exp']}\n"
    assert 0 == done.returncode
    assert expected == done.stdout
    assert "" == done.stderr
    assert store.is_revoked(payload)


def test_revoke_token_that_never_expires_keeps_an_expiry(
    shared_redis: RedisServer, store: RedisRevocationStore
) -> None:
    """``revoke --token`` with ``exp`` 10**309 (beyond any float) revokes it until year 9999."""
    payload = claims(jti="cli-endless", exp=10**309)
    done = revoke_command(
        "--redis-url", shared_redis.url, "--prefix", PREFIX, "--token", mint(payload=payload)
    )  # fmt: skip
    with redis.Redis.from_url(shared_redis.url) as admin:
        expiries = [admin.expiretime(key) for key in admin.keys(f"{PREFIX}jti:*")]
    assert (0, "") == (done.returncode, done.stderr)
    assert store.is_revoked(payload)
    assert 253_402_300_800 in expiries  # 9999-12-31T23:59:59Z, the latest written, plus 1 s


def test_revoke_jti_with_expiry(shared_redis: RedisServer, store: RedisRevocationStore) -> None:
    """``revoke --jti --issuer --expires-at`` revokes that token id of that issuer only."""
    expires = int(time.time()) + 600
    done = revoke_command(
        "--redis-url", shared_redis.url, "--prefix", PREFIX,
        "--jti", "cli-jti", "--issuer", ISSUER, "--expires-at", str(expires),
    )  # fmt: skip
    assert 0 == done.returncode
    assert store.is_revoked({"iss": ISSUER, "jti": "cli-jti"})
    assert not store.is_revoked({"iss": "https://other.example", "jti": "cli-jti"})


def test_revoke_subject_before_a_moment(
    shared_redis: RedisServer, store: RedisRevocationStore
) -> None:
    """``revoke --subject --before`` covers the subject's tokens issued before that moment."""
    before = time.time() - 100
    done = revoke_command(
        "--redis-url", shared_redis.url, "--prefix", PREFIX,
        "--subject", "cli-user", "--issuer", ISSUER, "--before", str(before),
    )  # fmt: skip
    identity: dict[str, Any] = {"iss": ISSUER, "sub": "cli-user"}
    assert 0 == done.returncode
    assert store.is_revoked({**identity, "iat": before - 1})
    assert not store.is_revoked({**identity, "iat": before + 60 + 1})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--jti", "x"),
            "invalidtoken-mw: give --token, --subject, or --jti with --expires-at\n",
            id="jti-without-expiry",
        ),
        pytest.param(
            ("--token", mint(payload=claims())),
            "invalidtoken-mw: the token has no jti or exp to revoke by\n",
            id="token-without-jti",
        ),
        pytest.param(
            ("--token", "not-a-jwt"),
            "invalidtoken-mw: --token is not a readable JWT\n",
            id="not-a-token",
        ),
        pytest.param(
            ("--subject", "u", "--before", "inf"),
            "invalidtoken-mw: before must be a finite number of seconds since the epoch.\n",
            id="before-inf",
        ),
        pytest.param(
            ("--jti", "x", "--expires-at", "nan"),
            "invalidtoken-mw: expires_at must be a number of seconds since the epoch (the exp).\n",
            id="expires-at-nan",
        ),
    ],
)
def test_revoke_usage_errors_exit_2(
    shared_redis: RedisServer, args: tuple[str, ...], message: str
) -> None:
    """Incomplete or unreadable input exits 2 with one line saying what is missing."""
    done = revoke_command("--redis-url", shared_redis.url, "--prefix", PREFIX, *args)
    assert (2, "", message) == (done.returncode, done.stdout, done.stderr)


def test_revoke_with_redis_unreachable_exits_1_quickly() -> None:
    """Against a port nobody listens on, the command says so in one line and exits 1."""
    start = time.monotonic()
    done = revoke_command(
        "--redis-url", f"redis://127.0.0.1:{free_port()}/0",
        "--jti", "x", "--expires-at", str(time.time() + 60),
    )  # fmt: skip
    assert 1 == done.returncode
    assert "" == done.stdout
    assert "invalidtoken-mw: cannot reach Redis: ConnectionError\n" == done.stderr
    assert time.monotonic() - start < 10
