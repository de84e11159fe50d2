"""Turn an :class:`~invalidtoken_mw.AuthFailure` into status, headers and body bytes.

Every adapter answers through :class:`Renderer`, so ASGI, WSGI, Flask and FastAPI
send the same bytes for the same failure. The body is one JSON document with the
RFC 9457 members (``type``, ``title``, ``status``, ``detail``) and the OAuth members
(``error``, ``error_description``) plus ``reason`` (:func:`problem_document`), or the
application's own envelope (``error_body``). Answers for the default descriptions are
computed once, at construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from invalidtoken_mw._grammar import uri_problem
from invalidtoken_mw.challenge import ChallengeSettings, build_challenge, failure_description
from invalidtoken_mw.reasons import AuthFailure, Reason

__all__ = [
    "DEFAULT_PROBLEM_TYPE_BASE",
    "JSON",
    "PROBLEM_JSON",
    "ErrorBody",
    "RenderedFailure",
    "Renderer",
    "problem_document",
    "wants_problem_json",
]

JSON = "application/json"
"""The content type of the default body (and of every ``error_body``)."""
PROBLEM_JSON = "application/problem+json"
"""The RFC 9457 content type, sent when the client's ``Accept`` asks for it."""
# RFC 9457 §3.1.1 suggests tag URIs (RFC 4151) for problem types that need not resolve.
DEFAULT_PROBLEM_TYPE_BASE = "tag:invalidtoken-mw,2026:reason:"
"""The default ``problem_type_base``: the body's ``type`` is this plus the reason."""
DEFAULT_RETRY_AFTER = 5
# Answers for a custom description or scopes, remembered per renderer. The verifier's and
# the extractor's descriptions are a fixed set; past this bound (application code can
# write any description) answers are computed per request again.
_CUSTOM_ANSWERS = 256

Headers = tuple[tuple[str, str], ...]
ErrorBody = Callable[[AuthFailure], Mapping[str, Any]]
"""The ``error_body`` option: the JSON document (a mapping) to send for a failure."""


def problem_document(
    failure: AuthFailure, problem_type_base: str = DEFAULT_PROBLEM_TYPE_BASE
) -> dict[str, Any]:
    """The library's own body for ``failure``: RFC 9457 and OAuth members plus ``reason``.

    An ``error_body`` callable can start from it and add or rename members.
    """
    reason = failure.reason
    description = failure_description(failure)
    return {
        "type": f"{problem_type_base}{reason.value}",
        "title": reason.problem_title,
        "status": reason.status,
        "detail": description,
        "error": reason.error,
        "error_description": description,
        "reason": reason.value,
    }


class RenderedFailure(NamedTuple):
    """What to send: a status, header pairs (lower-case names) and the body bytes."""

    status: int
    headers: Headers
    body: bytes


def wants_problem_json(accept: str | None) -> bool:
    """Whether an ``Accept`` value asks for ``application/problem+json`` (q > 0)."""
    # Media types are case-insensitive (RFC 9110 §8.3.1); the loop below lowers each one.
    if not accept or "problem+json" not in accept.lower():
        return False
    for item in accept.split(","):
        media_type, _, params = item.partition(";")
        if media_type.strip().lower() != PROBLEM_JSON:
            continue
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value.strip()) > 0
                except ValueError:
                    return False
        return True
    return False


def _check_problem_type_base(base: str) -> None:
    """Each ``type`` member, the base with a reason appended, is a URI reference.

    RFC 9457 §3.1.1: ``type`` is a URI reference (RFC 3986 §4.1). Checking the
    appended forms too refuses a base such as ``https://example.com:`` whose every
    ``type`` would be broken.
    """
    problem = uri_problem(base)
    if problem is None:
        broken = next(
            (f"{base}{r.value}" for r in Reason if uri_problem(f"{base}{r.value}") is not None),
            None,
        )
        if broken is not None:
            problem = f"with a reason appended it is {broken!r}, which is not a URI reference"
    if problem is None:
        return
    hint = ""
    if isinstance(base, str) and "{" in base:
        hint = " The reason is appended to the base, not substituted: drop the {...} part."
    raise ValueError(
        f"problem_type_base={base!r} is not a URI reference (RFC 9457 §3.1.1, RFC 3986"
        f" §4.1): {problem}.{hint} Use a prefix such as 'https://example.com/errors/',"
        " which gives types such as 'https://example.com/errors/expired', percent-encoding"
        " any other character."
    )


class Renderer:
    """Render failures for one service; configuration is checked at construction.

    Args:
        challenge: The realm and optional URIs of the ``WWW-Authenticate`` challenge.
        problem_json: Answer ``application/problem+json`` when ``Accept`` asks for it.
            When off, the same document is always sent as ``application/json``.
        problem_type_base: Prefix of the RFC 9457 ``type`` member; the reason value
            is appended (for example ``https://example.com/errors/`` gives
            ``https://example.com/errors/expired``). It and each ``type`` it gives
            must be a URI reference (RFC 3986 §4.1).
        retry_after: Seconds announced in ``Retry-After`` on 503 answers.
        error_body: The application's own error envelope: called with the failure, it
            returns the JSON document to send (a mapping of JSON values) instead of
            :func:`problem_document`. Status, challenge, ``Cache-Control: no-store``
            and ``Content-Length`` stay the library's; the content type is
            ``application/json`` (the document is not RFC 9457's). It is called once
            per reason here and once per distinct custom description later; should
            it raise then, that answer falls back to :func:`problem_document`.

    Raises:
        ValueError: A value cannot be sent as it is (an ``error_body`` that fails or
            returns something other than a JSON object included); the message names
            the option and how to fix it.
    """

    __slots__ = (
        "_cache",
        "_custom",
        "challenge",
        "error_body",
        "problem_json",
        "problem_type_base",
        "retry_after",
    )

    def __init__(
        self,
        challenge: ChallengeSettings | None = None,
        *,
        problem_json: bool = True,
        problem_type_base: str = DEFAULT_PROBLEM_TYPE_BASE,
        retry_after: int = DEFAULT_RETRY_AFTER,
        error_body: ErrorBody | None = None,
    ) -> None:
        """Validate the options and precompute the answer for every reason."""
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError("retry_after must be a whole number of seconds >= 0, e.g. 5.")
        if error_body is not None and not callable(error_body):
            raise TypeError(
                "error_body must be a callable taking the failure and returning a dict,"
                " e.g. error_body=lambda failure: {'code': failure.reason.value}; or None."
            )
        _check_problem_type_base(problem_type_base)
        self.challenge = challenge if challenge is not None else ChallengeSettings()
        self.problem_json = problem_json
        self.problem_type_base = problem_type_base
        self.retry_after = retry_after
        self.error_body = error_body
        self._cache: Mapping[Reason, tuple[RenderedFailure, RenderedFailure]] = {
            reason: self._compute(AuthFailure(reason), at_start=True) for reason in Reason
        }
        self._custom: dict[
            tuple[Reason, str, tuple[str, ...]], tuple[RenderedFailure, RenderedFailure]
        ] = {}

    def render(
        self,
        failure: AuthFailure,
        *,
        method: str = "GET",
        accept: str | None = None,
    ) -> RenderedFailure:
        """Return the answer to send for ``failure``.

        Args:
            failure: What went wrong.
            method: The request method; ``HEAD`` gets the headers and no body.
            accept: The request's ``Accept`` value, for the media type.
        """
        if failure.scopes or failure.description is not failure.reason.description:
            # Keyed by the description as sent: cleaned, so of bounded length.
            key = (failure.reason, failure_description(failure), failure.scopes)
            answers = self._custom.get(key)
            if answers is None:
                answers = self._compute(failure)
                if len(self._custom) < _CUSTOM_ANSWERS:
                    self._custom[key] = answers
            json_answer, problem_answer = answers
        else:
            json_answer, problem_answer = self._cache[failure.reason]
        answer = problem_answer if self.problem_json and wants_problem_json(accept) else json_answer
        if method == "HEAD":
            return RenderedFailure(answer.status, answer.headers, b"")
        return answer

    def _body(self, failure: AuthFailure, *, at_start: bool) -> bytes | None:
        """The application's body for ``failure``; ``None``: use the library's own.

        At start-up a failing ``error_body`` is a configuration error; later (a custom
        description) the answer falls back to the library's body rather than a 500.
        """
        if self.error_body is None:
            return None
        problem: str | None = None
        try:
            document: object = self.error_body(failure)
            if isinstance(document, Mapping):
                return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("ascii")
            problem = f"it returned {type(document).__name__}, not a dict"
        except Exception as exc:  # noqa: BLE001 - the application's code: any failure
            problem = f"{type(exc).__name__}: {exc}"
        if not at_start:
            return None
        raise ValueError(
            f"error_body failed for reason {failure.reason.value!r}: {problem}. It must"
            " return a dict of JSON values (str, int, float, bool, None, list, dict) for"
            " every failure."
        )

    def _compute(
        self, failure: AuthFailure, *, at_start: bool = False
    ) -> tuple[RenderedFailure, RenderedFailure]:
        reason = failure.reason
        body = self._body(failure, at_start=at_start)
        problem_type = PROBLEM_JSON
        if body is None:
            document = problem_document(failure, self.problem_type_base)
            body = json.dumps(document, separators=(",", ":")).encode("ascii")
        else:
            problem_type = JSON  # the application's envelope is not an RFC 9457 document
        common: list[tuple[str, str]] = [
            ("cache-control", "no-store"),
            ("content-length", str(len(body))),
        ]
        challenge = build_challenge(failure, self.challenge)
        if challenge is not None:
            common.append(("www-authenticate", challenge))
        if reason.is_server_fault:
            common.append(("retry-after", str(self.retry_after)))
        return (
            RenderedFailure(reason.status, (("content-type", JSON), *common), body),
            RenderedFailure(reason.status, (("content-type", problem_type), *common), body),
        )
