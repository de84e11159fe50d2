"""Swagger UI in a real headless browser: sign in with a pasted token, try a protected route.

The FastAPI example (examples/fastapi) is served by uvicorn; Debian's Chromium, driven
by Playwright, opens ``/docs``, clicks **Authorize**, pastes a token into the bearer
field, then runs "Try it out" / "Execute" on ``GET /orders``. Swagger UI's script and
stylesheet are the ones FastAPI's page asks for on its CDN; nothing leaves the machine:
the browser is served those two files from the ``swagger-ui-bundle-v2`` package (a dev
dependency) and every other address outside the test server is refused.

Without a browser the tests skip with a message, except with ``CI`` set, where they
fail: CI installs ``chromium`` (.ci/run).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from swagger_ui_bundle import swagger_ui_path

from support.servers import make_verifier, run_uvicorn
from support.tokens import claims, mint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi import FastAPI

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi" / "main.py"
ASSETS = {
    "swagger-ui-bundle.js": Path(swagger_ui_path) / "swagger-ui-bundle.js",
    "swagger-ui.css": Path(swagger_ui_path) / "swagger-ui.css",
}
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 5_000
OPERATION = "#operations-default-list_orders_orders_get"


def find_chromium() -> str | None:
    """Debian's Chromium, or another Chromium on PATH."""
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def example_app() -> FastAPI:
    spec = importlib.util.spec_from_file_location("fastapi_example_for_browser", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app: FastAPI = module.create_app(make_verifier())
    return app


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        message = "no Chromium found (apt-get install chromium): the Swagger UI test needs one"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with run_uvicorn(example_app()) as url:
        yield url


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)

    def serve(route: Route) -> None:
        url = route.request.url
        name = url.rsplit("/", 1)[-1]
        if url.startswith(base_url):
            route.continue_()
        elif "swagger-ui-dist" in url and name in ASSETS:
            route.fulfill(path=ASSETS[name])
        else:  # the favicon and anything else off this machine
            route.abort()

    context.route("**/*", serve)
    opened = context.new_page()
    opened.goto(f"{base_url}/docs")
    yield opened
    context.close()


def authorize(page: Page, token: str) -> None:
    """Authorize → paste the token into the bearer field → Authorize → Close."""
    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").first.fill(token)
    dialog.locator("button.authorize").click()
    dialog.locator("button.btn-done").click()


def execute_list_orders(page: Page) -> dict[str, Any]:
    """Open GET /orders, "Try it out", "Execute"; the status and body the page shows."""
    operation = page.locator(OPERATION)
    operation.locator(".opblock-summary-control").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table .response")
    live.wait_for()
    return {
        "status": live.locator(".response-col_status").inner_text().strip(),
        "body": live.locator(".response-col_description pre").first.inner_text(),
    }


def test_authorized_try_it_out_returns_200(page: Page) -> None:
    """A pasted token signs Swagger UI in, and "Try it out" on GET /orders gets 200."""
    authorize(page, mint(payload=claims(scope="orders:read")))
    shown = execute_list_orders(page)
    assert ("200", True) == (shown["status"], '"subject": "user-1"' in shown["body"])


def test_without_authorizing_try_it_out_returns_401(page: Page) -> None:
    """Without authorizing, the same operation shows the library's 401."""
    shown = execute_list_orders(page)
    assert ("401", True) == (shown["status"], '"reason": "missing_token"' in shown["body"])
