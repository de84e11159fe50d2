"""DPoP in every framework: the same proofs, the same answers, byte for byte.

Each application of ``support.frameworks`` (Starlette, FastAPI, Flask, Flask under the
WSGI middleware, Quart, Django, DRF, Litestar) is served by a real server with
``dpop="allowed"``; requests-oauth2client (a DPoP client we did not write) makes the
proofs. Every adapter must accept the valid DPoP request (so it hands the guard the
method, scheme, host and path the proof signs) and send the same refusals.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

import pytest
import requests
from requests_oauth2client import DPoPKey, DPoPToken

import support.frameworks
from support.servers import make_verifier, run_uvicorn, run_waitress
from support.tokens import claims, mint

if TYPE_CHECKING:
    from types import ModuleType

ALGS = "ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA"
FRAMEWORKS = [
    importlib.import_module(f"support.frameworks.{m.name}")
    for m in sorted(pkgutil.iter_modules(support.frameworks.__path__), key=lambda m: m.name)
]
#: What every framework must answer, identically.
SEEN: dict[str, dict[str, tuple[int, str | None]]] = {}


@pytest.mark.parametrize("module", FRAMEWORKS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_dpop_through_every_framework(module: ModuleType) -> None:
    """A valid DPoP request passes; a replay, a bound token as Bearer and no token are
    refused with the same status and challenge in every framework."""
    app = module.build(make_verifier(), dpop="allowed")
    serve = run_uvicorn if module.SERVER == "asgi" else run_waitress
    key = DPoPKey.generate(alg="ES256")
    token = mint(payload=claims(cnf={"jkt": key.dpop_jkt}))
    auth = DPoPToken(token, _dpop_key=key)
    with serve(app) as base, requests.Session() as session:
        url = f"{base}/protected"
        accepted = session.get(url, auth=auth, timeout=10)
        assert accepted.status_code == 200, (accepted.status_code, accepted.headers)
        assert accepted.json()["sub"] == "user-1"
        prepared = auth(requests.Request("GET", url).prepare())
        headers = {
            "Authorization": prepared.headers["Authorization"],
            "DPoP": prepared.headers["DPoP"],
        }
        first = session.get(url, headers=headers, timeout=10)
        replay = session.get(url, headers=headers, timeout=10)
        bearer = session.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        missing = session.get(url, timeout=10)
    assert first.status_code == 200
    answers = {
        name: (answer.status_code, answer.headers.get("WWW-Authenticate"))
        for name, answer in (("replay", replay), ("bearer", bearer), ("missing", missing))
    }
    assert answers["missing"] == (401, f'Bearer realm="orders", DPoP realm="orders", algs="{ALGS}"')
    assert answers["replay"][1] is not None
    assert answers["replay"][1].startswith('DPoP realm="orders", error="invalid_dpop_proof"')
    assert answers["bearer"][1] is not None
    assert answers["bearer"][1].startswith('Bearer realm="orders", error="invalid_token"')
    for other in SEEN.values():
        assert other == answers
    SEEN[module.__name__] = answers
