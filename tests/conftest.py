"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from support.jwks_server import JWKSServer
from support.redis_server import RedisServer, running_redis
from support.tokens import KIDS, Keys, session_keys

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# The longer fuzz run (README, Development): INVALIDTOKEN_FUZZ_PROFILE=long gives every
# property test that does not pin max_examples (the fuzz tests) INVALIDTOKEN_FUZZ_EXAMPLES
# examples each, 2000 by default.
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("INVALIDTOKEN_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# The normal run: Hypothesis's timing checks (generation speed, per-example deadline) say
# more about a loaded two-core machine than about the code, so they are off; every
# property still asserts on every example it draws.
settings.register_profile("standard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("INVALIDTOKEN_FUZZ_PROFILE", "standard"))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on loopback for one test (see :mod:`support.redis_server`)."""
    with running_redis(tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def keys() -> Keys:
    """The session's signing keys (RSA generation is slow, so they are made once)."""
    return session_keys()


@pytest.fixture
def jwks(keys: Keys) -> Iterator[JWKSServer]:
    """The identity provider's JWKS on loopback: one key per asymmetric algorithm, under KIDS."""
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk(alg, kid) for alg, kid in KIDS.items()]}
    yield server
    server.stop()


@pytest.fixture
def attacker(keys: Keys) -> Iterator[JWKSServer]:
    """A second server standing for the attacker's key URL; it must never be asked."""
    server = JWKSServer()
    server.jwks = {"keys": [{**keys.rsa_other_jwk(), "kid": "attacker", "alg": "RS256"}]}
    yield server
    server.stop()
