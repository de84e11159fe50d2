"""One Django configuration per test process, and applications built on it.

Django's settings can be configured only once per process, so every test that serves
Django (the framework matrix's Django and DRF rows, tests/test_django_adapter.py,
docs/django.md's samples) calls :func:`configure`, which does it once. What differs
between applications, the URLs, ``MIDDLEWARE`` and ``INVALIDTOKEN``, is fixed per
application instead:

* the middleware stack is loaded when a handler is created, so :func:`wsgi_app` and
  :func:`asgi_app` create it under ``override_settings(MIDDLEWARE=..., INVALIDTOKEN=...)``
  and the middleware keeps the guard built from them;
* the URLs are set per request (``request.urlconf``, which Django's resolver honours).

``REST_FRAMEWORK`` is the same for all: the documented set-up of docs/django.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test import override_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.http import HttpRequest
    from django.http.response import HttpResponseBase

#: The documented middleware entry.
MIDDLEWARE = ["invalidtoken_mw.django.InvalidTokenMiddleware"]
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["invalidtoken_mw.drf.InvalidTokenAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
urlpatterns: list[Any] = []  # ROOT_URLCONF: empty, each application brings its own


def configure() -> None:
    """Configure Django for this process, once."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only-not-a-secret",
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
        ],
        DATABASES={},
        USE_TZ=True,
        # Django's logging config would print every 4xx as a warning to stderr.
        LOGGING_CONFIG=None,
        REST_FRAMEWORK=REST_FRAMEWORK,
    )
    django.setup()


class URLConf:
    """A URL configuration object (Django takes any object with ``urlpatterns``)."""

    def __init__(self, patterns: Sequence[Any]) -> None:
        """Hold the patterns."""
        self.urlpatterns = list(patterns)


class _WSGI(WSGIHandler):
    def __init__(self, urlconf: URLConf) -> None:
        self.urlconf = urlconf
        super().__init__()

    def get_response(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = self.urlconf  # type: ignore[assignment]  # Django takes a module too
        return super().get_response(request)


class _ASGI(ASGIHandler):
    def __init__(self, urlconf: URLConf) -> None:
        self.urlconf = urlconf
        super().__init__()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # Django has no lifespan; uvicorn runs with lifespan="on" in the tests
            # (in production its default "auto" carries on without one).
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await super().__call__(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        request.urlconf = self.urlconf  # type: ignore[assignment]  # Django takes a module too
        return await super().get_response_async(request)


def wsgi_app(
    patterns: Sequence[Any],
    invalidtoken: dict[str, Any],
    *,
    middleware: Sequence[str] = tuple(MIDDLEWARE),
) -> WSGIHandler:
    """A WSGI application (Django's own handler) for ``patterns`` with these settings."""
    configure()
    with override_settings(MIDDLEWARE=list(middleware), INVALIDTOKEN=invalidtoken):
        return _WSGI(URLConf(patterns))


def asgi_app(
    patterns: Sequence[Any],
    invalidtoken: dict[str, Any],
    *,
    middleware: Sequence[str] = tuple(MIDDLEWARE),
) -> Any:  # Django's ASGI types differ from the servers'
    """An ASGI application (Django's own handler) for ``patterns`` with these settings."""
    configure()
    with override_settings(MIDDLEWARE=list(middleware), INVALIDTOKEN=invalidtoken):
        return _ASGI(URLConf(patterns))
