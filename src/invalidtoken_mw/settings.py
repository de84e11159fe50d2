"""GuardSettings: every option of the middlewares, its default, its check and its meaning.

One frozen dataclass is the single source of the options: the middlewares, the Flask
extension (its ``INVALIDTOKEN_*`` config keys are the field names, upper-cased),
FastAPI's ``install`` and docs/configuration.md all follow its fields. Each field's
documentation sits beside it (``metadata["doc"]``) and is collected into the class's
``Attributes`` section.

Values are checked once, at construction, with messages that name the option and say
how to fix it. Values that arrive as strings, from Flask config or the environment,
are read as what they stand for: ``"true"``/``"false"`` (also ``yes``/``no``,
``on``/``off``, ``1``/``0``) for switches, decimal numbers, comma-separated lists
(scopes: separated by commas or spaces), ``"none"`` for an option that can be off.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from invalidtoken_mw.challenge import ChallengeSettings
from invalidtoken_mw.dpop import (
    DEFAULT_DPOP_ALGORITHMS,
    DPOP_MODES,
    DPoPVerifier,
    MemoryReplayCache,
)
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES
from invalidtoken_mw.log import claim_names
from invalidtoken_mw.render import (
    DEFAULT_PROBLEM_TYPE_BASE,
    DEFAULT_RETRY_AFTER,
    ErrorBody,
    Renderer,
)
from invalidtoken_mw.resource import ProtectedResource, audience_plan
from invalidtoken_mw.scopes import (
    DEFAULT_ROLE_CLAIMS,
    DEFAULT_SCOPE_CLAIMS,
    validate_claim_names,
    validate_scopes,
)
from invalidtoken_mw.stepup import StepUp

if TYPE_CHECKING:
    from collections.abc import Mapping

    from invalidtoken_mw.dpop import ReplayCache
    from invalidtoken_mw.metrics import RejectionRecorder

__all__ = [
    "DEFAULTS",
    "FIELDS",
    "GuardSettings",
    "TokenVerifier",
    "as_bool",
    "as_list",
    "as_number",
    "step_up_of",
]

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_OFF = frozenset({"none", "off", "null", ""})
_SCOPE_SEPARATORS = re.compile(r"[\s,]+")


def as_bool(option: str, value: object) -> bool:
    """``value`` as a switch: a bool, or a string such as ``"true"`` or ``"off"``.

    Raises:
        ValueError: Anything else (the message names ``option``).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(
        f"{option} must be true or false (or 'true'/'false' in config), got {value!r}."
    )


def as_number(option: str, value: object, kind: type[float], example: str) -> Any:  # noqa: ANN401 - int or float, as asked
    """``value`` as an ``int`` or ``float``: a number, or a string holding a decimal one.

    Raises:
        ValueError: Anything else, a bool included (the message names ``option``).
    """
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    elif (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and (kind is float or float(value).is_integer())
    ):
        return kind(value)
    noun = "a whole number" if kind is int else "a number"
    raise ValueError(f"{option} must be {noun}, e.g. {option}={example}, got {value!r}.")


def as_list(option: str, value: object, separators: re.Pattern[str] | str = ",") -> tuple[str, ...]:
    """``value`` as a tuple of strings: an iterable of strings, or a comma-separated string.

    Raises:
        TypeError: It is neither (the message names ``option``).
    """
    if isinstance(value, str):
        parts = (
            re.split(separators, value)
            if isinstance(separators, re.Pattern)
            else value.split(separators)
        )
        return tuple(part.strip() for part in parts if part.strip())
    if not isinstance(value, Iterable) or isinstance(value, (bytes, bytearray)):
        raise TypeError(f"{option} must be a list of strings, e.g. ['a', 'b'], got {value!r}.")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{option} entries must be strings, got {item!r}.")
    return items


def _doc(text: str) -> dict[str, str]:
    return {"doc": text}


def _paths(option: str, value: object) -> tuple[str, ...]:
    paths = as_list(option, value)
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{option} entries must start with '/', e.g. '/health', got {path!r}.")
    return paths


def _header_name(option: str, value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF):
        return None
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a header name such as 'x-request-id', or None.")
    if not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", value):
        raise ValueError(
            f"{option} must be a header name such as 'x-request-id', or None; got {value!r}."
        )
    return value.lower()


def _optional_text(option: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{option} must be a string or None, got {type(value).__name__}.")
    return value


def _rate_limit(value: object) -> tuple[int, float] | None:
    option = "log_rate_limit"
    if value is None or (isinstance(value, str) and value.strip().lower() in _OFF):
        return None
    parts = as_list(option, value) if isinstance(value, str) else value
    if not isinstance(parts, Sequence) or len(parts) != 2:  # noqa: PLR2004 - (burst, per_second)
        raise ValueError(
            f"{option} must be (burst, per_second), e.g. (50, 10.0), or None; got {value!r}."
        )
    burst = as_number(option, parts[0], int, "(50, 10.0)")
    rate = as_number(option, parts[1], float, "(50, 10.0)")
    if burst < 1 or rate <= 0:
        raise ValueError(
            f"{option} needs burst >= 1 and per_second > 0, e.g. (50, 10.0); got {value!r}."
        )
    return burst, rate


def _claim_options(
    log_claims: object, hash_claims: object
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    """``log_claims`` and ``hash_claims`` checked together; ``None`` stays the default."""
    logged = None if log_claims is None else as_list("log_claims", log_claims)
    hashed = None if hash_claims is None else as_list("hash_claims", hash_claims)
    checked_logged, checked_hashed = claim_names(logged, hashed)
    return (
        None if log_claims is None else checked_logged,
        None if hash_claims is None else tuple(sorted(checked_hashed)),
    )


def _step_up_options(acr_values: object, max_age: object) -> dict[str, object]:
    """``acr_values`` and ``max_age`` in normal form, checked as a :class:`StepUp`."""
    acr = None if acr_values is None else as_list("acr_values", acr_values, _SCOPE_SEPARATORS)
    age = None
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, (int, str)):
            raise TypeError(
                f"max_age must be a whole number of seconds, e.g. 300, not {max_age!r}."
            )
        age = as_number("max_age", max_age, int, "300")
    if acr is not None or age is not None:
        StepUp(acr, age)  # raises for an empty list, a value no challenge carries, an age < 0
    return {"acr_values": acr, "max_age": age}


def step_up_of(settings: GuardSettings) -> StepUp | None:
    """The app-wide step-up requirement of ``settings``, or ``None`` when there is none."""
    if settings.acr_values is None and settings.max_age is None:
        return None
    return StepUp(settings.acr_values, settings.max_age)


def _fingerprint_key(value: object) -> bytes | None:
    if value is None:
        return None
    key = value.encode("utf-8") if isinstance(value, str) else value
    if not isinstance(key, bytes) or len(key) < 16:  # noqa: PLR2004
        raise ValueError("fingerprint_key must be at least 16 bytes of secret material, or None.")
    return key


def _resource_options(
    settings: GuardSettings, resource_metadata: str | None
) -> tuple[ProtectedResource | None, str | None]:
    """``resource`` in its normal form, and the ``resource_metadata`` it implies.

    The challenge points at the document the middleware serves; a different
    ``resource_metadata`` next to ``resource`` would send clients elsewhere.
    """
    resource = ProtectedResource.of(settings.resource)
    if resource is None:
        return None, resource_metadata
    if resource_metadata is not None and resource_metadata != resource.url:
        raise ValueError(
            f"resource_metadata={resource_metadata!r} contradicts resource="
            f"{resource.resource!r}, whose metadata the middleware serves at"
            f" {resource.url!r}: drop resource_metadata (it follows resource)."
        )
    if resource.check_audience:
        audience_plan(settings.verifier, resource.resource)  # refuses a contradiction
    return resource, resource.url


class TokenVerifier(Protocol):
    """What the middlewares need from a verifier (:class:`JWTVerifier` is one)."""

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token or raise :class:`AuthFailure`."""
        ...  # pragma: no cover - protocol

    async def verify_async(self, token: str) -> dict[str, Any]:
        """Same as :meth:`verify`, without blocking the event loop."""
        ...  # pragma: no cover - protocol


@dataclass(frozen=True, kw_only=True)
class GuardSettings:
    """Every option of :class:`~invalidtoken_mw.guard.Guard` and the middlewares.

    ``InvalidTokenMiddleware(app, realm="orders", ...)`` takes these fields as keyword
    arguments; ``GuardSettings(...)`` builds them once for ``settings=`` or ``Guard``.

    Raises:
        ValueError: A value is unusable; the message names the option and how to fix it.
        TypeError: ``verifier`` has no ``verify()`` (or an unknown option was given).
    """

    verifier: TokenVerifier = field(
        metadata=_doc("Verifies tokens: a `JWTVerifier` or any `TokenVerifier`. Required.")
    )
    realm: str = field(
        default="api",
        metadata=_doc("The challenge's `realm`: printable ASCII without `\"` or `\\`."),
    )
    exclude_paths: Sequence[str] = field(
        default=(),
        metadata=_doc(
            'Public paths; each matches itself and everything below it (`"/health"`'
            " matches `/health` and `/health/live`, not `/healthz`)."
        ),
    )
    exclude_exact_paths: Sequence[str] = field(
        default=(),
        metadata=_doc(
            'Public paths matched exactly: `"/docs"` matches `/docs` only, not `/docs/`'
            " or `/docs/123`."
        ),
    )
    optional_paths: Sequence[str] = field(
        default=(),
        metadata=_doc(
            "Paths where a token is optional, matched like `exclude_paths`: a request"
            " without one goes through anonymously (claims `None`), a token that is sent"
            " is verified and a bad one refused."
        ),
    )
    preflight_passthrough: bool = field(
        default=False,
        metadata=_doc(
            "Pass CORS preflights to the application, without a token, for a CORS layer"
            " inside it. By default the middleware answers them itself with a bare `204`."
        ),
    )
    optional: bool = field(
        default=False,
        metadata=_doc(
            "Let requests without any token through anonymously (claims `None`); a bad"
            " token is still refused."
        ),
    )
    scopes: Sequence[str] = field(
        default=(),
        metadata=_doc(
            "Scopes every protected request needs (403 `insufficient_scope` otherwise);"
            " the challenge's `scope` lists all of them."
        ),
    )
    scope_claims: Sequence[str] = field(
        default=DEFAULT_SCOPE_CLAIMS,
        metadata=_doc(
            "The claims scopes are read from, by name or dotted path, for `scopes` and"
            " every route's scope check: a string claim holds space-separated scopes, a"
            " list claim one per item; e.g. `('scope', 'scp', 'permissions')` for Auth0's"
            " RBAC `permissions`."
        ),
    )
    role_claims: Sequence[str] = field(
        default=DEFAULT_ROLE_CLAIMS,
        metadata=_doc(
            "The claims roles are read from for every route's role check (403"
            " `insufficient_role` otherwise), by name or dotted path, e.g."
            " `('realm_access.roles',)` for Keycloak or `('permissions',)` for Auth0;"
            " a top-level claim with exactly the name wins over a dotted path."
        ),
    )
    error_uri: str | None = field(
        default=None,
        metadata=_doc("RFC 6750 `error_uri` added to every challenge that carries an error."),
    )
    resource_metadata: str | None = field(
        default=None,
        metadata=_doc("RFC 9728 protected-resource metadata URL, added to every challenge."),
    )
    problem_json: bool = field(
        default=True,
        metadata=_doc(
            "Answer `application/problem+json` when the client's `Accept` asks for it;"
            " when off, always `application/json`."
        ),
    )
    problem_type_base: str = field(
        default=DEFAULT_PROBLEM_TYPE_BASE,
        metadata=_doc(
            "Prefix of the body's RFC 9457 `type`; the reason is appended"
            " (`https://example.com/errors/` gives `https://example.com/errors/expired`)."
        ),
    )
    error_body: ErrorBody | None = field(
        default=None,
        metadata=_doc(
            "Your own error envelope: a callable taking the `AuthFailure` and returning"
            " the JSON object to send (`problem_document(failure)` is the default one)."
            " Status, challenge, `Cache-Control` and `Content-Length` stay the"
            " library's; the content type is `application/json`. Called once per reason"
            " at start-up."
        ),
    )
    allow_query_token: bool = field(
        default=False,
        metadata=_doc(
            "Accept `?access_token=` (RFC 6750 §2.3); responses then get `Cache-Control: private`."
        ),
    )
    allow_body_token: bool = field(
        default=False,
        metadata=_doc(
            "Accept a form-encoded `access_token` body parameter (RFC 6750 §2.2), never on GET."
        ),
    )
    max_token_bytes: int = field(
        default=DEFAULT_MAX_TOKEN_BYTES,
        metadata=_doc("Longer `Authorization` values are refused before any parsing."),
    )
    add_missing_challenge: bool = field(
        default=True,
        metadata=_doc("Add a bare challenge to a 401 from the application that has none."),
    )
    retry_after: int = field(
        default=DEFAULT_RETRY_AFTER,
        metadata=_doc("Seconds announced in `Retry-After` on 503 answers."),
    )
    request_id_header: str | None = field(
        default="x-request-id",
        metadata=_doc("Header logged as `request_id`; `None` to log none."),
    )
    client_ip_header: str | None = field(
        default=None,
        metadata=_doc(
            'Header set by your trusted reverse proxy (e.g. `"x-forwarded-for"`) whose'
            " rightmost entry, over all its field lines, is logged as `client_ip`; by"
            " default the peer address is logged."
        ),
    )
    fingerprint_key: bytes | None = field(
        default=None,
        metadata=_doc(
            "Key (16 bytes or more) of the token fingerprint in logs; default a random"
            " per-process key."
        ),
    )
    log_rate_limit: tuple[int, float] | None = field(
        default=(50, 10.0),
        metadata=_doc(
            "`(burst, per_second)` of `auth_rejected` events per reason; `None` logs"
            " every rejection."
        ),
    )
    metrics: Sequence[RejectionRecorder] = field(
        default=(),
        metadata=_doc(
            "Metrics backends, e.g. `[PrometheusMetrics()]`: rejections, acceptances,"
            " key fetches ([metrics](metrics.md))."
        ),
    )
    log_accepted: bool = field(
        default=False,
        metadata=_doc("Also emit an `auth_accepted` debug event for accepted requests."),
    )
    log_claims: Sequence[str] | None = field(
        default=None,
        metadata=_doc(
            "Claim fields the events carry (and `sub`/`client_id` put in the ASGI scope"
            " and WSGI environ); `None`: `iss`, `sub`, `aud`, `jti`, `exp`, `iat`, `nbf`,"
            " `client_id`, `scopes`. Leave `sub` out where it is personal data."
        ),
    )
    hash_claims: Sequence[str] | None = field(
        default=None,
        metadata=_doc(
            "Of `log_claims`, those logged as a keyed fingerprint (`hmac:` and 16 hex"
            ' digits, keyed by `fingerprint_key`) instead of their value, e.g. `["sub"]`.'
        ),
    )
    resource: ProtectedResource | str | None = field(
        default=None,
        metadata=_doc(
            "This service's RFC 9728 resource identifier (an https URL) or a"
            " `ProtectedResource(...)`: serves its metadata at"
            " `/.well-known/oauth-protected-resource[/path]`, names that URL in every"
            " challenge's `resource_metadata` and refuses tokens whose `aud` does not"
            " name it ([protected resource](protected-resource.md))."
        ),
    )
    acr_values: Sequence[str] | None = field(
        default=None,
        metadata=_doc(
            "Step-up (RFC 9470) for every protected request: the accepted `acr` values,"
            " e.g. `['urn:example:mfa']`; a token with another `acr`, or none, gets 401"
            " `insufficient_user_authentication` with `acr_values` in the challenge."
            " Routes add their own ([step-up](step-up.md))."
        ),
    )
    max_age: int | None = field(
        default=None,
        metadata=_doc(
            "Step-up (RFC 9470) for every protected request: the most seconds since the"
            " token's `auth_time` (plus the verifier's `leeway`); an older authentication,"
            " or none, gets 401 `insufficient_user_authentication` with `max_age`."
        ),
    )
    dpop: str = field(
        default="off",
        metadata=_doc(
            'DPoP (RFC 9449, [DPoP](dpop.md)): `"off"` (bearer only), `"allowed"` (DPoP'
            ' and bearer; a DPoP-bound token sent as bearer is refused) or `"required"`'
            " (DPoP only)."
        ),
    )
    dpop_algorithms: Sequence[str] = field(
        default=DEFAULT_DPOP_ALGORITHMS,
        metadata=_doc(
            "The asymmetric JWS algorithms accepted for DPoP proofs, announced in the"
            " challenge's `algs` (never `none` or `HS*`)."
        ),
    )
    dpop_iat_window: int = field(
        default=300,
        metadata=_doc("Seconds a DPoP proof is accepted after its `iat`."),
    )
    dpop_leeway: int = field(
        default=30,
        metadata=_doc("Seconds of clock skew allowed either way for a DPoP proof's `iat`."),
    )
    dpop_replay_cache: ReplayCache | None = field(
        default=None,
        metadata=_doc(
            "Where DPoP proofs' `jti` are remembered: default a bounded in-memory cache per"
            " process; `RedisReplayCache(url)` shares it between instances."
        ),
    )
    dpop_nonce_secret: bytes | None = field(
        default=None,
        metadata=_doc(
            "Secret (16 bytes or more) of stateless DPoP server nonces: with one, every"
            " proof must carry a current nonce (`use_dpop_nonce` and `DPoP-Nonce`"
            " otherwise); instances sharing it agree. `None`: no nonces."
        ),
    )
    dpop_nonce_lifetime: int = field(
        default=300,
        metadata=_doc("Seconds of one DPoP nonce slot; a nonce is accepted for one to two slots."),
    )
    dpop_trust_forwarded: bool = field(
        default=False,
        metadata=_doc(
            "Compare a DPoP proof's `htu` with the scheme and host of `X-Forwarded-Proto`"
            " and `X-Forwarded-Host` (rightmost entry), set by your trusted reverse proxy."
        ),
    )

    def __post_init__(self) -> None:
        """Check every value once and store it in its one normal form."""
        verifier = self.verifier
        if not callable(getattr(verifier, "verify", None)) or not callable(
            getattr(verifier, "verify_async", None)
        ):
            raise TypeError("verifier must have verify() and verify_async(), e.g. a JWTVerifier.")
        for name in ("realm", "problem_type_base"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, e.g. {name}={DEFAULTS[name]!r}.")
        metrics: object = self.metrics
        if isinstance(metrics, (str, bytes)) or not isinstance(metrics, Iterable):
            raise TypeError("metrics must be a list, e.g. [PrometheusMetrics()].")
        max_token_bytes: int = as_number("max_token_bytes", self.max_token_bytes, int, "8192")
        if max_token_bytes < 1:
            raise ValueError("max_token_bytes must be at least 1; the default is 8192.")
        retry_after: int = as_number("retry_after", self.retry_after, int, "5")
        if retry_after < 0:
            raise ValueError("retry_after must be a whole number of seconds >= 0, e.g. 5.")
        error_uri = _optional_text("error_uri", self.error_uri)
        resource_metadata = _optional_text("resource_metadata", self.resource_metadata)
        resource, resource_metadata = _resource_options(self, resource_metadata)
        # The challenge and the body check their own values (realm, URIs): build them
        # once here, so settings that exist are settings that work.
        challenge = ChallengeSettings(self.realm, error_uri, resource_metadata)
        Renderer(
            challenge,
            problem_type_base=self.problem_type_base,
            retry_after=retry_after,
            error_body=self.error_body,
        )
        normal: dict[str, object] = {name: as_bool(name, getattr(self, name)) for name in _SWITCHES}
        normal.update(
            exclude_paths=_paths("exclude_paths", self.exclude_paths),
            exclude_exact_paths=_paths("exclude_exact_paths", self.exclude_exact_paths),
            optional_paths=_paths("optional_paths", self.optional_paths),
            scopes=validate_scopes(as_list("scopes", self.scopes, _SCOPE_SEPARATORS)),
            scope_claims=validate_claim_names(
                as_list("scope_claims", self.scope_claims), "scope_claims"
            ),
            role_claims=validate_claim_names(
                as_list("role_claims", self.role_claims), "role_claims"
            ),
            error_uri=error_uri,
            resource_metadata=resource_metadata,
            resource=resource,
            max_token_bytes=max_token_bytes,
            retry_after=retry_after,
            request_id_header=_header_name("request_id_header", self.request_id_header),
            client_ip_header=_header_name("client_ip_header", self.client_ip_header),
            fingerprint_key=_fingerprint_key(self.fingerprint_key),
            log_rate_limit=_rate_limit(self.log_rate_limit),
            metrics=tuple(self.metrics),
        )
        log_claims, hash_claims = _claim_options(self.log_claims, self.hash_claims)
        normal.update(log_claims=log_claims, hash_claims=hash_claims)
        normal.update(_step_up_options(self.acr_values, self.max_age))
        normal.update(_dpop_options(self))
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_options(cls, **options: Any) -> GuardSettings:  # noqa: ANN401 - any option
        """Settings from keyword options, with a helpful message for an unknown one.

        Raises:
            TypeError: An option that is not a field (the message lists the known ones).
        """
        unknown = sorted(set(options) - set(FIELDS))
        if unknown:
            raise TypeError(
                f"unknown option(s): {', '.join(unknown)}; the options are the fields of"
                f" GuardSettings: {', '.join(FIELDS)}."
            )
        return cls(**options)

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any],
        *,
        prefix: str = "INVALIDTOKEN_",
        **options: Any,  # noqa: ANN401 - any option
    ) -> GuardSettings:
        """Settings from ``{prefix}<FIELD>`` keys (e.g. Flask config or ``os.environ``).

        Keyword ``options`` win over the mapping; fields in neither keep their default.
        """
        merged = {
            name: config[prefix + name.upper()]
            for name in FIELDS
            if prefix + name.upper() in config
        }
        merged.update(options)
        return cls.from_options(**merged)


def _dpop_options(settings: GuardSettings) -> dict[str, object]:
    """The ``dpop_*`` options checked together (the verifier they build checks itself)."""
    mode = settings.dpop
    if not isinstance(mode, str) or mode.strip().lower() not in DPOP_MODES:
        raise ValueError(f'dpop must be "off", "allowed" or "required", got {mode!r}.')
    secret: object = settings.dpop_nonce_secret
    if isinstance(secret, str):  # from Flask config or the environment
        secret = None if secret.strip().lower() in _OFF else secret.encode("utf-8")
    options: dict[str, object] = {
        "dpop": mode.strip().lower(),
        "dpop_algorithms": as_list("dpop_algorithms", settings.dpop_algorithms),
        "dpop_iat_window": as_number("dpop_iat_window", settings.dpop_iat_window, int, "300"),
        "dpop_leeway": as_number("dpop_leeway", settings.dpop_leeway, int, "30"),
        "dpop_nonce_secret": secret,
        "dpop_nonce_lifetime": as_number(
            "dpop_nonce_lifetime", settings.dpop_nonce_lifetime, int, "300"
        ),
    }
    DPoPVerifier(
        algorithms=options["dpop_algorithms"],  # type: ignore[arg-type]
        iat_window=options["dpop_iat_window"],  # type: ignore[arg-type]
        leeway=options["dpop_leeway"],  # type: ignore[arg-type]
        nonce_secret=secret,  # type: ignore[arg-type]
        nonce_lifetime=options["dpop_nonce_lifetime"],  # type: ignore[arg-type]
        replay_cache=MemoryReplayCache(maxsize=1),
    )
    return options


_SWITCHES = tuple(f.name for f in dataclasses.fields(GuardSettings) if f.type in {"bool", bool})
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(GuardSettings))
"""The option names, in documentation order."""
DEFAULTS: dict[str, object] = {
    f.name: f.default
    for f in dataclasses.fields(GuardSettings)
    if f.default is not dataclasses.MISSING
}
"""Each option's default (``verifier`` has none)."""
GuardSettings.__doc__ = (
    (GuardSettings.__doc__ or "")
    + "\n    Attributes:\n"
    + "".join(f"        {f.name}: {f.metadata['doc']}\n" for f in dataclasses.fields(GuardSettings))
)
