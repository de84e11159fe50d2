"""django-oauth-toolkit as an OpenID provider on loopback, in a process of its own.

django-oauth-toolkit (``django-oauth-toolkit`` on PyPI, a test dependency in the ``dev``
group) is the most used OAuth 2.0 / OpenID Connect provider for Django. Its access
tokens are opaque (looked up in its database, or through RFC 7662 introspection); the
JWTs its token endpoint issues are OpenID Connect ID tokens, signed RS256 with the key
its settings name and published in its JWKS.

``python -m support.dot_provider DIRECTORY PORT`` (run by :func:`running_dot`)
configures a throwaway Django project - settings and URLs only: the toolkit's own URLs
under ``/o/``, Django's own login view - with a SQLite database in ``DIRECTORY``, runs
the migrations, registers through the toolkit's own models one user, one RS256 OpenID
client (authorization code), one confidential service client (client credentials)
and the resource server's own confidential client, whose credentials it presents to
the toolkit's RFC 7662 introspection endpoint, and serves the project with waitress
on 127.0.0.1:``PORT``.

:class:`DOTProvider` then signs in as the user, authorises the client (authorization
code with PKCE) and exchanges the code at the token endpoint, all over HTTP as a
browser and a client would; it obtains the service's opaque access token by client
credentials, introspects tokens (``/o/introspect/``) and revokes them through RFC 7009
revocation (``/o/revoke_token/``), again over HTTP only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from support.processes import answers, require_package, serving
from support.redis_server import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

START_TIMEOUT = 30.0
"""Seconds the provider gets to migrate its database and answer discovery."""

CLIENT_ID = "orders-web"
CLIENT_SECRET = "orders-web-secret"
USERNAME = "bob"
PASSWORD = "bob-password"
REDIRECT_URI = "http://127.0.0.1/callback"
SERVICE_ID = "orders-batch"
"""A confidential client that gets opaque access tokens by the client_credentials grant."""
SERVICE_SECRET = "orders-batch-secret"
RESOURCE_ID = "orders-api"
"""The resource server's own confidential client: its credentials call introspection."""
RESOURCE_SECRET = "orders-api-secret"
SCOPE = "orders.read"


def _serve(directory: Path, port: int) -> None:
    """Configure, migrate, register the client and user, then serve (the subprocess)."""
    import django  # noqa: PLC0415 - only in the provider's own process
    import waitress  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415
    from django.conf import settings  # noqa: PLC0415

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_hex(32),
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": []}],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": directory / "db.sqlite3"}
        },
        # A throwaway user and client: the slow default hasher would only cost time.
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGIN_URL="/accounts/login/",
        USE_TZ=True,
        # Tables straight from the models (migrate --run-syncdb): replaying every
        # migration of a database that lives for one test module costs seconds.
        MIGRATION_MODULES=dict.fromkeys(["auth", "contenttypes", "sessions", "oauth2_provider"]),
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": pem,
            "SCOPES": {
                "openid": "OpenID Connect",
                SCOPE: "Read orders",
                "introspection": "Introspect tokens",
            },
            "PKCE_REQUIRED": True,
        },
    )
    django.setup()

    from django.contrib.auth.models import User  # noqa: PLC0415
    from django.contrib.auth.views import LoginView  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415
    from django.http import HttpResponse  # noqa: PLC0415
    from django.template import engines  # noqa: PLC0415
    from django.urls import include, path  # noqa: PLC0415
    from oauth2_provider.models import get_application_model  # noqa: PLC0415

    login_form = engines["django"].from_string(
        '<form method="post">{% csrf_token %}{{ form }}</form>'
    )

    class Login(LoginView):
        def render_to_response(self, context: dict[str, Any], **_: Any) -> HttpResponse:
            # LoginView's own template ships with django.contrib.admin; this project has none.
            return HttpResponse(login_form.render(context, self.request))

    globals()["urlpatterns"] = [
        path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
        path("accounts/login/", Login.as_view()),
    ]
    call_command("migrate", run_syncdb=True, verbosity=0)
    user = User.objects.create_user(USERNAME, password=PASSWORD)
    application = get_application_model()
    application.objects.create(
        name="orders",
        user=user,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=REDIRECT_URI,
        algorithm=application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    # The toolkit lets any authenticated confidential client call /o/introspect/ (by
    # client_secret_basic or client_secret_post); the resource server has its own.
    for client_id, secret in ((SERVICE_ID, SERVICE_SECRET), (RESOURCE_ID, RESOURCE_SECRET)):
        application.objects.create(
            name=client_id,
            client_id=client_id,
            client_secret=secret,
            client_type=application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=application.GRANT_CLIENT_CREDENTIALS,
        )
    waitress.serve(get_wsgi_application(), host="127.0.0.1", port=port, _quiet=True)


def dot_available() -> None:
    """Fail under CI and skip elsewhere when django-oauth-toolkit is not installed."""
    require_package("oauth2_provider", "django-oauth-toolkit")


@dataclass(frozen=True)
class DOTProvider:
    """A running django-oauth-toolkit: its issuer and the code flow of a signed-in user."""

    origin: str
    log: Path

    @property
    def issuer(self) -> str:
        """The issuer: the toolkit mounted under ``/o``."""
        return f"{self.origin}/o"

    @property
    def introspection_url(self) -> str:
        """The toolkit's RFC 7662 introspection endpoint (its discovery does not name it)."""
        return f"{self.issuer}/introspect/"

    @property
    def revocation_url(self) -> str:
        """The toolkit's RFC 7009 revocation endpoint."""
        return f"{self.issuer}/revoke_token/"

    def service_token(self) -> dict[str, Any]:
        """A fresh opaque access token of the service client: the client_credentials grant."""
        with httpx.Client(trust_env=False) as http:
            answer = http.post(
                f"{self.issuer}/token/",
                data={"grant_type": "client_credentials", "scope": SCOPE},
                auth=(SERVICE_ID, SERVICE_SECRET),
            )
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def introspect(self, token: str) -> dict[str, Any]:
        """The toolkit's introspection response for ``token``, asked as the resource server."""
        with httpx.Client(trust_env=False) as http:
            answer = http.post(
                self.introspection_url,
                data={"token": token},
                auth=(RESOURCE_ID, RESOURCE_SECRET),
            )
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document

    def revoke(self, token: str) -> None:
        """Revoke the service's ``token`` at the toolkit's revocation endpoint."""
        with httpx.Client(trust_env=False) as http:
            answer = http.post(
                self.revocation_url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(SERVICE_ID, SERVICE_SECRET),
            )
        answer.raise_for_status()

    def metadata(self) -> dict[str, Any]:
        """The toolkit's OpenID Connect discovery document."""
        with httpx.Client(trust_env=False) as http:
            response = http.get(f"{self.issuer}/.well-known/openid-configuration")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def tokens(self) -> dict[str, Any]:
        """Sign in, authorise the client and exchange the code: the token response."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        with httpx.Client(base_url=self.origin, trust_env=False) as browser:
            form = browser.get("/accounts/login/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
            assert csrf is not None, form.text
            signed_in = browser.post(
                "/accounts/login/",
                data={
                    "csrfmiddlewaretoken": csrf.group(1),
                    "username": USERNAME,
                    "password": PASSWORD,
                },
            )
            assert 302 == signed_in.status_code, signed_in.text
            authorised = browser.get(
                "/o/authorize/",
                params={
                    "response_type": "code",
                    "client_id": CLIENT_ID,
                    "redirect_uri": REDIRECT_URI,
                    "scope": "openid",
                    "code_challenge": challenge.rstrip(b"=").decode(),
                    "code_challenge_method": "S256",
                },
            )
            assert 302 == authorised.status_code, authorised.text
            [code] = parse_qs(urlsplit(authorised.headers["location"]).query)["code"]
        with httpx.Client(base_url=self.origin, trust_env=False) as client:
            answer = client.post(
                "/o/token/",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                },
                auth=(CLIENT_ID, CLIENT_SECRET),
            )
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
        return document


@contextlib.contextmanager
def running_dot(directory: Path) -> Iterator[DOTProvider]:
    """Start django-oauth-toolkit with a fresh project in ``directory``; stop it on exit."""
    dot_available()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    log = directory / "provider.log"
    command = [sys.executable, "-m", "support.dot_provider", str(directory), str(port)]
    tests = Path(__file__).resolve().parent.parent
    with serving(
        command,
        cwd=tests,
        log=log,
        ready=lambda: answers(f"{origin}/o/.well-known/openid-configuration"),
        name="django-oauth-toolkit",
        timeout=START_TIMEOUT,
    ):
        yield DOTProvider(origin=origin, log=log)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]))
