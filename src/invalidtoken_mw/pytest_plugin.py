"""The pytest plugin: a ``local_issuer`` fixture for your application's tests.

Installed with the package and loaded by pytest through the ``pytest11`` entry point,
so nothing needs configuring. It defines one fixture and one marker; it imports
:mod:`invalidtoken_mw.testing` only when a test asks for the fixture, so a test
suite that never uses it pays nothing for it and no framework is ever imported.

- ``local_issuer``: a fresh :class:`~invalidtoken_mw.testing.LocalIssuer` for each
  test (its own port and keys, so rotating keys in one test cannot disturb another),
  closed after the test.
- ``@pytest.mark.local_issuer(**options)``: the options of that issuer
  (``algorithm``, ``audience``, ``path``, ``trailing_slash``, ``token_type``,
  ``kid_prefix``), on a test, a class or a module.

Example::

    @pytest.mark.local_issuer(audience="api://orders")
    def test_orders(local_issuer):
        app = create_app(verifier=local_issuer.verifier())
        answer = TestClient(app).get("/orders", headers=local_issuer.headers("expired"))
        assert answer.json()["reason"] == "expired"
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from invalidtoken_mw.testing import LocalIssuer

__all__ = ["local_issuer", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``local_issuer`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "local_issuer(**options): options of the local_issuer fixture's LocalIssuer"
        " (algorithm, audience, path, trailing_slash, token_type, kid_prefix)",
    )


@pytest.fixture
def local_issuer(request: pytest.FixtureRequest) -> Iterator[LocalIssuer]:
    """A running :class:`~invalidtoken_mw.testing.LocalIssuer`, closed after the test.

    Options come from the closest ``@pytest.mark.local_issuer(...)``.
    """
    # Imported here, not at the top: the plugin is loaded by every pytest run in an
    # environment where the package is installed, most of which never use it.
    from invalidtoken_mw.testing import LocalIssuer  # noqa: PLC0415

    marker = request.node.get_closest_marker("local_issuer")
    options: dict[str, Any] = {} if marker is None else dict(marker.kwargs)
    if marker is not None and marker.args:
        options.setdefault("algorithm", marker.args[0])
    with LocalIssuer(**options) as issuer:
        yield issuer
