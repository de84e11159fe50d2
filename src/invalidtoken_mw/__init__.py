"""invalidtoken-mw: one consistent, standards-correct answer to every bearer-token failure.

The public API is what ``__all__`` lists. The core (extraction, classification, the
challenge and the body) is sans-IO; adapters for ASGI, WSGI, Flask and FastAPI only
translate I/O.
"""

from invalidtoken_mw._version import __version__
from invalidtoken_mw.challenge import (
    Challenge,
    ChallengeSettings,
    build_challenge,
    parse_challenges,
)
from invalidtoken_mw.extract import ExtractedToken, TokenExtractor, TokenSource
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.render import RenderedFailure, Renderer, wants_problem_json

__all__ = [
    "AuthFailure",
    "Challenge",
    "ChallengeSettings",
    "ExtractedToken",
    "Reason",
    "RenderedFailure",
    "Renderer",
    "TokenExtractor",
    "TokenSource",
    "__version__",
    "build_challenge",
    "parse_challenges",
    "wants_problem_json",
]
