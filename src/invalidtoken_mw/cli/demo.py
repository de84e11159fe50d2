"""``invalidtoken-mw demo``: a FastAPI orders API, one request per failure, one table.

Starts the orders API of ``examples/fastapi`` (built in code by
:mod:`invalidtoken_mw.cli.demo_app`, so it runs from an installed wheel) on a free
loopback port with a freshly generated ES256 key, published as a JWKS on the same
server, sends one request per :class:`~invalidtoken_mw.Reason` (and one that
succeeds), and prints what each got back and the ``auth_rejected`` events it caused;
``--serve`` keeps the server running and prints curl commands with ready-made tokens
instead. The two outages (the JWKS endpoint and the revocation store) are staged: the
first request meets a JWKS endpoint answering 503, and one subject's revocation check
fails as an unreachable Redis does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import shutil
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from invalidtoken_mw.any_token import AnyTokenVerifier
from invalidtoken_mw.cli._term import EXIT_USAGE, EXIT_VALID, Style
from invalidtoken_mw.dpop import DPoPVerifier, MemoryReplayCache, jwk_thumbprint, replay_key
from invalidtoken_mw.introspection import IntrospectionVerifier
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import MemoryRevocationStore
from invalidtoken_mw.testing import mint_token
from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Mapping

__all__ = ["DemoRequest", "add_parser", "demo_requests"]

ISSUER = "https://id.demo.invalidtoken-mw.test/"
AUDIENCE = "api://orders"
KEY_ID = "demo-2026"
JWKS_PATH = "/.well-known/jwks.json"
OUTAGE_SUBJECT = "user-during-store-outage"
INTROSPECTION_PATH = "/oauth2/introspect"
OPAQUE_PREFIX = "demo-opaque-"  # the demo's opaque tokens (any non-JWT goes to introspection)
_JWKS_COOLDOWN = 0.1  # short, so the demo's JWKS outage ends at once
_FIXED_COLUMNS = 26 + 8 + 34  # request, status, reason (insufficient_user_authentication fits)
DPOP_NONCE_SECRET = b"invalidtoken-mw demo nonce secret"
DPOP_REPLAYED_JTI = "demo-proof-seen-before"
DPOP_STORE_DOWN_JTI = "demo-proof-while-the-store-is-down"


class DemoRequest(NamedTuple):
    """One request of the demo: a label, the method and headers; all go to ``/orders``."""

    label: str
    method: str
    headers: dict[str, str]
    jwks_down: bool = False
    introspection_down: bool = False


def demo_requests(
    private_key: Any,  # noqa: ANN401 - a cryptography private key
    other_key: Any,  # noqa: ANN401
    *,
    ttl: int = 300,
    base_url: str = "http://127.0.0.1",
    client_key: Any = None,  # noqa: ANN401 - the DPoP client's private key
) -> list[DemoRequest]:
    """The demo's requests, one per :class:`~invalidtoken_mw.Reason` plus valid ones."""
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "scope": "orders:read",
        "client_id": "orders-web",
    }
    header = {"kid": KEY_ID, "typ": "at+jwt"}

    def token(defect: str | None = None, key: Any = private_key, **claims: Any) -> str:  # noqa: ANN401
        return mint_token(
            key,
            algorithm="ES256",
            claims={**base, **claims},
            headers=dict(header),
            defect=defect,
            ttl=ttl,
        )

    def bearer(value: str) -> dict[str, str]:
        return {"authorization": f"Bearer {value}"}

    unknown_kid = mint_token(
        other_key, algorithm="ES256", claims=base, headers={**header, "kid": "retired-2025"}
    )
    # DPoP: the client's own key (not the issuer's), tokens bound to it, proofs per request.
    import jwt  # noqa: PLC0415 - as the key types below, only when the demo runs
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

    client_key = client_key or ec.generate_private_key(ec.SECP256R1())
    client_jwk = ECAlgorithm.to_jwk(client_key.public_key(), as_dict=True)
    bound = token(cnf={"jkt": jwk_thumbprint(client_jwk)})
    nonce = DPoPVerifier(nonce_secret=DPOP_NONCE_SECRET).nonce()

    def dpop(
        value: str, method: str = "GET", path: str = "/orders", jti: str = "", **more: object
    ) -> dict[str, str]:
        claims: dict[str, object] = {"jti": jti or secrets.token_urlsafe(12), "htm": method}
        claims.update(htu=base_url + path, iat=int(time.time()), nonce=nonce)
        claims["ath"] = _b64url(hashlib.sha256(value.encode()).digest())
        claims.update(more)
        headers = {"typ": "dpop+jwt", "jwk": client_jwk}
        proof = jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, client_key, "ES256", headers
        )
        return {"authorization": f"DPoP {value}", "dpop": proof}

    unbound_key = ec.generate_private_key(ec.SECP256R1())
    other_bound = token(
        cnf={"jkt": jwk_thumbprint(ECAlgorithm.to_jwk(unbound_key.public_key(), as_dict=True))}
    )
    return [
        DemoRequest("JWKS endpoint down", "GET", bearer(token()), jwks_down=True),
        DemoRequest("valid token", "GET", bearer(token())),
        DemoRequest("no token", "GET", {}),
        DemoRequest("Basic credentials", "GET", {"authorization": "Basic dXNlcjpwYXNz"}),
        DemoRequest("'Bearer' and nothing", "GET", {"authorization": "Bearer"}),
        DemoRequest("token in quotes", "GET", bearer(token("quoted"))),
        DemoRequest("truncated token", "GET", bearer(token("truncated"))),
        DemoRequest("three parts, not JSON", "GET", bearer("not.a.jwt")),
        DemoRequest("alg none", "GET", bearer(token("alg-none"))),
        DemoRequest("unknown kid", "GET", bearer(unknown_kid)),
        DemoRequest("signed by another key", "GET", bearer(token(key=other_key))),
        DemoRequest("expired", "GET", bearer(token("expired"))),
        DemoRequest("not yet valid", "GET", bearer(token("not-yet-valid"))),
        DemoRequest("wrong issuer", "GET", bearer(token("wrong-issuer"))),
        DemoRequest("wrong audience", "GET", bearer(token("wrong-audience"))),
        DemoRequest("ID token (typ JWT)", "GET", bearer(token("wrong-type"))),
        DemoRequest("no exp claim", "GET", bearer(token("missing-exp"))),
        DemoRequest("another app's token", "GET", bearer(token(client_id="other-app"))),
        DemoRequest("read token, write route", "POST", bearer(token())),
        DemoRequest("no admin role", "DELETE", bearer(token())),
        DemoRequest("revoked", "GET", bearer(token(jti="revoked-1"))),
        DemoRequest("revocation store down", "GET", bearer(token(sub=OUTAGE_SUBJECT))),
        DemoRequest("GitHub key pasted", "GET", bearer("ghp_" + "Demo0" * 7 + "X")),
        DemoRequest(
            "opaque token, not active", "GET", bearer(f"{OPAQUE_PREFIX}expired-or-revoked")
        ),
        DemoRequest(
            "introspection down",
            "GET",
            bearer(f"{OPAQUE_PREFIX}while-the-endpoint-is-down"),
            introspection_down=True,
        ),
        # PUT /orders needs a multi-factor login (RFC 9470 step-up); this one used a password.
        DemoRequest("password login, MFA route", "PUT", bearer(token(acr="urn:example:pwd"))),
        DemoRequest("DPoP proof, other URL", "GET", dpop(bound, path="/admin")),
        DemoRequest("DPoP proof replayed", "GET", dpop(bound, jti=DPOP_REPLAYED_JTI)),
        DemoRequest("DPoP proof without nonce", "GET", dpop(bound, nonce=None)),
        DemoRequest("DPoP token of another key", "GET", dpop(other_bound)),
        DemoRequest("DPoP token sent as Bearer", "GET", bearer(bound)),
        DemoRequest("Bearer on DPoP-only route", "PATCH", bearer(token())),
        DemoRequest("DPoP replay cache down", "GET", dpop(bound, jti=DPOP_STORE_DOWN_JTI)),
    ]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _DemoReplayCache(MemoryReplayCache):
    """A replay cache that has "seen" one proof already and is "down" for another.

    Staged like the revocation outage: the demo shows ``dpop_replayed`` and
    ``dpop_replay_unavailable`` without sending a proof twice or stopping a Redis.
    """

    def remember(self, key: str, ttl: int) -> bool:
        """Answer as a real cache would for the two staged proofs."""
        if key in self.staged:
            if self.staged[key]:
                raise ConnectionError("the demo's replay cache is down")
            return False
        return super().remember(key, ttl)

    def __init__(self, client_key: Any) -> None:  # noqa: ANN401 - a cryptography key
        """Stage the two proofs of ``client_key``: one seen before, one meeting an outage."""
        from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

        super().__init__()
        jkt = jwk_thumbprint(ECAlgorithm.to_jwk(client_key.public_key(), as_dict=True))
        self.staged = {
            replay_key(jkt, DPOP_REPLAYED_JTI): False,
            replay_key(jkt, DPOP_STORE_DOWN_JTI): True,
        }


class _DemoRevocationStore(MemoryRevocationStore):
    """A memory store that is "unreachable" for one subject.

    It answers as :class:`~invalidtoken_mw.RedisRevocationStore` does when Redis is
    down and the store fails closed, so the demo can show ``revocation_unavailable``
    without stopping a real Redis.
    """

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Fail closed for :data:`OUTAGE_SUBJECT`; otherwise check the memory store."""
        if claims.get("sub") == OUTAGE_SUBJECT:
            raise AuthFailure(Reason.REVOCATION_UNAVAILABLE)
        return super().is_revoked(claims)


class _JWKSEndpoint:
    """Serves the demo key set at :data:`JWKS_PATH` in front of the orders app."""

    def __init__(self, app: Any, jwks: dict[str, Any]) -> None:  # noqa: ANN401 - an ASGI app
        self.app = app
        self.body = json.dumps(jwks).encode()
        self.down = False
        self.introspection_down = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] == "http" and scope["path"] == INTROSPECTION_PATH:
            # The demo's authorization server knows no opaque token: each is inactive.
            down = self.introspection_down
            status, body = (503, b"{}") if down else (200, b'{"active": false}')
        elif scope["type"] != "http" or scope["path"] != JWKS_PATH:
            await self.app(scope, receive, send)
            return
        else:
            status, body = (503, b"{}") if self.down else (200, self.body)
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"max-age=300")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _loopback_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only disables Nagle (TCP_NODELAY) on sockets whose
    # proto says TCP, and without it every keep-alive response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.contextmanager
def _serving(app: Any, sock: socket.socket) -> Iterator[None]:  # noqa: ANN401 - an ASGI app
    """Run ``app`` under uvicorn on the bound ``sock`` until the block ends."""
    import uvicorn  # noqa: PLC0415 - only the demo needs a server

    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def _run(args: argparse.Namespace) -> int:
    import structlog  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

    try:
        import httpx  # noqa: PLC0415 - only the demo sends requests
        import uvicorn  # noqa: F401, PLC0415 - only the demo serves

        from invalidtoken_mw.cli.demo_app import create_app  # noqa: PLC0415 - needs FastAPI
    except ImportError as missing:
        print(
            f"invalidtoken-mw: the demo needs {missing.name or 'its extra'}:"
            " pip install 'invalidtoken-mw[demo]'",
            file=sys.stderr,
        )
        return EXIT_USAGE

    style = Style(sys.stdout)
    err = Style(sys.stderr)
    private_key = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True), "kid": KEY_ID}
    jwk.update(use="sig", alg="ES256")
    sock = _loopback_socket()
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = _DemoRevocationStore()
    store.revoke(jti="revoked-1", issuer=ISSUER, expires_at=time.time() + 7200)
    verifier = JWTVerifier(
        jwks_url=base_url + JWKS_PATH,
        algorithms=["ES256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        token_type="at+jwt",  # noqa: S106 - a JOSE typ, not a password
        claim_rules={"client_id": ["orders-web"]},
        revocation=store,
        jwks_cooldown=_JWKS_COOLDOWN,
    )
    opaque = IntrospectionVerifier(
        base_url + INTROSPECTION_PATH,
        client_id="orders-api",
        client_secret="demo-secret",  # noqa: S106 - the demo's own loopback endpoint
        inactive_ttl=0,
    )
    client_key = ec.generate_private_key(ec.SECP256R1())
    dpop_options = {
        "dpop": "allowed",
        "dpop_nonce_secret": DPOP_NONCE_SECRET,
        "dpop_replay_cache": _DemoReplayCache(client_key),
    }
    api = create_app(AnyTokenVerifier(jwt=verifier, opaque=opaque), **dpop_options)  # type: ignore[arg-type]
    app = _JWKSEndpoint(api, {"keys": [jwk]})
    other_key = ec.generate_private_key(ec.SECP256R1())
    requests = demo_requests(
        private_key,
        other_key,
        ttl=3600 if args.serve else 300,
        base_url=base_url,
        client_key=client_key,
    )
    with _serving(app, sock):
        if args.serve:
            return _serve(base_url, requests, style)
        print(
            err.dim(f"orders API on {base_url}, key generated, sending requests"), file=sys.stderr
        )
        rows = []
        with structlog.testing.capture_logs() as events, httpx.Client(base_url=base_url) as client:
            for number, request in enumerate(requests, 1):
                _progress(number, len(requests))
                app.down = request.jwks_down
                app.introspection_down = request.introspection_down
                response = client.request(request.method, "/orders", headers=request.headers)
                if request.jwks_down:
                    app.down = False
                    time.sleep(_JWKS_COOLDOWN * 1.5)  # let the cool-down pass: keys are back
                body = response.json() if response.content else {}
                rows.append(
                    (
                        request.label,
                        response.status_code,
                        body.get("reason", "-"),
                        _challenge_column(response.headers),
                    )
                )
        _progress(0, 0)
    _print_table(rows, style)
    rejected = [e for e in events if e.get("event") == "auth_rejected"]
    print(f"\n{style.bold(f'{len(rejected)} auth_rejected log events')} (one per refusal):")
    for event in rejected:
        shown = ("reason", "status", "path", "token_kind", "sub", "expired_for_s", "missing_scopes")
        fields = {k: event[k] for k in shown if k in event}
        print("  " + json.dumps(fields))
    others = [e.get("event") for e in events if e.get("event") != "auth_rejected"]
    if others:
        print(f"\n{style.bold('other log events')}: {', '.join(sorted(set(map(str, others))))}")
    return EXIT_VALID


def _challenge_column(headers: Mapping[str, str]) -> str:
    """The challenge; a 503 has none, and says when to retry instead."""
    if "www-authenticate" in headers:
        return headers["www-authenticate"]
    if "retry-after" in headers:
        return f"(none) Retry-After: {headers['retry-after']}"
    return "-"


def _progress(number: int, total: int) -> None:
    """A one-line progress counter on a terminal; nothing when stderr is piped."""
    if not sys.stderr.isatty():
        return
    sys.stderr.write(f"\r  request {number}/{total}" if total else "\r\x1b[K")
    sys.stderr.flush()


def _print_table(rows: list[tuple[str, int, str, str]], style: Style) -> None:
    # The challenge column takes what the terminal has left (160 columns when piped).
    room = max(shutil.get_terminal_size((160, 24)).columns - _FIXED_COLUMNS - 1, 20)
    print(style.bold(f"{'request':<26}{'status':<8}{'reason':<34}WWW-Authenticate"))
    for label, status, reason, challenge in rows:
        mark = style.ok(str(status)) if status < 400 else style.bad(str(status))  # noqa: PLR2004
        pad = " " * (8 - len(str(status)))
        shown = challenge if len(challenge) <= room else challenge[: room - 3] + "..."
        print(f"{label:<26}{mark}{pad}{reason:<34}{shown}")


def _serve(base_url: str, requests: list[DemoRequest], style: Style) -> int:
    print(style.bold(f"Serving the orders API on {base_url} (Ctrl-C to stop)"))
    print(f"Signing keys: {base_url}{JWKS_PATH}; tokens below are valid for an hour.\n")
    for request in requests:
        if request.jwks_down:
            continue
        auth = request.headers.get("authorization")
        header = f" -H 'Authorization: {auth}'" if auth else ""
        print(f"# {request.label}\ncurl -i -X {request.method}{header} {base_url}/orders\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return EXIT_VALID


def add_parser(sub: Any) -> None:  # noqa: ANN401 - argparse's private subparsers type
    """Register ``demo`` on the CLI's subparsers."""
    demo = sub.add_parser("demo", help="run a FastAPI orders API and show every failure")
    demo.add_argument(
        "--serve", action="store_true", help="keep serving and print curl commands to try"
    )
    demo.set_defaults(handler=_run)
