"""Building and parsing WWW-Authenticate challenges (RFC 6750 §3, RFC 9110 §11)."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from invalidtoken_mw import AuthFailure, ChallengeSettings, Reason, build_challenge
from invalidtoken_mw.challenge import clean_description
from invalidtoken_mw.testing import Challenge, parse_challenges
from support.strategies import (
    NQCHARS,
    auth_failures,
    challenge_settings,
    check_challenge,
    hostile_text,
    scope_lists,
)

ORDERS = ChallengeSettings(realm="orders")
ERROR_URI = "https://docs.example.com/errors#bearer"
METADATA = "https://orders.example.com/.well-known/oauth-protected-resource"


# RFC 6750 §3 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "settings", "expected"),
    [
        pytest.param(
            AuthFailure(Reason.MISSING_TOKEN),
            ChallengeSettings(realm="example"),
            'Bearer realm="example"',
            id="rfc6750-3-example-no-authentication",
        ),
        pytest.param(
            AuthFailure(Reason.EXPIRED, "The access token expired"),
            ChallengeSettings(realm="example"),
            'Bearer realm="example", error="invalid_token",'
            ' error_description="The access token expired"',
            id="rfc6750-3-example-expired-token",
        ),
        pytest.param(
            AuthFailure(Reason.MISSING_TOKEN, "A custom sentence that must not be sent."),
            ChallengeSettings(realm="example", error_uri=ERROR_URI),
            'Bearer realm="example"',
            id="rfc6750-3-no-error-information-without-authentication",
        ),
        pytest.param(
            AuthFailure(Reason.INVALID_REQUEST, "The request carries two tokens."),
            ORDERS,
            'Bearer realm="orders", error="invalid_request",'
            ' error_description="The request carries two tokens."',
            id="rfc6750-3.1-invalid_request",
        ),
        pytest.param(
            AuthFailure(Reason.INSUFFICIENT_SCOPE, "Needs more.", scopes=["orders:read", "x"]),
            ORDERS,
            'Bearer realm="orders", error="insufficient_scope",'
            ' error_description="Needs more.", scope="orders:read x"',
            id="rfc6750-3.1-insufficient_scope-with-scope",
        ),
        pytest.param(
            AuthFailure(Reason.EXPIRED, "The access token expired"),
            ChallengeSettings(realm="orders", error_uri=ERROR_URI),
            'Bearer realm="orders", error="invalid_token",'
            ' error_description="The access token expired",'
            f' error_uri="{ERROR_URI}"',
            id="rfc6750-3-error_uri",
        ),
        pytest.param(
            AuthFailure(Reason.MISSING_TOKEN),
            ChallengeSettings(realm="orders", resource_metadata=METADATA),
            f'Bearer realm="orders", resource_metadata="{METADATA}"',
            id="rfc9728-5.1-resource_metadata-on-bare-challenge",
        ),
        pytest.param(
            AuthFailure(Reason.INSUFFICIENT_SCOPE, "Needs more.", scopes=["a", "b"]),
            ChallengeSettings(realm="orders", error_uri=ERROR_URI, resource_metadata=METADATA),
            'Bearer realm="orders", error="insufficient_scope", error_description="Needs more.",'
            f' error_uri="{ERROR_URI}", scope="a b", resource_metadata="{METADATA}"',
            id="rfc6750-3-all-parameters",
        ),
    ],
)
def test_rfc6750_challenge(
    failure: AuthFailure, settings: ChallengeSettings, expected: str
) -> None:
    """The challenge is exactly the RFC 6750 §3 form for the failure and settings."""
    assert expected == build_challenge(failure, settings)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param(Reason.MISSING_TOKEN, 'Bearer realm="orders"', id="missing_token"),
        pytest.param(
            Reason.INVALID_REQUEST,
            'Bearer realm="orders", error="invalid_request", error_description="The request'
            ' carries the access token in an invalid way."',
            id="invalid_request",
        ),
        pytest.param(
            Reason.MALFORMED_TOKEN,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' is malformed."',
            id="malformed_token",
        ),
        pytest.param(
            Reason.ALGORITHM_NOT_ALLOWED,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' is signed with an algorithm this service does not accept."',
            id="algorithm_not_allowed",
        ),
        pytest.param(
            Reason.UNKNOWN_KEY,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            " is signed with a key this service does not know. If its issuer has just rotated"
            " keys, retry once a few seconds later; otherwise get a token from the issuer this"
            ' service trusts."',
            id="unknown_key",
        ),
        pytest.param(
            Reason.BAD_SIGNATURE,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' signature is invalid."',
            id="bad_signature",
        ),
        pytest.param(
            Reason.EXPIRED,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' expired. Obtain a new one and retry."',
            id="expired",
        ),
        pytest.param(
            Reason.NOT_YET_VALID,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            " is not valid yet. The clocks of the client, the issuer and this service may"
            ' disagree."',
            id="not_yet_valid",
        ),
        pytest.param(
            Reason.WRONG_ISSUER,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' was issued by an issuer this service does not trust."',
            id="wrong_issuer",
        ),
        pytest.param(
            Reason.WRONG_AUDIENCE,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' was issued for another audience."',
            id="wrong_audience",
        ),
        pytest.param(
            Reason.WRONG_TOKEN_TYPE,
            'Bearer realm="orders", error="invalid_token", error_description="The token is not'
            ' an access token of the type this service requires."',
            id="wrong_token_type",
        ),
        pytest.param(
            Reason.MISSING_CLAIM,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' lacks a required claim."',
            id="missing_claim",
        ),
        pytest.param(
            Reason.REVOKED,
            'Bearer realm="orders", error="invalid_token", error_description="The access token'
            ' has been revoked."',
            id="revoked",
        ),
        pytest.param(
            Reason.INSUFFICIENT_SCOPE,
            'Bearer realm="orders", error="insufficient_scope", error_description="The access'
            ' token does not grant the scope this request requires."',
            id="insufficient_scope",
        ),
        pytest.param(Reason.KEY_UNAVAILABLE, None, id="key_unavailable"),
        pytest.param(Reason.REVOCATION_UNAVAILABLE, None, id="revocation_unavailable"),
    ],
)
def test_default_challenge_for_every_reason(reason: Reason, expected: str | None) -> None:
    """Every reason's default challenge is pinned to the exact header string (None for a 503)."""
    assert expected == build_challenge(AuthFailure(reason), ORDERS)


@pytest.mark.parametrize("reason", [Reason.KEY_UNAVAILABLE, Reason.REVOCATION_UNAVAILABLE], ids=str)
def test_server_faults_get_no_challenge_even_when_configured(reason: Reason) -> None:
    """A 503 gets no WWW-Authenticate, even with error_uri and resource_metadata configured."""
    settings = ChallengeSettings(realm="orders", error_uri=ERROR_URI, resource_metadata=METADATA)
    assert build_challenge(AuthFailure(reason, "x", scopes=["a"]), settings) is None


def test_scope_is_only_announced_for_insufficient_scope() -> None:
    """Scopes on a failure other than insufficient_scope do not add a scope parameter."""
    failure = AuthFailure(Reason.EXPIRED, "Gone.", scopes=["orders:read"])
    expected = 'Bearer realm="orders", error="invalid_token", error_description="Gone."'
    assert expected == build_challenge(failure, ORDERS)


def test_scope_drops_invalid_and_repeated_scope_tokens() -> None:
    """Scope tokens outside RFC 6750 §3 NQCHAR are dropped and repeats are announced once."""
    scopes = ["read", 'bad"quote', "a b", "read", "", "caf\u00e9", "back\\slash", "write"]
    failure = AuthFailure(Reason.INSUFFICIENT_SCOPE, "More.", scopes=scopes)
    expected = (
        'Bearer realm="orders", error="insufficient_scope", error_description="More.",'
        ' scope="read write"'
    )
    assert expected == build_challenge(failure, ORDERS)


def test_scope_is_omitted_when_no_scope_token_is_valid() -> None:
    """With no valid scope token, the challenge has no empty scope parameter."""
    failure = AuthFailure(Reason.INSUFFICIENT_SCOPE, "More.", scopes=["a b", '"'])
    expected = 'Bearer realm="orders", error="insufficient_scope", error_description="More."'
    assert expected == build_challenge(failure, ORDERS)


def test_insufficient_scope_challenge_names_the_scopes() -> None:
    """An insufficient_scope challenge carries error="insufficient_scope" and scope="a b"."""
    params = check_challenge(
        build_challenge(AuthFailure(Reason.INSUFFICIENT_SCOPE, scopes=["a", "b"]), ORDERS) or ""
    )
    expected = ("insufficient_scope", "a b")
    assert expected == (params["error"], params["scope"])


# clean_description ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("The access token expired.", "The access token expired.", id="kept-as-is"),
        pytest.param('Say "hello"', "Say 'hello'", id="double-quote-to-apostrophe"),
        pytest.param("C:\\path", "C:/path", id="backslash-to-slash"),
        pytest.param("one\r\ntwo", "one two", id="crlf-to-space"),
        pytest.param("one\ntwo\tthree", "one two three", id="lf-and-tab-to-space"),
        pytest.param("bell\x07ring", "bell ring", id="control-to-space"),
        pytest.param("del\x7fete", "delete", id="del-dropped"),
        pytest.param("  spaced   out  ", "  spaced   out  ", id="valid-spacing-kept"),
        pytest.param(" spaced\t\tout ", "spaced out", id="whitespace-collapsed-when-cleaning"),
        pytest.param("caf\u00e9 na\u00efve", "cafe naive", id="accents-folded"),
        pytest.param("\u201cquoted\u201d \u2018x\u2019", "'quoted' 'x'", id="typographic-quotes"),
        pytest.param("a\u2014b\u2013c\u2026", "a-b-c...", id="dashes-and-ellipsis"),
        pytest.param("\ufb01ne", "fine", id="ligature-folded"),
        pytest.param("\u65e5\u672c", "", id="cjk-dropped"),
        pytest.param("a\u2028b", "a b", id="line-separator-to-space"),
        pytest.param("full\uff02width", "full'width", id="fullwidth-quote-folds-to-apostrophe"),
        pytest.param("full\uff3cwidth", "full/width", id="fullwidth-backslash-folds-to-slash"),
        pytest.param("small\ufe68one", "small/one", id="small-backslash-folds-to-slash"),
        pytest.param("lone\ud800surrogate", "lonesurrogate", id="lone-surrogate-dropped"),
    ],
)
def test_clean_description(text: str, expected: str) -> None:
    """clean_description maps text onto the RFC 6750 §3 error_description character set."""
    assert expected == clean_description(text)


def test_clean_description_truncates_long_text_to_300_characters() -> None:
    """A description longer than 300 characters is cut to 300, ending in '...'."""
    cleaned = clean_description("word " * 100)
    assert 300 == len(cleaned)
    assert cleaned.endswith("...")


def test_clean_description_keeps_exactly_300_characters() -> None:
    """A valid description of exactly 300 characters is kept whole."""
    text = "x" * 300
    assert text == clean_description(text)


@given(hostile_text(max_size=600))
def test_clean_description_output_is_always_header_safe(text: str) -> None:
    """Whatever goes in, the description is printable ASCII without '"' or '\\', <= 300 long."""
    cleaned = clean_description(text)
    assert len(cleaned) <= 300
    assert all(" " <= ch <= "~" and ch not in '"\\' for ch in cleaned), cleaned


# ChallengeSettings -------------------------------------------------------------------


def test_challenge_settings_default_realm_is_api() -> None:
    """Without arguments the realm is 'api' and no optional URI is set."""
    expected = ("api", None, None)
    assert expected == (
        ChallengeSettings().realm,
        ChallengeSettings().error_uri,
        ChallengeSettings().resource_metadata,
    )


@pytest.mark.parametrize(
    "realm",
    [
        pytest.param('or"ders', id="double-quote"),
        pytest.param("or\\ders", id="backslash"),
        pytest.param("orders\r\nX-Injected: 1", id="crlf"),
        pytest.param("orders\n", id="lf"),
        pytest.param("orders\r", id="cr"),
        pytest.param("orders\t", id="tab"),
        pytest.param("b\u00fccher", id="non-ascii"),
        pytest.param("orders\x00", id="nul"),
    ],
)
def test_realm_that_would_need_escaping_is_refused(realm: str) -> None:
    """A realm with '"', '\\', CR/LF, controls or non-ASCII raises ValueError saying what to use."""
    with pytest.raises(ValueError, match=r"realm=.* is not allowed: use printable ASCII"):
        ChallengeSettings(realm=realm)


@pytest.mark.parametrize("realm", [pytest.param("", id="empty"), pytest.param("   ", id="blank")])
def test_empty_realm_is_refused(realm: str) -> None:
    """An empty or blank realm raises ValueError with an example of a good one."""
    with pytest.raises(ValueError, match=r"realm must not be empty: name the API, e\.g\. realm="):
        ChallengeSettings(realm=realm)


def test_non_string_realm_is_refused() -> None:
    """A realm that is not a string raises ValueError at construction."""
    with pytest.raises(ValueError, match="realm="):
        ChallengeSettings(realm=b"orders")  # type: ignore[arg-type]


BAD_URIS = [
    pytest.param("", id="empty"),
    pytest.param("https://example.com/a b", id="space"),
    pytest.param('https://example.com/"x"', id="double-quote"),
    pytest.param("https://example.com/\\x", id="backslash"),
    pytest.param("https://example.com/\r\nX-Injected: 1", id="crlf"),
    pytest.param("https://b\u00fccher.example/", id="non-ascii"),
]


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_error_uri_is_refused(uri: str) -> None:
    """An error_uri that is empty or needs escaping raises ValueError asking to percent-encode."""
    with pytest.raises(ValueError, match=r"error_uri=.*percent-encoding"):
        ChallengeSettings(error_uri=uri)


@pytest.mark.parametrize("uri", BAD_URIS)
def test_bad_resource_metadata_is_refused(uri: str) -> None:
    """A resource_metadata URL that is empty or needs escaping raises ValueError."""
    with pytest.raises(ValueError, match=r"resource_metadata=.*percent-encoding"):
        ChallengeSettings(resource_metadata=uri)


def test_good_uris_are_kept() -> None:
    """Valid error_uri and resource_metadata values are stored unchanged."""
    settings = ChallengeSettings(realm="orders", error_uri=ERROR_URI, resource_metadata=METADATA)
    expected = (ERROR_URI, METADATA)
    assert expected == (settings.error_uri, settings.resource_metadata)


# parse_challenges (RFC 9110 §11) -----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
            [
                Challenge("newauth", {"realm": "apps", "type": "1", "title": 'Login to "apps"'}),
                Challenge("basic", {"realm": "simple"}),
            ],
            id="rfc9110-11.6.1-example-two-challenges",
        ),
        pytest.param(
            'Bearer realm="example"',
            [Challenge("bearer", {"realm": "example"})],
            id="rfc6750-3-example-no-authentication",
        ),
        pytest.param(
            'Bearer realm="example", error="invalid_token",'
            ' error_description="The access token expired"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "example",
                        "error": "invalid_token",
                        "error_description": "The access token expired",
                    },
                )
            ],
            id="rfc6750-3-example-expired-token",
        ),
        pytest.param(
            'BEARER Realm = "x" ,  ERROR=invalid_token',
            [Challenge("bearer", {"realm": "x", "error": "invalid_token"})],
            id="rfc9110-11.1-case-insensitive-names-and-bws",
        ),
        pytest.param(
            "Negotiate YIIBhwYGKwYBBQUCoIIB==",
            [Challenge("negotiate", token68="YIIBhwYGKwYBBQUCoIIB==")],
            id="rfc9110-11.2-token68",
        ),
        pytest.param(
            'Negotiate abc=, Bearer realm="a"',
            [Challenge("negotiate", token68="abc="), Challenge("bearer", {"realm": "a"})],
            id="rfc9110-11.2-token68-padding-is-not-a-parameter",
        ),
        pytest.param(
            ' , Basic , Bearer realm="a" , , ',
            [Challenge("basic"), Challenge("bearer", {"realm": "a"})],
            id="rfc9110-5.6.1-empty-list-elements",
        ),
        pytest.param(
            'Bearer realm=""',
            [Challenge("bearer", {"realm": ""})],
            id="rfc9110-5.6.4-empty-quoted-string",
        ),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    """parse_challenges reads RFC 9110 challenge lists into schemes and parameters."""
    assert expected == parse_challenges(header)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param('Bearer realm="a", realm="b"', "appears twice", id="rfc9110-11.2-param-twice"),
        pytest.param(
            'Bearer realm="a", REALM="b"', "appears twice", id="rfc9110-11.2-param-twice-any-case"
        ),
        pytest.param("", "no challenge", id="empty"),
        pytest.param(" , ,", "no challenge", id="only-commas"),
        pytest.param('Bearer realm="open', "quoted string", id="unterminated-quote"),
        pytest.param('Bearer realm="a" error="b"', "','", id="missing-comma"),
        pytest.param("Negotiate abc def", "after token68", id="text-after-token68"),
        pytest.param('Bearer realm="a\nb"', "quoted string", id="lf-inside-quotes"),
        pytest.param('"Bearer" realm="a"', "auth-scheme", id="quoted-scheme"),
    ],
)
def test_parse_challenges_rejects_invalid_values(header: str, message: str) -> None:
    """Values outside the RFC 9110 grammar, or with a repeated parameter, raise ValueError."""
    with pytest.raises(ValueError, match=message):
        parse_challenges(header)


@given(hostile_text(max_size=80))
def test_parse_challenges_only_ever_raises_value_error(header: str) -> None:
    """Whatever the text, parse_challenges returns challenges or raises ValueError, nothing else."""
    try:
        challenges = parse_challenges(header)
    except ValueError:
        return
    assert challenges


# Every challenge parses: the properties ----------------------------------------------


@pytest.mark.parametrize("reason", [r for r in Reason if not r.is_server_fault], ids=str)
def test_every_reason_challenge_parses(reason: Reason) -> None:
    """Every client-fault challenge, with all options on, is one valid RFC 9110 Bearer challenge."""
    settings = ChallengeSettings(realm="orders", error_uri=ERROR_URI, resource_metadata=METADATA)
    header = build_challenge(AuthFailure(reason, scopes=["a"]), settings)
    assert header is not None
    params = check_challenge(header)
    expected = ("orders", METADATA)
    assert expected == (params["realm"], params["resource_metadata"])


def test_hostile_description_cannot_break_the_header() -> None:
    """A description with CR/LF, quotes, backslashes and a fake parameter stays inside one value."""
    hostile = 'x"\r\nX-Injected: 1\\", error="none", realm="evil\u00e9'
    header = build_challenge(AuthFailure(Reason.BAD_SIGNATURE, hostile), ORDERS)
    expected = (
        'Bearer realm="orders", error="invalid_token",'
        " error_description=\"x' X-Injected: 1/', error='none', realm='evile\""
    )
    assert expected == header
    params = check_challenge(header)
    expected_params = ("orders", "invalid_token")
    assert expected_params == (params["realm"], params["error"])


@given(failure=auth_failures(), settings=challenge_settings())
@example(failure=AuthFailure(Reason.EXPIRED, "\uff02\uff3c"), settings=ChallengeSettings())
@example(failure=AuthFailure(Reason.INSUFFICIENT_SCOPE, '"', scopes=['"', "\\"]), settings=ORDERS)
def test_any_failure_builds_a_valid_challenge(
    failure: AuthFailure, settings: ChallengeSettings
) -> None:
    """Whatever description and scopes a failure holds, its challenge is valid."""
    header = build_challenge(failure, settings)
    if failure.reason.is_server_fault:
        assert header is None
        return
    assert header is not None
    check_challenge(header)


def _expected_params(failure: AuthFailure, settings: ChallengeSettings) -> dict[str, str]:
    """The parameters RFC 6750 §3 wants for ``failure``, computed without the builder."""
    params = {"realm": settings.realm}
    if failure.reason.error is not None:  # missing_token, dpop_required: no error (§3.1)
        params["error"] = str(failure.error)
        params["error_description"] = (
            clean_description(failure.description) or failure.reason.description
        )
        if settings.error_uri is not None:
            params["error_uri"] = settings.error_uri
        scopes = [s for s in failure.scopes if s and set(s) <= set(NQCHARS)]
        if failure.reason is Reason.INSUFFICIENT_SCOPE and scopes:
            params["scope"] = " ".join(dict.fromkeys(scopes))
    if settings.resource_metadata is not None:
        params["resource_metadata"] = settings.resource_metadata
    return params


@given(
    reason=st.sampled_from([r for r in Reason if not r.is_server_fault]),
    description=st.none() | hostile_text(),
    scopes=scope_lists(),
    settings=challenge_settings(),
)
def test_parse_challenges_round_trips_build_challenge(
    reason: Reason, description: str | None, scopes: list[str], settings: ChallengeSettings
) -> None:
    """Parsing a built challenge gives back one Bearer challenge with the intended values."""
    failure = AuthFailure(reason, description, scopes=scopes)
    header = build_challenge(failure, settings)
    assert header is not None
    expected = [Challenge("bearer", _expected_params(failure, settings))]
    assert expected == parse_challenges(header)


def test_description_that_cleans_to_nothing_falls_back_to_the_reason_default() -> None:
    """A custom description with no sendable character gives the reason's sentence, not ''."""
    failure = AuthFailure(Reason.EXPIRED, "\u671f\u9650\u5207\u308c")
    expected = (
        'Bearer realm="api", error="invalid_token",'
        ' error_description="The access token expired. Obtain a new one and retry."'
    )
    assert expected == build_challenge(failure, ChallengeSettings())
