"""A real OpenID Connect provider this project did not write, on loopback.

The provider is NanoIDP (``nanoidp`` on PyPI, a test dependency in the ``dev`` group):
a complete OAuth 2.0 / OpenID Connect provider that serves discovery, a JWKS and a
token endpoint, and issues RS256 JWT access tokens for the ``client_credentials`` and
``password`` grants. :func:`running_provider` writes its two configuration files
into a temporary directory (one client, one user, the issuer and audience below;
nothing else), starts ``python -m nanoidp`` on a free 127.0.0.1 port in a process
of its own (its own HTTP server, which generates its signing key on start-up), and
waits until its discovery document answers. Nothing of ours runs inside it: tokens
come from its token endpoint over HTTP and keys from its published JWKS.

Without the package the tests fail under CI (``dev`` installs it) and are skipped
elsewhere, as the Redis tests are.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from support.processes import answers, require_package, serving
from support.redis_server import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

START_TIMEOUT = 20.0
"""Seconds the provider gets to answer discovery (it starts in about 3 s)."""

AUDIENCE = "orders-api"
CLIENT_ID = "orders-client"
CLIENT_SECRET = "orders-client-secret"
USERNAME = "alice"
PASSWORD = "alice-password"

_SETTINGS = """\
config_version: 1
server:
  host: "127.0.0.1"
  port: {port}
oauth:
  issuer: "{issuer}"
  audience: "{audience}"
  token_expiry_minutes: 5
  clients:
    - client_id: "{client_id}"
      client_secret: "{client_secret}"
      description: "invalidtoken-mw tests"
"""

_USERS = """\
config_version: 1
users:
  {username}:
    password: "{password}"
    email: "{username}@example.org"
    roles:
      - "ORDERS_ADMIN"
    tenant: "default"
"""


def provider_available() -> None:
    """Fail under CI and skip elsewhere when the provider package is not installed."""
    require_package("nanoidp", "nanoidp")


def discover(issuer: str) -> dict[str, Any]:
    """The OpenID Connect discovery document of ``issuer``."""
    with httpx.Client(trust_env=False) as http:
        response = http.get(f"{issuer}/.well-known/openid-configuration")
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


@dataclass(frozen=True)
class RealProvider:
    """A running provider: its issuer URL and HTTP calls to its own endpoints."""

    issuer: str
    token_endpoint: str
    log: Path

    def metadata(self) -> dict[str, Any]:
        """The provider's OpenID Connect discovery document."""
        return discover(self.issuer)

    def token(self, grant_type: str = "client_credentials", **form: str) -> str:
        """An access token from the provider's token endpoint (client authenticated by Basic)."""
        with httpx.Client(trust_env=False) as http:
            response = http.post(
                self.token_endpoint,
                data={"grant_type": grant_type, **form},
                auth=(CLIENT_ID, CLIENT_SECRET),
            )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        assert answer["token_type"].lower() == "bearer", answer
        access_token: str = answer["access_token"]
        return access_token

    def rotate_keys(self) -> dict[str, Any]:
        """Rotate the provider's signing key through its own management API."""
        with httpx.Client(trust_env=False) as http:
            response = http.post(f"{self.issuer}/api/keys/rotate")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@contextlib.contextmanager
def running_provider(directory: Path) -> Iterator[RealProvider]:
    """Start the provider with a fresh configuration in ``directory``; stop it on exit."""
    provider_available()
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = directory / "config"
    (config / "keys").mkdir(parents=True)
    (config / "settings.yaml").write_text(
        _SETTINGS.format(
            port=port,
            issuer=issuer,
            audience=AUDIENCE,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        )
    )
    (config / "users.yaml").write_text(_USERS.format(username=USERNAME, password=PASSWORD))
    log = directory / "provider.log"
    command = [sys.executable, "-m", "nanoidp", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--strict-config"]
    with serving(
        command,
        cwd=directory,
        log=log,
        ready=lambda: answers(f"{issuer}/.well-known/openid-configuration"),
        name="the OpenID provider",
        timeout=START_TIMEOUT,
    ):
        endpoint = discover(issuer)["token_endpoint"]
        yield RealProvider(issuer=issuer, token_endpoint=endpoint, log=log)
