"""Rendering a failure: status, headers and body."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from invalidtoken_mw import AuthFailure, ChallengeSettings, Reason, Renderer, wants_problem_json
from invalidtoken_mw.render import DEFAULT_PROBLEM_TYPE_BASE, JSON, PROBLEM_JSON, problem_document
from support.strategies import check_challenge

RENDERER = Renderer(ChallengeSettings(realm="orders"))
BODY_MEMBERS = ["type", "title", "status", "detail", "error", "error_description", "reason"]
EXPIRED_DESCRIPTION = "The access token expired. Obtain a new one and retry."
EXPIRED_BODY = (
    b'{"type":"tag:invalidtoken-mw,2026:reason:expired","title":"Access token expired",'
    b'"status":401,"detail":"The access token expired. Obtain a new one and retry.",'
    b'"error":"invalid_token","error_description":'
    b'"The access token expired. Obtain a new one and retry.","reason":"expired"}'
)


def _document(body: bytes) -> dict[str, object]:
    """Decode a rendered body, insisting on a JSON object."""
    document = json.loads(body)
    assert isinstance(document, dict)
    return document


def test_expired_answer_is_pinned_byte_for_byte() -> None:
    """An expired token gets exactly this status, these headers in this order, and this body."""
    expected_headers = (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        ("content-length", str(len(EXPIRED_BODY))),
        (
            "www-authenticate",
            (
                'Bearer realm="orders", error="invalid_token",'
                f' error_description="{EXPIRED_DESCRIPTION}"'
            ),
        ),
    )
    rendered = RENDERER.render(AuthFailure(Reason.EXPIRED))
    assert (401, expected_headers, EXPIRED_BODY) == rendered


def test_server_fault_answer_is_pinned() -> None:
    """key_unavailable is a 503 with Retry-After, no-store, no challenge and error null."""
    rendered = Renderer(retry_after=30).render(AuthFailure(Reason.KEY_UNAVAILABLE))
    expected_document = {
        "type": "tag:invalidtoken-mw,2026:reason:key_unavailable",
        "title": "Signing keys unavailable",
        "status": 503,
        "detail": "The service cannot check access tokens right now. Retry later.",
        "error": None,
        "error_description": "The service cannot check access tokens right now. Retry later.",
        "reason": "key_unavailable",
    }
    expected_headers = (
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
        ("content-length", str(len(rendered.body))),
        ("retry-after", "30"),
    )
    assert (503, expected_headers) == (rendered.status, rendered.headers)
    assert expected_document == _document(rendered.body)


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_body_has_every_member_and_status_matches(reason: Reason) -> None:
    """Every reason's body has exactly the seven members, and 'status' is the HTTP status."""
    rendered = RENDERER.render(AuthFailure(reason))
    document = _document(rendered.body)
    expected_members = BODY_MEMBERS
    assert expected_members == list(document)
    expected = {
        "type": f"{DEFAULT_PROBLEM_TYPE_BASE}{reason.value}",
        "title": reason.problem_title,
        "status": rendered.status,
        "detail": reason.description,
        "error": reason.error,
        "error_description": reason.description,
        "reason": reason.value,
    }
    assert expected == document
    assert reason.status == rendered.status


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_answer_is_no_store_with_a_correct_length(reason: Reason) -> None:
    """Every answer carries Cache-Control: no-store and a Content-Length equal to the body size."""
    rendered = RENDERER.render(AuthFailure(reason))
    headers = dict(rendered.headers)
    assert ("no-store", str(len(rendered.body))) == (
        headers["cache-control"],
        headers["content-length"],
    )
    assert len(headers) == len(rendered.headers), "a header name appears twice"


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_retry_after_and_challenge_split_by_server_fault(reason: Reason) -> None:
    """503s carry Retry-After and no WWW-Authenticate; every other answer the reverse."""
    names = {name for name, _ in RENDERER.render(AuthFailure(reason)).headers}
    server_fault = reason.status == 503
    assert server_fault == ("retry-after" in names)
    assert (not server_fault) == ("www-authenticate" in names)


def test_retry_after_defaults_to_five_seconds() -> None:
    """Without configuration, a 503 says Retry-After: 5."""
    rendered = Renderer().render(AuthFailure(Reason.REVOCATION_UNAVAILABLE))
    expected = "5"
    assert expected == dict(rendered.headers)["retry-after"]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        pytest.param(None, JSON, id="rfc9457-3-no-accept"),
        pytest.param("*/*", JSON, id="rfc9457-3-any"),
        pytest.param("application/json", JSON, id="rfc9457-3-json"),
        pytest.param("application/problem+json", PROBLEM_JSON, id="rfc9457-3-problem-json"),
        pytest.param(
            "text/html, application/problem+json;q=0.9",
            PROBLEM_JSON,
            id="rfc9457-3-problem-json-among-others",
        ),
        pytest.param("application/problem+json;q=0", JSON, id="rfc9110-12.4.2-q-zero-refuses"),
    ],
)
def test_content_type_follows_accept(accept: str | None, content_type: str) -> None:
    """The body is application/problem+json when Accept asks for it, application/json otherwise."""
    rendered = RENDERER.render(AuthFailure(Reason.EXPIRED), accept=accept)
    assert (content_type, EXPIRED_BODY) == (dict(rendered.headers)["content-type"], rendered.body)


def test_problem_json_can_be_switched_off() -> None:
    """With problem_json=False the same document is always sent as application/json."""
    rendered = Renderer(problem_json=False).render(
        AuthFailure(Reason.EXPIRED), accept="application/problem+json"
    )
    expected = JSON
    assert expected == dict(rendered.headers)["content-type"]


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_head_gets_the_headers_and_no_body(reason: Reason) -> None:
    """A HEAD request gets the same status and headers as GET, and an empty body."""
    failure = AuthFailure(reason)
    get = RENDERER.render(failure, accept="application/problem+json")
    head = RENDERER.render(failure, method="HEAD", accept="application/problem+json")
    assert (get.status, get.headers, b"") == head


def test_custom_description_has_no_body_on_head() -> None:
    """A HEAD request gets no body for a failure with a custom description too."""
    head = RENDERER.render(AuthFailure(Reason.REVOKED, "Revoked by an admin."), method="HEAD")
    expected = b""
    assert expected == head.body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param("", False, id="empty"),
        pytest.param("application/json", False, id="json"),
        pytest.param("*/*", False, id="wildcard-does-not-ask"),
        pytest.param("application/problem+json", True, id="exact"),
        pytest.param("application/problem+json; charset=utf-8", True, id="with-parameter"),
        pytest.param("application/problem+json;q=0.5", True, id="rfc9110-12.4.2-q-half"),
        pytest.param("application/problem+json; Q=1", True, id="rfc9110-12.4.2-q-any-case"),
        pytest.param("application/problem+json;q=0", False, id="rfc9110-12.4.2-q-zero"),
        pytest.param("application/problem+json;q=0.000", False, id="rfc9110-12.4.2-q-zeros"),
        pytest.param("application/problem+json;q=abc", False, id="q-invalid"),
        pytest.param("application/problem+jsonx", False, id="longer-subtype"),
        pytest.param("text/problem+json", False, id="other-type"),
        pytest.param("APPLICATION/PROBLEM+JSON", True, id="rfc9110-8.3.1-upper-case"),
        pytest.param("Application/Problem+Json;q=1", True, id="rfc9110-8.3.1-mixed-case"),
        pytest.param(" text/html ,  application/problem+json ", True, id="rfc9110-5.6.1-ows"),
    ],
)
def test_wants_problem_json(*, accept: str | None, expected: bool) -> None:
    """wants_problem_json is true when Accept lists application/problem+json with q > 0."""
    assert expected == wants_problem_json(accept)


def test_custom_problem_type_base_prefixes_the_reason() -> None:
    """problem_type_base is the prefix of 'type', followed by the reason value."""
    rendered = Renderer(problem_type_base="https://example.com/errors/").render(
        AuthFailure(Reason.EXPIRED)
    )
    expected = "https://example.com/errors/expired"
    assert expected == _document(rendered.body)["type"]


def test_custom_description_is_cleaned_the_same_in_body_and_header() -> None:
    """A custom description reaches body and header as the same header-safe sentence."""
    rendered = RENDERER.render(
        AuthFailure(Reason.REVOKED, 'Revoked "by admin"\r\nat 10:00 \u2014 ok')
    )
    document = _document(rendered.body)
    params = check_challenge(dict(rendered.headers)["www-authenticate"])
    expected = "Revoked 'by admin' at 10:00 - ok"
    assert (expected, expected, expected) == (
        document["detail"],
        document["error_description"],
        params["error_description"],
    )


def test_description_equal_to_the_default_renders_like_the_default() -> None:
    """A failure whose description equals the default (but is another object) renders the same."""
    copied = "".join(list(Reason.EXPIRED.description))
    assert RENDERER.render(AuthFailure(Reason.EXPIRED)) == RENDERER.render(
        AuthFailure(Reason.EXPIRED, copied)
    )


def test_insufficient_scope_answer_is_403_with_the_scope() -> None:
    """insufficient_scope renders 403 and announces the scopes in the challenge."""
    rendered = RENDERER.render(AuthFailure(Reason.INSUFFICIENT_SCOPE, scopes=["a", "b"]))
    expected = (
        'Bearer realm="orders", error="insufficient_scope", error_description="The access token'
        ' does not grant the scope this request requires.", scope="a b"'
    )
    assert (403, expected) == (rendered.status, dict(rendered.headers)["www-authenticate"])


def test_rendered_headers_are_ascii_without_line_breaks() -> None:
    """Whatever the description, every rendered header value is ASCII without CR or LF."""
    failure = AuthFailure(Reason.BAD_SIGNATURE, '\r\n\x00"\\\u00e9\uff02\u2028', scopes=["\n"])
    rendered = RENDERER.render(failure, accept="application/problem+json")
    for name, value in rendered.headers:
        assert value.isascii(), name
        assert "\r" not in value, name
        assert "\n" not in value, name
    check_challenge(dict(rendered.headers)["www-authenticate"])
    assert rendered.body.isascii()


@pytest.mark.parametrize("retry_after", [-1, True, 1.5, "5"], ids=repr)
def test_bad_retry_after_is_refused(retry_after: object) -> None:
    """retry_after must be a whole number of seconds >= 0; anything else raises ValueError."""
    with pytest.raises(ValueError, match=r"retry_after must be a whole number of seconds >= 0"):
        Renderer(retry_after=retry_after)  # type: ignore[arg-type]


def test_zero_retry_after_is_allowed() -> None:
    """retry_after=0 is a valid 'retry now'."""
    rendered = Renderer(retry_after=0).render(AuthFailure(Reason.KEY_UNAVAILABLE))
    expected = "0"
    assert expected == dict(rendered.headers)["retry-after"]


@pytest.mark.parametrize(
    "base", ["https://example.com/a b/", "https://b\u00fccher.example/", "tag:x\n"], ids=repr
)
def test_bad_problem_type_base_is_refused(base: str) -> None:
    """A problem_type_base with whitespace or non-ASCII raises ValueError."""
    with pytest.raises(ValueError, match=r"problem_type_base=.* is not a URI reference"):
        Renderer(problem_type_base=base)


def test_renderer_defaults_to_realm_api() -> None:
    """Without settings, the challenge realm is 'api'."""
    rendered = Renderer().render(AuthFailure(Reason.MISSING_TOKEN))
    expected = 'Bearer realm="api"'
    assert expected == dict(rendered.headers)["www-authenticate"]


_CORE_MODULES = ("reasons", "challenge", "extract", "render")
_REPORT_FRAMEWORKS = (
    "frameworks = {'starlette', 'flask', 'fastapi'}\n"
    "print(sorted(m for m in sys.modules if m.split('.')[0] in frameworks))\n"
)


def _modules_imported_by(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return what it printed."""
    # A fixed command with the test's own interpreter: no untrusted input reaches it.
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_core_modules_alone_import_no_framework() -> None:
    """The four core modules, loaded without the package __init__, import no web framework."""
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('invalidtoken_mw')\n"
        "package = types.ModuleType('invalidtoken_mw')\n"
        "package.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['invalidtoken_mw'] = package\n"
        + "".join(f"import invalidtoken_mw.{name}\n" for name in _CORE_MODULES)
        + "assert 'invalidtoken_mw.asgi' not in sys.modules\n"
        + _REPORT_FRAMEWORKS
    )
    expected = "[]"
    assert expected == _modules_imported_by(code)


def test_importing_the_core_imports_no_framework() -> None:
    """Importing the core modules the ordinary way (package included) imports no web framework."""
    code = (
        "import sys\n"
        + "".join(f"import invalidtoken_mw.{name}\n" for name in _CORE_MODULES)
        + _REPORT_FRAMEWORKS
    )
    expected = "[]"
    assert expected == _modules_imported_by(code)


# -- error_body: the application's own envelope ------------------------------------------


def _envelope(failure: AuthFailure) -> dict[str, object]:
    return {"error": {"code": failure.reason.value, "message": failure.description}}


@pytest.mark.parametrize("reason", list(Reason))
def test_error_body_replaces_the_document_and_keeps_the_rest(reason: Reason) -> None:
    """Status, challenge, no-store, Retry-After stay; the body is the app's; JSON type."""
    plain = Renderer(ChallengeSettings("orders")).render(AuthFailure(reason))
    custom = Renderer(ChallengeSettings("orders"), error_body=_envelope)
    for accept in (None, "application/problem+json"):
        answer = custom.render(AuthFailure(reason), accept=accept)
        headers = dict(answer.headers)
        assert answer.status == plain.status
        assert json.loads(answer.body) == {
            "error": {"code": reason.value, "message": reason.description}
        }
        assert headers["content-type"] == JSON
        assert headers["content-length"] == str(len(answer.body))
        assert headers["cache-control"] == "no-store"
        assert headers.get("www-authenticate") == dict(plain.headers).get("www-authenticate")
        assert headers.get("retry-after") == dict(plain.headers).get("retry-after")


def test_error_body_is_called_once_per_reason_at_start_up() -> None:
    calls: list[Reason] = []

    def body(failure: AuthFailure) -> dict[str, object]:
        calls.append(failure.reason)
        return {"code": failure.reason.value}

    renderer = Renderer(error_body=body)
    assert sorted(calls) == sorted(Reason)
    for _ in range(3):
        renderer.render(AuthFailure(Reason.EXPIRED))
    assert len(calls) == len(Reason)


def test_error_body_sees_a_custom_description_and_scopes() -> None:
    renderer = Renderer(error_body=lambda f: {"message": f.description, "scopes": list(f.scopes)})
    failure = AuthFailure(Reason.INSUFFICIENT_SCOPE, "Needs more.", scopes=["a", "b"])
    answer = renderer.render(failure)
    assert json.loads(answer.body) == {"message": "Needs more.", "scopes": ["a", "b"]}
    assert 'scope="a b"' in dict(answer.headers)["www-authenticate"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda _f: ["not", "a", "dict"], "returned list, not a dict"),
        (lambda _f: {"when": object()}, "TypeError"),
        (lambda _f: {"n": float("nan")}, "ValueError"),
        (lambda f: {"x": 1 / 0} if f.reason is Reason.REVOKED else {}, "'revoked'"),
    ],
)
def test_a_broken_error_body_fails_at_start_up(body: Any, message: str) -> None:
    with pytest.raises(ValueError, match="error_body failed") as refused:
        Renderer(error_body=body)
    assert message in str(refused.value)


def test_error_body_that_is_not_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="error_body must be a callable"):
        Renderer(error_body={"code": "x"})  # type: ignore[arg-type]


def test_error_body_failing_later_falls_back_to_the_library_document() -> None:
    """A custom description at request time: a failing envelope never becomes a 500."""

    def body(failure: AuthFailure) -> dict[str, object]:
        if failure.description == "boom":
            raise RuntimeError("application bug")
        return {"code": failure.reason.value}

    answer = Renderer(error_body=body).render(AuthFailure(Reason.REVOKED, "boom"))
    assert answer.status == 401
    assert json.loads(answer.body)["reason"] == "revoked"
    assert dict(answer.headers)["content-length"] == str(len(answer.body))


def test_problem_document_is_the_default_body() -> None:
    failure = AuthFailure(Reason.EXPIRED)
    answer = Renderer(problem_type_base="https://e.example/errors/").render(failure)
    assert json.loads(answer.body) == problem_document(failure, "https://e.example/errors/")
