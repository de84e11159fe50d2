"""Step-up authentication (RFC 9470): the pure check, the challenge, every adapter.

The check is one pure function (``check_step_up``); the guard applies the app-wide
``acr_values`` / ``max_age`` and each adapter's ``require_step_up`` (DRF: ``HasStepUp``)
a route's own. A refusal is 401 ``insufficient_user_authentication`` whose challenge
carries ``acr_values`` and/or ``max_age`` (RFC 9470 §3), the same bytes from every
adapter, through real servers (uvicorn for ASGI, waitress for WSGI).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import authchallenge
import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path
from fastapi import Depends, FastAPI
from flask import Flask
from litestar import Litestar, get
from quart import Quart
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from invalidtoken_mw import (
    AuthFailure,
    Guard,
    GuardSettings,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    Reason,
    StepUp,
    build_challenge,
    check_step_up,
)
from invalidtoken_mw import django as django_adapter
from invalidtoken_mw import fastapi as fastapi_adapter
from invalidtoken_mw import flask as flask_adapter
from invalidtoken_mw import litestar as litestar_adapter
from invalidtoken_mw import quart as quart_adapter
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.challenge import ChallengeSettings
from invalidtoken_mw.testing import parse_challenges
from support.django_project import wsgi_app
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from starlette.requests import Request

MFA = "urn:example:mfa"
HWK = "urn:example:hwk"
NOW = 1_700_000_000.0
ERROR = "insufficient_user_authentication"


def _failure(claims_: dict[str, Any], requirement: StepUp, leeway: float = 0) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        check_step_up(claims_, requirement, now=NOW, leeway=leeway)
    assert caught.value.reason is Reason.INSUFFICIENT_USER_AUTHENTICATION
    return caught.value


# -- the pure check ------------------------------------------------------------------


def test_acr_among_the_accepted_values_passes() -> None:
    check_step_up({"acr": HWK}, StepUp([MFA, HWK]), now=NOW)


@pytest.mark.parametrize("acr", ["urn:example:pwd", "", 2, ["urn:example:mfa"], True])
def test_other_acr_fails(acr: object) -> None:
    failure = _failure({"acr": acr}, StepUp([MFA]))
    assert failure.description == Sentence.STEP_UP_ACR
    assert failure.context["required_acr_values"] == [MFA]
    assert "required_max_age" not in failure.context


def test_missing_acr_fails_with_its_own_sentence() -> None:
    failure = _failure({"sub": "u"}, StepUp([MFA]))
    assert failure.description == Sentence.STEP_UP_NO_ACR
    assert "token_acr" not in failure.context


def test_recent_auth_time_passes_and_old_one_fails() -> None:
    check_step_up({"auth_time": NOW - 300}, StepUp(max_age=300), now=NOW)
    failure = _failure({"auth_time": NOW - 301}, StepUp(max_age=300))
    assert failure.description == Sentence.STEP_UP_MAX_AGE
    assert failure.context == {"auth_age": 301, "required_max_age": 300}


def test_leeway_widens_max_age() -> None:
    check_step_up({"auth_time": NOW - 350}, StepUp(max_age=300), now=NOW, leeway=60)
    _failure({"auth_time": NOW - 361}, StepUp(max_age=300), leeway=60)


@pytest.mark.parametrize(
    "auth_time", [None, "1700000000", True, float("nan"), float("inf"), [NOW], NOW + 120]
)
def test_auth_time_missing_non_numeric_or_in_the_future_fails(auth_time: object) -> None:
    token = {} if auth_time is None else {"auth_time": auth_time}
    failure = _failure(token, StepUp(max_age=300), leeway=60)
    assert failure.description == Sentence.STEP_UP_NO_AUTH_TIME
    assert failure.context["required_max_age"] == 300


def test_max_age_zero_accepts_only_now_within_leeway() -> None:
    check_step_up({"auth_time": NOW}, StepUp(max_age=0), now=NOW)
    _failure({"auth_time": NOW - 1}, StepUp(max_age=0))


def test_both_requirements_are_named_whichever_fails() -> None:
    requirement = StepUp([MFA], 300)
    failure = _failure({"acr": MFA, "auth_time": NOW - 900}, requirement)
    assert failure.context["required_acr_values"] == [MFA]
    assert failure.context["required_max_age"] == 300
    check_step_up({"acr": MFA, "auth_time": NOW - 10}, requirement, now=NOW)


def test_long_token_acr_is_shortened_in_the_log_context() -> None:
    failure = _failure({"acr": "x" * 1000}, StepUp([MFA]))
    assert len(str(failure.context["token_acr"])) < 210


# -- start-up errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("acr_values", "max_age", "error"),
    [
        (None, None, ValueError),
        ([], None, ValueError),
        ([], 300, ValueError),
        ("urn:example:mfa", None, TypeError),
        ([MFA, 3], None, TypeError),
        (["two words"], None, ValueError),
        (['quo"te'], None, ValueError),
        (["back\\slash"], None, ValueError),
        (["line\r\nbreak"], None, ValueError),
        ([""], None, ValueError),
        (None, -1, ValueError),
        (None, 1.5, TypeError),
        (None, "300", TypeError),
        (None, True, TypeError),
    ],
)
def test_bad_requirements_fail_at_start_up(
    acr_values: Any, max_age: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        StepUp(acr_values, max_age)


@pytest.mark.parametrize(
    "options",
    [
        {"acr_values": []},
        {"acr_values": ""},
        {"acr_values": ["a\nb"]},
        {"acr_values": [1]},
        {"max_age": -5},
        {"max_age": "soon"},
        {"max_age": 2.5},
        {"max_age": [300]},
    ],
)
def test_bad_settings_fail_at_start_up(options: dict[str, Any]) -> None:
    with pytest.raises((ValueError, TypeError)):
        GuardSettings(verifier=make_verifier(), **options)


def test_settings_from_config_strings() -> None:
    settings = GuardSettings.from_mapping(
        {"INVALIDTOKEN_ACR_VALUES": f"{MFA} {HWK}", "INVALIDTOKEN_MAX_AGE": "600"},
        verifier=make_verifier(),
    )
    assert (settings.acr_values, settings.max_age) == ((MFA, HWK), 600)


# -- the challenge -------------------------------------------------------------------


def test_challenge_carries_acr_values_and_max_age() -> None:
    failure = _failure({"acr": "urn:example:pwd"}, StepUp([MFA, HWK], 300))
    value = build_challenge(failure, ChallengeSettings("orders"))
    assert value == (
        f'Bearer realm="orders", error="{ERROR}", error_description="{Sentence.STEP_UP_ACR}",'
        f' acr_values="{MFA} {HWK}", max_age="300"'
    )
    (challenge,) = parse_challenges(str(value))
    assert challenge.scheme == "bearer"
    assert challenge.params["acr_values"].split(" ") == [MFA, HWK]
    assert challenge.params["max_age"] == "300"
    assert challenge.params["error"] == ERROR


def test_challenge_of_an_application_failure_keeps_only_safe_values() -> None:
    """A failure raised by the application is filtered again: nothing breaks the header."""
    failure = AuthFailure(
        ERROR,
        context={"required_acr_values": [MFA, 'x"y', "a\r\nb", 7], "required_max_age": -3},
    )
    value = str(build_challenge(failure, ChallengeSettings("orders")))
    assert "\r" not in value
    assert "\n" not in value
    (challenge,) = parse_challenges(value)
    assert challenge.params["acr_values"] == MFA
    assert "max_age" not in challenge.params
    bare = str(build_challenge(AuthFailure(ERROR), ChallengeSettings("orders")))
    (plain,) = parse_challenges(bare)
    assert "acr_values" not in plain.params
    assert "max_age" not in plain.params
    assert plain.params["error_description"] == Reason(ERROR).description


def test_reason_is_a_401_with_its_rfc_9470_error_code() -> None:
    reason = Reason.INSUFFICIENT_USER_AUTHENTICATION
    assert (reason.status, reason.error) == (401, ERROR)
    assert list(Reason)[-1] is reason or reason in list(Reason)


# -- the middleware's app-wide requirement, through real servers ---------------------


def _token(**overrides: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(payload=claims(**overrides))}"}


def _expect_step_up(
    answer: Any, acr_values: list[str] | None = None, max_age: int | None = None
) -> None:
    assert answer.status_code == 401
    (challenge,) = parse_challenges(answer.headers["www-authenticate"])
    assert challenge.params["error"] == ERROR
    if acr_values is None:
        assert "acr_values" not in challenge.params
    else:
        assert challenge.params["acr_values"].split(" ") == acr_values
    if max_age is None:
        assert "max_age" not in challenge.params
    else:
        assert challenge.params["max_age"] == str(max_age)
    assert answer.json()["reason"] == ERROR


async def _asgi_orders(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def _wsgi_orders(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    del environ
    start_response("200 OK", [("content-type", "application/json")])
    return [b'{"ok": true}']


@pytest.fixture(scope="module", params=["asgi", "wsgi"])
def app_wide(request: pytest.FixtureRequest) -> Iterator[Any]:
    options: dict[str, Any] = {"verifier": make_verifier(), "acr_values": [MFA], "max_age": 600}
    if request.param == "asgi":
        app = InvalidTokenMiddleware(Starlette(routes=[Route("/orders", _asgi_orders)]), **options)
        server = run_uvicorn(app)
    else:
        server = run_waitress(InvalidTokenWSGIMiddleware(_wsgi_orders, **options))
    with server as base, client(base) as http:
        yield http


def test_app_wide_requirement_through_real_servers(app_wide: Any) -> None:
    now = int(time.time())
    assert app_wide.get("/orders", headers=_token(acr=MFA, auth_time=now - 5)).status_code == 200
    _expect_step_up(
        app_wide.get("/orders", headers=_token(acr="urn:example:pwd", auth_time=now)), [MFA], 600
    )
    _expect_step_up(
        app_wide.get("/orders", headers=_token(acr=MFA, auth_time=now - 3600)), [MFA], 600
    )
    _expect_step_up(app_wide.get("/orders", headers=_token(acr=MFA)), [MFA], 600)
    # No token at all is still the bare challenge, not a step-up.
    assert app_wide.get("/orders").headers["www-authenticate"] == 'Bearer realm="api"'


def test_guard_without_step_up_has_none() -> None:
    guard = Guard(verifier=make_verifier())
    assert guard.step_up is None
    assert guard.step_up_leeway == 60.0


def test_guard_uses_the_verifiers_leeway() -> None:
    verifier = JWTVerifier(
        issuer="https://issuer.example",
        audience="https://api.example",
        key=b"k" * 32,
        algorithms=["HS256"],
        leeway=5,
    )
    assert Guard(verifier=verifier, max_age=60).step_up_leeway == 5.0


# -- every adapter's route helper, through real servers ------------------------------

ROUTE = StepUp([MFA, HWK])
FRESH = 300


def _flask(verifier: JWTVerifier) -> Any:
    app = Flask("stepup")
    flask_adapter.InvalidToken(app, verifier=verifier, realm="orders")

    @app.get("/pay")
    @flask_adapter.require_step_up(acr_values=[MFA, HWK])
    def pay() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fresh")
    @flask_adapter.require_step_up(max_age=FRESH)
    def fresh() -> dict[str, bool]:
        return {"ok": True}

    return run_waitress(app)


def _quart(verifier: JWTVerifier) -> Any:
    app = Quart("stepup")
    quart_adapter.InvalidToken(app, verifier=verifier, realm="orders")

    @app.get("/pay")
    @quart_adapter.require_step_up(acr_values=[MFA, HWK])
    async def pay() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fresh")
    @quart_adapter.require_step_up(max_age=FRESH)
    async def fresh() -> dict[str, bool]:
        return {"ok": True}

    return run_uvicorn(app)  # type: ignore[arg-type]


def _fastapi(verifier: JWTVerifier) -> Any:
    app = FastAPI()
    fastapi_adapter.install(app, verifier=verifier, realm="orders")
    pay_dep = Depends(fastapi_adapter.require_step_up(acr_values=[MFA, HWK]))
    fresh_dep = Depends(fastapi_adapter.require_step_up(max_age=FRESH))

    @app.get("/pay", dependencies=[pay_dep])
    def pay() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/fresh", dependencies=[fresh_dep])
    def fresh() -> dict[str, bool]:
        return {"ok": True}

    return run_uvicorn(app)


def _litestar(verifier: JWTVerifier) -> Any:
    @get("/pay", guards=[litestar_adapter.require_step_up(acr_values=[MFA, HWK])])
    async def pay() -> dict[str, bool]:
        return {"ok": True}

    @get("/fresh", guards=[litestar_adapter.require_step_up(max_age=FRESH)])
    async def fresh() -> dict[str, bool]:
        return {"ok": True}

    plugin = litestar_adapter.InvalidTokenPlugin(verifier=verifier, realm="orders")
    return run_uvicorn(Litestar([pay, fresh], plugins=[plugin]))  # type: ignore[arg-type]


async def _starlette_pay(request: Request) -> JSONResponse:
    _STARLETTE_GUARD.check_step_up(request.state.token_claims, ROUTE)
    return JSONResponse({"ok": True})


async def _starlette_fresh(request: Request) -> JSONResponse:
    _STARLETTE_GUARD.check_step_up(request.state.token_claims, StepUp(max_age=FRESH))
    return JSONResponse({"ok": True})


_STARLETTE_GUARD = Guard(verifier=make_verifier(), realm="orders")


def _starlette(verifier: JWTVerifier) -> Any:
    del verifier  # the module's guard, as docs/starlette.md shows
    # Inside Starlette's error middleware, so the endpoint's AuthFailure reaches ours.
    app = Starlette(
        routes=[Route("/pay", _starlette_pay), Route("/fresh", _starlette_fresh)],
        middleware=[Middleware(InvalidTokenMiddleware, guard=_STARLETTE_GUARD)],
    )
    return run_uvicorn(app)


@django_adapter.require_step_up(acr_values=[MFA, HWK])
def _django_pay(_request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


@django_adapter.require_step_up(max_age=FRESH)
def _django_fresh(_request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def _django(verifier: JWTVerifier) -> Any:
    patterns = [path("pay", _django_pay), path("fresh", _django_fresh)]
    return run_waitress(wsgi_app(patterns, {"verifier": verifier, "realm": "orders"}))


def _drf(verifier: JWTVerifier) -> Any:
    # DRF reads Django's settings when its view classes are defined.
    from support.django_project import configure  # noqa: PLC0415

    configure()
    from rest_framework.response import Response  # noqa: PLC0415
    from rest_framework.views import APIView  # noqa: PLC0415

    from invalidtoken_mw.drf import HasStepUp  # noqa: PLC0415

    class Pay(APIView):
        permission_classes = (HasStepUp,)
        required_acr_values: ClassVar[list[str]] = [MFA, HWK]

        def get(self, _request: object) -> Response:
            return Response({"ok": True})

    class Fresh(APIView):
        permission_classes = (HasStepUp,)
        required_max_age = FRESH

        def get(self, _request: object) -> Response:
            return Response({"ok": True})

    patterns = [path("pay", Pay.as_view()), path("fresh", Fresh.as_view())]
    return run_waitress(wsgi_app(patterns, {"verifier": verifier, "realm": "orders"}))


BUILDERS = {
    "django": _django,
    "drf": _drf,
    "flask": _flask,
    "quart": _quart,
    "fastapi": _fastapi,
    "litestar": _litestar,
    "starlette": _starlette,
}


@pytest.fixture(scope="module", params=list(BUILDERS))
def served(request: pytest.FixtureRequest) -> Iterator[Any]:
    with BUILDERS[request.param](make_verifier()) as base, client(base) as http:
        yield http


PAY_CHALLENGE = (
    f'Bearer realm="orders", error="{ERROR}", error_description="{Sentence.STEP_UP_ACR}",'
    f' acr_values="{MFA} {HWK}"'
)
NO_ACR_CHALLENGE = (
    f'Bearer realm="orders", error="{ERROR}", error_description="{Sentence.STEP_UP_NO_ACR}",'
    f' acr_values="{MFA} {HWK}"'
)
FRESH_CHALLENGE = (
    f'Bearer realm="orders", error="{ERROR}", error_description="{Sentence.STEP_UP_MAX_AGE}",'
    f' max_age="{FRESH}"'
)


def test_route_acr_values_in_every_adapter(served: Any) -> None:
    """Every adapter sends the same bytes: the guard builds them."""
    assert served.get("/pay", headers=_token(acr=HWK)).status_code == 200
    weak = served.get("/pay", headers=_token(acr="urn:example:pwd"))
    assert (weak.status_code, weak.headers["www-authenticate"]) == (401, PAY_CHALLENGE)
    # An independent parser, strict about RFC 9110 and RFC 6750, reads the same values.
    [independent] = authchallenge.parse_challenges(weak.headers["www-authenticate"], strict=True)
    assert independent.scheme.lower() == "bearer"
    assert independent.params["error"] == ERROR
    assert independent.params["acr_values"].split(" ") == [MFA, HWK]
    assert weak.json()["reason"] == ERROR
    assert "urn:example:pwd" not in weak.text
    missing = served.get("/pay", headers=_token())
    assert missing.headers["www-authenticate"] == NO_ACR_CHALLENGE


def test_route_max_age_in_every_adapter(served: Any) -> None:
    now = int(time.time())
    assert served.get("/fresh", headers=_token(auth_time=now - 10)).status_code == 200
    old = served.get("/fresh", headers=_token(auth_time=now - 3600))
    assert (old.status_code, old.headers["www-authenticate"]) == (401, FRESH_CHALLENGE)
    [independent] = authchallenge.parse_challenges(old.headers["www-authenticate"], strict=True)
    assert int(independent.params["max_age"]) == FRESH
    _expect_step_up(served.get("/fresh", headers=_token()), None, FRESH)


def test_route_without_token_gets_the_bare_challenge(served: Any) -> None:
    answer = served.get("/pay")
    assert (answer.status_code, answer.headers["www-authenticate"]) == (
        401,
        'Bearer realm="orders"',
    )


@pytest.mark.parametrize(
    "helper",
    [
        flask_adapter.require_step_up,
        quart_adapter.require_step_up,
        fastapi_adapter.require_step_up,
        litestar_adapter.require_step_up,
        django_adapter.require_step_up,
    ],
)
def test_route_helpers_check_their_requirement_at_import(helper: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="acr_values"):
        helper()
    with pytest.raises(ValueError, match="max_age"):
        helper(max_age=-1)
    with pytest.raises(TypeError):
        helper(acr_values=MFA)


# -- the log event -------------------------------------------------------------------


def test_the_event_names_requirement_and_token_facts_but_never_the_token() -> None:
    """required_acr_values / required_max_age / token_acr / auth_age go to the log only."""
    guard = Guard(verifier=make_verifier(), realm="orders", acr_values=[MFA], max_age=600)
    now = int(time.time())
    weak = mint(payload=claims(acr="urn:example:pwd", auth_time=now))
    stale = mint(payload=claims(acr=MFA, auth_time=now - 7200))
    events = []
    for token in (weak, stale):
        view = _View(token)
        with capture_logs() as logs:
            outcome = guard.authenticate(view)
        assert outcome.failure is not None  # type: ignore[union-attr]
        [event] = logs
        assert token not in repr(event)
        events.append(event)
    assert events[0]["reason"] == ERROR
    assert (events[0]["required_acr_values"], events[0]["token_acr"]) == ([MFA], "urn:example:pwd")
    assert events[0]["required_max_age"] == 600
    assert events[0]["signature_verified"] is True
    assert 7200 <= events[1]["auth_age"] < 7300
    assert "token_acr" not in events[1]


class _View:
    """A minimal request view for the guard (GET /orders with one bearer token)."""

    method = "GET"
    path = "/orders"

    def __init__(self, token: str) -> None:
        self._headers = {"authorization": f"Bearer {token}"}

    def header(self, name: str) -> str | None:
        return self._headers.get(name)

    def field_lines(self, name: str) -> list[str]:
        return [self._headers[name]] if name in self._headers else []

    def query_string(self) -> str:
        return ""

    def full_path(self) -> str:
        return self.path

    def peer(self) -> str | None:
        return "127.0.0.1"

    def read_form(self) -> str | None:
        return None


def test_route_and_app_wide_requirements_both_apply() -> None:
    """A route's requirement adds to the app-wide one: each is checked on its own."""
    guard = Guard(verifier=make_verifier(), max_age=600)
    now = int(time.time())
    fresh_pwd = mint(payload=claims(acr="urn:example:pwd", auth_time=now))
    accepted = guard.authenticate(_View(fresh_pwd))
    assert accepted.claims is not None  # type: ignore[union-attr]
    with pytest.raises(AuthFailure) as caught:
        guard.check_step_up(accepted.claims, ROUTE)  # type: ignore[union-attr]
    assert caught.value.context["required_acr_values"] == [MFA, HWK]
    stale_mfa = mint(payload=claims(acr=MFA, auth_time=now - 7200))
    refused = guard.authenticate(_View(stale_mfa))
    assert refused.failure.context["required_max_age"] == 600  # type: ignore[union-attr]
    with pytest.raises(AuthFailure):
        guard.check_step_up(None, ROUTE)  # an anonymous request


def test_has_step_up_needs_a_requirement_on_the_view() -> None:
    from support.django_project import configure  # noqa: PLC0415

    configure()
    from rest_framework.views import APIView  # noqa: PLC0415

    from invalidtoken_mw.drf import HasStepUp  # noqa: PLC0415

    class Bare(APIView):
        pass

    with pytest.raises(TypeError, match="required_acr_values"):
        HasStepUp().has_permission(object(), Bare())  # type: ignore[arg-type]
