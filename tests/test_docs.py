"""The documentation: every Python sample runs, the tables match the code, the site builds.

How samples are run (a convention for everyone writing docs):

- Every fenced block opened with ```` ```python ```` in ``docs/*.md`` and ``README.md`` is
  executed. The blocks of one page run in order in one namespace, like a doctest
  session: a later block may use what an earlier block of the same page defined.
- Samples should be complete (imports included) so readers can copy them. For brevity
  a page may also use these ready-made names (see :func:`fixture_namespace`):
  ``SECRET`` (an HS256 secret), ``ISSUER``, ``AUDIENCE``, ``make_token(**claims)``
  (a valid token for them, claims overridable), ``token`` (one such token),
  ``verifier`` (a ``JWTVerifier`` for them) and, on pages whose samples mention it,
  ``redis_url`` (a fresh ``redis-server`` on loopback).
- ``<!-- no-run -->`` on the line before a block: not executed. Only for a sample that
  cannot run in a test (it needs a real identity provider or blocks forever); never
  for one that can.
- ``<!-- recipe: name -->`` on the line before a block: a logging recipe, which
  configures global state (``logging``, structlog, OpenTelemetry providers); not
  executed here but in a fresh interpreter by ``tests/test_docs_recipes.py``, which
  checks its output.
- ``<!-- requires: module -->`` on the line before a block: executed only when
  ``module`` can be imported (samples of third-party libraries outside the dev group,
  such as the "before" half of a migration guide); skipped otherwise.
- Global state a sample changes (structlog's configuration) is restored after each page.
- A page's namespace is a module registered as ``docs_sample``: frameworks that resolve
  annotations at run time (Litestar) find it, and a Django sample can name its own URLs
  with ``ROOT_URLCONF=__name__``. A page whose samples use Django runs with Django
  configured (``support.django_project``, as a Django project's tests would be).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import structlog

import invalidtoken_mw
from invalidtoken_mw import (
    GuardSettings,
    IntrospectionVerifier,
    JWTVerifier,
    MemoryRevocationStore,
    Reason,
    RedisRevocationStore,
)
from invalidtoken_mw.fastapi import install

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([*DOCS.glob("*.md"), ROOT / "README.md"])
SECRET = "docs-secret-for-hs256-at-least-32-bytes"
ISSUER = "https://id.example.com/"
AUDIENCE = "api://orders"
_FENCE = re.compile(r"^```python\s*$")
_MARKER = re.compile(r"^<!--\s*(no-run|requires:\s*([\w.]+)|recipe:\s*([\w-]+))\s*-->$")
# The pages that must keep at least this many executed samples (a guard against the
# extractor silently finding nothing).
_MIN_SAMPLES = 30
_MAX_NO_RUN = 3


@dataclass(frozen=True)
class Sample:
    """One ```python block: where it is, its code and its marker."""

    page: Path
    line: int  # 1-based line of the first code line
    code: str
    no_run: bool = False
    requires: str | None = None
    recipe: str | None = None


def samples(page: Path) -> list[Sample]:
    """The ```python blocks of ``page``, in order, with their markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Sample] = []
    index = 0
    while index < len(lines):
        if not _FENCE.match(lines[index]):
            index += 1
            continue
        start = index + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = _MARKER.match(previous.strip())
        found.append(
            Sample(
                page,
                start + 1,
                "\n".join(lines[start:end]) + "\n",
                no_run=bool(marker and marker.group(1) == "no-run"),
                requires=marker.group(2) if marker else None,
                recipe=marker.group(3) if marker else None,
            )
        )
        index = end + 1
    return found


def make_token(**claims: Any) -> str:
    """A valid HS256 token for the fixture verifier; ``None`` removes a claim."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "scope": "orders:read",
        "jti": "a1b2",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, "HS256")


def fixture_namespace() -> dict[str, Any]:
    """The ready-made names a page's samples may use."""
    return {
        "__name__": "docs_sample",
        "SECRET": SECRET,
        "ISSUER": ISSUER,
        "AUDIENCE": AUDIENCE,
        "make_token": make_token,
        "token": make_token(),
        "verifier": JWTVerifier(key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE),
    }


@pytest.fixture
def restored_structlog() -> Iterator[None]:
    """Put structlog's configuration back as it was after a page configured it."""
    configured = structlog.is_configured()
    saved = structlog.get_config()
    try:
        yield
    finally:
        structlog.reset_defaults()
        if configured:
            structlog.configure(**saved)


def run_page(page: Path, namespace: dict[str, Any]) -> list[str]:
    """Execute the page's samples in order; return the ones skipped for a missing module."""
    skipped = []
    for sample in samples(page):
        if sample.no_run or sample.recipe:
            continue
        if sample.requires and importlib.util.find_spec(sample.requires) is None:
            skipped.append(f"{page.name}:{sample.line} needs {sample.requires}")
            continue
        # Pad with blank lines so tracebacks point at the line in the Markdown file.
        source = "\n" * (sample.line - 1) + sample.code
        exec(compile(source, str(sample.page), "exec"), namespace)  # noqa: S102 - the point
    return skipped


PAGES_WITH_SAMPLES = [page for page in PAGES if samples(page)]


@pytest.mark.parametrize("page", PAGES_WITH_SAMPLES, ids=lambda page: page.name)
@pytest.mark.usefixtures("restored_structlog")
def test_every_python_sample_of_the_page_runs(
    page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ```python block of the page executes without an exception, in page order."""
    # A real module: Litestar resolves annotations through sys.modules, Django URLconfs too.
    module = types.ModuleType("docs_sample")
    module.__dict__.update(fixture_namespace())
    monkeypatch.setitem(sys.modules, "docs_sample", module)
    namespace = module.__dict__
    if any("redis_url" in sample.code for sample in samples(page)):
        namespace["redis_url"] = request.getfixturevalue("redis_server").url
    if any("from django" in sample.code for sample in samples(page)):
        from support.django_project import configure  # noqa: PLC0415 - Django pages only

        configure()
    skipped = run_page(page, namespace)
    if skipped:
        pytest.skip("; ".join(skipped))


def test_the_extractor_finds_the_samples_and_markers(tmp_path: Path) -> None:
    """Blocks, their first line and both markers are read as the convention says."""
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n<!-- no-run -->\n```python\nserve()\n```\n"
        "<!-- requires: authlib -->\n\n```python\nimport authlib\n```\n```sh\nls\n```\n",
        encoding="utf-8",
    )
    expected = [
        Sample(page, 4, "x = 1\n"),
        Sample(page, 9, "serve()\n", no_run=True),
        Sample(page, 14, "import authlib\n", requires="authlib"),
    ]
    assert expected == samples(page)


def test_a_failing_sample_fails_with_its_markdown_line(tmp_path: Path) -> None:
    """A broken sample raises, and the traceback names the page and line of the Markdown."""
    page = tmp_path / "broken.md"
    page.write_text("# Broken\n\n```python\nx = 1\nassert x == 2\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError) as caught:
        run_page(page, {})
    frame = caught.traceback[-1]
    assert (str(page), 5) == (str(frame.path), frame.lineno + 1)


def test_a_sample_needing_a_missing_module_is_skipped_and_the_rest_runs(tmp_path: Path) -> None:
    """A ``requires`` block whose module is absent is skipped; later blocks still run."""
    page = tmp_path / "migration.md"
    page.write_text(
        "<!-- requires: no_such_module_for_docs -->\n```python\nraise SystemExit\n```\n"
        "<!-- no-run -->\n```python\nraise SystemExit\n```\n```python\nran = True\n```\n",
        encoding="utf-8",
    )
    namespace: dict[str, Any] = {}
    skipped = run_page(page, namespace)
    assert ["migration.md:3 needs no_such_module_for_docs"] == skipped
    assert namespace.get("ran")


def test_there_are_many_samples_and_few_are_not_run() -> None:
    """The docs hold plenty of executed samples and at most a handful of no-run ones."""
    everything = [sample for page in PAGES for sample in samples(page)]
    # providers.md's blocks need their issuer: tests/test_providers.py runs each of them.
    no_run = [
        f"{s.page.name}:{s.line}" for s in everything if s.no_run and s.page.name != "providers.md"
    ]
    assert len(everything) >= _MIN_SAMPLES, (
        len(everything),
        no_run,
    )
    assert len(no_run) <= _MAX_NO_RUN, (
        len(everything),
        no_run,
    )


def _table_rows(page: Path) -> dict[str, list[str]]:
    """Rows of the page's tables keyed by their first cell, backticks removed."""
    rows = {}
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_reason_table_matches_the_taxonomy() -> None:
    """reasons.md lists every Reason with its real status and RFC 6750 error code."""
    rows = _table_rows(DOCS / "reasons.md")
    expected = {reason.value: [str(reason.status), reason.error or "—"] for reason in Reason}
    assert expected == {reason.value: rows[reason.value][:2] for reason in Reason}


def test_reason_table_quotes_the_real_descriptions() -> None:
    """reasons.md quotes each reason's default description word for word."""
    text = (DOCS / "reasons.md").read_text(encoding="utf-8")
    assert [] == [reason.value for reason in Reason if reason.description not in text]


@pytest.mark.parametrize(
    "documented",
    [
        JWTVerifier.__init__,
        GuardSettings,
        install,
        MemoryRevocationStore.__init__,
        RedisRevocationStore.__init__,
        IntrospectionVerifier.__init__,
    ],
    ids=[
        "JWTVerifier",
        "GuardSettings",
        "install",
        "MemoryRevocationStore",
        "RedisRevocationStore",
        "IntrospectionVerifier",
    ],
)
def test_configuration_reference_names_every_option(documented: Any) -> None:
    """configuration.md has a row for every keyword option of the documented callables."""
    rows = _table_rows(DOCS / "configuration.md")
    options = [
        name
        for name, parameter in inspect.signature(documented).parameters.items()
        if name not in {"self", "app"} and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    assert [] == [name for name in options if name not in rows]


def test_configuration_lists_exactly_the_guard_settings() -> None:
    """The middleware table of configuration.md has one row per GuardSettings field, no more.

    Its defaults are the fields' defaults, as Python writes them.
    """
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    section = text.split("## The middleware", 1)[1].split("\n## ", 1)[0]
    table = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ][1:]
    fields = dataclasses.fields(GuardSettings)
    assert [f.name for f in fields] == [row[0] for row in table]
    defaults = {
        f.name: "required"
        if f.default is dataclasses.MISSING
        else repr(f.default).replace("'", '"')
        for f in fields
    }
    assert defaults == {row[0]: row[1] for row in table}


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site``."""
    return subprocess.run(  # noqa: S603 - our own interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation site, built once with ``mkdocs build --strict``."""
    built = tmp_path_factory.mktemp("docs") / "site"
    result = mkdocs_build(ROOT / "mkdocs.yml", built)
    assert 0 == result.returncode, result.stderr
    return built


def test_mkdocs_build_strict_succeeds(site: Path) -> None:
    """``mkdocs build --strict`` builds the site without a warning, diagram included."""
    architecture = (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert (site / "index.html").is_file()
    assert 'class="mermaid"' in architecture


def public_modules() -> list[str]:
    """The package's public modules: every module not named ``_*``, but the command line."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(invalidtoken_mw.__path__)
        if not module.name.startswith("_") and module.name != "cli"
    )


def _anchors(page: Path) -> set[str]:
    return set(re.findall(r'id="(invalidtoken_mw[\w.]*)"', page.read_text(encoding="utf-8")))


@pytest.mark.parametrize("module", public_modules())
def test_the_reference_documents_every_public_name_of_the_module(site: Path, module: str) -> None:
    """Each public module has a reference page with a heading for every name of its __all__.

    A name without a docstring gets no heading (mkdocstrings leaves it out), so this
    also makes every public name carry a docstring. A module missing from the page list
    of ``scripts/mkdocs_reference.py`` has no page and fails here.
    """
    page = site / "reference" / module / "index.html"
    assert page.is_file(), f"add {module!r} to MODULES in scripts/mkdocs_reference.py"
    imported = importlib.import_module(f"invalidtoken_mw.{module}")
    anchors = _anchors(page)
    names = getattr(imported, "__all__", ())
    assert names, f"invalidtoken_mw.{module} declares no __all__"
    assert [] == [name for name in names if f"invalidtoken_mw.{module}.{name}" not in anchors]


def test_the_reference_overview_links_every_name_of_the_package(site: Path) -> None:
    """reference/index.md lists invalidtoken_mw.__all__, each linked to its documentation."""
    overview = (site / "reference" / "index.html").read_text(encoding="utf-8")
    documented = set().union(*(_anchors(page) for page in (site / "reference").rglob("*.html")))
    missing, unlinked = [], []
    for name in invalidtoken_mw.__all__:
        home = getattr(getattr(invalidtoken_mw, name), "__module__", "invalidtoken_mw")
        if not home.startswith("invalidtoken_mw."):
            continue  # __version__: documented on the overview itself
        if f"{home}.{name}" not in documented:
            missing.append(name)
        if f'href="{home.rsplit(".", 1)[1]}/#{home}.{name}"' not in overview:
            unlinked.append(name)
    assert ([], []) == (missing, unlinked)


_BROKEN_SITE = """\
site_name: broken
docs_dir: docs
nav:
  - Home: index.md
  - Gone: gone.md
"""


def test_the_strict_build_fails_on_broken_references_missing_pages_and_docstrings(
    tmp_path: Path,
) -> None:
    """The project's MkDocs settings turn each kind of documentation breakage into a failure.

    A small site with the project's ``validation`` and ``plugins`` settings (the
    reference hook aside) gets a broken cross-reference, a page in the navigation that
    does not exist and a docstring naming a parameter the function does not have.
    """
    config = yaml_sections(ROOT / "mkdocs.yml", ("validation", "plugins"))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "brokenmod.py").write_text(
        'def f(x: int) -> int:\n    """Return x.\n\n    Args:\n        y: Not a parameter.\n'
        '    """\n    return x\n',
        encoding="utf-8",
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# Broken\n\nSee [`Nope`][invalidtoken_mw.nope.Nope].\n\n::: brokenmod\n",
        encoding="utf-8",
    )
    site_config = tmp_path / "mkdocs.yml"
    site_config.write_text(
        _BROKEN_SITE
        + config.replace("paths: [src]", f"paths: [{tmp_path / 'src'}]").replace(
            "scripts/", f"{ROOT / 'scripts'}/"
        ),
        encoding="utf-8",
    )
    result = mkdocs_build(site_config, tmp_path / "site")
    assert 0 != result.returncode
    expected = ["invalidtoken_mw.nope.Nope", "gone.md", "'y' does not appear in the function"]
    assert [] == [warning for warning in expected if warning not in result.stderr], result.stderr


def yaml_sections(config: Path, names: Sequence[str]) -> str:
    """The top-level sections ``names`` of a YAML file, as text (no tags to load)."""
    kept: list[str] = []
    keep = False
    for line in config.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace():
            keep = line.split(":", 1)[0] in names
        if keep:
            kept.append(line)
    return "\n".join(kept) + "\n"


# -- the quick starts, on their own ----------------------------------------------------


@pytest.mark.parametrize("page", [ROOT / "README.md", DOCS / "index.md"], ids=lambda p: p.name)
def test_quick_start_samples_run_on_their_own(page: Path) -> None:
    """Each quick-start block runs in a fresh namespace, without the pages' ready-made names.

    The page runner above lends every page ``verifier`` and friends; a quick start is
    copied on its own, so it must define everything it uses (a README snippet once used
    an undefined ``verifier``).
    """
    blocks = [sample for sample in samples(page) if not sample.no_run and not sample.requires]
    assert blocks
    for sample in blocks:
        source = "\n" * (sample.line - 1) + sample.code
        exec(compile(source, str(page), "exec"), {"__name__": "quick_start"})  # noqa: S102


_PINNED_BY = re.compile(r"`(tests/[\w/]+\.py)::(\w+)")
CONFORMANCE_PAGES = ("dpop.md", "protected-resource.md", "step-up.md")


@pytest.mark.parametrize("page", CONFORMANCE_PAGES)
def test_every_test_a_conformance_table_names_exists(page: str) -> None:
    """A row of a conformance table names a test that exists (file and function)."""
    root = ROOT
    text = (root / "docs" / page).read_text("utf-8").split("## Conformance", 1)
    assert len(text) == 2, f"{page} has no Conformance section"
    named = _PINNED_BY.findall(text[1])
    assert len(named) >= 5, f"{page}: too few tests named"
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not (root / path).is_file()
        or not re.search(rf"^(async )?def {name}\(", (root / path).read_text("utf-8"), re.MULTILINE)
    ]
    assert missing == []
