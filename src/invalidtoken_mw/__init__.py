"""invalidtoken-mw: one consistent, standards-correct answer to every bearer-token failure.

The public API is what ``__all__`` lists. The core (extraction, classification, the
challenge and the body) is sans-IO; adapters for ASGI, WSGI, Flask and FastAPI only
translate I/O. Two modules are not imported here: :mod:`invalidtoken_mw.testing`
(helpers for your own tests) and :mod:`invalidtoken_mw.cli` (the command line).
"""

from invalidtoken_mw._version import __version__
from invalidtoken_mw.any_token import AnyTokenVerifier
from invalidtoken_mw.asgi import InvalidTokenMiddleware
from invalidtoken_mw.challenge import ChallengeSettings, build_challenge
from invalidtoken_mw.classify import failure_from_pyjwt
from invalidtoken_mw.discovery import DiscoveryKeys, IssuerMetadata
from invalidtoken_mw.dpop import DPoPVerifier, MemoryReplayCache, ReplayCache
from invalidtoken_mw.envconfig import verifier_from_env
from invalidtoken_mw.explain import Check, Explanation
from invalidtoken_mw.extract import ExtractedToken, TokenExtractor, TokenSource
from invalidtoken_mw.guard import Accepted, Guard, Rejected, TokenVerifier
from invalidtoken_mw.introspection import IntrospectionVerifier
from invalidtoken_mw.jwks import JWKSCache
from invalidtoken_mw.keys import KeySource, StaticKeys, VerifyingKey
from invalidtoken_mw.log import AuthEventLog, RequestFacts, otel_field_names
from invalidtoken_mw.metrics import OpenTelemetryMetrics, PrometheusMetrics, RejectionRecorder
from invalidtoken_mw.multi_issuer import MultiIssuerVerifier
from invalidtoken_mw.ratelimit import EventRateLimiter
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.redis_store import RedisReplayCache, RedisRevocationStore
from invalidtoken_mw.render import (
    ErrorBody,
    RenderedFailure,
    Renderer,
    problem_document,
    wants_problem_json,
)
from invalidtoken_mw.resource import ProtectedResource
from invalidtoken_mw.revocation import MemoryRevocationStore, RevocationStore
from invalidtoken_mw.scopes import check_scopes, granted_scopes
from invalidtoken_mw.settings import GuardSettings
from invalidtoken_mw.stepup import StepUp, check_step_up
from invalidtoken_mw.token_kind import TokenKind, detect_token_kind
from invalidtoken_mw.verify import JWTVerifier, ParsedToken
from invalidtoken_mw.wsgi import InvalidTokenWSGIMiddleware

__all__ = [
    "Accepted",
    "AnyTokenVerifier",
    "AuthEventLog",
    "AuthFailure",
    "ChallengeSettings",
    "Check",
    "DPoPVerifier",
    "DiscoveryKeys",
    "ErrorBody",
    "EventRateLimiter",
    "Explanation",
    "ExtractedToken",
    "Guard",
    "GuardSettings",
    "IntrospectionVerifier",
    "InvalidTokenMiddleware",
    "InvalidTokenWSGIMiddleware",
    "IssuerMetadata",
    "JWKSCache",
    "JWTVerifier",
    "KeySource",
    "MemoryReplayCache",
    "MemoryRevocationStore",
    "MultiIssuerVerifier",
    "OpenTelemetryMetrics",
    "ParsedToken",
    "PrometheusMetrics",
    "ProtectedResource",
    "Reason",
    "RedisReplayCache",
    "RedisRevocationStore",
    "Rejected",
    "RejectionRecorder",
    "RenderedFailure",
    "Renderer",
    "ReplayCache",
    "RequestFacts",
    "RevocationStore",
    "StaticKeys",
    "StepUp",
    "TokenExtractor",
    "TokenKind",
    "TokenSource",
    "TokenVerifier",
    "VerifyingKey",
    "__version__",
    "build_challenge",
    "check_scopes",
    "check_step_up",
    "detect_token_kind",
    "failure_from_pyjwt",
    "granted_scopes",
    "otel_field_names",
    "problem_document",
    "verifier_from_env",
    "wants_problem_json",
]
