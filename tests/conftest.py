"""Fixtures shared by several test modules."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from redis_server import RedisServer, running_redis

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh ``redis-server`` on loopback for one test (see :mod:`redis_server`)."""
    with running_redis(tmp_path) as server:
        yield server
