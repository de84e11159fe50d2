"""What the Flask and Quart extensions share, with neither framework imported.

Both follow the Pallets extension pattern and keep their per-request state on ``g``;
only the I/O differs (Werkzeug's request or Quart's request or websocket, a
synchronous or an asynchronous hook and view). This module holds the rest, once:
settings from keyword arguments and ``INVALIDTOKEN_*`` config keys, the exempt and
optional marks on views and blueprints, the request's headers as the guard reads them,
the per-request state on ``g`` and the claims readers, and the validation of the scope
and role decorators' arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from invalidtoken_mw.guard import Accepted, Guard
from invalidtoken_mw.scopes import validate_roles, validate_scopes
from invalidtoken_mw.settings import DEFAULTS, FIELDS, GuardSettings

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping

    from invalidtoken_mw.guard import RequestHead


KEY = "invalidtoken"  # the extension's name in app.extensions
EXEMPT = "_invalidtoken_exempt"
OPTIONAL = "_invalidtoken_optional"
_PREFIX = "INVALIDTOKEN_"
_BOTH_MARKS = "a view cannot be both exempt and optional: an exempt view never reads the token."
_PUBLIC_VIEW = (
    "{name}() in a view exempt from authentication (@auth.exempt, an exempt blueprint or"
    " a path in exclude_paths): the token is never read there, so there are no claims."
    " Mark the view @auth.optional instead to use the claims when a token is sent."
)


def check_options(options: Mapping[str, object]) -> None:
    """Refuse keyword arguments that are not :class:`GuardSettings` fields.

    Raises:
        TypeError: An unknown option, named.
    """
    unknown = set(options) - set(FIELDS)
    if unknown:
        raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")


def guard_from_config(config: MutableMapping[str, Any], options: Mapping[str, Any]) -> Guard:
    """The guard for an app: keyword ``options`` win over ``INVALIDTOKEN_*`` config keys.

    Puts every default in ``config`` with ``setdefault``, as Flask extensions do.

    Raises:
        ValueError: No verifier anywhere, or a setting is unusable.
    """
    for name, default in DEFAULTS.items():
        config.setdefault(_PREFIX + name.upper(), default)
    if options.get("verifier", config.get(_PREFIX + "VERIFIER")) is None:
        raise ValueError(
            "InvalidToken needs a verifier: InvalidToken(app, verifier=JWTVerifier(...))"
            " or app.config['INVALIDTOKEN_VERIFIER']."
        )
    return Guard(GuardSettings.from_mapping(config, prefix=_PREFIX, **options))


class ViewMarks:
    """Which view functions and blueprints are exempt or optional; never both."""

    def __init__(self) -> None:
        """No marks yet."""
        self._blueprints: dict[str, set[str]] = {EXEMPT: set(), OPTIONAL: set()}

    def mark_blueprint(self, name: str, mark: str) -> None:
        """Give the blueprint called ``name`` the ``mark`` (:data:`EXEMPT` or :data:`OPTIONAL`).

        Raises:
            ValueError: It already has the other mark.
        """
        if any(name in names for other, names in self._blueprints.items() if other != mark):
            raise ValueError(_BOTH_MARKS)
        self._blueprints[mark].add(name)

    @staticmethod
    def mark_view(view: object, mark: str) -> None:
        """Give a view function the ``mark`` (an attribute on the function).

        Raises:
            ValueError: It already has the other mark.
        """
        if getattr(view, EXEMPT if mark == OPTIONAL else OPTIONAL, False):
            raise ValueError(_BOTH_MARKS)
        setattr(view, mark, True)

    def marked(self, blueprint: str | None, view: object, mark: str) -> bool:
        """Whether ``view``, or the (dotted: nested) ``blueprint`` it is in, has ``mark``."""
        names = self._blueprints[mark]
        if names and blueprint and any(name in names for name in blueprint.split(".")):
            return True
        return bool(view is not None and getattr(view, mark, False))


class _WerkzeugLike(Protocol):
    """What both frameworks' requests (and Quart's websockets) offer the guard."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def root_path(self) -> str: ...
    @property
    def query_string(self) -> bytes: ...
    @property
    def remote_addr(self) -> str | None: ...
    @property
    def scheme(self) -> str: ...
    @property
    def headers(self) -> Any: ...  # noqa: ANN401 - Werkzeug's and Quart's Headers


class HeaderView:
    """The guard's view of a Werkzeug-style request, all but reading the form body."""

    __slots__ = ("method", "path", "request")

    def __init__(self, current: _WerkzeugLike) -> None:
        """Wrap ``current``; the method and path are read once."""
        self.request = current
        self.method: str = current.method
        self.path: str = current.path

    def header(self, name: str) -> str | None:
        """The first field line of header ``name``."""
        value: str | None = self.request.headers.get(name)
        return value

    def field_lines(self, name: str) -> list[str]:
        """Every field line of header ``name``."""
        lines: list[str] = self.request.headers.getlist(name)
        return lines

    def query_string(self) -> str:
        """The raw query string."""
        return self.request.query_string.decode("latin-1")

    def full_path(self) -> str:
        """The path with the application's mount point."""
        return self.request.root_path + self.path

    def peer(self) -> str | None:
        """The client's address as the server saw it."""
        return self.request.remote_addr

    def target(self) -> tuple[str, str]:
        """The scheme and the percent-encoded path, for DPoP's ``htu``."""
        return str(self.request.scheme), quote(self.full_path())

    def route(self) -> str | None:
        """The matched URL rule (``/orders/<int:order_id>``), routing being done."""
        rule = getattr(self.request, "url_rule", None)
        template = getattr(rule, "rule", None)
        return template if isinstance(template, str) else None


class ContextState:
    """The per-request state an extension keeps on ``g`` (any attribute namespace)."""

    @staticmethod
    def begin(context: Any, *, public: bool, view: RequestHead | None) -> None:  # noqa: ANN401
        """Reset the state of a new request; ``public`` requests never read the token."""
        context.token_claims = None
        context.invalidtoken_token = None
        context.invalidtoken_private = False
        context.invalidtoken_public = public
        if view is not None:
            context.invalidtoken_request = view

    @staticmethod
    def accept(context: Any, outcome: Accepted) -> None:  # noqa: ANN401
        """Remember an accepted request's claims, token and privacy."""
        context.token_claims = outcome.claims
        context.invalidtoken_token = outcome.token
        context.invalidtoken_private = outcome.private


def claims_of(context: Any, name: str) -> dict[str, Any] | None:  # noqa: ANN401
    """The claims on ``g``, or ``None`` for an anonymous request.

    Raises:
        RuntimeError: The view is exempt: its token was never read (``name`` is the
            reader the view called, for the message).
    """
    if context.get("invalidtoken_public"):
        raise RuntimeError(_PUBLIC_VIEW.format(name=name))
    claims: dict[str, Any] | None = context.get("token_claims")
    return claims


def any_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``require_any_scope``'s scopes, validated.

    Raises:
        ValueError: No scope, or one that is not an RFC 6749 scope token.
    """
    required = validate_scopes(scopes)
    if not required:
        raise ValueError("require_any_scope() needs at least one scope.")
    return required


def required_roles(roles: Iterable[str], name: str) -> tuple[str, ...]:
    """A role decorator's roles, validated (``name`` is the decorator, for the message).

    Raises:
        ValueError: No role, or one that is empty or holds a space.
    """
    required = validate_roles(roles)
    if not required:
        raise ValueError(f"{name}() needs at least one role, e.g. 'admin'.")
    return required
