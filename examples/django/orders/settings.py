"""Settings of the orders API: the usual Django ones, plus ``INVALIDTOKEN``.

The verifier is built from ``INVALIDTOKEN_*`` environment variables when the middleware
starts (:func:`orders.auth.verifier_from_env`), so importing the settings needs no key.
"""

from __future__ import annotations

import os
import secrets

# A bearer-token API keeps no sessions or cookies: no SECRET_KEY to protect, but
# Django requires one.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "orders.urls"
# Django REST framework (orders/api.py) and the anonymous user DRF gives a request
# without a token; no database is needed for either.
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "invalidtoken_mw.django.InvalidTokenMiddleware",
]
DATABASES: dict[str, object] = {}
USE_TZ = True

INVALIDTOKEN = {
    "verifier": "orders.auth.verifier_from_env",
    "realm": "orders",
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["invalidtoken_mw.drf.InvalidTokenAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
