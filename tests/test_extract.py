"""Finding the bearer token (RFC 6750 §2, RFC 9110 §11) and the copy-paste hints."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from invalidtoken_mw import (
    AuthFailure,
    ExtractedToken,
    Reason,
    Renderer,
    TokenExtractor,
    TokenSource,
)
from invalidtoken_mw.extract import DEFAULT_MAX_TOKEN_BYTES
from support.strategies import (
    SECRET_MARKER,
    authorization_around_secret,
    check_challenge,
    hostile_text,
    param_name_spellings,
    parameter_strings,
    secret_tokens,
)

RFC_TOKEN = "mF_9.B5f-4.1JqM"  # RFC 6750 §2.1-2.3 examples
# Distinctive: contains SECRET_MARKER, which no text the library writes contains.
TOKEN = f"{SECRET_MARKER}Tok3nValue"
JWT_HEADER = f"eyJ{SECRET_MARKER}1Header"
JWT_CLAIMS = f"eyJ{SECRET_MARKER}2Claims"
FORM = "application/x-www-form-urlencoded"
B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# Letters and digits only: '+' and '/' would be changed by form decoding, '=' is padding.
B64TOKEN_CHARS_FOR_TEST = "abcXYZ019-._~"
EXTRACTION_REASONS = {Reason.MISSING_TOKEN, Reason.INVALID_REQUEST, Reason.MALFORMED_TOKEN}

DEFAULT = TokenExtractor()
EVERY_METHOD = TokenExtractor(allow_query=True, allow_body=True)
RENDERER = Renderer()


def _failure(
    extractor: TokenExtractor,
    authorization: list[str],
    *,
    query_string: str = "",
    form_body: str | None = None,
) -> AuthFailure:
    """Return the AuthFailure that extraction must raise (fail the test if it does not)."""
    with pytest.raises(AuthFailure) as caught:
        extractor.extract(authorization, query_string=query_string, form_body=form_body)
    return caught.value


# RFC 6750 §2 examples ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "query_string", "form_body", "expected"),
    [
        pytest.param(
            [f"Bearer {RFC_TOKEN}"],
            "",
            None,
            ExtractedToken(RFC_TOKEN, TokenSource.HEADER),
            id="rfc6750-2.1-authorization-header",
        ),
        pytest.param(
            [],
            "",
            f"access_token={RFC_TOKEN}",
            ExtractedToken(RFC_TOKEN, TokenSource.BODY),
            id="rfc6750-2.2-form-encoded-body",
        ),
        pytest.param(
            [],
            f"access_token={RFC_TOKEN}",
            None,
            ExtractedToken(RFC_TOKEN, TokenSource.QUERY),
            id="rfc6750-2.3-uri-query",
        ),
        pytest.param(
            [],
            f"b=1&access_token={RFC_TOKEN}&c=2",
            None,
            ExtractedToken(RFC_TOKEN, TokenSource.QUERY),
            id="rfc6750-2.3-uri-query-among-other-parameters",
        ),
        pytest.param(
            [],
            "access_token=abc%2Bdef%2F%3D",
            None,
            ExtractedToken("abc+def/=", TokenSource.QUERY),
            id="rfc6750-2.3-uri-query-percent-decoded",
        ),
        pytest.param(
            [],
            "",
            "grant=x&access_token=abc%2B",
            ExtractedToken("abc+", TokenSource.BODY),
            id="rfc6750-2.2-form-body-percent-decoded",
        ),
        pytest.param(
            ["Bearer aZ09-._~+/=="],
            "",
            None,
            ExtractedToken("aZ09-._~+/==", TokenSource.HEADER),
            id="rfc6750-2.1-b64token-every-character-and-padding",
        ),
        pytest.param(
            ["Basic dXNlcjpwYXNz"],
            f"access_token={RFC_TOKEN}",
            None,
            ExtractedToken(RFC_TOKEN, TokenSource.QUERY),
            id="rfc6750-2-basic-header-is-not-a-bearer-method",
        ),
    ],
)
def test_rfc6750_section2_token_is_found(
    authorization: list[str], query_string: str, form_body: str | None, expected: ExtractedToken
) -> None:
    """With every method switched on, the token is found where RFC 6750 §2 puts it."""
    actual = EVERY_METHOD.extract(authorization, query_string=query_string, form_body=form_body)
    assert expected == actual


# Finding the token ------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param([], id="rfc6750-3-no-authorization-header"),
        pytest.param(["Basic dXNlcjpwYXNz"], id="rfc6750-3-basic-credentials"),
        pytest.param(['Digest username="a"'], id="rfc6750-3-digest-credentials"),
        pytest.param(["Token abc"], id="rfc6750-3-other-scheme"),
        pytest.param(["Bearerabc"], id="rfc6750-3-scheme-merely-starting-with-bearer"),
        pytest.param([""], id="rfc6750-3-empty-authorization-header"),
    ],
)
def test_no_bearer_credentials_is_a_bare_401(authorization: list[str]) -> None:
    """Without bearer credentials the answer is missing_token: 401 with a bare challenge."""
    failure = _failure(DEFAULT, authorization)
    rendered = RENDERER.render(failure)
    expected = (Reason.MISSING_TOKEN, 401, 'Bearer realm="api"')
    assert expected == (failure.reason, rendered.status, dict(rendered.headers)["www-authenticate"])


@pytest.mark.parametrize(
    "scheme",
    [
        pytest.param("Bearer", id="rfc9110-11.1-Bearer"),
        pytest.param("bearer", id="rfc9110-11.1-lower-case"),
        pytest.param("BEARER", id="rfc9110-11.1-upper-case"),
        pytest.param("bEaReR", id="rfc9110-11.1-mixed-case"),
    ],
)
def test_scheme_is_case_insensitive(scheme: str) -> None:
    """The Bearer scheme is matched case-insensitively and the token passes unchanged."""
    expected = ExtractedToken(RFC_TOKEN, TokenSource.HEADER)
    assert expected == DEFAULT.extract([f"{scheme} {RFC_TOKEN}"])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"Bearer {RFC_TOKEN}", id="rfc9110-11.4-one-space"),
        pytest.param(f"Bearer  {RFC_TOKEN}", id="rfc9110-11.4-two-spaces"),
        pytest.param(f"Bearer        {RFC_TOKEN}", id="rfc9110-11.4-many-spaces"),
        pytest.param(f"  Bearer {RFC_TOKEN}  ", id="rfc9110-5.5-surrounding-whitespace-trimmed"),
        pytest.param(f"Bearer {RFC_TOKEN}\t", id="rfc9110-5.5-trailing-tab-trimmed"),
    ],
)
def test_one_or_more_spaces_after_the_scheme(value: str) -> None:
    """Any number of spaces (1*SP) separates the scheme from the token."""
    assert ExtractedToken(RFC_TOKEN, TokenSource.HEADER) == DEFAULT.extract([value])


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer", id="rfc6750-3.1-bearer-alone"),
        pytest.param("Bearer ", id="rfc6750-3.1-bearer-and-space"),
        pytest.param("bearer    ", id="rfc6750-3.1-bearer-and-spaces"),
        pytest.param("Bearer\t", id="rfc6750-3.1-bearer-and-tab"),
    ],
)
def test_bearer_without_token_is_invalid_request(value: str) -> None:
    """'Bearer' with no token is a 400 invalid_request, not a bare 401."""
    failure = _failure(DEFAULT, [value])
    expected = (
        Reason.INVALID_REQUEST,
        400,
        "invalid_request",
        "The request names the Bearer scheme but carries no token.",
    )
    assert expected == (failure.reason, failure.status, failure.error, failure.description)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("abc!def", id="rfc6750-2.1-exclamation-mark"),
        pytest.param("abc$def", id="rfc6750-2.1-dollar"),
        pytest.param("abc,def", id="rfc6750-2.1-comma"),
        pytest.param("abc=def", id="rfc6750-2.1-equals-not-at-the-end"),
        pytest.param("=abc", id="rfc6750-2.1-only-padding-first"),
        pytest.param("==", id="rfc6750-2.1-padding-alone"),
        pytest.param("t\u00f6ken", id="rfc6750-2.1-non-ascii"),
        pytest.param("abc%20def", id="rfc6750-2.1-percent"),
        pytest.param("abc def", id="rfc6750-2.1-space-inside"),
        pytest.param("abc\x00def", id="rfc6750-2.1-nul"),
    ],
)
def test_characters_outside_b64token_are_malformed(token: str) -> None:
    """A token with characters outside the b64token set is malformed_token (401 invalid_token)."""
    failure = _failure(DEFAULT, [f"Bearer {token}"])
    expected = (Reason.MALFORMED_TOKEN, 401, "invalid_token")
    assert expected == (
        failure.reason,
        failure.status,
        failure.error,
    )


@pytest.mark.parametrize(
    ("authorization", "query_string", "form_body"),
    [
        pytest.param(
            [f"Bearer {RFC_TOKEN}", f"Bearer {RFC_TOKEN}"],
            "",
            None,
            id="rfc6750-2-two-authorization-headers",
        ),
        pytest.param(
            [f"Bearer {RFC_TOKEN}", "Basic dXNlcjpwYXNz"],
            "",
            None,
            id="rfc9110-11.6.2-two-authorization-headers-any-scheme",
        ),
        pytest.param(
            [f"Bearer {RFC_TOKEN}, Bearer other"],
            "",
            None,
            id="rfc9110-5.3-two-headers-folded-into-one",
        ),
        pytest.param(
            [f"Bearer {RFC_TOKEN}"],
            f"access_token={RFC_TOKEN}",
            None,
            id="rfc6750-2-header-and-query",
        ),
        pytest.param(
            [f"Bearer {RFC_TOKEN}"],
            "",
            f"access_token={RFC_TOKEN}",
            id="rfc6750-2-header-and-body",
        ),
        pytest.param(
            [],
            f"access_token={RFC_TOKEN}",
            f"access_token={RFC_TOKEN}",
            id="rfc6750-2-query-and-body",
        ),
    ],
)
def test_more_than_one_token_is_invalid_request(
    authorization: list[str], query_string: str, form_body: str | None
) -> None:
    """A token sent twice, or by more than one method, is a 400 invalid_request."""
    failure = _failure(EVERY_METHOD, authorization, query_string=query_string, form_body=form_body)
    expected = (
        Reason.INVALID_REQUEST,
        400,
        "The request carries more than one access token; send exactly one.",
    )
    assert expected == (failure.reason, failure.status, failure.description)


def test_two_authorization_headers_is_invalid_request_by_default() -> None:
    """Two Authorization headers are refused even with only the header method on."""
    failure = _failure(DEFAULT, [f"Bearer {RFC_TOKEN}", f"Bearer {RFC_TOKEN}"])
    expected = Reason.INVALID_REQUEST
    assert expected == failure.reason


@pytest.mark.parametrize(
    ("query_string", "form_body"),
    [
        pytest.param(f"access_token={RFC_TOKEN}", None, id="rfc6750-2.3-query-off-by-default"),
        pytest.param("", f"access_token={RFC_TOKEN}", id="rfc6750-2.2-body-off-by-default"),
    ],
)
def test_query_and_body_tokens_are_ignored_when_off(
    query_string: str, form_body: str | None
) -> None:
    """With the query and body methods off (the default), such a token is ignored: a bare 401."""
    failure = _failure(DEFAULT, [], query_string=query_string, form_body=form_body)
    expected = Reason.MISSING_TOKEN
    assert expected == failure.reason


def test_ignored_query_token_does_not_clash_with_the_header() -> None:
    """With the query method off, a header token plus a query token is not a 400."""
    actual = DEFAULT.extract([f"Bearer {RFC_TOKEN}"], query_string="access_token=other")
    assert ExtractedToken(RFC_TOKEN, TokenSource.HEADER) == actual


@pytest.mark.parametrize(
    ("allow_body", "method", "content_type", "expected"),
    [
        pytest.param(True, "POST", FORM, True, id="rfc6750-2.2-post-form-encoded"),
        pytest.param(True, "POST", f"{FORM}; charset=UTF-8", True, id="rfc6750-2.2-charset"),
        pytest.param(True, "PUT", FORM.upper(), True, id="rfc6750-2.2-media-type-any-case"),
        pytest.param(True, "GET", FORM, False, id="rfc6750-2.2-never-on-get"),
        pytest.param(True, "get", FORM, False, id="rfc6750-2.2-never-on-get-any-case"),
        pytest.param(True, "HEAD", FORM, False, id="rfc6750-2.2-never-on-head"),
        pytest.param(True, "POST", "application/json", False, id="rfc6750-2.2-not-json"),
        pytest.param(True, "POST", "multipart/form-data; boundary=x", False, id="rfc6750-2.2-mp"),
        pytest.param(True, "POST", None, False, id="rfc6750-2.2-no-content-type"),
        pytest.param(False, "POST", FORM, False, id="rfc6750-2.2-off-by-default"),
    ],
)
def test_body_is_read_only_for_form_encoded_non_get(
    *, allow_body: bool, method: str, content_type: str | None, expected: bool
) -> None:
    """wants_body is true only when on, not GET/HEAD, and form-urlencoded (RFC 6750 §2.2)."""
    extractor = TokenExtractor(allow_body=allow_body)
    assert expected == extractor.wants_body(method, content_type)


@pytest.mark.parametrize(
    ("query_string", "description"),
    [
        pytest.param(
            "access_token=a&access_token=b",
            "The request carries more than one access token; send exactly one.",
            id="rfc6750-2.3-repeated",
        ),
        pytest.param(
            "access_token=a&x=1&access_token=a",
            "The request carries more than one access token; send exactly one.",
            id="rfc6750-2.3-repeated-same-value",
        ),
        pytest.param(
            "access_token=", "The access_token parameter is empty.", id="rfc6750-2.3-empty"
        ),
        pytest.param(
            "x=1&access_token", "The access_token parameter is empty.", id="rfc6750-2.3-no-value"
        ),
    ],
)
def test_repeated_or_empty_access_token_is_invalid_request(
    query_string: str, description: str
) -> None:
    """A repeated or empty access_token parameter is a 400 invalid_request."""
    failure = _failure(EVERY_METHOD, [], query_string=query_string)
    assert (Reason.INVALID_REQUEST, description) == (failure.reason, failure.description)


def test_repeated_access_token_in_body_is_invalid_request() -> None:
    """A repeated access_token in the form body is a 400 invalid_request too."""
    failure = _failure(EVERY_METHOD, [], form_body="access_token=a&access_token=b")
    expected = Reason.INVALID_REQUEST
    assert expected == failure.reason


@pytest.mark.parametrize(
    ("query_string", "form_body"),
    [
        pytest.param("access%5Ftoken=other", None, id="query-encoded-underscore"),
        pytest.param("%61ccess_token=other", None, id="query-encoded-first-letter"),
        pytest.param(
            "x=1&%61%63%63%65%73%73%5f%74%6f%6b%65%6e=other", None, id="query-all-encoded"
        ),
        pytest.param("", "access%5Ftoken=other", id="body-encoded-underscore"),
        pytest.param("x=1;access_token=other", None, id="query-after-semicolon"),
        pytest.param("", "x=1;access_token=other", id="body-after-semicolon"),
    ],
)
def test_header_plus_a_parameter_any_parser_sees_is_invalid_request(
    query_string: str, form_body: str | None
) -> None:
    """However the access_token name is spelled or separated, a second token is a 400."""
    failure = _failure(
        EVERY_METHOD, [f"Bearer {RFC_TOKEN}"], query_string=query_string, form_body=form_body
    )
    expected = Reason.INVALID_REQUEST
    assert expected == failure.reason


@pytest.mark.parametrize(
    "query_string",
    [
        pytest.param("access_token=a&%61ccess_token=b", id="literal-and-encoded"),
        pytest.param("access%5Ftoken=a&access%5ftoken=b", id="two-encoded"),
    ],
)
def test_repeated_encoded_access_token_is_invalid_request(query_string: str) -> None:
    """A parameter repeated under another spelling is still repeated."""
    failure = _failure(EVERY_METHOD, [], query_string=query_string)
    expected = (
        Reason.INVALID_REQUEST,
        "The request carries more than one access token; send exactly one.",
    )
    assert expected == (failure.reason, failure.description)


def test_encoded_name_is_the_access_token_parameter() -> None:
    """``access%5Ftoken`` is found as the query token, as the application's parser finds it."""
    actual = EVERY_METHOD.extract([], query_string=f"a=1&access%5Ftoken={RFC_TOKEN}")
    assert ExtractedToken(RFC_TOKEN, TokenSource.QUERY) == actual


@pytest.mark.parametrize(
    "query_string",
    [
        pytest.param(f"access_token={RFC_TOKEN};x=1", id="semicolon-after"),
        pytest.param(f"x=1;access_token={RFC_TOKEN}", id="semicolon-before"),
    ],
)
def test_semicolon_next_to_access_token_is_ambiguous(query_string: str) -> None:
    """Parsers splitting on ';' would read another token than those splitting on '&': a 400."""
    failure = _failure(EVERY_METHOD, [], query_string=query_string)
    expected = (
        Reason.INVALID_REQUEST,
        "The access_token parameter is ambiguous: separate parameters with '&' only, not ';'.",
    )
    assert expected == (failure.reason, failure.description)


def test_semicolons_elsewhere_are_harmless() -> None:
    """A ';' inside another parameter changes nothing about the token."""
    actual = EVERY_METHOD.extract([], query_string=f"q=a;b&access_token={RFC_TOKEN}&r=c;d")
    assert ExtractedToken(RFC_TOKEN, TokenSource.QUERY) == actual


def _seen_by_parsers(encoded: str) -> list[str]:
    """The access_token values parse_qsl finds splitting on '&', then on '&' and ';'."""
    amp = [v for k, v in parse_qsl(encoded, keep_blank_values=True) if k == "access_token"]
    both = parse_qsl(encoded.replace(";", "&"), keep_blank_values=True)
    return amp + [v for k, v in both if k == "access_token"]


@given(encoded=parameter_strings(), where=st.sampled_from(["query", "body"]))
@example(encoded="access%5Ftoken=x", where="query")
@example(encoded="x=1;%61ccess_token=y", where="body")
def test_header_token_stands_alone_only_when_no_parser_sees_another(
    encoded: str, where: str
) -> None:
    """With a header token, any access_token parse_qsl reads (either separator) is refused.

    A 400, or a 401 when the second token is itself malformed (checked first, as for a
    literal ``access_token``).
    """
    query, body = (encoded, None) if where == "query" else ("", encoded)
    outcome = _outcome(EVERY_METHOD, [f"Bearer {RFC_TOKEN}"], query_string=query, form_body=body)
    if _seen_by_parsers(encoded):
        assert isinstance(outcome, AuthFailure)
        assert outcome.reason in {Reason.INVALID_REQUEST, Reason.MALFORMED_TOKEN}
    else:
        assert ExtractedToken(RFC_TOKEN, TokenSource.HEADER) == outcome


@given(name=param_name_spellings(), token=st.text(B64TOKEN_CHARS_FOR_TEST, min_size=1, max_size=20))
def test_any_spelling_of_the_name_carries_the_token(name: str, token: str) -> None:
    """The token under any percent-encoded spelling of access_token is the query token."""
    actual = EVERY_METHOD.extract([], query_string=f"{name}={token}")
    assert ExtractedToken(token, TokenSource.QUERY) == actual


def test_query_token_is_marked_as_from_the_query() -> None:
    """A query token says so, so an adapter can add Cache-Control: private to the success."""
    actual = TokenExtractor(allow_query=True).extract([], query_string=f"access_token={RFC_TOKEN}")
    expected = TokenSource.QUERY
    assert expected == actual.source


def test_invalid_query_token_is_malformed() -> None:
    """A query token outside the b64token set is malformed_token, like a header one."""
    failure = _failure(EVERY_METHOD, [], query_string="access_token=a%22b")
    expected = Reason.MALFORMED_TOKEN
    assert expected == failure.reason


TOO_LARGE = "larger than this service accepts"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer " + "a" * (DEFAULT_MAX_TOKEN_BYTES - 6), id="bearer-8193"),
        pytest.param("Basic " + "a" * DEFAULT_MAX_TOKEN_BYTES, id="any-scheme-before-parsing"),
        pytest.param("Bearer " + "a b" * 4000, id="garbage-before-parsing"),
        pytest.param("x" * 1_000_000, id="one-megabyte"),
    ],
)
def test_oversized_header_is_malformed_before_parsing(value: str) -> None:
    """An Authorization value over 8 KiB is malformed_token, whatever it contains."""
    failure = _failure(DEFAULT, [value])
    expected = Reason.MALFORMED_TOKEN
    assert expected == failure.reason
    assert TOO_LARGE in failure.description


def test_header_at_the_limit_is_accepted() -> None:
    """An Authorization value of exactly max_token_bytes is still parsed."""
    token = "a" * (DEFAULT_MAX_TOKEN_BYTES - len("Bearer "))
    assert ExtractedToken(token, TokenSource.HEADER) == DEFAULT.extract([f"Bearer {token}"])


def test_limit_is_configurable() -> None:
    """max_token_bytes lowers the limit: 21 characters pass at 21 and fail at 20."""
    value = "Bearer " + "a" * 14
    accepted = TokenExtractor(max_token_bytes=21).extract([value])
    failure = _failure(TokenExtractor(max_token_bytes=20), [value])
    assert "a" * 14 == accepted.token
    assert Reason.MALFORMED_TOKEN == failure.reason
    assert TOO_LARGE in failure.description


@pytest.mark.parametrize(
    ("query_string", "form_body"),
    [
        pytest.param("access_token=" + "a" * 21, None, id="query-token-over-limit"),
        pytest.param("", "access_token=" + "a" * 21, id="body-token-over-limit"),
        pytest.param("access%5Ftoken=" + "a" * 21, None, id="encoded-name-token-over-limit"),
    ],
)
def test_oversized_query_or_body_is_malformed(query_string: str, form_body: str | None) -> None:
    """Query and body tokens over the limit are malformed_token."""
    extractor = TokenExtractor(allow_query=True, allow_body=True, max_token_bytes=20)
    failure = _failure(extractor, [], query_string=query_string, form_body=form_body)
    assert Reason.MALFORMED_TOKEN == failure.reason
    assert TOO_LARGE in failure.description


@pytest.mark.parametrize(
    ("query_string", "form_body"),
    [
        pytest.param("x=" + "b%20" * 80 + "&access_token=abc", None, id="long-query"),
        pytest.param("", "x=" + "b%20" * 80 + "&access_token=abc", id="long-body"),
    ],
)
def test_parameters_far_beyond_the_limit_are_still_searched(
    query_string: str, form_body: str | None
) -> None:
    """Only the token counts against the limit: long other parameters are parsed past."""
    extractor = TokenExtractor(allow_query=True, allow_body=True, max_token_bytes=20)
    actual = extractor.extract([], query_string=query_string, form_body=form_body)
    source = TokenSource.QUERY if query_string else TokenSource.BODY
    assert ExtractedToken("abc", source) == actual


# Copy-paste hints --------------------------------------------------------------------

QUOTED = "wrapped in quotes"
TWICE = "the Bearer scheme appears twice"
WRAPPED = "contains spaces or line breaks"
CHARACTERS = "contains characters a bearer token cannot contain"
PUNCTUATION = "the scheme is followed by punctuation"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        pytest.param(f'Bearer "{TOKEN}"', QUOTED, id="double-quotes"),
        pytest.param(f"Bearer '{TOKEN}'", QUOTED, id="single-quotes"),
        pytest.param(f'Bearer "{JWT_HEADER}.{JWT_CLAIMS}.sig"', QUOTED, id="quoted-jwt"),
        pytest.param(f"Bearer Bearer {TOKEN}", TWICE, id="bearer-bearer"),
        pytest.param(f"Bearer bearer  {TOKEN}", TWICE, id="bearer-bearer-any-case"),
        pytest.param("Bearer Bearer", TWICE, id="bearer-bearer-without-token"),
        pytest.param(f"Bearer {TOKEN[:9]} {TOKEN[9:]}", WRAPPED, id="space-inside"),
        pytest.param(f"Bearer {TOKEN[:9]}\n{TOKEN[9:]}", WRAPPED, id="line-break-inside"),
        pytest.param(f"Bearer {TOKEN[:9]}\r\n {TOKEN[9:]}", WRAPPED, id="folded-line-inside"),
        pytest.param(f"Bearer {TOKEN[:9]}\t{TOKEN[9:]}", WRAPPED, id="tab-inside"),
        pytest.param(f"Bearer\t{TOKEN}", WRAPPED, id="tab-after-scheme"),
        pytest.param(f"Bearer\n{TOKEN}", WRAPPED, id="line-break-after-scheme"),
        pytest.param(f"Bearer\r\n {TOKEN}", WRAPPED, id="folded-line-after-scheme"),
        pytest.param(f"Bearer\u00a0{TOKEN}", WRAPPED, id="no-break-space-after-scheme"),
        pytest.param(f"Bearer: {TOKEN}", PUNCTUATION, id="colon-after-scheme"),
        pytest.param(f"Bearer:{TOKEN}", PUNCTUATION, id="colon-no-space"),
        pytest.param(f"bearer= {TOKEN}", PUNCTUATION, id="equals-after-scheme"),
        pytest.param(f"Bearer,{TOKEN}", PUNCTUATION, id="comma-after-scheme"),
        pytest.param(f"Bearer {TOKEN}!", CHARACTERS, id="stray-character"),
        pytest.param(f'Bearer "{TOKEN}', CHARACTERS, id="one-quote"),
        pytest.param(
            f"Bearer {JWT_HEADER}", "it has 1 of the 3 dot-separated parts", id="jwt-1-segment"
        ),
        pytest.param(
            f"Bearer {JWT_HEADER}.{JWT_CLAIMS}",
            "it has 2 of the 3 dot-separated parts",
            id="jwt-2-segments",
        ),
        pytest.param(
            f"Bearer {JWT_HEADER}.",
            "it has 2 of the 3 dot-separated parts",
            id="jwt-trailing-dot",
        ),
    ],
)
def test_copy_paste_mistake_is_malformed_with_a_hint_and_no_token(value: str, hint: str) -> None:
    """A copy-paste mistake is malformed_token with a hint that never repeats the token."""
    failure = _failure(DEFAULT, [value])
    expected = Reason.MALFORMED_TOKEN
    assert expected == failure.reason
    assert hint in failure.description
    assert SECRET_MARKER not in failure.description
    assert SECRET_MARKER not in repr(failure)
    assert SECRET_MARKER not in str(failure)
    assert failure.description.startswith("The access token is malformed: ")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(f"{JWT_HEADER}.{JWT_CLAIMS}.", id="empty-signature"),
        pytest.param(f"{JWT_HEADER}..", id="empty-claims-and-signature"),
        pytest.param(f"{JWT_HEADER}.{JWT_CLAIMS}.a.b.c", id="five-segments-jwe"),
    ],
)
def test_jwt_with_three_or_more_parts_is_left_to_the_verifier(token: str) -> None:
    """A b64token JWT with 3+ parts is extracted as-is; the verifier judges its segments."""
    assert ExtractedToken(token, TokenSource.HEADER) == DEFAULT.extract([f"Bearer {token}"])


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        pytest.param(f"access_token=%22{TOKEN}%22", QUOTED, id="rfc6750-2.3-quoted-query-token"),
        pytest.param(f"access_token={JWT_HEADER}", "it has 1 of", id="rfc6750-2.3-truncated"),
        pytest.param(f"access_token={TOKEN}+x", WRAPPED, id="rfc6750-2.3-plus-is-a-space"),
    ],
)
def test_copy_paste_hints_apply_to_query_tokens(value: str, hint: str) -> None:
    """Query tokens get the same hints, again without repeating the token."""
    failure = _failure(EVERY_METHOD, [], query_string=value)
    assert Reason.MALFORMED_TOKEN == failure.reason
    assert hint in failure.description
    assert SECRET_MARKER not in failure.description


# Configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1])
def test_max_token_bytes_below_one_is_refused(limit: int) -> None:
    """max_token_bytes below 1 raises ValueError naming the default."""
    with pytest.raises(
        ValueError, match=r"max_token_bytes must be at least 1; the default is 8192"
    ):
        TokenExtractor(max_token_bytes=limit)


@pytest.mark.parametrize("limit", [True, 8192.0, "8192"], ids=repr)
def test_max_token_bytes_of_another_type_is_refused(limit: object) -> None:
    """max_token_bytes that is not an int (a bool, float or str) raises TypeError."""
    with pytest.raises(TypeError, match="max_token_bytes must be an int"):
        TokenExtractor(max_token_bytes=limit)  # type: ignore[arg-type]


def test_extractor_defaults() -> None:
    """By default only the header method is on and the limit is 8 KiB."""
    assert not DEFAULT.allow_query
    assert not DEFAULT.allow_body
    assert 8192 == DEFAULT.max_token_bytes


def test_extracted_token_repr_hides_the_token() -> None:
    """The repr of an ExtractedToken shows its length and source, never the token."""
    expected = "ExtractedToken(token=<20 chars>, source='header')"
    assert expected == repr(ExtractedToken(TOKEN, TokenSource.HEADER))


def test_token_source_str_is_its_value() -> None:
    """str(TokenSource.QUERY) is 'query', for logs."""
    expected = "query"
    assert expected == str(TokenSource.QUERY)


# Properties: valid challenges, no token echoed ----------------------------------------


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_secret_marker_is_in_no_text_the_library_writes(reason: Reason) -> None:
    """SECRET_MARKER appears in no default answer, so finding it in one means a token leaked."""
    rendered = RENDERER.render(AuthFailure(reason), accept="application/problem+json")
    written = [rendered.body.decode("ascii"), *(value for _, value in rendered.headers)]
    leaks = [text for text in written if SECRET_MARKER in text]
    assert not leaks, leaks


def _outcome(
    extractor: TokenExtractor,
    authorization: list[str],
    *,
    query_string: str = "",
    form_body: str | None = None,
) -> ExtractedToken | AuthFailure:
    """Return the extracted token or the AuthFailure; any other exception fails the test."""
    try:
        return extractor.extract(authorization, query_string=query_string, form_body=form_body)
    except AuthFailure as failure:
        return failure


@given(
    authorization=st.lists(hostile_text(max_size=60), max_size=2),
    query_string=hostile_text(max_size=60),
    form_body=st.none() | hostile_text(max_size=60),
)
@example(authorization=["Bearer \ud800"], query_string="access_token=\udcff%41", form_body=None)
def test_extract_never_raises_anything_but_auth_failure(
    authorization: list[str], query_string: str, form_body: str | None
) -> None:
    """Whatever the request holds, extraction returns a b64token or raises an AuthFailure."""
    outcome = _outcome(EVERY_METHOD, authorization, query_string=query_string, form_body=form_body)
    if isinstance(outcome, AuthFailure):
        assert outcome.reason in EXTRACTION_REASONS
    else:
        assert B64TOKEN.fullmatch(outcome.token), outcome


@given(
    case=authorization_around_secret(),
    where=st.sampled_from(["header", "query", "body"]),
    accept=st.sampled_from([None, "application/problem+json"]),
)
@example(case=(f'Bearer "{TOKEN}"', TOKEN), where="header", accept=None)
@example(case=(f"Bearer {JWT_HEADER}", JWT_HEADER), where="header", accept=None)
def test_rendered_failure_never_contains_the_token(
    case: tuple[str, str], where: str, accept: str | None
) -> None:
    """Whatever is built around a secret token, no header, body or str of the failure holds it."""
    value, token = case
    authorization, query, body = [value], "", None
    if where == "query":
        authorization, query = [], f"access_token={value}"
    elif where == "body":
        authorization, body = [], f"access_token={value}"
    outcome = _outcome(EVERY_METHOD, authorization, query_string=query, form_body=body)
    if not isinstance(outcome, AuthFailure):
        assert B64TOKEN.fullmatch(outcome.token), outcome
        return
    assert outcome.reason in EXTRACTION_REASONS
    rendered = RENDERER.render(outcome, accept=accept)
    written = [rendered.body.decode("ascii"), str(outcome), repr(outcome)]
    written += [f"{name}: {header}" for name, header in rendered.headers]
    for text in written:
        assert token not in text
        assert SECRET_MARKER not in text
    check_challenge(dict(rendered.headers)["www-authenticate"])


@given(secret_tokens())
def test_secret_tokens_alone_are_extracted_or_flagged_as_truncated(token: str) -> None:
    """A well-formed secret token is extracted as-is, unless it is a JWT with fewer than 3 parts."""
    truncated = token.startswith("eyJ") and token.count(".") < 2
    outcome = _outcome(DEFAULT, [f"Bearer {token}"])
    if truncated:
        assert isinstance(outcome, AuthFailure)
        assert Reason.MALFORMED_TOKEN is outcome.reason
    else:
        assert ExtractedToken(token, TokenSource.HEADER) == outcome


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("Bearer abcdef,Bearer ghijkl", id="folded-no-space"),
        pytest.param("Bearer abcdef, bearer ghijkl", id="folded-lowercase"),
        pytest.param("Bearer abcdef,   Bearer ghijkl", id="folded-spaces"),
    ],
)
def test_headers_folded_into_one_value_are_invalid_request(value: str) -> None:
    """Two Authorization headers joined with a comma by a proxy still count as two tokens."""
    with pytest.raises(AuthFailure) as caught:
        TokenExtractor().extract([value])
    assert Reason.INVALID_REQUEST == caught.value.reason


def _answer(call: Any) -> tuple[str, str]:
    """``("token", value)`` or ``(reason, description)``."""
    try:
        return ("token", call().token)
    except AuthFailure as failure:
        return (failure.reason.value, failure.description)


_HEADER_PIECES = st.sampled_from(
    [
        "Bearer ",
        "bearer ",
        "BEARER ",
        "BeArEr ",
        "Bearer  ",
        " ",
        "\t",
        "=",
        ".",
        "eyJ",
        "bearer",
        "Basic ",
        ",",
        '"',
        "a",
        "Z9",
        "-_~+/",
        "é",
        "\x00",
    ]
)


@given(pieces=st.lists(_HEADER_PIECES, max_size=8), size=st.integers(8, 64))
@example(pieces=["Bearer ", "bearer"], size=64)
@example(pieces=["Bearer ", "eyJ", "a", "."], size=64)
@example(pieces=["Bearer ", "a", "a", "a", "a"], size=10)
def test_the_quick_path_answers_as_the_full_parse(pieces: list[str], size: int) -> None:
    """One header, header-only: the quick "Bearer <b64token>" path changes no answer."""
    extractor = TokenExtractor(max_token_bytes=size)
    value = "".join(pieces)
    quick = _answer(lambda: extractor.extract([value]))
    full = _answer(lambda: extractor._parse_header_in_full(value))  # noqa: SLF001 - the reference
    assert full == quick
