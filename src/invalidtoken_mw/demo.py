"""``invalidtoken-mw demo``: the FastAPI example, one request per failure, one table.

Starts ``examples/fastapi/main.py`` on a free loopback port with a freshly generated
ES256 key, sends one request per kind of failure (and one that succeeds), and prints
what each got back and the ``auth_rejected`` events it caused; ``--serve`` keeps the
server running and prints curl commands with ready-made tokens instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invalidtoken_mw._term import Style
from invalidtoken_mw.mint import mint_token

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator
    from types import ModuleType

__all__ = ["add_demo_parser", "demo_requests"]

ISSUER = "https://id.demo.invalidtoken-mw.test/"
AUDIENCE = "api://orders"
_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "main.py"


def _load_example() -> ModuleType:
    if not _EXAMPLE.is_file():
        raise FileNotFoundError(
            "the demo runs examples/fastapi/main.py from a source checkout of invalidtoken-mw;"
            f" it was not found at {_EXAMPLE}"
        )
    spec = importlib.util.spec_from_file_location("invalidtoken_mw_example_app", _EXAMPLE)
    assert spec is not None  # noqa: S101 - a .py file path always gives a spec
    assert spec.loader is not None  # noqa: S101
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def demo_requests(private_key: Any, other_key: Any) -> list[tuple[str, str, dict[str, str]]]:  # noqa: ANN401
    """The demo's requests: ``(label, method, headers)``; all go to ``/orders``."""
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "scope": "orders:read"}

    def token(defect: str | None = None, **claims: Any) -> str:  # noqa: ANN401
        return mint_token(private_key, algorithm="ES256", claims={**base, **claims}, defect=defect)

    def bearer(value: str) -> dict[str, str]:
        return {"authorization": f"Bearer {value}"}

    forged = mint_token(other_key, algorithm="ES256", claims=base)
    return [
        ("valid token", "GET", bearer(token())),
        ("no token", "GET", {}),
        ("Basic credentials", "GET", {"authorization": "Basic dXNlcjpwYXNz"}),
        ("'Bearer' and nothing", "GET", {"authorization": "Bearer"}),
        ("token in quotes", "GET", bearer(token("quoted"))),
        ("truncated token", "GET", bearer(token("truncated"))),
        ("not a JWT", "GET", bearer("opaque-garbage")),
        ("alg none", "GET", bearer(token("alg-none"))),
        ("signed by another key", "GET", bearer(forged)),
        ("expired", "GET", bearer(token("expired"))),
        ("not yet valid", "GET", bearer(token("not-yet-valid"))),
        ("wrong issuer", "GET", bearer(token("wrong-issuer"))),
        ("wrong audience", "GET", bearer(token("wrong-audience"))),
        ("no exp claim", "GET", bearer(token("missing-exp"))),
        ("read token, write route", "POST", bearer(token())),
        ("revoked", "GET", bearer(token(jti="revoked-1"))),
    ]


@contextlib.contextmanager
def _serving(app: Any) -> Iterator[str]:  # noqa: ANN401 - an ASGI app
    """Run ``app`` under uvicorn on a free loopback port; yield its base URL."""
    import uvicorn  # noqa: PLC0415 - only the demo needs a server

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def _run(args: argparse.Namespace) -> int:
    import httpx  # noqa: PLC0415 - only the demo sends requests
    import structlog  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415

    from invalidtoken_mw import JWTVerifier, MemoryRevocationStore  # noqa: PLC0415

    style = Style(sys.stdout)
    err = sys.stderr
    example = _load_example()
    private_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    store = MemoryRevocationStore()
    store.revoke(jti="revoked-1", issuer=ISSUER, expires_at=time.time() + 3600)
    verifier = JWTVerifier(
        key=public_pem, algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE, revocation=store
    )
    requests = demo_requests(private_key, ec.generate_private_key(ec.SECP256R1()))
    with _serving(example.create_app(verifier)) as base_url:
        if args.serve:
            return _serve(base_url, requests, style)
        print(style.dim(f"example app on {base_url}, key generated, sending requests"), file=err)
        with structlog.testing.capture_logs() as events, httpx.Client(base_url=base_url) as client:
            rows = []
            for label, method, headers in requests:
                response = client.request(method, "/orders", headers=headers)
                body = response.json() if response.content else {}
                rows.append(
                    (
                        label,
                        response.status_code,
                        body.get("reason", "-"),
                        response.headers.get("www-authenticate", "-"),
                    )
                )
    _print_table(rows, style)
    rejected = [e for e in events if e.get("event") == "auth_rejected"]
    print(f"\n{style.bold(f'{len(rejected)} auth_rejected log events')} (one per refusal):")
    for event in rejected:
        shown = ("reason", "status", "path", "sub", "expired_for_s")
        fields = {k: event[k] for k in shown if k in event}
        print("  " + json.dumps(fields))
    return 0


def _print_table(rows: list[tuple[str, int, str, str]], style: Style) -> None:
    print(style.bold(f"{'request':<26}{'status':<8}{'reason':<22}WWW-Authenticate"))
    for label, status, reason, challenge in rows:
        mark = style.ok(str(status)) if status < 400 else style.bad(str(status))  # noqa: PLR2004
        pad = " " * (8 - len(str(status)))
        shown = challenge if len(challenge) <= 110 else challenge[:107] + "..."  # noqa: PLR2004
        print(f"{label:<26}{mark}{pad}{reason:<22}{shown}")


def _serve(base_url: str, requests: list[tuple[str, str, dict[str, str]]], style: Style) -> int:
    print(style.bold(f"Serving the example on {base_url} (Ctrl-C to stop)\n"))
    for label, method, headers in requests:
        auth = headers.get("authorization")
        header = f" -H 'Authorization: {auth}'" if auth else ""
        print(f"# {label}\ncurl -i -X {method}{header} {base_url}/orders\n")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0


def add_demo_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Register ``demo`` on the CLI's subparsers."""
    demo = sub.add_parser("demo", help="run the FastAPI example and show every failure")
    demo.add_argument(
        "--serve", action="store_true", help="keep serving and print curl commands to try"
    )
    demo.set_defaults(handler=_run)
