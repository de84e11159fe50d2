"""OAuth 2.0 protected-resource metadata (RFC 9728) and the audience it implies (RFC 8707).

A :class:`ProtectedResource` names this service's resource identifier and what its
metadata document says about it. Given as ``resource=`` to the middlewares (a
:class:`~invalidtoken_mw.GuardSettings` field), it makes every adapter:

* serve the metadata document at the well-known URL RFC 9728 §3.1 derives from the
  identifier (``https://api.example.com/orders`` is described at
  ``/.well-known/oauth-protected-resource/orders``), without authentication, with
  ``Access-Control-Allow-Origin: *``; the answers are built once, at start-up;
* name that URL in the ``resource_metadata`` parameter of every challenge (RFC 9728
  §5.1);
* refuse a token whose ``aud`` does not name the identifier, ``wrong_audience``
  (RFC 8707 §2, RFC 9068 §4), unless ``check_audience`` is off.

The document's members come from the configuration: ``authorization_servers`` from
the verifier's issuers (a :class:`~invalidtoken_mw.JWTVerifier`'s ``issuer`` or
``issuer_url``, an :class:`~invalidtoken_mw.IntrospectionVerifier`'s, and those of
the verifiers a :class:`~invalidtoken_mw.MultiIssuerVerifier` or
:class:`~invalidtoken_mw.AnyTokenVerifier` holds), ``scopes_supported`` from the
required ``scopes``, ``bearer_methods_supported`` from the token locations the
middleware accepts; each can be given instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from invalidtoken_mw._grammar import SCOPE_TOKEN_RE, uri_problem
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.render import JSON, RenderedFailure

__all__ = [
    "DEFAULT_METADATA_MAX_AGE",
    "WELL_KNOWN_PATH",
    "MetadataAnswers",
    "ProtectedResource",
    "audience_plan",
    "issuers_of",
    "metadata_url",
    "wrong_resource",
]

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
"""The well-known path of RFC 9728 §3 (registered in its §8.3)."""
DEFAULT_METADATA_MAX_AGE = 3600
"""Seconds a client or cache may keep the metadata document (``Cache-Control``)."""
_ALLOWED = "GET, HEAD, OPTIONS"
_NESTING = 4  # how deep verifiers holding verifiers are searched for issuers


def _url(option: str, value: object, *, https: bool = False) -> str:
    problem = uri_problem(value, absolute=True)
    if problem is None:
        assert isinstance(value, str)  # noqa: S101 - uri_problem checked it
        parts = urlsplit(value)
        if https and parts.scheme.lower() != "https":
            problem = f"its scheme is {parts.scheme!r}: RFC 9728 §2 requires https"
        elif parts.scheme.lower() not in {"https", "http"}:
            problem = f"its scheme is {parts.scheme!r}, not https"
        elif not parts.hostname:
            problem = "it names no host"
        elif parts.fragment or value.endswith("#"):
            problem = "it has a fragment"
    if problem is not None:
        raise ValueError(
            f"{option}={value!r} is not usable: {problem}. Give an absolute https URL"
            " such as 'https://api.example.com/orders'."
        )
    return str(value)


def _strings(option: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, Iterable):
        raise TypeError(f"{option} must be a list of strings or None, got {value!r}.")
    items = tuple(value)
    if not all(isinstance(item, str) and item for item in items):
        raise TypeError(f"{option} entries must be non-empty strings, got {items!r}.")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, kw_only=True)
class ProtectedResource:
    """This service as an OAuth protected resource (RFC 9728 §2); see the module.

    Only ``resource`` is required; ``None`` lets a member follow the rest of the
    configuration, and a member that is ``None`` at the end is left out.

    Args:
        resource: The resource identifier: an https URL with no query or fragment
            (RFC 9728 §2, RFC 8707 §2), e.g. ``"https://api.example.com/orders"``.
            Tokens must name it in ``aud``.
        authorization_servers: Issuer identifiers of the authorization servers that
            issue tokens for this resource; ``None``: the verifier's issuers.
        scopes_supported: Scopes a client may request for this resource; ``None``: the
            middleware's required ``scopes`` (left out when there are none).
        bearer_methods_supported: ``"header"``, ``"body"``, ``"query"``; ``None``:
            those the middleware accepts (``allow_body_token``, ``allow_query_token``).
        resource_name: A human-readable name of the resource.
        resource_documentation: URL of the developer documentation of the resource.
        resource_policy_uri: URL of the resource's data-use policy.
        resource_tos_uri: URL of the resource's terms of service.
        dpop_signing_alg_values_supported: The JWS algorithms accepted in DPoP proofs
            (RFC 9449); sent only when given.
        dpop_bound_access_tokens_required: Announce that every token must be
            DPoP-bound (sent only when true).
        check_audience: Refuse tokens whose ``aud`` does not name ``resource``
            (``wrong_audience``). Turn off only when another layer checks it.
        max_age: Seconds the document may be cached (``Cache-Control: public``).

    Raises:
        ValueError: A value is not of its kind; the message says how to fix it.
        TypeError: A list option is not a list of strings.
    """

    resource: str
    authorization_servers: Sequence[str] | None = None
    scopes_supported: Sequence[str] | None = None
    bearer_methods_supported: Sequence[str] | None = None
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    dpop_signing_alg_values_supported: Sequence[str] | None = None
    dpop_bound_access_tokens_required: bool = False
    check_audience: bool = True
    max_age: int = DEFAULT_METADATA_MAX_AGE
    # Derived at construction: the path of the document and its absolute URL.
    path: str = field(init=False, repr=False)
    url: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Check every value once; derive the document's path and URL (RFC 9728 §3.1)."""
        resource = _url("resource", self.resource, https=True)
        if urlsplit(resource).query or resource.endswith("?"):
            raise ValueError(
                f"resource={resource!r} has a query: RFC 9728 §2 discourages one and its"
                " metadata path could not be served. Use the URL without it."
            )
        for name in ("dpop_bound_access_tokens_required", "check_audience"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False.")
        max_age = self.max_age
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueError(f"max_age must be a whole number of seconds >= 0, got {max_age!r}.")
        normal = self._checked_members()
        parts = urlsplit(resource)
        # §3.1: the well-known segment goes between the host and the path; a lone "/"
        # after the host is dropped first.
        path = WELL_KNOWN_PATH + (parts.path if parts.path != "/" else "")
        normal.update(resource=resource, path=path, url=f"{parts.scheme}://{parts.netloc}{path}")
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    def _checked_members(self) -> dict[str, object]:
        """The document's members checked; the lists in their normal form."""
        servers = _strings("authorization_servers", self.authorization_servers)
        for server in servers or ():
            _url("authorization_servers", server)
        scopes = _strings("scopes_supported", self.scopes_supported)
        for scope in scopes or ():
            if not SCOPE_TOKEN_RE.fullmatch(scope):
                raise ValueError(
                    f"scopes_supported entry {scope!r} is not a scope (RFC 6749 §3.3)."
                )
        methods = _strings("bearer_methods_supported", self.bearer_methods_supported)
        if methods is not None and not set(methods) <= {"header", "body", "query"}:
            raise ValueError(
                f"bearer_methods_supported={methods!r}: use 'header', 'body' and 'query'."
            )
        for name in ("resource_documentation", "resource_policy_uri", "resource_tos_uri"):
            value = getattr(self, name)
            if value is not None:
                _url(name, value)
        if self.resource_name is not None and not isinstance(self.resource_name, str):
            raise TypeError("resource_name must be a string or None.")
        return {
            "authorization_servers": servers,
            "scopes_supported": scopes,
            "bearer_methods_supported": methods,
            "dpop_signing_alg_values_supported": _strings(
                "dpop_signing_alg_values_supported", self.dpop_signing_alg_values_supported
            ),
        }

    @classmethod
    def of(cls, value: object) -> ProtectedResource | None:
        """The ``resource`` option in its normal form: ``None``, a URL, a mapping or one.

        Raises:
            TypeError: Anything else.
        """
        if value is None or isinstance(value, ProtectedResource):
            return value
        if isinstance(value, str):
            return None if value.strip().lower() in {"", "none", "off"} else cls(resource=value)
        if isinstance(value, Mapping):
            return cls(**value)
        raise TypeError(
            "resource must be the resource identifier (an https URL), a"
            f" ProtectedResource(...) or None; got {type(value).__name__}."
        )

    def document(
        self,
        *,
        verifier: object = None,
        scopes: Sequence[str] = (),
        allow_body: bool = False,
        allow_query: bool = False,
    ) -> dict[str, Any]:
        """The metadata document (RFC 9728 §2), members filled from the configuration."""
        servers = self.authorization_servers
        if servers is None:
            servers = issuers_of(verifier) or None
        methods = self.bearer_methods_supported
        if methods is None:
            methods = ("header", *(("body",) if allow_body else ()))
            methods = (*methods, *(("query",) if allow_query else ()))
        supported = self.scopes_supported if self.scopes_supported is not None else scopes
        members: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": list(servers) if servers else None,
            "scopes_supported": list(supported) if supported else None,
            "bearer_methods_supported": list(methods),
            "resource_name": self.resource_name,
            "resource_documentation": self.resource_documentation,
            "resource_policy_uri": self.resource_policy_uri,
            "resource_tos_uri": self.resource_tos_uri,
            "dpop_signing_alg_values_supported": (
                list(self.dpop_signing_alg_values_supported)
                if self.dpop_signing_alg_values_supported
                else None
            ),
            "dpop_bound_access_tokens_required": self.dpop_bound_access_tokens_required or None,
        }
        return {name: value for name, value in members.items() if value is not None}


def metadata_url(resource: str) -> str:
    """The URL of the metadata document of ``resource`` (RFC 9728 §3.1)."""
    return ProtectedResource(resource=resource).url


class MetadataAnswers(NamedTuple):
    """The precomputed answers on the metadata path, by request method.

    Attributes:
        path: The path they answer (decoded, as a request's path is).
        get: ``GET``: 200 and the JSON document.
        head: ``HEAD``: the same headers, no body.
        options: ``OPTIONS`` (a CORS preflight or not): 204 allowing any origin.
        other: Any other method: 405 with ``Allow``.
    """

    path: str
    get: RenderedFailure
    head: RenderedFailure
    options: RenderedFailure
    other: RenderedFailure

    @classmethod
    def build(cls, resource: ProtectedResource, document: Mapping[str, Any]) -> MetadataAnswers:
        """Serialise ``document`` once and build every answer around it."""
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")
        cors = (("access-control-allow-origin", "*"),)
        headers = (
            ("content-type", JSON),
            ("cache-control", f"public, max-age={resource.max_age}"),
            *cors,
            ("content-length", str(len(body))),
        )
        preflight = (
            *cors,
            ("access-control-allow-methods", _ALLOWED),
            # Browsers' MCP clients send MCP-Protocol-Version with the metadata request.
            ("access-control-allow-headers", "*"),
            ("access-control-max-age", "86400"),
            ("allow", _ALLOWED),
        )
        refused = (*cors, ("allow", _ALLOWED), ("content-length", "0"))
        return cls(
            unquote(resource.path),
            RenderedFailure(200, headers, body),
            RenderedFailure(200, headers, b""),
            RenderedFailure(204, preflight, b""),
            RenderedFailure(405, refused, b""),
        )

    def answer(self, method: str) -> RenderedFailure:
        """The answer to a request with ``method`` on :attr:`path`."""
        if method == "GET":
            return self.get
        if method == "HEAD":
            return self.head
        return self.options if method == "OPTIONS" else self.other


def issuers_of(verifier: object) -> tuple[str, ...]:
    """The issuer URLs a verifier trusts, for ``authorization_servers``.

    Read from the attributes the library's verifiers carry: ``issuer_url`` and
    ``issuer`` (a string or several; a multi-tenant template is not an issuer), and
    the verifiers held in ``verifiers`` (:class:`~invalidtoken_mw.MultiIssuerVerifier`)
    or ``jwt`` and ``opaque`` (:class:`~invalidtoken_mw.AnyTokenVerifier`). Values
    that are not http(s) URLs are left out.
    """
    found: dict[str, None] = {}
    for leaf in _leaves(verifier):  # the verifiers holding others name no issuer
        for name in ("issuer_url", "issuer"):
            value = getattr(leaf, name, None)
            for item in (value,) if isinstance(value, str) else value or ():
                if (
                    isinstance(item, str)
                    and "{" not in item
                    and urlsplit(item).scheme in {"https", "http"}
                    and uri_problem(item, absolute=True) is None
                ):
                    found[item] = None
    return tuple(found)


def _leaves(verifier: object, depth: int = 0) -> list[object]:
    """The verifiers that check tokens themselves, below the ones routing to others."""
    children = [*(getattr(verifier, "verifiers", None) or ())]
    children += [c for c in (getattr(verifier, n, None) for n in ("jwt", "opaque")) if c]
    if not children or depth > _NESTING:
        return [verifier]
    return [leaf for child in children for leaf in _leaves(child, depth + 1)]


def audience_plan(verifier: object, resource: str) -> bool:
    """Whether the guard must check ``aud`` itself; refuse a contradicting verifier.

    The guard's check is skipped only when every verifier the token can reach already
    requires exactly ``resource`` (``audience=resource``). A verifier whose
    ``audience`` leaves ``resource`` out, or a :class:`~invalidtoken_mw.JWTVerifier`
    without ``audience`` (which refuses every token that names one), could never
    accept a token for this resource.

    Raises:
        ValueError: Such a verifier; the message says how to configure it.
    """
    exact = True
    for leaf in _leaves(verifier):
        if not hasattr(leaf, "audience"):
            exact = False  # an unknown verifier: the guard checks
            continue
        audience = getattr(leaf, "audience", None)
        name = type(leaf).__name__
        if audience is None:
            if name == "JWTVerifier" and not getattr(leaf, "accept_any_audience", False):
                raise ValueError(
                    f"resource={resource!r} needs tokens whose aud names it, but this"
                    " JWTVerifier has no audience and so refuses every token that names"
                    f" one: pass audience={resource!r} to the JWTVerifier."
                )
            exact = False
            continue
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if resource not in audiences:
            raise ValueError(
                f"resource={resource!r} contradicts the {name}'s audience={audiences!r}:"
                " a token for this resource names it in aud (RFC 8707). Add it to the"
                f" verifier's audience, e.g. audience={resource!r}."
            )
        exact = exact and audiences == (resource,)
    return not exact


def wrong_resource() -> AuthFailure:
    """The failure of a token issued for another resource (never naming its ``aud``)."""
    return AuthFailure(Reason.WRONG_AUDIENCE, Sentence.ANOTHER_RESOURCE)
