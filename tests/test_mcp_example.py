"""examples/mcp: an MCP server protected in one line, run for real under uvicorn.

The README's curl exchanges are replayed as tests/test_examples.py replays the other
examples' (the same readers, the same HMAC set-up, tokens minted by the
``invalidtoken-mw mint`` parser). Then the official MCP SDK, installed from the package
index, talks to the server: its streamable HTTP client calls a tool with a token minted
by :class:`~invalidtoken_mw.testing.LocalIssuer`, and its own ``WWW-Authenticate``
parsing (``mcp.client.auth.utils``) finds our ``resource_metadata`` and ``scope``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import pytest
from mcp.client.auth.utils import (
    build_protected_resource_metadata_discovery_urls,
    extract_resource_metadata_from_www_auth,
    extract_scope_from_www_auth,
)
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import ProtectedResourceMetadata

from invalidtoken_mw.testing import LocalIssuer
from support.servers import client, run_uvicorn
from test_examples import Example, Exchange, exchanges, load_example, run_exchange, serve

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

REPO = Path(__file__).resolve().parents[1]
MCP = Example(
    "mcp",
    REPO / "examples" / "mcp" / "server.py",
    "127.0.0.1:8000",
    "uvicorn --factory server:create_app --app-dir examples/mcp",
    asgi=True,
)
RESOURCE = "https://mcp.example.test/mcp"
METADATA_URL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
SCOPE = "mcp:tools"


# -- the README ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readme_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The example configured by the README's HMAC set-up, under uvicorn."""
    with serve(MCP, "hmac", tmp_path_factory.mktemp("mcp")) as served:
        yield served


README_EXCHANGES = [pytest.param(e, id=e.name) for e in exchanges(MCP.readme)]


def test_readme_documents_the_exchanges_the_issue_asks_for() -> None:
    """Metadata, the 401 challenge, a wrong audience and the 403 are all in the README."""
    statuses = [e.status_line for e in exchanges(MCP.readme)]
    assert statuses == [
        "HTTP/1.1 200 OK",
        "HTTP/1.1 401 Unauthorized",
        "HTTP/1.1 401 Unauthorized",
        "HTTP/1.1 403 Forbidden",
    ]


@pytest.mark.parametrize("exchange", README_EXCHANGES)
def test_readme_exchange(readme_server: Any, exchange: Exchange) -> None:
    """Each README request gets the documented status line, challenge and body."""
    response = run_exchange(MCP, readme_server, exchange)
    documented = dict(exchange.headers)
    assert exchange.status_line == (
        f"{response.http_version} {response.status_code} {response.reason_phrase}"
    )
    assert documented == {name: response.headers.get(name) for name in documented}
    if "www-authenticate" not in documented:
        assert "www-authenticate" not in response.headers
    assert exchange.body == response.text.removesuffix("\n")


# -- the MCP SDK against the server ---------------------------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """A local issuer whose tokens are for the MCP resource."""
    with LocalIssuer(audience=RESOURCE) as local:
        yield local


@pytest.fixture(scope="module")
def server(issuer: LocalIssuer) -> Iterator[str]:
    """The example with the issuer's verifier, under uvicorn."""
    with pytest.MonkeyPatch.context() as patch:
        app = load_example(MCP, patch).create_app(issuer.verifier(token_type=None))
    with run_uvicorn(app) as base:
        yield base


def _http(base: str) -> httpx.Client:
    return client(base)


async def _call_tool(base: str, token: str, statuses: list[int] | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    hooks = {"response": [record]}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10, event_hooks=hooks) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool("count_orders", {"customer": "alice"})
        return [tool.name for tool in tools.tools], result


def test_sdk_client_calls_a_tool_with_a_valid_token(server: str, issuer: LocalIssuer) -> None:
    """The SDK's streamable HTTP client, with our token, lists and calls the tool."""
    token = issuer.token(scope=SCOPE)
    names, result = anyio.run(_call_tool, server, token)
    assert names == ["count_orders"]
    assert not result.is_error
    assert result.structured_content == {"result": 5}


def test_sdk_client_is_refused_without_the_scope(server: str, issuer: LocalIssuer) -> None:
    """The same client with a token lacking the scope cannot even initialize."""
    statuses: list[int] = []
    # The SDK raises its MCPError inside anyio task groups: an ExceptionGroup.
    with pytest.raises(Exception) as refused:  # noqa: PT011 - grouped: checked below
        anyio.run(_call_tool, server, issuer.token(scope="other"), statuses)
    assert "Server returned an error response" in repr(refused.value)
    assert statuses == [403]


def test_sdk_parses_our_401_challenge(server: str) -> None:
    """mcp.client.auth.utils finds resource_metadata in our 401, then fetches the document."""
    with _http(server) as http:
        refused = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        metadata = http.get("/.well-known/oauth-protected-resource/mcp")
    answer = httpx2.Response(refused.status_code, headers=list(refused.headers.multi_items()))
    assert refused.status_code == 401
    assert extract_resource_metadata_from_www_auth(answer) == METADATA_URL
    # The URL the SDK tries first is ours; the document it finds there parses as the
    # SDK's own model and names the resource the client connects to.
    urls = build_protected_resource_metadata_discovery_urls(METADATA_URL, RESOURCE)
    assert urls[0] == METADATA_URL
    assert urls[1] == METADATA_URL  # the path-based fallback is the same URL
    document = ProtectedResourceMetadata.model_validate_json(metadata.content)
    assert str(document.resource) == RESOURCE
    assert document.scopes_supported == [SCOPE]
    assert metadata.headers["access-control-allow-origin"] == "*"


def test_sdk_parses_our_403_scope(server: str, issuer: LocalIssuer) -> None:
    """mcp.client.auth.utils finds the needed scope (and the metadata) in our 403."""
    token = issuer.token(scope="other")
    with _http(server) as http:
        refused = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}"},
        )
    answer = httpx2.Response(refused.status_code, headers=list(refused.headers.multi_items()))
    assert refused.status_code == 403
    assert refused.json()["reason"] == "insufficient_scope"
    assert extract_scope_from_www_auth(answer) == SCOPE
    assert extract_resource_metadata_from_www_auth(answer) == METADATA_URL


def test_token_for_another_resource_is_refused(server: str, issuer: LocalIssuer) -> None:
    """RFC 8707 as the MCP spec asks: a token for another server is wrong_audience."""
    token = issuer.token(scope=SCOPE, aud="https://other-mcp.example.test/mcp")
    with _http(server) as http:
        refused = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 401
    assert refused.json()["reason"] == "wrong_audience"
    assert "other-mcp" not in refused.text


def test_the_protection_is_one_line() -> None:
    """The example's create_app wraps the SDK's app in one InvalidTokenMiddleware call."""
    source = MCP.source.read_text(encoding="utf-8")
    lines = [line for line in source.splitlines() if "InvalidTokenMiddleware(" in line]
    assert len(lines) == 1
    assert "resource=resource" in lines[0]
