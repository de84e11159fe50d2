"""invalidtoken_mw.django and invalidtoken_mw.drf, served for real.

Django's WSGI handler runs under waitress, its ASGI handler under uvicorn (async views,
the async middleware path); every refusal is compared byte for byte with the plain
``InvalidTokenWSGIMiddleware``'s answer to the same request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views import View
from structlog.testing import capture_logs

from invalidtoken_mw import AuthFailure, InvalidTokenWSGIMiddleware, Reason
from invalidtoken_mw.django import (
    current_claims,
    exempt,
    optional,
    require_any_scope,
    require_scopes,
)
from support.django_project import asgi_app, configure, wsgi_app
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint

configure()

from rest_framework.decorators import api_view  # noqa: E402
from rest_framework.exceptions import NotAuthenticated  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from invalidtoken_mw.drf import (  # noqa: E402
    HasAnyRole,
    HasAnyScope,
    HasRoles,
    HasScopes,
    TokenUser,
    exception_handler,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx
    from rest_framework.request import Request

REALM = "orders"


def token(**overrides: Any) -> str:
    return mint(payload=claims(**overrides))


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# -- the application -------------------------------------------------------------------


def whoami(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"sub": current_claims(request)["sub"]})


def raise_revoked(_request: HttpRequest) -> HttpResponse:
    raise AuthFailure(Reason.REVOKED)


def raise_expired(_request: HttpRequest) -> HttpResponse:
    raise jwt.ExpiredSignatureError("expired")


def raise_other(_request: HttpRequest) -> HttpResponse:
    raise RuntimeError("not an authentication failure")


def bare_401(_request: HttpRequest) -> HttpResponse:
    return HttpResponse("no", status=401)


def own_challenge(_request: HttpRequest) -> HttpResponse:
    response = HttpResponse("no", status=401)
    response["WWW-Authenticate"] = 'Basic realm="legacy"'
    return response


@exempt
def public(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"claims": request.token_claims})  # type: ignore[attr-defined]


@exempt
def public_reads_claims(request: HttpRequest) -> HttpResponse:
    try:
        current_claims(request)
    except RuntimeError as mistake:
        return JsonResponse({"mistake": str(mistake)})
    return JsonResponse({"mistake": None})  # pragma: no cover - the test fails here


@optional
def maybe_reads_claims(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"sub": current_claims(request)["sub"]})


@optional
def maybe(request: HttpRequest) -> HttpResponse:
    claims = request.token_claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": None if claims is None else claims["sub"]})


@optional
@require_scopes("orders:read")
def maybe_scoped(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


@require_any_scope("orders:read", "orders:admin")
@require_scopes("orders:write")
def stacked(_request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


@exempt
class PublicView(View):
    def get(self, _request: HttpRequest) -> HttpResponse:
        return JsonResponse({"public": True})


@require_scopes("orders:write")
class WriteView(View):
    def get(self, _request: HttpRequest) -> HttpResponse:
        return JsonResponse({"ok": True})


async def async_whoami(request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    return JsonResponse({"sub": current_claims(request)["sub"]})


async def async_raise(_request: HttpRequest) -> HttpResponse:
    await asyncio.sleep(0)
    raise AuthFailure(Reason.REVOKED)


@optional
async def async_maybe(request: HttpRequest) -> HttpResponse:
    claims = request.token_claims  # type: ignore[attr-defined]
    return JsonResponse({"sub": None if claims is None else claims["sub"]})


async def async_bare_401(_request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=401)


class DRFWhoAmI(APIView):
    def get(self, request: Request) -> Response:
        user: object = request.user
        assert isinstance(user, TokenUser)
        return Response({"user": str(user), "sub": current_claims(request)["sub"]})


@exempt
class DRFNeedsLogin(APIView):
    from rest_framework.permissions import IsAuthenticated  # noqa: PLC0415

    permission_classes = (IsAuthenticated,)

    def get(self, _request: Request) -> Response:
        return Response({"ok": True})


class DRFRaisesNotAuthenticated(APIView):
    def get(self, _request: Request) -> Response:
        raise NotAuthenticated


@exempt
@api_view(["GET"])
def drf_public(request: Request) -> Response:
    return Response({"auth": request.auth})


class DRFRaises(APIView):
    def get(self, _request: Request) -> Response:
        raise AuthFailure(Reason.REVOKED)


class DRFRaisesWithHandler(DRFRaises):
    def get_exception_handler(self) -> Any:
        return exception_handler


urlpatterns = [
    path("protected", whoami),
    path("raise", raise_revoked),
    path("raise-pyjwt", raise_expired),
    path("raise-other", raise_other),
    path("bare-401", bare_401),
    path("own-challenge", own_challenge),
    path("public", public),
    path("maybe", maybe),
    path("public-reads-claims", public_reads_claims),
    path("maybe-reads-claims", maybe_reads_claims),
    path("maybe-scoped", maybe_scoped),
    path("stacked", stacked),
    path("class-public", PublicView.as_view()),
    path("class-write", WriteView.as_view()),
    path("health/", public),
    path("async/protected", async_whoami),
    path("async/raise", async_raise),
    path("async/maybe", async_maybe),
    path("async/bare-401", async_bare_401),
    path("drf/whoami", DRFWhoAmI.as_view()),
    path("drf/needs-login", DRFNeedsLogin.as_view()),
    path("drf/not-authenticated", DRFRaisesNotAuthenticated.as_view()),
    path("drf/public", drf_public),
    path("drf/raise", DRFRaises.as_view()),
    path("drf/raise-handled", DRFRaisesWithHandler.as_view()),
]


def settings_for(**options: Any) -> dict[str, Any]:
    return {"verifier": make_verifier(), "realm": REALM, **options}


@pytest.fixture(scope="module")
def django_http() -> Iterator[httpx.Client]:
    """The project under waitress (Django's WSGI handler)."""
    with run_waitress(wsgi_app(urlpatterns, settings_for())) as base, client(base) as http:
        yield http


@pytest.fixture(scope="module")
def plain_http() -> Iterator[httpx.Client]:
    """The reference: a bare WSGI app behind ``InvalidTokenWSGIMiddleware``."""

    def app(_environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    guarded = InvalidTokenWSGIMiddleware(app, verifier=make_verifier(), realm=REALM)
    with run_waitress(guarded) as base, client(base) as http:
        yield http


def sent(response: httpx.Response) -> tuple[Any, ...]:
    """What the library is responsible for in an answer."""
    names = ("www-authenticate", "content-type", "cache-control", "content-length")
    return (response.status_code, [response.headers.get(n) for n in names], response.content)


# -- refusals, raised failures, bare 401 -------------------------------------------------

REFUSALS = {
    "missing": {},
    "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
    "empty-bearer": {"Authorization": "Bearer"},
    "expired": bearer(token(iat=1, exp=2)),
    "garbled": bearer("eyJhbGciOi.not-a-token"),
    "problem-json": {"Accept": "application/problem+json", **bearer(token(aud="other"))},
    "cors": {"Origin": "https://app.example", **bearer(token(iat=1, exp=2))},
}


@pytest.mark.parametrize("name", REFUSALS)
def test_refusal_is_the_wsgi_middlewares_bytes(
    django_http: httpx.Client, plain_http: httpx.Client, name: str
) -> None:
    headers = REFUSALS[name]
    expected = plain_http.get("/protected", headers=headers)
    assert expected.status_code in {400, 401}
    assert sent(expected) == sent(django_http.get("/protected", headers=headers))


def test_a_valid_token_reaches_the_view_with_its_claims(django_http: httpx.Client) -> None:
    answer = django_http.get("/protected", headers=bearer(token(sub="alice")))
    assert (200, {"sub": "alice"}) == (answer.status_code, answer.json())


def test_a_cors_preflight_gets_the_bare_204(
    django_http: httpx.Client, plain_http: httpx.Client
) -> None:
    headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    expected = plain_http.options("/protected", headers=headers)
    answer = django_http.options("/protected", headers=headers)
    assert (204, None, b"") == (answer.status_code, answer.headers.get("content-type"), b"")
    assert sent(expected) == sent(answer)


def test_raised_failures_get_the_middlewares_answer_and_one_event(
    django_http: httpx.Client, plain_http: httpx.Client
) -> None:
    with capture_logs() as logs:
        revoked = django_http.get("/raise", headers=bearer(token()))
        expired = django_http.get("/raise-pyjwt", headers=bearer(token()))
    reference = plain_http.get("/protected", headers=bearer(token(iat=1, exp=2)))
    assert ["revoked", "expired"] == [e["reason"] for e in logs if e["event"] == "auth_rejected"]
    assert 401 == revoked.status_code
    assert "revoked" == revoked.json()["reason"]
    assert sent(reference) == sent(expired)


def test_another_exception_is_still_djangos_500(django_http: httpx.Client) -> None:
    answer = django_http.get("/raise-other", headers=bearer(token()))
    assert (500, None) == (answer.status_code, answer.headers.get("www-authenticate"))


def test_a_bare_401_gets_the_challenge_and_an_own_challenge_stays(
    django_http: httpx.Client,
) -> None:
    bare = django_http.get("/bare-401", headers=bearer(token()))
    own = django_http.get("/own-challenge", headers=bearer(token()))
    cors = django_http.get("/bare-401", headers={"Origin": "https://a.example", **bearer(token())})
    assert (401, f'Bearer realm="{REALM}"', b"no") == (
        bare.status_code,
        bare.headers["www-authenticate"],
        bare.content,
    )
    assert ['Basic realm="legacy"'] == own.headers.get_list("www-authenticate")
    assert "www-authenticate" in cors.headers["access-control-expose-headers"].lower()


# -- route markers -------------------------------------------------------------------------


def test_exempt_views_are_public_and_ignore_the_token(django_http: httpx.Client) -> None:
    answers = [
        django_http.get("/public"),
        django_http.get("/public", headers=bearer("garbage")),
        django_http.get("/class-public"),
    ]
    assert [200, 200, 200] == [a.status_code for a in answers]
    assert {"claims": None} == answers[1].json()


def test_current_claims_in_an_exempt_view_is_a_mistake_that_names_optional(
    django_http: httpx.Client,
) -> None:
    """The token is never read in an exempt view: no claims there, even with a valid token."""
    answer = django_http.get("/public-reads-claims", headers=bearer(token()))
    assert answer.status_code == 200
    assert "Mark the view @optional" in answer.json()["mistake"]


def test_current_claims_on_an_anonymous_optional_request_is_missing_token(
    django_http: httpx.Client,
) -> None:
    assert django_http.get("/maybe-reads-claims", headers=bearer(token(sub="al"))).json() == {
        "sub": "al"
    }
    anonymous = django_http.get("/maybe-reads-claims")
    assert anonymous.status_code == 401
    assert anonymous.json()["reason"] == "missing_token"


def test_optional_view(django_http: httpx.Client, plain_http: httpx.Client) -> None:
    expired = bearer(token(iat=1, exp=2))
    assert {"sub": None} == django_http.get("/maybe").json()
    assert {"sub": "bob"} == django_http.get("/maybe", headers=bearer(token(sub="bob"))).json()
    refused = django_http.get("/maybe", headers=expired)
    assert sent(plain_http.get("/protected", headers=expired)) == sent(refused)


def test_optional_view_with_scopes_needs_a_token_after_all(django_http: httpx.Client) -> None:
    anonymous = django_http.get("/maybe-scoped")
    granted = django_http.get("/maybe-scoped", headers=bearer(token(scope="orders:read")))
    assert (401, "missing_token", 200) == (
        anonymous.status_code,
        anonymous.json()["reason"],
        granted.status_code,
    )


@pytest.mark.parametrize(
    ("granted", "status", "challenge_scope"),
    [
        ("orders:write orders:read", 200, None),
        ("orders:write orders:admin", 200, None),
        ("orders:write", 403, "orders:read orders:admin"),
        ("orders:read", 403, "orders:write"),
    ],
)
def test_stacked_scope_decorators_each_apply(
    django_http: httpx.Client, granted: str, status: int, challenge_scope: str | None
) -> None:
    answer = django_http.get("/stacked", headers=bearer(token(scope=granted)))
    assert status == answer.status_code
    if challenge_scope is not None:
        assert f'scope="{challenge_scope}"' in answer.headers["www-authenticate"]
        assert "insufficient_scope" == answer.json()["reason"]


def test_scope_decorator_on_a_class_based_view(django_http: httpx.Client) -> None:
    refused = django_http.get("/class-write", headers=bearer(token(scope="orders:read")))
    granted = django_http.get("/class-write", headers=bearer(token(scope="orders:write")))
    assert (403, 200) == (refused.status_code, granted.status_code)


def test_a_url_without_a_view_is_djangos_404(django_http: httpx.Client) -> None:
    assert 404 == django_http.get("/nowhere").status_code


def test_scope_decorators_refuse_bad_scopes_at_import() -> None:
    with pytest.raises(ValueError, match="not valid"):
        require_scopes('orders"read')
    with pytest.raises(ValueError, match="at least one scope"):
        require_any_scope()


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize("permission", [HasScopes, HasAnyScope, HasRoles, HasAnyRole])
@pytest.mark.parametrize("value", [None, "admin", ()])
def test_drf_permissions_need_a_list_on_the_view(permission: type[Any], value: object) -> None:
    """A view without its list (or with a bare string) is a mistake named on first use."""
    attribute = "required_roles" if "Role" in permission.__name__ else "required_scopes"
    view = type("Orders", (APIView,), {attribute: value})()
    with pytest.raises(
        TypeError, match=f"{permission.__name__} needs a list in the view's {attribute}"
    ):
        permission().has_permission(object(), view)


def test_error_body_and_exclude_paths_from_the_settings_dict() -> None:
    def envelope(failure: AuthFailure) -> dict[str, object]:
        return {"error": failure.reason.value}

    app = wsgi_app(urlpatterns, settings_for(ERROR_BODY=envelope, exclude_paths=["/health"]))
    with run_waitress(app) as base, client(base) as http:
        refused = http.get("/protected")
        raised = http.get("/raise", headers=bearer(token()))
        drf_raised = http.get("/drf/raise", headers=bearer(token()))
        drf_handled = http.get("/drf/raise-handled", headers=bearer(token()))
        health = http.get("/health/", headers=bearer("garbage"))
    assert (b'{"error":"missing_token"}', "application/json") == (
        refused.content,
        refused.headers["content-type"],
    )
    assert [b'{"error":"revoked"}'] * 3 == [raised.content, drf_raised.content, drf_handled.content]
    assert 200 == health.status_code


@pytest.mark.parametrize(
    ("invalidtoken", "message"),
    [
        (None, "needs settings.INVALIDTOKEN"),
        (["verifier"], "must be a dict"),
        ({"realm": "orders"}, "needs a verifier"),
        ({"verifier": "no_such_module.verifier"}, "cannot import 'no_such_module.verifier'"),
        ({"verifier": object()}, "verify()"),
        ({"verifier": make_verifier(), "realms": "x"}, "unknown key(s) realms"),
        ({"verifier": make_verifier(), "realm": 'a"b'}, "realm"),
        ({"verifier": make_verifier(), "scopes": "a b", "SCOPES": "c"}, "'scopes' twice"),
    ],
    ids=[
        "missing",
        "not-a-dict",
        "no-verifier",
        "bad-path",
        "bad-verifier",
        "typo",
        "realm",
        "twice",
    ],
)
def test_misconfiguration_is_improperly_configured_at_start_up(
    invalidtoken: Any,
    message: str,
) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        wsgi_app(urlpatterns, invalidtoken)
    assert message in str(raised.value)


def test_verifier_by_dotted_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("support.servers.DOTTED_VERIFIER", make_verifier(), raising=False)
    app = wsgi_app(urlpatterns, {"verifier": "support.servers.DOTTED_VERIFIER"})
    with run_waitress(app) as base, client(base) as http:
        assert 200 == http.get("/protected", headers=bearer(token())).status_code


# -- async views under an ASGI server ----------------------------------------------------


class _SlowVerifier:
    """Blocks in ``verify`` (a thread would), yields in ``verify_async`` (the event loop)."""

    def __init__(self) -> None:
        self.inner = make_verifier()
        self.threads: set[str] = set()

    def verify(self, token: str) -> dict[str, Any]:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.2)
        return self.inner.verify(token)

    async def verify_async(self, token: str) -> dict[str, Any]:
        self.threads.add(threading.current_thread().name)
        await asyncio.sleep(0.2)
        return self.inner.verify(token)


def test_async_views_under_uvicorn_verify_on_the_event_loop(plain_http: httpx.Client) -> None:
    verifier = _SlowVerifier()
    app = asgi_app(urlpatterns, settings_for(verifier=verifier))
    expired = bearer(token(iat=1, exp=2))
    with run_uvicorn(app) as base, client(base) as http:
        started = time.monotonic()
        results: list[int] = []

        def call() -> None:
            with client(base) as own:
                results.append(own.get("/async/protected", headers=bearer(token())).status_code)

        calls = [threading.Thread(target=call) for _ in range(5)]
        for thread in calls:
            thread.start()
        for thread in calls:
            thread.join()
        elapsed = time.monotonic() - started
        refused = http.get("/async/protected", headers=expired)
        raised = http.get("/async/raise", headers=bearer(token()))
        anonymous = http.get("/async/maybe")
        bare = http.get("/async/bare-401", headers=bearer(token()))
    assert [200] * 5 == results
    # Five verifications of 0.2 s overlap on the loop: well under 5 x 0.2 s.
    assert elapsed < 0.8
    assert {"uvicorn"} == verifier.threads
    assert sent(plain_http.get("/protected", headers=expired)) == sent(refused)
    assert (401, "revoked") == (raised.status_code, raised.json()["reason"])
    assert {"sub": None} == anonymous.json()
    assert f'Bearer realm="{REALM}"' == bare.headers["www-authenticate"]


# -- Django REST framework -----------------------------------------------------------------


def test_drf_gets_a_token_user_and_the_claims(django_http: httpx.Client) -> None:
    answer = django_http.get("/drf/whoami", headers=bearer(token(sub="carol")))
    assert {"user": "carol", "sub": "carol"} == answer.json()


def test_drf_not_authenticated_carries_our_challenge(django_http: httpx.Client) -> None:
    anonymous = django_http.get("/drf/needs-login")
    raised = django_http.get("/drf/not-authenticated", headers=bearer(token()))
    for answer in (anonymous, raised):
        assert (401, f'Bearer realm="{REALM}"') == (
            answer.status_code,
            answer.headers["www-authenticate"],
        )


def test_drf_function_view_exempt_with_api_view(django_http: httpx.Client) -> None:
    assert {"auth": None} == django_http.get("/drf/public").json()


def test_drf_raised_failure_is_answered_with_or_without_the_exception_handler(
    django_http: httpx.Client,
) -> None:
    with capture_logs() as logs:
        default = django_http.get("/drf/raise", headers=bearer(token()))
        handled = django_http.get("/drf/raise-handled", headers=bearer(token()))
    assert sent(default) == sent(handled)
    assert (401, "revoked") == (default.status_code, default.json()["reason"])
    assert ["revoked", "revoked"] == [e["reason"] for e in logs if e["event"] == "auth_rejected"]


def test_drf_authentication_without_the_middleware_says_so() -> None:
    from django.test import RequestFactory  # noqa: PLC0415
    from rest_framework.request import Request as DRFRequest  # noqa: PLC0415

    from invalidtoken_mw.drf import InvalidTokenAuthentication  # noqa: PLC0415

    request = DRFRequest(RequestFactory().get("/drf/whoami", headers=bearer(token())))
    with pytest.raises(ImproperlyConfigured, match=r"add it to settings\.MIDDLEWARE"):
        InvalidTokenAuthentication().authenticate(request)
