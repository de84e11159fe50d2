"""MkDocs hook: the API reference pages, one per public module, generated from docstrings.

Each page is ``reference/<module>.md`` holding one mkdocstrings directive
(``::: invalidtoken_mw.<module>``) and is added to the end of the navigation under
"API reference"; ``reference/index.md`` lists every name of ``invalidtoken_mw.__all__``
with a link to where it is documented. Adding a module to the reference is one line in
:data:`MODULES`. A listed module that does not exist (yet) is left out, so adapters can
be listed before they land; ``tests/test_docs.py`` checks that every public module and
every public name is in the built reference, so nothing is left out for long.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

PACKAGE = "invalidtoken_mw"

#: The documented modules, in navigation order.
MODULES: tuple[str, ...] = (
    "asgi",
    "wsgi",
    "fastapi",
    "flask",
    "django",
    "drf",
    "litestar",
    "quart",
    "testing",
    "pytest_plugin",
    "settings",
    "guard",
    "verify",
    "multi_issuer",
    "introspection",
    "any_token",
    "jwks",
    "discovery",
    "keys",
    "reasons",
    "scopes",
    "stepup",
    "claims",
    "challenge",
    "render",
    "classify",
    "extract",
    "token_kind",
    "revocation",
    "redis_store",
    "dpop",
    "log",
    "metrics",
    "tracing",
    "ratelimit",
    "verdicts",
    "explain",
    "envconfig",
    "resource",
)

_SECTION = "API reference"


def present_modules() -> list[str]:
    """The listed modules that exist in the installed package."""
    return [name for name in MODULES if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None]


def _module_page(name: str) -> str:
    # The module's own heading is the page title (and the anchor links point to).
    return (
        f"::: {PACKAGE}.{name}\n"
        "    options:\n      show_root_heading: true\n      heading_level: 1\n"
    )


def _index_page() -> str:
    package = importlib.import_module(PACKAGE)
    rows = []
    for name in sorted(package.__all__, key=str.lower):
        value = getattr(package, name)
        home = getattr(value, "__module__", None)
        if not isinstance(home, str) or not home.startswith(f"{PACKAGE}."):
            rows.append(f"| `{name}` | [`{PACKAGE}`][{PACKAGE}] |")
            continue
        rows.append(f"| [`{name}`][{home}.{name}] | [`{home}`][{home}] |")
    table = "\n".join(rows)
    return (
        f"# API reference\n\n"
        f"Generated from the docstrings. `{PACKAGE}` re-exports the names below from the"
        f" modules that define them; each link leads to its documentation. The framework"
        f" adapters and `{PACKAGE}.testing` are imported from their own modules.\n\n"
        f"::: {PACKAGE}\n    options:\n      members: false\n      show_root_heading: true\n\n"
        f"| Name | Documented in |\n|---|---|\n{table}\n"
    )


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Append the reference pages to the navigation."""
    pages: list[Any] = [{"Overview": "reference/index.md"}]
    pages += [{f"{PACKAGE}.{name}": f"reference/{name}.md"} for name in present_modules()]
    if config.nav is not None:
        config.nav.append({_SECTION: pages})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages."""
    files.append(File.generated(config, "reference/index.md", content=_index_page()))
    for name in present_modules():
        files.append(File.generated(config, f"reference/{name}.md", content=_module_page(name)))
    return files
