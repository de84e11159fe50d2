"""Every framework, every failure: the support table of docs/frameworks.md, tested.

Each module of ``support.frameworks`` builds one application with its framework's
documented set-up and the same routes:

================  ===========================================================
route             what the view does
================  ===========================================================
``/protected``    needs a token; answers ``{"sub": ...}``
``/raise``        needs a token; raises ``AuthFailure(Reason.REVOKED)``
``/raise-pyjwt``  needs a token; raises ``jwt.ExpiredSignatureError``
``/bare-401``     needs a token; returns its own 401 without a challenge
``/optional``     a token is optional; answers ``{"sub": ... or None}``
``/scopes-any``   needs ``orders:read`` or ``orders:admin``
``/scopes-all``   needs ``orders:read`` and ``orders:write``
================  ===========================================================

Each application is served by a real server (uvicorn or waitress) and every answer of
the library is compared, status, challenge, content type, cache control and body bytes,
with what a plain ``InvalidTokenMiddleware`` sends for the same failure: one request
policy, the same bytes everywhere. A framework declares the columns it cannot do in
``UNSUPPORTED`` with the reason; the table in docs/frameworks.md must say exactly that,
so a "yes" in the docs is always a test that ran.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

import support.frameworks
from invalidtoken_mw import AuthFailure, Guard, InvalidTokenMiddleware, Reason
from invalidtoken_mw.classify import failure_from_pyjwt
from support.servers import client, make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

    import httpx
    from starlette.requests import Request

REPO = Path(__file__).resolve().parents[1]
REALM = "orders"
#: The columns of the support table, in order, with their headings.
COLUMNS = {
    "refusal": "middleware refusal",
    "raise": "app-raised `AuthFailure`",
    "bare_401": "bare 401 from the app",
    "optional": "optional route",
    "scopes": "scopes any/all",
    "custom_body": "custom body",
}
#: The answer headers that must be the library's, byte for byte.
COMPARED = ("www-authenticate", "content-type", "cache-control", "content-length")


def _modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(support.frameworks.__path__))
    return [importlib.import_module(f"support.frameworks.{name}") for name in names]


FRAMEWORKS = _modules()


def envelope(failure: AuthFailure) -> dict[str, object]:
    """The custom error body every framework is configured with in the last column."""
    return {"error": {"code": failure.reason.value, "status": failure.reason.status}}


def token(**overrides: Any) -> str:
    """A token for the matrix verifier (HS256, the test issuer and audience)."""
    return mint(payload=claims(**overrides))


def bearer(value: str) -> dict[str, str]:
    """An ``Authorization`` header."""
    return {"Authorization": f"Bearer {value}"}


@dataclass(frozen=True)
class Sent:
    """What matters of an answer: status, the library's headers, the body bytes."""

    status: int
    headers: tuple[tuple[str, str | None], ...]
    body: bytes

    @classmethod
    def of(cls, response: httpx.Response) -> Sent:
        """The parts of a real response that the library is responsible for."""
        return cls(
            response.status_code,
            tuple((name, response.headers.get(name)) for name in COMPARED),
            response.content,
        )


# -- the reference: a plain InvalidTokenMiddleware ---------------------------------------


async def _reference_view(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


@pytest.fixture(scope="module")
def reference() -> Iterator[httpx.Client]:
    """A plain Starlette app behind ``InvalidTokenMiddleware``, served by uvicorn."""
    app = Starlette(routes=[Route("/protected", _reference_view)])
    guarded = InvalidTokenMiddleware(app, verifier=make_verifier(), realm=REALM)
    with run_uvicorn(guarded) as base, client(base) as http:
        yield http


def rendered(failure: AuthFailure) -> Sent:
    """The answer the one renderer gives ``failure`` (what every adapter must send)."""
    answer = Guard(verifier=make_verifier(), realm=REALM).renderer.render(failure)
    headers = dict(answer.headers)
    return Sent(answer.status, tuple((n, headers.get(n)) for n in COMPARED), answer.body)


# -- serving each framework --------------------------------------------------------------


def _serve(module: ModuleType, **options: Any) -> Any:
    app = module.build(make_verifier(), **options)
    return run_uvicorn(app) if module.SERVER == "asgi" else run_waitress(app)


@pytest.fixture(scope="module", params=FRAMEWORKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def framework(request: pytest.FixtureRequest) -> Iterator[tuple[ModuleType, httpx.Client]]:
    """Each framework's application, served for real."""
    module: ModuleType = request.param
    with _serve(module) as base, client(base) as http:
        yield module, http


def supported(module: ModuleType, column: str) -> None:
    """Fail loudly if a test runs a column the framework says it cannot do."""
    reason = module.UNSUPPORTED.get(column)
    if reason is not None:
        pytest.fail(f"{module.NAME} does not support {column!r}: {reason}")


def _unsupported(module: ModuleType, column: str) -> bool:
    return column in module.UNSUPPORTED


# -- the columns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("credentials", "reason"),
    [
        (None, "missing_token"),
        ("expired", "expired"),
        ("wrong-audience", "wrong_audience"),
        ("garbled", "malformed_token"),
    ],
)
def test_middleware_refusal_is_the_same_bytes(
    framework: tuple[ModuleType, httpx.Client],
    reference: httpx.Client,
    credentials: str | None,
    reason: str,
) -> None:
    _module, http = framework
    headers = {
        None: {},
        "expired": bearer(token(iat=1, exp=2)),
        "wrong-audience": bearer(token(aud="https://other.example")),
        "garbled": bearer("eyJhbGciOi.not-a-token"),
    }[credentials]
    expected = Sent.of(reference.get("/protected", headers=headers))
    assert json.loads(expected.body)["reason"] == reason
    assert Sent.of(http.get("/protected", headers=headers)) == expected
    assert http.get("/protected", headers=bearer(token())).json() == {"sub": "user-1"}


@pytest.mark.parametrize(
    ("path", "failure"),
    [
        ("/raise", AuthFailure(Reason.REVOKED)),
        ("/raise-pyjwt", failure_from_pyjwt(jwt.ExpiredSignatureError("expired"))),
    ],
)
def test_app_raised_failure_is_answered_like_the_middlewares(
    framework: tuple[ModuleType, httpx.Client], path: str, failure: AuthFailure
) -> None:
    module, http = framework
    if _unsupported(module, "raise"):
        # What happens instead is documented; here it is at least never a success.
        assert http.get(path, headers=bearer(token())).status_code >= 400
        return
    assert Sent.of(http.get(path, headers=bearer(token()))) == rendered(failure)


def test_bare_401_from_the_app_gets_the_challenge(
    framework: tuple[ModuleType, httpx.Client],
) -> None:
    module, http = framework
    supported(module, "bare_401")
    answer = http.get("/bare-401", headers=bearer(token()))
    assert answer.status_code == 401
    assert answer.headers.get_list("www-authenticate") == [f'Bearer realm="{REALM}"']


def test_optional_route(framework: tuple[ModuleType, httpx.Client]) -> None:
    module, http = framework
    if _unsupported(module, "optional"):
        assert http.get("/optional").status_code == 401
        return
    assert http.get("/optional").json() == {"sub": None}
    assert http.get("/optional", headers=bearer(token(sub="alice"))).json() == {"sub": "alice"}
    expired = bearer(token(iat=1, exp=2))
    assert Sent.of(http.get("/optional", headers=expired)) == Sent.of(
        http.get("/protected", headers=expired)
    )
    assert http.get("/optional", headers=expired).json() != {"sub": None}


@pytest.mark.parametrize(
    ("granted", "any_status", "all_status"),
    [
        ("orders:read", 200, 403),
        ("orders:admin", 200, 403),
        ("orders:read orders:write", 200, 200),
        ("profile", 403, 403),
        (None, 403, 403),
    ],
)
def test_scopes_any_and_all(
    framework: tuple[ModuleType, httpx.Client],
    granted: str | None,
    any_status: int,
    all_status: int,
) -> None:
    module, http = framework
    supported(module, "scopes")
    headers = bearer(token(scope=granted))
    any_answer = http.get("/scopes-any", headers=headers)
    all_answer = http.get("/scopes-all", headers=headers)
    assert (any_answer.status_code, all_answer.status_code) == (any_status, all_status)
    if any_status == 403:
        expected = AuthFailure(
            Reason.INSUFFICIENT_SCOPE,
            "The access token grants none of the scopes this request accepts; any one of"
            " them will do.",
            scopes=["orders:read", "orders:admin"],
        )
        assert Sent.of(any_answer) == rendered(expected)
    if all_status == 403:
        expected = AuthFailure(Reason.INSUFFICIENT_SCOPE, scopes=["orders:read", "orders:write"])
        assert Sent.of(all_answer) == rendered(expected)


def test_custom_body(framework: tuple[ModuleType, httpx.Client], reference: httpx.Client) -> None:
    module, _ = framework
    supported(module, "custom_body")
    expired = bearer(token(iat=1, exp=2))
    library = Sent.of(reference.get("/protected", headers=expired))
    with _serve(module, error_body=envelope) as base, client(base) as http:
        for path, headers in (("/protected", expired), ("/raise", bearer(token()))):
            # problem+json asked for first: a custom envelope is application/json all the
            # same (and DRF answers 406 to an Accept that offers nothing else).
            accept = "application/problem+json, application/json;q=0.5"
            answer = http.get(path, headers={**headers, "Accept": accept})
            code = "expired" if path == "/protected" else "revoked"
            assert (
                answer.content
                == json.dumps(
                    {"error": {"code": code, "status": 401}}, separators=(",", ":")
                ).encode()
            )
            assert answer.status_code == 401
            assert answer.headers["content-type"] == "application/json"
            assert answer.headers["content-length"] == str(len(answer.content))
            assert answer.headers["cache-control"] == "no-store"
            if path == "/protected":
                assert (
                    answer.headers["www-authenticate"] == dict(library.headers)["www-authenticate"]
                )


# -- the table in the docs ---------------------------------------------------------------


def _table() -> dict[str, dict[str, str]]:
    text = (REPO / "docs" / "frameworks.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    heading = [cell.strip() for cell in rows[0].strip("|").split("|")]
    table: dict[str, dict[str, str]] = {}
    for line in rows[1:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set(cells[0]) <= set("-: "):
            continue
        table[cells[0]] = dict(zip(heading[1:], cells[1:], strict=True))
    return table


def test_docs_table_says_what_the_matrix_tests() -> None:
    """One row per framework; "yes" exactly where the matrix ran the column."""
    table = _table()
    assert sorted(table) == sorted(m.NAME for m in FRAMEWORKS)
    for module in FRAMEWORKS:
        row = table[module.NAME]
        assert list(row) == list(COLUMNS.values()), module.NAME
        for column, heading in COLUMNS.items():
            cell = row[heading]
            if column in module.UNSUPPORTED:
                assert re.match(r"no\b", cell), (module.NAME, heading, cell)
            else:
                assert re.match(r"yes\b", cell), (module.NAME, heading, cell)
