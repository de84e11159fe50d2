"""What invalidtoken-mw adds to a request, next to a bare app and the stacks people use today.

Usage::

    python benchmarks/run.py                 # full run (about three minutes), prints tables
    python benchmarks/run.py --write-docs    # full run, rewrites docs/performance.md and .png
    python benchmarks/run.py --smoke         # seconds: checks the harness end to end
    python benchmarks/run.py --json out.json # also keep the raw figures (never committed)

Every scenario is one request shape (a resent or a fresh valid token per algorithm, a
missing, garbage, expired or forged token, a fresh forged or expired one, a resent token
read by the route or checked against Redis) sent in-process to every stack: Starlette,
FastAPI and Flask bare, with invalidtoken-mw, and with the usual alternative; fresh tokens
also to two floors, ``jwt.decode`` alone and PyJWT's bare signature check. Each stack's
figure is the median over interleaved blocks; the overhead is that median minus the bare
app's in the same scenario of the same run. The same run then measures the bytes
invalidtoken-mw keeps per distinct verified or refused token, and checks every figure
against the targets in ``report.py``.

Needs the frameworks and the peers, ``pip install -e . --group bench``; without the peers
the run measures invalidtoken-mw alone (and refuses ``--write-docs``). The Redis scenario
needs ``redis-server`` on ``PATH`` and is skipped with a note without it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import datetime as dt
import functools
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import report
import stacks
import structlog
from jwt.utils import base64url_decode
from stacks import ALGORITHMS, AUDIENCE, DEFAULT_ALG, ISSUER, AlgKeys, make_keys, mint
from timing import (
    Plan,
    Timed,
    asgi_retained,
    asgi_runner,
    asgi_scope,
    asgi_status,
    call_runner,
    interleave,
    wsgi_runner,
    wsgi_status,
)

from invalidtoken_mw import RedisRevocationStore
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES
from invalidtoken_mw.token_kind import detect_token_kind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

    from timing import Runner

OK = 200
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("invalidtoken-mw", "starlette", "fastapi", "flask", "pyjwt", "cryptography")
PEER_PACKAGES = ("flask-jwt-extended", "authlib", "joserfc")
MODES = {  # plan, fresh-token pool per scenario, distinct tokens per memory figure
    "smoke": (
        Plan(blocks=2, block_seconds=0.001, min_calls=2, max_calls=10, warmup_calls=2),
        40,
        40,
    ),
    "full": (
        Plan(blocks=25, block_seconds=0.03, min_calls=30, max_calls=50_000, warmup_calls=100),
        5000,
        2000,
    ),
}


class HarnessError(RuntimeError):
    """A stack answered a status the scenario says it cannot: its numbers would be lies."""


@dataclass(frozen=True)
class Stack:
    """One thing to time: an ASGI or WSGI application, or a floor function."""

    name: str
    label: str
    family: str  # "starlette", "fastapi", "flask" (WSGI) or "floor" (a plain function)
    target: Any
    ours: bool = False
    bare: bool = False
    prepare: Callable[[str], tuple[Any, ...]] | None = None  # a floor's arguments from a token

    def runner(self, authorizations: list[str | None]) -> Runner:
        """The runner that sends this stack the scenario's requests."""
        if self.family == "flask":
            return wsgi_runner(self.target, authorizations)
        if self.family == "floor":
            prepare = self.prepare or (lambda token: (token,))
            tokens = [(a or "").removeprefix("Bearer ") for a in authorizations]
            return call_runner(self.target, [prepare(token) for token in tokens])
        return asgi_runner(self.target, authorizations)

    async def status(self, authorization: str | None) -> int | None:
        """The status this stack answers ``authorization`` with (``None`` for a floor)."""
        if self.family == "flask":
            return wsgi_status(self.target, authorization)
        if self.family == "floor":
            return None
        return await asgi_status(self.target, authorization)


@dataclass
class Scenario:
    """One request shape, the stacks it is sent to, and the status we must answer."""

    name: str
    title: str
    authorizations: list[str | None]
    expect: int
    stacks: list[Stack]
    fresh: bool = False
    signed: bool = True  # whether the tokens' signatures are good (the raw floor's answer)
    closers: list[Callable[[], None]] = field(default_factory=list)


FRAMEWORKS: dict[str, tuple[Callable[[], Any], Callable[..., Any]]] = {
    "starlette": (stacks.bare_starlette, stacks.ours_starlette),
    "fastapi": (stacks.bare_fastapi, stacks.ours_fastapi),
    "flask": (stacks.bare_flask, stacks.ours_flask),
}
PEERS = {  # factory in peers.py -> (label, family)
    "starlette_pyjwt": ("AuthenticationMiddleware + PyJWT", "starlette"),
    "fastapi_httpbearer": ("HTTPBearer + PyJWT", "fastapi"),
    "flask_jwt_extended": ("flask-jwt-extended", "flask"),
    "authlib_flask": ("Authlib ResourceProtector", "flask"),
}


def _stacks(
    keys: AlgKeys, peers: ModuleType | None, families: tuple[str, ...] = tuple(FRAMEWORKS)
) -> list[Stack]:
    """Per framework: the bare app, invalidtoken-mw on it, and the peers on it."""
    found = []
    for family in families:
        bare, ours = FRAMEWORKS[family]
        label = f"bare {report.FRAMEWORKS[family]}"
        found.append(Stack(family, label, family, bare(), bare=True))
        found.append(Stack(f"ours_{family}", "invalidtoken-mw", family, ours(keys), ours=True))
    if peers is not None:
        found += [Stack(n, label, f, getattr(peers, n)(keys)) for n, (label, f) in PEERS.items()]
    return _by_framework(found)


def _by_framework(found: list[Stack]) -> list[Stack]:
    """Group the stacks by framework, keeping their order within one (bare, ours, peers)."""
    order = list(FRAMEWORKS)
    return sorted(found, key=lambda stack: order.index(stack.family))


def _floor(keys: AlgKeys) -> Stack:
    """A direct ``jwt.decode`` of each token: the least any verifying stack can cost."""

    def decode(token: str) -> object:
        return jwt.decode(
            token, keys.verifying, algorithms=[keys.alg], audience=AUDIENCE, issuer=ISSUER
        )

    return Stack("jwt_decode", "jwt.decode alone", "floor", decode)


def _raw_floor(keys: AlgKeys) -> Stack:
    """PyJWT's algorithm object alone, key prepared once: the signature check's own cost.

    The token is split and its signature decoded before timing: only ``verify`` is timed.
    """
    algorithm = jwt.get_algorithm_by_name(keys.alg)
    key = algorithm.prepare_key(keys.verifying)

    def prepare(token: str) -> tuple[Any, ...]:
        signing_input, _, signature = token.rpartition(".")
        return signing_input.encode(), key, base64url_decode(signature)

    label = "raw signature check (PyJWT algorithm verify)"
    return Stack("raw_signature", label, "floor", algorithm.verify, prepare=prepare)


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A throw-away ``redis-server`` on a free loopback port, or ``None`` without one."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as workdir:
        command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", workdir]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        try:
            deadline = time.monotonic() + 10
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), 0.5) as sock,
                ):
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
                if time.monotonic() > deadline:
                    raise HarnessError("redis-server did not answer PING within 10 s")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


def scenarios(
    keys: dict[str, AlgKeys], peers: ModuleType | None, pool: int, redis_url: str | None
) -> list[Scenario]:
    """Every scenario, its stacks built afresh so no cache is shared between scenarios."""
    found = []
    for alg in ALGORITHMS:
        title = f"resent valid {alg} token"
        resent: list[str | None] = [f"Bearer {mint(keys[alg])}"]
        found.append(Scenario(f"valid_{alg.lower()}", title, resent, OK, _stacks(keys[alg], peers)))
    for alg in ALGORITHMS:
        title = f"fresh valid {alg} token on every request"
        tokens: list[str | None] = [f"Bearer {mint(keys[alg])}" for _ in range(pool)]
        fresh = [*_stacks(keys[alg], peers), _floor(keys[alg]), _raw_floor(keys[alg])]
        found.append(Scenario(f"fresh_{alg.lower()}", title, tokens, OK, fresh, fresh=True))
    key = keys[DEFAULT_ALG]
    rejections: dict[str, tuple[str, str | None]] = {
        "missing": ("no Authorization header", None),
        "garbage": ("a bearer value that is no JWT", "Bearer Zm9vYmFyYmF6cXV4LWdhcmJhZ2U"),
        "expired": (f"resent {DEFAULT_ALG} token, expired", f"Bearer {mint(key, age=10_800)}"),
        "forged": (
            f"{DEFAULT_ALG} token signed by another key",
            f"Bearer {mint(key, forged=True)}",
        ),
    }
    for name, (title, authorization) in rejections.items():
        found.append(Scenario(name, title, [authorization], 401, _stacks(key, peers)))
    for kind, title, forged, age in (
        ("forged", "signed by another key", True, 0),
        ("expired", "expired, signature good", False, 10_800),
    ):
        tokens = [f"Bearer {mint(key, forged=forged, age=age)}" for _ in range(pool)]
        refused = [*_stacks(key, None, ("starlette", "flask")), _raw_floor(key)]
        found.append(
            Scenario(
                f"fresh_{kind}_{DEFAULT_ALG.lower()}",
                f"fresh {DEFAULT_ALG} token on every request, {title}",
                tokens,
                401,
                refused,
                fresh=True,
                signed=not forged,
            )
        )
    found.append(_claims_scenario(key))
    found.append(_metrics_scenario(key))
    found.append(_opaque_scenario(key))
    if redis_url is not None:
        found.append(_redis_scenario(key, redis_url))
    return found


def _claims_scenario(keys: AlgKeys) -> Scenario:
    """A resent valid token whose claims the route reads, the way the docs show."""
    found = _stacks(keys, None, ("starlette", "flask"))
    for family, build in (("starlette", stacks.claims_starlette), ("flask", stacks.claims_flask)):
        label = "invalidtoken-mw, the route reads the claims"
        found.append(Stack(f"ours_{family}_claims", label, family, build(keys), ours=True))
    title = f"resent valid {DEFAULT_ALG} token, the route reads the claims"
    authorizations: list[str | None] = [f"Bearer {mint(keys)}"]
    return Scenario(f"claims_{keys.alg.lower()}", title, authorizations, OK, _by_framework(found))


def _metrics_scenario(keys: AlgKeys) -> Scenario:
    """A resent valid token with Prometheus and OpenTelemetry metrics on, beside off."""
    found = _stacks(keys, None, ("starlette", "flask"))
    for family, build in (("starlette", stacks.metrics_starlette), ("flask", stacks.metrics_flask)):
        label = "invalidtoken-mw, Prometheus and OpenTelemetry metrics on"
        found.append(Stack(f"ours_{family}_metrics", label, family, build(keys), ours=True))
    title = f"resent valid {DEFAULT_ALG} token, metrics on"
    authorizations: list[str | None] = [f"Bearer {mint(keys)}"]
    return Scenario(f"metrics_{keys.alg.lower()}", title, authorizations, OK, _by_framework(found))


def _opaque_scenario(keys: AlgKeys) -> Scenario:
    """A resent token answered from the IntrospectionVerifier's cache, beside the JWT path.

    The same token goes to both: a JWT, which the loopback endpoint calls active, so the
    opaque path hashes a longer token than a usual opaque one (a conservative figure).
    Only the harness's first check request reaches the endpoint.
    """
    found = _stacks(keys, None, ("starlette", "flask"))
    endpoint = stacks.IntrospectionEndpoint()
    for family, build in (("starlette", stacks.opaque_starlette), ("flask", stacks.opaque_flask)):
        label = "invalidtoken-mw + IntrospectionVerifier (cached answer)"
        found.append(Stack(f"ours_{family}_opaque", label, family, build(endpoint.url), ours=True))
    title = "resent opaque token, cached introspection answer, beside the cached JWT path"
    authorizations: list[str | None] = [f"Bearer {mint(keys)}"]
    return Scenario(
        "opaque_cached", title, authorizations, OK, _by_framework(found), closers=[endpoint.close]
    )


def _redis_scenario(keys: AlgKeys, url: str) -> Scenario:
    """A resent valid token checked against Redis; the default 1 s local cache answers most."""
    found = _stacks(keys, None, ("starlette", "flask"))
    stores = []
    for family in ("starlette", "flask"):
        store = RedisRevocationStore(url=url)
        app = FRAMEWORKS[family][1](keys, store)
        label = "invalidtoken-mw + RedisRevocationStore"
        found.append(Stack(f"ours_{family}_redis", label, family, app, ours=True))
        stores.append(store)
    title = f"resent valid {DEFAULT_ALG} token, Redis revocation store (local-cache hits)"
    authorizations: list[str | None] = [f"Bearer {mint(keys)}"]
    closers = [store.close for store in stores]
    return Scenario(
        "redis_local_cache", title, authorizations, OK, _by_framework(found), closers=closers
    )


async def _check(scenario: Scenario) -> dict[str, int | None]:
    """Each stack's status for the scenario's request; a wrong answer stops the run."""
    found: dict[str, int | None] = {}
    for stack in scenario.stacks:
        status = found[stack.name] = await stack.status(scenario.authorizations[0])
        if stack.prepare is not None:
            token = (scenario.authorizations[0] or "").removeprefix("Bearer ")
            if stack.target(*stack.prepare(token)) is not scenario.signed:
                raise HarnessError(f"{scenario.name}: {stack.name} disagrees on the signature")
        want = OK if stack.bare else scenario.expect
        if status is None or stack.ours or stack.bare:
            if status not in {None, want}:
                raise HarnessError(f"{scenario.name}: {stack.name} answered {status}, not {want}")
        elif (status == OK) != (scenario.expect == OK):
            raise HarnessError(
                f"{scenario.name}: peer {stack.name} answered {status}; check its setup"
            )
    return found


def summarise(
    scenario: Scenario, timed: list[Timed], statuses: dict[str, int | None]
) -> dict[str, Any]:
    """Medians, overhead over the bare app and the peers' overhead as a multiple of ours."""
    median = {t.name: t.median for t in timed}
    bare = {s.family: median[s.name] for s in scenario.stacks if s.bare}
    ours = {f: median[f"ours_{f}"] - bare[f] for f in bare if f"ours_{f}" in median}
    rows = []
    for stack, entry in zip(scenario.stacks, timed, strict=True):
        overhead = None if stack.bare else entry.median - bare.get(stack.family, 0.0)
        reference = ours.get(stack.family, 0.0)
        peer = not (stack.ours or stack.bare) and overhead is not None and reference > 0
        quartiles = (
            statistics.quantiles(entry.samples, n=4) if len(entry.samples) > 1 else [0.0] * 3
        )
        rows.append(
            {
                "name": stack.name,
                "label": stack.label,
                "family": stack.family,
                "ours": stack.ours,
                "bare": stack.bare,
                "status": statuses[stack.name],
                "median_us": entry.median,
                "p25_us": quartiles[0],
                "p75_us": quartiles[2],
                "overhead_us": overhead,
                "x_bare": entry.median / bare[stack.family] if stack.family in bare else None,
                "x_ours": overhead / reference if peer and overhead is not None else None,
                "calls_per_block": entry.calls,
                "samples_us": entry.samples,
            }
        )
    return {"name": scenario.name, "title": scenario.title, "fresh": scenario.fresh, "stacks": rows}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def _junk(size: int) -> str:
    """Random base64url text of ``size`` characters in three dot-separated segments."""
    text = secrets.token_urlsafe(size)[:size]
    return f"{text[:99]}.{text[100:199]}.{text[200:]}"


async def memory(keys: AlgKeys, count: int) -> list[dict[str, Any]]:
    """Bytes invalidtoken-mw keeps per distinct token, through Starlette and the middleware.

    Each figure gets a fresh application with the default options; a few requests warm it
    up (lazy set-up, the first log event) before ``count`` distinct tokens are traced.
    """
    room = DEFAULT_MAX_TOKEN_BYTES - len("Bearer ")  # the largest token the default allows
    cases: dict[str, tuple[str, int, Callable[[], str]]] = {
        "verified": ("verified token, positive cache", OK, lambda: mint(keys)),
        "forged": ("refused: signed by another key", 401, lambda: mint(keys, forged=True)),
        "forged_8k": (
            "refused: signed by another key, about 8 KB",
            401,
            lambda: mint(keys, forged=True, pad=5_600),
        ),
        "junk": ("refused: junk of the largest size allowed", 401, lambda: _junk(room)),
    }
    warm, found = 5, []
    for name, (title, expect, make) in cases.items():
        tokens = [make() for _ in range(warm + count)]
        if max(map(len, tokens)) > room:
            raise HarnessError(f"memory {name}: a token is longer than the default allows")
        authorizations: list[str | None] = [f"Bearer {token}" for token in tokens]
        app = stacks.ours_starlette(keys)
        if (status := await asgi_status(app, authorizations[0])) != expect:
            raise HarnessError(f"memory {name}: invalidtoken-mw answered {status}, not {expect}")
        await asgi_runner(app, authorizations[1:warm])(0, warm - 1)
        retained = await asgi_retained(app, authorizations[warm:])
        size = statistics.mean(map(len, tokens[warm:]))
        found.append(
            {
                "name": name,
                "title": f"{keys.alg} {title}",
                "token_bytes": round(size),
                "tokens": count,
                "bytes_per_token": retained,
            }
        )
    return found


# Run in a fresh interpreter: the first figure needs a process that never imported
# OpenTelemetry. Each figure is the best of five repeats, in ns per refusal.
_TRACING_PROBE = """
import json, sys, timeit
from invalidtoken_mw import AuthFailure, Reason
from invalidtoken_mw.tracing import annotate_current_span
failure, number = AuthFailure(Reason.EXPIRED), int(sys.argv[1])
def best(call):
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e9
def annotate():
    annotate_current_span(failure, None)
found = {"not_imported": best(annotate)}
import opentelemetry.trace
found["no_sdk"] = best(annotate)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
with TracerProvider(sampler=ALWAYS_OFF).get_tracer("bench").start_as_current_span("GET"):
    found["sampled_out"] = best(annotate)
tracer = TracerProvider().get_tracer("bench")
def span_only():
    with tracer.start_as_current_span("GET"):
        pass
def span_annotated():
    with tracer.start_as_current_span("GET"):
        annotate_current_span(failure, None)
found["recording"] = best(span_annotated) - best(span_only)
print(json.dumps(found))
"""
TRACING_CALLS = {"smoke": 2_000, "full": 200_000}


def tracing_cost(mode: str) -> dict[str, float]:
    """What putting a refusal on the current span costs, tracing off (three ways) and on."""
    completed = subprocess.run(  # noqa: S603 - our own interpreter, fixed code
        [sys.executable, "-c", _TRACING_PROBE, str(TRACING_CALLS[mode])],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if completed.returncode:
        raise HarnessError(f"tracing probe failed: {completed.stderr[-2000:]}")
    found: dict[str, float] = json.loads(completed.stdout)
    return found


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    parts = (json.dumps(header).encode(), json.dumps(claims).encode(), b"s" * 32)
    return ".".join(_b64url(part) for part in parts)


def kind_samples() -> dict[str, str]:
    """One token of each kind the detector names, built from the documented shapes."""
    body = "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zA1bC2"  # 36 alphanumerics, no real secret
    access = {"iss": ISSUER, "sub": "user-42", "aud": AUDIENCE, "scope": "orders:read"}
    return {
        "jws": _jwt({"alg": "RS256", "typ": "JWT", "kid": "k1"}, access),
        "jwt_access_token": _jwt({"alg": "RS256", "typ": "at+jwt", "kid": "k1"}, access),
        "id_token": _jwt(
            {"alg": "RS256", "kid": "k1"},
            {"iss": ISSUER, "sub": "user-42", "aud": "web", "azp": "web", "nonce": "n-0S6"},
        ),
        "refresh_token": _jwt({"alg": "HS512"}, {"typ": "Refresh", "azp": "web"}),
        "jwe": _jwt({"alg": "RSA-OAEP", "enc": "A256GCM"}, {}) + ".iv.tag",
        "github_personal_access_token": "ghp_" + body,
        "github_oauth_token": "gho_" + body,
        "github_app_token": "ghs_" + body,
        "github_refresh_token": "ghr_" + body + body,
        "slack_bot_token": "xoxb-1234567890-1234567890123-" + body[:24],
        "slack_user_token": "xoxp-12345-67890-1928471-" + body[:32],
        "slack_refresh_token": "xoxe-1-" + body,
        "slack_token": "xoxa-2-" + body,
        "stripe_secret_key": "sk_test_" + body[:24],
        "stripe_restricted_key": "rk_live_" + body[:24],
        "stripe_publishable_key": "pk_test_" + body[:24],
        "google_access_token": "ya29." + body * 3,
        "aws_access_key_id": "AKIA" + body[:16].upper(),
        "discord_bot_token": f"{_b64url(b'123456789012345678')}.G5Nast.{body}",
        "basic_credentials": base64.b64encode(b"alice:correct horse").decode(),
        "opaque": _b64url(bytes(range(32))),
    }


KIND_CALLS = {"smoke": 2_000, "full": 100_000}


def token_kind_cost(mode: str) -> dict[str, float]:
    """Time detect_token_kind on one token of each kind (ns per call, best of five) and the mean."""
    samples = kind_samples()
    number = KIND_CALLS[mode]
    found: dict[str, float] = {}
    for kind, token in samples.items():
        if detect_token_kind(token).value != kind:
            raise HarnessError(f"the {kind} sample is detected as {detect_token_kind(token)}")
        timer = timeit.Timer(functools.partial(detect_token_kind, token))
        found[kind] = min(timer.repeat(repeat=5, number=number)) / number * 1e9
    found["mean"] = statistics.fmean(found.values())
    return found


MISS_REQUESTS = 100
MISS_TOKENS = 5


async def introspection_misses() -> dict[str, dict[str, int]]:
    """100 concurrent requests over 5 new opaque tokens, ASGI and WSGI: calls the endpoint got.

    The endpoint answers after 50 ms, so every request arrives while the first call for
    its token is still out: single flight must turn each token's 20 requests into one call.
    """
    found: dict[str, dict[str, int]] = {}
    for family in ("starlette", "flask"):
        endpoint = stacks.IntrospectionEndpoint(delay=0.05)
        tokens = [f"opaque-{secrets.token_urlsafe(24)}" for _ in range(MISS_TOKENS)]
        headers = [f"Bearer {tokens[i % MISS_TOKENS]}" for i in range(MISS_REQUESTS)]
        try:
            if family == "starlette":
                app = stacks.opaque_starlette(endpoint.url)
                statuses = await asyncio.gather(*(asgi_status(app, h) for h in headers))
            else:
                wsgi = stacks.opaque_flask(endpoint.url)
                with concurrent.futures.ThreadPoolExecutor(MISS_REQUESTS) as pool:
                    statuses = list(pool.map(functools.partial(wsgi_status, wsgi), headers))
        finally:
            endpoint.close()
        if set(statuses) != {OK}:
            raise HarnessError(f"introspection misses ({family}): statuses {sorted(set(statuses))}")
        found[family] = {"requests": MISS_REQUESTS, "tokens": MISS_TOKENS, "calls": endpoint.calls}
    return found


# -- DPoP (RFC 9449) -------------------------------------------------------------------

DPOP_CALLS = {"smoke": (40, 200), "full": (3000, 20_000)}  # fresh proofs; bearer calls


async def _asgi_ok(_scope: Any, _receive: Any, send: Any) -> None:  # noqa: ANN401
    await send({"type": "http.response.start", "status": OK, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _receive_empty() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _dpop_scope(authorization: str, proof: str | None) -> dict[str, Any]:
    scope = asgi_scope(authorization)
    if proof is not None:
        scope["headers"].append((b"dpop", proof.encode("ascii")))
    return scope


async def _per_call_ns(app: Any, scopes: list[dict[str, Any]]) -> list[int]:  # noqa: ANN401
    """Each call's nanoseconds; a copy of each scope, as a server builds one per request."""
    sent: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.append(message["status"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    times = []
    for scope in scopes:
        fresh = {**scope, "headers": list(scope["headers"])}
        began = time.perf_counter_ns()
        await app(fresh, receive, send)
        times.append(time.perf_counter_ns() - began)
    if any(status != sent[0] for status in sent):
        raise HarnessError(f"DPoP benchmark: mixed statuses {sorted(set(sent))}")
    return times


async def _dpop_valid_request(
    allowed: Any,  # noqa: ANN401 - the DPoP middleware
    bearer_only: Any,  # noqa: ANN401 - the same middleware, DPoP off
    bound: str,
    proofs: list[str],
    jwk: dict[str, Any],
) -> dict[str, float]:
    """A valid DPoP request beside the proof's signature check alone and beside the floor.

    Interleaved, proof by proof, so that every figure sees the same machine: the whole
    request through the middleware, the bare application, the signature check alone, and
    the floor any DPoP request pays: that signature check, then the resent token's path
    through the middleware with DPoP off.
    """
    from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

    algorithm = ECAlgorithm(ECAlgorithm.SHA256)
    public = algorithm.from_jwk(jwk)
    bearer_scope = _dpop_scope(f"Bearer {bound}", None)
    await _per_call_ns(bearer_only, [bearer_scope])

    def floor_app(message: bytes, signature: bytes) -> Any:  # noqa: ANN401
        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # noqa: ANN401
            if not algorithm.verify(message, public, signature):
                raise HarnessError("DPoP benchmark: the floor's signature did not verify")
            await bearer_only(scope, receive, send)

        return app

    ours_ns, bare_ns, signature_ns, floor_ns = [], [], [], []
    for proof in proofs:
        scope = _dpop_scope(f"DPoP {bound}", proof)
        ours_ns += await _per_call_ns(allowed, [scope])
        bare_ns += await _per_call_ns(_asgi_ok, [scope])
        signing_input, _, signature = proof.rpartition(".")
        message, raw = signing_input.encode(), base64url_decode(signature)
        began = time.perf_counter_ns()
        algorithm.verify(message, public, raw)
        signature_ns.append(time.perf_counter_ns() - began)
        floor_ns += await _per_call_ns(floor_app(message, raw), [bearer_scope])
    bare = statistics.median(bare_ns)
    return {
        "valid_overhead_us": (statistics.median(ours_ns) - bare) / 1000,
        "signature_us": statistics.median(signature_ns) / 1000,
        "floor_overhead_us": (statistics.median(floor_ns) - bare) / 1000,
    }


async def dpop_cost(mode: str) -> dict[str, float]:
    """DPoP's figures, from direct ASGI calls.

    A valid request with a fresh ES256 proof, beside the proof's signature check alone
    and beside the floor (that signature check, then the resent token's bearer path); the
    replay-cache operations a replayed proof costs; the Bearer path with DPoP allowed
    beside off.
    """
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from jwt.algorithms import ECAlgorithm  # noqa: PLC0415

    from invalidtoken_mw import InvalidTokenMiddleware, JWTVerifier, MemoryReplayCache  # noqa: PLC0415
    from invalidtoken_mw.dpop import jwk_thumbprint  # noqa: PLC0415

    proofs_count, bearer_calls = DPOP_CALLS[mode]
    keys = make_keys()["ES256"]
    client = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(client.public_key(), as_dict=True)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-4711", "iat": now, "exp": now + 7200}
    bound = jwt.encode({**claims, "cnf": {"jkt": jwk_thumbprint(jwk)}}, keys.signing, "ES256")
    plain = jwt.encode(claims, keys.signing, "ES256")
    ath = _b64url(hashlib.sha256(bound.encode()).digest())
    head = {"typ": "dpop+jwt", "jwk": jwk}
    proofs = [
        jwt.encode(
            {
                "jti": secrets.token_urlsafe(16),
                "htm": "GET",
                "htu": "http://api.example.com/orders",
                "iat": now,
                "ath": ath,
            },
            client,
            "ES256",
            head,
        )
        for _ in range(proofs_count + 1)
    ]

    def middleware(**options: Any) -> Any:  # noqa: ANN401
        verifier = JWTVerifier(
            key=keys.verifying, algorithms=["ES256"], issuer=ISSUER, audience=AUDIENCE
        )
        return InvalidTokenMiddleware(_asgi_ok, verifier=verifier, **options)

    cache = MemoryReplayCache()
    allowed = middleware(dpop="allowed", dpop_replay_cache=cache)
    # Warm: the token's verdict and the proof header's key are cached, as for a client
    # resending its token with a new proof each time.
    warm = _dpop_scope(f"DPoP {bound}", proofs[-1])
    await _per_call_ns(allowed, [warm])
    bearer_only = middleware()
    valid = await _dpop_valid_request(allowed, bearer_only, bound, proofs[:-1], jwk)
    # Replay: the last proof, accepted once above (warm), sent again.
    before = cache.operations
    statuses: list[int] = []

    async def record(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await allowed({**warm, "headers": list(warm["headers"])}, _receive_empty, record)
    if statuses != [401]:
        raise HarnessError(f"DPoP benchmark: a replayed proof was answered {statuses}")
    replay_ops = cache.operations - before
    # Bearer with DPoP allowed beside DPoP off: interleaved blocks, the best block each.
    off, on = middleware(), middleware(dpop="allowed")
    bearer = [_dpop_scope(f"Bearer {plain}", None)] * max(bearer_calls // 10, 1)
    best_off, best_on = [], []
    for _ in range(10):
        best_off.append(statistics.median(await _per_call_ns(off, bearer)))
        best_on.append(statistics.median(await _per_call_ns(on, bearer)))
    return {
        **valid,
        "replay_operations": float(replay_ops),
        "bearer_off_us": min(best_off) / 1000,
        "bearer_allowed_us": min(best_on) / 1000,
    }


async def measure(mode: str, peers: ModuleType | None) -> dict[str, Any]:
    """Run every scenario and the memory figures; return the results document."""
    plan, pool, count = MODES[mode]
    began, load = time.monotonic(), round(os.getloadavg()[0], 2)
    keys, results = make_keys(), []
    with redis_server() as redis_url:
        if redis_url is None:
            print("note: redis-server is not on PATH; the Redis scenario is skipped")
        built = scenarios(keys, peers, pool, redis_url)
        gc.collect()
        gc.freeze()  # set-up objects never need collecting: keep each block's gc.collect() cheap
        for scenario in built:
            statuses = await _check(scenario)
            distinct = len(scenario.authorizations) if scenario.fresh else None
            timed = [
                Timed(s.name, s.runner(scenario.authorizations), distinct) for s in scenario.stacks
            ]
            await interleave(timed, plan)
            results.append(summarise(scenario, timed, statuses))
            report.print_scenario(results[-1])
            for close in scenario.closers:
                close()
    retained = await memory(keys[DEFAULT_ALG], count)
    report.print_memory(retained)
    tracing = tracing_cost(mode)
    report.print_tracing(tracing)
    kinds = token_kind_cost(mode)
    report.print_token_kinds(kinds)
    misses = await introspection_misses()
    report.print_introspection_misses(misses)
    dpop = await dpop_cost(mode)
    report.print_dpop(dpop)
    meta = {
        "mode": mode,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.monotonic() - began, 1),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load": load,
        "blocks": plan.blocks,
        "block_ms": plan.block_seconds * 1000,
        "fresh_pool": pool,
        "memory_tokens": count,
        "versions": {p: _version(p) for p in (*PACKAGES, *(PEER_PACKAGES if peers else ()))},
    }
    document: dict[str, Any] = {
        "meta": meta,
        "scenarios": results,
        "memory": retained,
        "tracing": tracing,
        "token_kinds": kinds,
        "introspection_misses": misses,
        "dpop": dpop,
    }
    document["targets"] = report.targets(document)
    report.print_targets(document["targets"])
    return document


def _peers() -> ModuleType | None:
    try:
        import peers  # noqa: PLC0415 - optional: the bench group's libraries
    except ImportError as exc:
        print(f"note: the peers are not installed ({exc}); measuring invalidtoken-mw alone")
        return None
    return peers


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, measure, print, and write what was asked for."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="a few calls per stack (seconds)")
    parser.add_argument("--json", type=Path, help="write the raw results (every block) here")
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=ROOT / "docs",
        type=Path,
        metavar="DIR",
        help="write performance.md and performance.png (default: docs/)",
    )
    args = parser.parse_args(argv)
    peers = _peers()
    if args.write_docs is not None and peers is None:
        parser.error("--write-docs needs the peers: pip install -e . --group bench")
    # A real but cheap structlog pipeline, as an app has: the rejections log one event each.
    with Path(os.devnull).open("w") as sink:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.WriteLoggerFactory(file=sink),
            cache_logger_on_first_use=True,
        )
        try:
            results = asyncio.run(measure("smoke" if args.smoke else "full", peers))
        except HarnessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if args.write_docs is not None:
        report.write_docs(results, args.write_docs)
        print(f"wrote {args.write_docs / 'performance.md'} and performance.png")
    print(f"\ndone in {results['meta']['seconds']} s ({results['meta']['mode']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
