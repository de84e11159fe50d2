"""A Model Context Protocol server over Streamable HTTP, protected by invalidtoken-mw.

The server is the official MCP Python SDK's ``MCPServer`` (FastMCP before mcp 2), a
Starlette application; one line of ``create_app`` puts it behind
``InvalidTokenMiddleware``, which then

* refuses requests without a valid token with an RFC 6750 challenge naming the
  RFC 9728 metadata (``resource_metadata``), as the MCP authorization spec requires;
* serves that metadata at ``/.well-known/oauth-protected-resource/mcp``;
* refuses tokens issued for another resource (``aud``, RFC 8707) and tokens without the
  ``mcp:tools`` scope (403 ``insufficient_scope``, the challenge names the scope).

Configuration comes from the environment: ``INVALIDTOKEN_KEY`` (or ``_KEY_FILE`` or
``_JWKS_URL``), ``INVALIDTOKEN_ALGORITHMS``, ``INVALIDTOKEN_ISSUER`` and
``INVALIDTOKEN_AUDIENCE``, which is also the resource identifier: the public https URL
of the MCP endpoint (default ``https://mcp.example.test/mcp``).

Run it: ``uvicorn --factory server:create_app --app-dir examples/mcp`` (README.md).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer

from invalidtoken_mw import InvalidTokenMiddleware, verifier_from_env

if TYPE_CHECKING:
    from invalidtoken_mw import TokenVerifier
    from invalidtoken_mw.asgi import ASGIApp

DEFAULT_RESOURCE = "https://mcp.example.test/mcp"
#: The scope every MCP request needs (announced in the metadata's scopes_supported).
SCOPE = "mcp:tools"

mcp = MCPServer("orders")


@mcp.tool()
def count_orders(customer: str) -> int:
    """How many orders ``customer`` has placed."""
    return len(customer)


def create_app(verifier: TokenVerifier | None = None) -> ASGIApp:
    """The MCP server behind the middleware; ``verifier`` defaults to the environment's."""
    resource = os.environ.get("INVALIDTOKEN_AUDIENCE", DEFAULT_RESOURCE)
    if verifier is None:
        verifier = verifier_from_env(algorithms=["RS256"], audience=resource)
    server = mcp.streamable_http_app(stateless_http=True, json_response=True)
    return InvalidTokenMiddleware(server, verifier=verifier, resource=resource, scopes=[SCOPE])
