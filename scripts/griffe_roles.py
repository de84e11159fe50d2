"""Griffe extension: Sphinx roles in the docstrings become mkdocstrings cross-references.

The docstrings are written for both ``help()`` and the generated reference, in the
Sphinx habit: ``:class:`~invalidtoken_mw.guard.Guard```, ``:meth:`verify```. Markdown
has no roles, so each one is rewritten here, once the package is loaded: a name that
resolves in the object's scope (the module's names, a class's members, a dotted path
from the package) becomes an autorefs link (``[`Guard`][invalidtoken_mw.guard.Guard]``),
which MkDocs checks (a target that does not exist is a warning, so ``--strict`` fails);
anything else (the standard library, a name outside the package) becomes inline code.
``~`` shows only the last part of the name, as in Sphinx. A paragraph ending in ``::``
(an rST literal block follows) ends in ``:``; the indented block is Markdown code.

A module attribute documented the Sphinx way, by ``#:`` comment lines right above it,
gets those lines as its docstring (griffe reads only a string literal below it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import griffe

if TYPE_CHECKING:
    from collections.abc import Iterator

# "Example::" before an indented block: the block is already Markdown's indented code.
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):`(~?)([\w.]+)`")
_PACKAGE = "invalidtoken_mw"
# Not in the reference: the command line (docs/cli.md describes it).
_UNDOCUMENTED = (f"{_PACKAGE}.cli",)


def _objects(root: griffe.Object) -> Iterator[griffe.Object]:
    yield root
    for member in root.members.values():
        if not member.is_alias and member.parent is root:
            yield from _objects(member)  # type: ignore[arg-type]


def _resolve(scope: griffe.Object, name: str) -> str | None:
    """The full path ``name`` stands for in ``scope``, or ``None`` outside the package."""
    if name.startswith(f"{_PACKAGE}.") or name == _PACKAGE:
        return name
    first, _, rest = name.partition(".")
    candidates = [scope] if scope.is_class else []
    if scope.parent is not None and scope.parent.is_class:
        candidates.append(scope.parent)  # a method's docstring naming a sibling
    for owner in candidates:
        if first in owner.members:
            return f"{owner.path}.{name}"
    try:
        resolved = scope.resolve(first)
    except griffe.NameResolutionError:
        return None
    path = f"{resolved}.{rest}" if rest else resolved
    return path if path.startswith(_PACKAGE) else None


def _documented(path: str) -> bool:
    """Whether the reference has a page for ``path``: not private, not the command line."""
    parts = path.split(".")
    return not any(part.startswith("_") for part in parts) and not any(
        path == name or path.startswith(f"{name}.") for name in _UNDOCUMENTED
    )


def _canonical(package: griffe.Module, path: str) -> str:
    """Where the object is documented: re-exports (``invalidtoken_mw.Guard``) followed.

    An attribute without a docstring of its own (a named tuple's field, described in
    its class's ``Attributes:`` section) has no heading: its class is linked instead.
    """
    try:
        found = package.modules_collection.get_member(path)
        if found.is_alias:
            found = found.final_target
    except (KeyError, AttributeError, griffe.AliasResolutionError):
        return path
    if found.is_attribute and found.docstring is None and found.parent is not None:
        return str(found.parent.path)
    return str(found.path)


def _comment_docstring(obj: griffe.Object) -> str | None:
    """The ``#:`` comment lines right above an attribute, joined; ``None`` without any."""
    if not obj.is_attribute or obj.lineno is None or obj.parent is None:
        return None
    lines = obj.parent.module.lines
    found: list[str] = []
    index = obj.lineno - 2  # the line above, 0-based
    while index >= 0 and lines[index].strip().startswith("#:"):
        found.insert(0, lines[index].strip()[2:].strip())
        index -= 1
    return "\n".join(found) or None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the package (see the module)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:  # noqa: ANN401, ARG002
        """Rewrite the roles once the whole package is loaded (names resolve then)."""
        if pkg.name != _PACKAGE:
            return
        for obj in _objects(pkg):
            if obj.docstring is None:
                comment = _comment_docstring(obj)
                if comment is None:
                    continue
                obj.docstring = griffe.Docstring(comment, parent=obj)

            def replace(match: re.Match[str], scope: griffe.Object = obj) -> str:
                short, name = match.group(1) == "~", match.group(2)
                shown = name.rsplit(".", 1)[-1] if short else name
                target = _resolve(scope, name)
                if target is None or not _documented(target):
                    return f"`{shown}`"
                return f"[`{shown}`][{_canonical(pkg, target)}]"

            value = _LITERAL_MARKER.sub(":", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(replace, value)
