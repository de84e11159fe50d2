"""The Flask extension: the extension pattern, exemptions, scopes, finding the token, output.

Requests go through Flask's test client; the Flask example runs under waitress in
``test_examples.py``. Covered here: finding the token, expiry, missing scopes, the body,
CORS, the log, and interception as Flask sees it: failures raised by views are rendered
by the library even when the application has its own ``errorhandler(401)``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from flask import Blueprint, Flask, abort
from structlog.testing import capture_logs

from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.flask import (
    InvalidToken,
    current_claims,
    optional_claims,
    require_any_scope,
    require_scopes,
)
from support.expected import (
    CHARACTERS_DETAIL,
    EMPTY_DETAIL,
    EXPIRED_CHALLENGE,
    EXPIRED_DETAIL,
    OVERSIZED_DETAIL,
    SEVERAL_DETAIL,
    WRAPPED_DETAIL,
    invalid_request,
    invalid_token,
    scope_challenge,
)
from support.servers import make_verifier
from support.tokens import claims, mint, tamper_signature

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from flask.testing import FlaskClient
    from werkzeug.test import TestResponse

NOW = int(time.time())
FORM = "application/x-www-form-urlencoded"
BARE = 'Bearer realm="orders"'
READ = mint(payload=claims(scope="orders:read"))
READ_SCP = mint(payload=claims(scp=["orders:read", "orders:write"]))
NO_SCOPE = mint()
EXPIRED = mint(payload=claims(scope="orders:read", iat=NOW - 7200, exp=NOW - 3600))
BAD_SIGNATURE = tamper_signature(READ)

ANY_CHALLENGE = (
    'Bearer realm="orders", error="insufficient_scope", error_description="The access token'
    ' grants none of the scopes this request accepts; any one of them will do.",'
    ' scope="orders:read orders:admin"'
)
MISSING_DETAIL = "This resource requires a bearer token in the Authorization header."


def bearer(token: str) -> dict[str, str]:
    """The headers presenting ``token`` the usual way."""
    return {"Authorization": f"Bearer {token}"}


def outcome(response: TestResponse) -> tuple[int, str | None, str | None]:
    """Status, challenge and the body's ``reason`` (``None`` for a non-problem body)."""
    body = response.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    return response.status_code, response.headers.get("WWW-Authenticate"), reason


def rejected(logs: list[MutableMapping[str, Any]]) -> list[str]:
    """The reasons of the ``auth_rejected`` events among captured log entries."""
    return [entry["reason"] for entry in logs if entry["event"] == "auth_rejected"]


public = Blueprint("public", __name__, url_prefix="/pub")
maybe = Blueprint("maybe", __name__, url_prefix="/maybe")
inner = Blueprint("inner", __name__, url_prefix="/inner")
private = Blueprint("private", __name__, url_prefix="/priv")


@public.get("/ping")
def public_ping() -> dict[str, str]:
    """A view of an exempt blueprint."""
    return {"status": "ok"}


@inner.get("/ping")
def inner_ping() -> dict[str, str]:
    """A view of a blueprint nested in an exempt blueprint."""
    return {"status": "ok"}


@private.get("/ping")
def private_ping() -> dict[str, Any]:
    """A view of an ordinary blueprint: protected."""
    return {"sub": current_claims()["sub"]}


@maybe.get("/ping")
def maybe_ping() -> dict[str, Any]:
    """A view of an optional blueprint."""
    claims_ = optional_claims()
    return {"sub": None if claims_ is None else claims_["sub"]}


public.register_blueprint(inner)


def add_routes(app: Flask, auth: InvalidToken) -> None:
    """The test views: scoped routes, a claims view, exempt views and blueprints."""

    @app.get("/orders")
    @require_scopes("orders:read")
    def list_orders() -> dict[str, Any]:
        return {"sub": current_claims()["sub"]}

    @app.post("/orders")
    @require_scopes("orders:write")
    def create_order() -> tuple[dict[str, Any], int]:
        return {"sub": current_claims()["sub"]}, 201

    @app.get("/me")
    def me() -> dict[str, Any]:
        return current_claims()

    @app.get("/health")
    @auth.exempt
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/public-claims")
    @auth.exempt
    def public_claims() -> dict[str, Any]:
        return current_claims()

    @app.get("/public-optional-claims")
    @auth.exempt
    def public_optional_claims() -> dict[str, Any]:
        return {"claims": optional_claims()}

    add_optional_routes(app, auth)
    auth.exempt(public)
    app.register_blueprint(public)
    app.register_blueprint(private)


def add_optional_routes(app: Flask, auth: InvalidToken) -> None:
    """Views with optional authentication (one blueprint too) and an any-of scope view."""

    @app.get("/optional")
    @auth.optional
    def optional_view() -> dict[str, Any]:
        claims_ = optional_claims()
        return {"sub": None if claims_ is None else claims_["sub"]}

    @app.get("/optional/needs-claims")
    @auth.optional
    def optional_needs_claims() -> dict[str, Any]:
        return {"sub": current_claims()["sub"]}

    @app.get("/optional/scoped")
    @auth.optional
    @require_scopes("orders:read")
    def optional_scoped() -> dict[str, Any]:
        return {"sub": current_claims()["sub"]}

    @app.get("/any")
    @require_any_scope("orders:read", "orders:admin")
    def any_scope() -> dict[str, bool]:
        return {"ok": True}

    auth.optional(maybe)
    app.register_blueprint(maybe)


def add_failing_routes(app: Flask) -> None:
    """Views that fail: raised failures, abort(401) and 401 answers, plus an errorhandler(401)."""

    @app.errorhandler(401)
    def own_401(_error: Exception) -> tuple[dict[str, bool], int]:
        return {"own_handler": True}, 401

    @app.get("/raise/auth-failure")
    def raise_auth_failure() -> str:
        raise AuthFailure(Reason.EXPIRED)

    @app.get("/raise/expired")
    def raise_expired() -> str:
        raise jwt.ExpiredSignatureError("Signature has expired")

    @app.get("/abort-401")
    def abort_401() -> str:
        abort(401)

    @app.get("/bare-401")
    def bare_401() -> tuple[str, int]:
        return "", 401

    @app.get("/own-challenge-401")
    def own_challenge_401() -> tuple[str, int, dict[str, str]]:
        return "", 401, {"WWW-Authenticate": 'Basic realm="legacy"'}


def create_app(**options: Any) -> Flask:
    """An app factory: one extension per app, ``InvalidToken(app, ...)`` style."""
    app = Flask("flask_adapter_test")
    auth = InvalidToken(app, **{"verifier": make_verifier(), "realm": "orders", **options})
    add_routes(app, auth)
    add_failing_routes(app)
    return app


@pytest.fixture(scope="module")
def http() -> FlaskClient:
    """A test client of the usual configuration."""
    return create_app().test_client()


@pytest.fixture(scope="module")
def relaxed() -> FlaskClient:
    """A test client with the query and form-body token methods on."""
    return create_app(allow_query_token=True, allow_body_token=True).test_client()


# -- the extension pattern -------------------------------------------------------------


def test_init_with_app_registers_in_extensions() -> None:
    """InvalidToken(app, ...) sets up at once and registers itself as extensions["invalidtoken"]."""
    app = Flask("registered")
    auth = InvalidToken(app, verifier=make_verifier())
    assert auth is app.extensions["invalidtoken"].extension


def test_init_app_in_an_app_factory() -> None:
    """One InvalidToken() set up per app by init_app: each app gets its own configured realm."""
    auth = InvalidToken(verifier=make_verifier())

    def factory(realm: str) -> Flask:
        app = Flask(f"factory_{realm}")
        app.config["INVALIDTOKEN_REALM"] = realm
        auth.init_app(app)
        app.add_url_rule("/orders", "orders", lambda: "ok")
        return app

    first, second = factory("first"), factory("second")
    challenges = [
        app.test_client().get("/orders").headers["WWW-Authenticate"] for app in (first, second)
    ]
    assert ['Bearer realm="first"', 'Bearer realm="second"'] == challenges
    assert (auth, auth) == (
        first.extensions["invalidtoken"].extension,
        second.extensions["invalidtoken"].extension,
    )


def test_no_setup_before_init_app() -> None:
    """InvalidToken() without an app touches nothing: setup happens only in init_app."""
    app = Flask("untouched")
    InvalidToken(verifier=make_verifier())
    assert ({}, 404) == (app.extensions, app.test_client().get("/").status_code)


def test_realm_precedence_keyword_over_config_over_default() -> None:
    """A keyword argument beats INVALIDTOKEN_REALM, which beats the default realm "api"."""
    challenges = []
    for keyword, config in (("kw", "cfg"), (None, "cfg"), (None, None)):
        app = Flask("precedence")
        if config is not None:
            app.config["INVALIDTOKEN_REALM"] = config
        options = {} if keyword is None else {"realm": keyword}
        InvalidToken(app, verifier=make_verifier(), **options)
        challenges.append(app.test_client().get("/").headers["WWW-Authenticate"])
    assert ['Bearer realm="kw"', 'Bearer realm="cfg"', 'Bearer realm="api"'] == challenges


def test_init_app_sets_default_config_keys() -> None:
    """init_app fills in missing INVALIDTOKEN_* keys with setdefault and keeps set ones."""
    app = Flask("defaults")
    app.config["INVALIDTOKEN_REALM"] = "orders"
    InvalidToken(app, verifier=make_verifier())
    assert "orders" == app.config["INVALIDTOKEN_REALM"]
    assert () == app.config["INVALIDTOKEN_EXCLUDE_PATHS"]
    assert not app.config["INVALIDTOKEN_ALLOW_QUERY_TOKEN"]
    assert 8192 == app.config["INVALIDTOKEN_MAX_TOKEN_BYTES"]
    assert "x-request-id" == app.config["INVALIDTOKEN_REQUEST_ID_HEADER"]


def test_verifier_and_options_from_config() -> None:
    """INVALIDTOKEN_VERIFIER and other config keys configure the extension without keywords."""
    app = Flask("configured")
    app.config.update(
        INVALIDTOKEN_VERIFIER=make_verifier(),
        INVALIDTOKEN_REALM="orders",
        INVALIDTOKEN_EXCLUDE_PATHS=["/health"],
        INVALIDTOKEN_SCOPES=["orders:write"],
    )
    InvalidToken(app)
    app.add_url_rule("/health", "health", lambda: "ok")
    app.add_url_rule("/orders", "orders", lambda: "ok")
    test_client = app.test_client()
    expected = [(200, None, None), (403, scope_challenge("orders:write"), "insufficient_scope")]
    assert expected == [
        outcome(test_client.get("/health")),
        outcome(test_client.get("/orders", headers=bearer(READ))),
    ]


def test_explicit_none_keyword_is_a_setting() -> None:
    """request_id_header=None switches the request id off instead of falling back to the default."""
    app = Flask("none_keyword")
    InvalidToken(app, verifier=make_verifier(), request_id_header=None)
    with capture_logs() as logs:
        app.test_client().get("/", headers={"X-Request-Id": "abc123"})
    assert [None] == [entry.get("request_id") for entry in logs]


def test_config_request_id_header_is_logged() -> None:
    """INVALIDTOKEN_REQUEST_ID_HEADER names the header whose value the event logs."""
    app = Flask("request_id")
    app.config["INVALIDTOKEN_REQUEST_ID_HEADER"] = "x-correlation-id"
    InvalidToken(app, verifier=make_verifier())
    with capture_logs() as logs:
        app.test_client().get("/", headers={"X-Correlation-Id": "abc123"})
    assert ["abc123"] == [entry.get("request_id") for entry in logs]


def test_missing_verifier_is_a_clear_value_error() -> None:
    """Without a verifier (keyword or INVALIDTOKEN_VERIFIER) set-up fails with a how-to message."""
    with pytest.raises(ValueError, match=r"InvalidToken needs a verifier") as caught:
        InvalidToken(Flask("no_verifier"))
    assert "app.config['INVALIDTOKEN_VERIFIER']" in str(caught.value)


def test_missing_verifier_fails_in_init_app() -> None:
    """An app factory without a verifier fails in init_app, not later on a request."""
    auth = InvalidToken()
    with pytest.raises(ValueError, match=r"InvalidToken needs a verifier"):
        auth.init_app(Flask("no_verifier_factory"))


def test_unknown_option_is_a_type_error() -> None:
    """A misspelt option is refused at once, naming it."""
    with pytest.raises(TypeError, match=r"unknown option\(s\): verifer"):
        InvalidToken(verifer=make_verifier())


# -- exemptions, scopes, claims --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/health", (200, None, None), id="exempt-view"),
        pytest.param("/pub/ping", (200, None, None), id="exempt-blueprint"),
        pytest.param("/pub/inner/ping", (200, None, None), id="nested-in-exempt-blueprint"),
        pytest.param("/priv/ping", (401, BARE, "missing_token"), id="ordinary-blueprint"),
        pytest.param("/me", (401, BARE, "missing_token"), id="ordinary-view"),
        pytest.param("/nowhere", (401, BARE, "missing_token"), id="unknown-path"),
    ],
)
def test_exempt_views_and_blueprints_are_public(
    http: FlaskClient, path: str, expected: tuple[int, str | None, str | None]
) -> None:
    """Exempt views and blueprints (nested ones too) need no token; everything else does."""
    assert expected == outcome(http.get(path))


def test_current_claims_gives_the_verified_claims(http: FlaskClient) -> None:
    """current_claims() returns the claims of the request's verified token."""
    expected = jwt.decode(READ, options={"verify_signature": False})
    assert expected == http.get("/me", headers=bearer(READ)).get_json()


@pytest.mark.parametrize("path", ["/public-claims", "/public-optional-claims"])
@pytest.mark.parametrize("token", [None, READ], ids=["no-token", "valid-token"])
def test_claims_in_an_exempt_view_are_a_programming_error(path: str, token: str | None) -> None:
    """Reading the claims in an exempt view raises a RuntimeError that names @auth.optional.

    The token of an exempt view is never read, so answering missing_token (as before)
    was false when a valid token had been sent.
    """
    app = create_app()
    app.testing = True  # the view's exception reaches the test instead of a 500 page
    headers = {} if token is None else bearer(token)
    with pytest.raises(RuntimeError, match=r"exempt from authentication.*@auth\.optional"):
        app.test_client().get(path, headers=headers)


def test_claims_on_an_excluded_path_are_a_programming_error() -> None:
    """A path in exclude_paths is exempt too: asking for its claims raises RuntimeError."""
    app = Flask("excluded_claims")
    app.testing = True
    InvalidToken(app, verifier=make_verifier(), exclude_paths=["/public"])
    app.add_url_rule("/public/me", "me", current_claims)
    with pytest.raises(RuntimeError, match=r"exclude_paths"):
        app.test_client().get("/public/me", headers=bearer(READ))


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        pytest.param("/optional", {}, (200, {"sub": None}), id="anonymous"),
        pytest.param("/optional", bearer(READ), (200, {"sub": "user-1"}), id="valid-token"),
        pytest.param("/maybe/ping", {}, (200, {"sub": None}), id="blueprint-anonymous"),
        pytest.param("/maybe/ping", bearer(READ), (200, {"sub": "user-1"}), id="blueprint-valid"),
    ],
)
def test_optional_view_lets_anonymous_requests_through_and_hands_over_claims(
    http: FlaskClient, path: str, headers: dict[str, str], expected: tuple[int, Any]
) -> None:
    """@auth.optional (view or blueprint): no token gives None, a valid token its claims."""
    response = http.get(path, headers=headers)
    assert expected == (response.status_code, response.get_json())


@pytest.mark.parametrize("path", ["/optional", "/maybe/ping"])
@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(EXPIRED, (401, EXPIRED_CHALLENGE, "expired"), id="expired"),
        pytest.param(BAD_SIGNATURE, (401, None, "bad_signature"), id="bad-signature"),
    ],
)
def test_optional_view_still_refuses_a_bad_token(
    http: FlaskClient, path: str, token: str, expected: tuple[int, str | None, str]
) -> None:
    """A token sent to an optional view is verified: a bad one is refused like anywhere else."""
    status, challenge, reason = outcome(http.get(path, headers=bearer(token)))
    assert expected[::2] == (status, reason)
    assert challenge is not None
    if expected[1] is not None:
        assert expected[1] == challenge


def test_optional_view_refusal_is_logged_once(http: FlaskClient) -> None:
    """The refusal of a bad token on an optional view is one auth_rejected event."""
    with capture_logs() as logs:
        http.get("/optional", headers=bearer(EXPIRED))
    assert ["expired"] == rejected(logs)


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        pytest.param("/optional/needs-claims", {}, (401, BARE, "missing_token"), id="claims"),
        pytest.param("/optional/scoped", {}, (401, BARE, "missing_token"), id="scoped"),
        pytest.param(
            "/optional/scoped",
            bearer(NO_SCOPE),
            (403, scope_challenge("orders:read"), "insufficient_scope"),
            id="scoped-no-scope",
        ),
        pytest.param("/optional/scoped", bearer(READ), (200, None, None), id="scoped-granted"),
    ],
)
def test_optional_view_that_needs_claims_or_scopes(
    http: FlaskClient, path: str, headers: dict[str, str], expected: tuple[int, Any, Any]
) -> None:
    """current_claims() or a scope decorator in an optional view: anonymous gets a bare 401."""
    assert expected == outcome(http.get(path, headers=headers))


def test_a_view_cannot_be_both_exempt_and_optional() -> None:
    """Marking one view (or blueprint) both ways fails at decoration, in either order."""
    auth = InvalidToken(verifier=make_verifier())

    def view() -> str:
        return "ok"

    auth.exempt(view)
    with pytest.raises(ValueError, match=r"both exempt and optional"):
        auth.optional(view)
    blueprint = Blueprint("both", __name__)
    auth.optional(blueprint)
    with pytest.raises(ValueError, match=r"both exempt and optional"):
        auth.exempt(blueprint)


def test_optional_paths_setting_works_in_the_extension() -> None:
    """INVALIDTOKEN_OPTIONAL_PATHS makes a path optional without a decorator."""
    app = Flask("optional_paths")
    app.config["INVALIDTOKEN_OPTIONAL_PATHS"] = ["/feed"]
    InvalidToken(app, verifier=make_verifier(), realm="orders")

    @app.get("/feed")
    def feed() -> dict[str, Any]:
        return {"claims": optional_claims()}

    test_client = app.test_client()
    assert {"claims": None} == test_client.get("/feed").get_json()
    assert "expired" == outcome(test_client.get("/feed", headers=bearer(EXPIRED)))[2]


@pytest.mark.parametrize(
    ("method", "token", "expected"),
    [
        pytest.param("GET", READ, (200, None, None), id="read-granted"),
        pytest.param("GET", READ_SCP, (200, None, None), id="scp-list-granted"),
        pytest.param(
            "GET",
            NO_SCOPE,
            (403, scope_challenge("orders:read"), "insufficient_scope"),
            id="read-missing",
        ),
        pytest.param(
            "POST",
            READ,
            (403, scope_challenge("orders:write"), "insufficient_scope"),
            id="write-missing",
        ),
        pytest.param("POST", READ_SCP, (201, None, None), id="write-granted-by-scp"),
    ],
)
def test_require_scopes(
    http: FlaskClient, method: str, token: str, expected: tuple[int, str | None, str | None]
) -> None:
    """require_scopes passes a token granting the scope (scope or scp), 403s one lacking it."""
    assert expected == outcome(http.open("/orders", method=method, headers=bearer(token)))


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(READ, (200, None, None), id="first-alternative"),
        pytest.param(
            mint(payload=claims(scope="orders:admin")), (200, None, None), id="second-alternative"
        ),
        pytest.param(
            NO_SCOPE,
            (403, ANY_CHALLENGE, "insufficient_scope"),
            id="neither",
        ),
    ],
)
def test_require_any_scope(
    http: FlaskClient, token: str, expected: tuple[int, str | None, str | None]
) -> None:
    """require_any_scope passes a token with any one scope; the refusal names every alternative."""
    assert expected == outcome(http.get("/any", headers=bearer(token)))


def test_require_any_scope_keeps_the_app_wide_scopes() -> None:
    """An app-wide scope is still needed on an any-of view, and the challenge names it."""
    app = Flask("any_app_wide")
    InvalidToken(app, verifier=make_verifier(), realm="orders", scopes=["orders:read"])

    @app.get("/any")
    @require_any_scope("orders:write", "orders:admin")
    def any_scope() -> str:
        return "ok"

    test_client = app.test_client()
    both = mint(payload=claims(scope="orders:read orders:admin"))
    no_app_scope = mint(payload=claims(scope="orders:admin"))
    assert 200 == test_client.get("/any", headers=bearer(both)).status_code
    assert (403, scope_challenge("orders:read"), "insufficient_scope") == outcome(
        test_client.get("/any", headers=bearer(no_app_scope))
    )


def test_require_any_scope_needs_a_scope() -> None:
    """require_any_scope() with no scope (never satisfiable) fails at decoration."""
    with pytest.raises(ValueError, match=r"at least one scope"):
        require_any_scope()


def test_require_scopes_refuses_an_invalid_scope_at_decoration() -> None:
    """A scope that is not an RFC 6749 scope-token fails when the view is decorated."""
    with pytest.raises(ValueError, match=r"RFC 6749"):
        require_scopes("orders read")


# -- interception: failures raised by views, 401s from views ---------------------------


@pytest.mark.parametrize("path", ["/raise/auth-failure", "/raise/expired"])
def test_view_failures_rendered_despite_own_401_handler(http: FlaskClient, path: str) -> None:
    """AuthFailure and pyjwt errors from views get the library's answer, not errorhandler(401)'s."""
    with capture_logs() as logs:
        response = http.get(path, headers=bearer(READ))
    body = response.get_json()
    expected = (401, EXPIRED_CHALLENGE, "expired", 401, "no-store", ["expired"])
    assert expected == (
        response.status_code,
        response.headers.get("WWW-Authenticate"),
        body["reason"],
        body["status"],
        response.headers.get("Cache-Control"),
        rejected(logs),
    )


def test_view_failure_matches_the_middleware_answer(http: FlaskClient) -> None:
    """An expired-token failure raised by a view sends the same bytes as an expired token."""
    raised = http.get("/raise/expired", headers=bearer(READ))
    refused = http.get("/orders", headers=bearer(EXPIRED))
    expected = (refused.status_code, refused.headers.get("WWW-Authenticate"), refused.data)
    assert expected == (raised.status_code, raised.headers.get("WWW-Authenticate"), raised.data)


def test_abort_401_keeps_own_handler_and_gets_challenge(http: FlaskClient) -> None:
    """abort(401) still reaches the app's errorhandler(401), and the answer gets the challenge."""
    response = http.get("/abort-401", headers=bearer(READ))
    expected = (401, BARE, {"own_handler": True})
    assert expected == (
        response.status_code,
        response.headers.get("WWW-Authenticate"),
        response.get_json(),
    )


def test_bare_401_from_view_gets_challenge(http: FlaskClient) -> None:
    """A view returning a 401 without WWW-Authenticate gets the bare realm challenge."""
    response = http.get("/bare-401", headers=bearer(READ))
    assert (401, [BARE]) == (response.status_code, response.headers.getlist("WWW-Authenticate"))


def test_own_challenge_left_alone(http: FlaskClient) -> None:
    """A view's 401 that carries its own challenge is not touched."""
    response = http.get("/own-challenge-401", headers=bearer(READ))
    expected = (401, ['Basic realm="legacy"'])
    assert expected == (response.status_code, response.headers.getlist("WWW-Authenticate"))


def test_missing_challenge_not_added_when_switched_off() -> None:
    """With INVALIDTOKEN_ADD_MISSING_CHALLENGE off, a view's bare 401 stays as it is."""
    app = create_app(add_missing_challenge=False)
    response = app.test_client().get("/bare-401", headers=bearer(READ))
    assert (401, None) == (response.status_code, response.headers.get("WWW-Authenticate"))


# -- finding the token -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, (401, BARE, "missing_token"), id="no-credentials"),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz"},
            (401, BARE, "missing_token"),
            id="basic",
        ),
        pytest.param({"Authorization": f"bearer {READ}"}, (200, None, None), id="lower"),
        pytest.param({"Authorization": f"BEARER {READ}"}, (200, None, None), id="upper"),
        pytest.param({"Authorization": f"Bearer   {READ}"}, (200, None, None), id="several-spaces"),
        pytest.param(
            {"Authorization": "Bearer"},
            (400, invalid_request(EMPTY_DETAIL), "invalid_request"),
            id="bearer",
        ),
        pytest.param(
            {"Authorization": "Bearer "},
            (400, invalid_request(EMPTY_DETAIL), "invalid_request"),
            id="bearer-space",
        ),
        pytest.param(
            {"Authorization": "Bearer not$a*token!"},
            (401, invalid_token(CHARACTERS_DETAIL), "malformed_token"),
            id="characters",
        ),
        pytest.param(
            {"Authorization": f"Bearer {READ[:20]} {READ[20:]}"},
            (401, invalid_token(WRAPPED_DETAIL), "malformed_token"),
            id="space-inside",
        ),
        pytest.param(
            {"Authorization": "Bearer " + "A" * 9000},
            (401, invalid_token(OVERSIZED_DETAIL), "malformed_token"),
            id="oversized",
        ),
    ],
)
def test_finding_the_token(
    http: FlaskClient, headers: dict[str, str], expected: tuple[int, str | None, str | None]
) -> None:
    """Each way of presenting (or not presenting) a token gets its status, challenge and reason."""
    assert expected == outcome(http.get("/orders", headers=headers))


def test_two_authorization_headers(http: FlaskClient) -> None:
    """Two Authorization headers are a 400 invalid_request."""
    headers = [("Authorization", f"Bearer {READ}"), ("Authorization", f"Bearer {READ_SCP}")]
    response = http.get("/orders", headers=headers)
    expected = (400, invalid_request(SEVERAL_DETAIL), "invalid_request")
    assert expected == outcome(response)


def test_header_and_query_token(relaxed: FlaskClient) -> None:
    """A token in the header and another in the query (query method on) is a 400."""
    response = relaxed.get("/orders", query_string={"access_token": READ}, headers=bearer(READ))
    assert (400, invalid_request(SEVERAL_DETAIL), "invalid_request") == outcome(response)


def test_header_and_body_token(relaxed: FlaskClient) -> None:
    """A token in the header and another in a form body (body method on) is a 400."""
    response = relaxed.post(
        "/orders", data=f"access_token={READ_SCP}", content_type=FORM, headers=bearer(READ_SCP)
    )
    assert (400, invalid_request(SEVERAL_DETAIL), "invalid_request") == outcome(response)


def test_query_token_ignored_by_default(http: FlaskClient) -> None:
    """With the query method off (the default), ?access_token= is ignored: a bare 401."""
    response = http.get("/orders", query_string={"access_token": READ})
    assert (401, BARE, "missing_token") == outcome(response)


def test_body_token_ignored_by_default(http: FlaskClient) -> None:
    """With the body method off (the default), a form-body access_token is ignored."""
    response = http.post("/orders", data=f"access_token={READ_SCP}", content_type=FORM)
    assert (401, BARE, "missing_token") == outcome(response)


def test_query_token_accepted_and_private(relaxed: FlaskClient) -> None:
    """When on, a query token is accepted and the response is Cache-Control: private."""
    response = relaxed.get("/orders", query_string={"access_token": READ})
    expected = (200, "private", {"sub": "user-1"})
    actual = (response.status_code, response.headers.get("Cache-Control"), response.get_json())
    assert expected == actual


def test_header_token_not_marked_private(relaxed: FlaskClient) -> None:
    """A header-token request's response is not marked private."""
    response = relaxed.get("/orders", headers=bearer(READ))
    assert (200, None) == (response.status_code, response.headers.get("Cache-Control"))


def test_form_body_token_accepted(relaxed: FlaskClient) -> None:
    """When on, a form-body token on POST is accepted and the view still reads the form."""
    response = relaxed.post("/orders", data={"access_token": READ_SCP})
    assert (201, {"sub": "user-1"}) == (response.status_code, response.get_json())


@pytest.mark.parametrize(
    ("method", "content_type"),
    [pytest.param("GET", FORM, id="get"), pytest.param("POST", "application/json", id="json")],
)
def test_body_token_only_for_form_posts(
    relaxed: FlaskClient, method: str, content_type: str
) -> None:
    """A body token is never read from a GET nor from a non-form body: a bare 401."""
    response = relaxed.open(
        "/orders", method=method, data=f"access_token={READ_SCP}", content_type=content_type
    )
    assert (401, BARE, "missing_token") == outcome(response)


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        pytest.param(f"access_token={READ}&access_token={READ_SCP}", SEVERAL_DETAIL, id="repeated"),
        pytest.param("access_token=", "The access_token parameter is empty.", id="empty"),
    ],
)
def test_repeated_or_empty_query_token(relaxed: FlaskClient, query: str, detail: str) -> None:
    """A repeated or empty access_token parameter is a 400 invalid_request."""
    response = relaxed.get(f"/orders?{query}")
    assert (400, invalid_request(detail), "invalid_request") == outcome(response)


def test_limit_from_config() -> None:
    """INVALIDTOKEN_MAX_TOKEN_BYTES lowers the size limit: a normal token is then refused."""
    app = Flask("small_limit")
    app.config["INVALIDTOKEN_MAX_TOKEN_BYTES"] = 64
    InvalidToken(app, verifier=make_verifier(), realm="orders")
    response = app.test_client().get("/", headers=bearer(READ))
    assert (401, invalid_token(OVERSIZED_DETAIL), "malformed_token") == outcome(response)


# -- expiry ----------------------------------------------------------------------------


def test_expired_beyond_leeway(http: FlaskClient) -> None:
    """A token expired beyond the leeway is refused as expired."""
    assert (401, EXPIRED_CHALLENGE, "expired") == outcome(
        http.get("/orders", headers=bearer(EXPIRED))
    )


def test_expired_within_leeway_accepted(http: FlaskClient) -> None:
    """A token expired 30 s ago, within the 60 s leeway, is accepted."""
    token = mint(payload=claims(scope="orders:read", exp=int(time.time()) - 30))
    assert (200, None, None) == outcome(http.get("/orders", headers=bearer(token)))


# -- output --------------------------------------------------------------------------


def test_body_members(http: FlaskClient) -> None:
    """The body carries every problem and OAuth member; status equals the HTTP status."""
    response = http.get("/orders", headers=bearer(EXPIRED))
    expected = {
        "type": "tag:invalidtoken-mw,2026:reason:expired",
        "title": "Access token expired",
        "status": 401,
        "detail": EXPIRED_DETAIL,
        "error": "invalid_token",
        "error_description": EXPIRED_DETAIL,
        "reason": "expired",
    }
    actual = (response.get_json(), response.content_type, response.headers.get("Cache-Control"))
    assert (expected, "application/json", "no-store") == actual


def test_missing_token_body_has_null_error(http: FlaskClient) -> None:
    """The missing-token body has error null and the plain description."""
    body = http.get("/orders").get_json()
    expected = (None, MISSING_DETAIL, 401, "missing_token")
    assert expected == (body["error"], body["detail"], body["status"], body["reason"])


def test_problem_json_when_asked(http: FlaskClient) -> None:
    """Accept: application/problem+json gets that media type."""
    response = http.get(
        "/orders", headers={**bearer(EXPIRED), "Accept": "application/problem+json"}
    )
    assert (401, "application/problem+json") == (response.status_code, response.content_type)


def test_no_body_on_head(http: FlaskClient) -> None:
    """A refused HEAD request gets the status and challenge but no body."""
    response = http.head("/orders", headers=bearer(EXPIRED))
    expected = (401, EXPIRED_CHALLENGE, b"")
    assert expected == (
        response.status_code,
        response.headers.get("WWW-Authenticate"),
        response.data,
    )


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        pytest.param("/orders", {}, id="rejection"),
        pytest.param("/orders", bearer(EXPIRED), id="invalid-token"),
        pytest.param("/bare-401", bearer(READ), id="view-bare-401"),
    ],
)
def test_challenge_exposed_under_cors(
    http: FlaskClient, path: str, headers: dict[str, str]
) -> None:
    """With an Origin header, WWW-Authenticate is listed in Access-Control-Expose-Headers."""
    response = http.get(path, headers={**headers, "Origin": "https://app.example"})
    expected = (401, "www-authenticate")
    assert expected == (
        response.status_code,
        response.headers.get("Access-Control-Expose-Headers", "").lower(),
    )


def test_cors_preflight_answered_without_token(http: FlaskClient) -> None:
    """A CORS preflight carries no credentials by design: it is not refused, but answered
    with a bare 204 before any view runs."""
    response = http.options(
        "/orders",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
    )
    assert (204, None) == (response.status_code, response.headers.get("WWW-Authenticate"))


SECRET_CASES = [
    pytest.param(f'Bearer "{READ}"', READ, id="quoted"),
    pytest.param(f"Bearer {EXPIRED}", EXPIRED, id="expired"),
    pytest.param(f"Bearer {BAD_SIGNATURE}", BAD_SIGNATURE, id="bad-signature"),
    pytest.param(f"Bearer {NO_SCOPE}", NO_SCOPE, id="insufficient-scope"),
    pytest.param(f"Bearer {READ[:-1]}!", READ[:-1], id="bad-character"),
    pytest.param(f"Bearer {READ.rsplit('.', 1)[0]}", READ.rsplit(".", 1)[0], id="truncated"),
]


@pytest.mark.parametrize(("authorization", "token"), SECRET_CASES)
def test_token_never_echoed(http: FlaskClient, authorization: str, token: str) -> None:
    """Neither the token nor any long segment of it appears in a header, the body or the log."""
    with capture_logs() as logs:
        response = http.get("/orders", headers={"Authorization": authorization})
    fragments = {token} | {part for part in token.split(".") if len(part) >= 16}
    written = [*(f"{k}: {v}" for k, v in response.headers.items()), response.text, repr(logs)]
    leaks = [
        (fragment[:16], text[:40]) for fragment in fragments for text in written if fragment in text
    ]
    assert response.status_code >= 400
    assert [] == leaks


@pytest.mark.parametrize(
    ("method", "path", "headers", "reason"),
    [
        pytest.param("GET", "/orders", {}, "missing_token", id="missing"),
        pytest.param("GET", "/orders", {"Authorization": "Bearer"}, "invalid_request", id="empty"),
        pytest.param("GET", "/orders", bearer(EXPIRED), "expired", id="expired"),
        pytest.param("GET", "/orders", bearer(BAD_SIGNATURE), "bad_signature", id="signature"),
        pytest.param("POST", "/orders", bearer(READ), "insufficient_scope", id="scope"),
        pytest.param("GET", "/raise/auth-failure", bearer(READ), "expired", id="view-failure"),
        pytest.param("GET", "/raise/expired", bearer(READ), "expired", id="view-pyjwt"),
        pytest.param("HEAD", "/orders", bearer(EXPIRED), "expired", id="head"),
    ],
)
def test_one_event_per_rejection(
    http: FlaskClient, method: str, path: str, headers: dict[str, str], reason: str
) -> None:
    """Every refused request logs exactly one auth_rejected event, carrying its reason."""
    with capture_logs() as logs:
        http.open(path, method=method, headers=headers)
    assert [reason] == rejected(logs)


@pytest.mark.parametrize(
    "path", ["/orders", "/health", "/bare-401", "/abort-401"], ids=lambda p: p.strip("/")
)
def test_no_event_without_rejection(http: FlaskClient, path: str) -> None:
    """Accepted requests, public views and a view's own 401 log no auth_rejected event."""
    with capture_logs() as logs:
        http.get(path, headers=bearer(READ))
    assert [] == rejected(logs)
