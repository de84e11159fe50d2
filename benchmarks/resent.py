"""The resent-token path alone: what the middleware adds when the verifier's cache answers.

Usage::

    python benchmarks/resent.py             # about 20 seconds, prints one table
    python benchmarks/resent.py --runs 5    # medians of five runs, each interleaved
    python benchmarks/resent.py --profile   # cProfile of the Starlette and Flask stacks

One valid RS256 token is sent again and again, in-process (``await app(scope, receive,
send)`` with a uvicorn-shaped scope; a PEP 3333 environ for Flask), to bare Starlette and
Flask, to each with invalidtoken-mw, and to each with invalidtoken-mw and a route that
reads the claims (``request.state.token_claims`` / ``environ["invalidtoken_mw.claims"]``).
The floors are the verifier's own ``verify`` of the cached token, alone. The overhead of a
stack is its median minus the bare app's, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
from typing import TYPE_CHECKING, Any

import stacks
from flask import Flask, request
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from timing import PATH, Plan, Timed, asgi_runner, call_runner, interleave, wsgi_runner

from invalidtoken_mw import InvalidTokenMiddleware, InvalidTokenWSGIMiddleware
from invalidtoken_mw.wsgi import CLAIMS_KEY

if TYPE_CHECKING:
    from starlette.requests import Request
    from timing import Runner

PLAN = Plan(blocks=15, block_seconds=0.03, min_calls=200, max_calls=50_000, warmup_calls=500)


async def _reads_claims(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.state.token_claims["sub"])


def _starlette_reading(keys: stacks.AlgKeys) -> Starlette:
    app = Starlette(routes=[Route(PATH, _reads_claims)])
    app.add_middleware(InvalidTokenMiddleware, verifier=stacks.verifier(keys))
    return app


def _flask_reading(keys: stacks.AlgKeys) -> Flask:
    app = Flask("reading")

    @app.get(PATH)
    def orders() -> str:
        return str(request.environ[CLAIMS_KEY]["sub"])

    wrapped = InvalidTokenWSGIMiddleware(app.wsgi_app, verifier=stacks.verifier(keys))
    app.wsgi_app = wrapped  # type: ignore[method-assign]
    return app


def runners(keys: stacks.AlgKeys, token: str) -> dict[str, Runner]:
    """Every stack of the table, by name, each sending the one token."""
    authorization = [f"Bearer {token}"]
    verifier = stacks.verifier(keys)
    verifier.verify(token)  # cached from now on
    return {
        "bare Starlette": asgi_runner(stacks.bare_starlette(), authorization),
        "Starlette + mw": asgi_runner(stacks.ours_starlette(keys), authorization),
        "Starlette + mw, reads claims": asgi_runner(_starlette_reading(keys), authorization),
        "bare Flask": wsgi_runner(stacks.bare_flask(), authorization),
        "Flask + mw": wsgi_runner(stacks.ours_flask(keys), authorization),
        "Flask + mw, reads claims": wsgi_runner(_flask_reading(keys), authorization),
        "verifier.verify (cache hit)": call_runner(verifier.verify, [token]),
    }


BASES = {"Starlette": "bare Starlette", "Flask": "bare Flask"}


async def one_run(keys: stacks.AlgKeys, token: str) -> dict[str, float]:
    """The median µs per request of every stack, in one interleaved run."""
    entries = [Timed(name, runner) for name, runner in runners(keys, token).items()]
    await interleave(entries, PLAN)
    return {timed.name: timed.median for timed in entries}


def overheads(medians: dict[str, float]) -> dict[str, float]:
    """Each middleware stack's median minus its bare framework's."""
    result = {}
    for name, value in medians.items():
        for framework, base in BASES.items():
            if name.startswith(framework) and name != base:
                result[name] = value - medians[base]
    return result


async def _drive(run: Runner, calls: int) -> None:
    await run(0, calls)


def profile(keys: stacks.AlgKeys, token: str, calls: int) -> None:
    """Print where the time of the middleware stacks goes."""
    chosen = runners(keys, token)
    for name in ("Starlette + mw, reads claims", "Flask + mw, reads claims"):
        run = chosen[name]
        asyncio.run(_drive(run, 1000))
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(_drive(run, calls))
        profiler.disable()
        print(f"== {name}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    """Time the stacks ``--runs`` times and print the medians and overheads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    keys = stacks.make_keys()[stacks.DEFAULT_ALG]
    token = stacks.mint(keys)
    if args.profile:
        profile(keys, token, 20_000)
        return
    runs: list[dict[str, float]] = []
    for _ in range(args.runs):
        medians = asyncio.run(one_run(keys, token))
        runs.append({**medians, **{f"{k} (overhead)": v for k, v in overheads(medians).items()}})
    print(f"{'stack':<46} {'median µs':>10}  per run")
    for name in runs[0]:
        values: list[Any] = [run[name] for run in runs]
        per_run = " ".join(f"{v:6.2f}" for v in values)
        print(f"{name:<46} {statistics.median(values):10.2f}  {per_run}")


if __name__ == "__main__":
    main()
