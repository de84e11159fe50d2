"""The RFC rules of _grammar.py, and the options validated with them.

Character-class rules are checked against the RFC's own ranges over every code point
up to U+00FF; the RFC 3986 rules against an independent implementation
(``rfc3986-validator``) on generated URIs and junk. The three URI options
(``error_uri``, ``resource_metadata``, ``problem_type_base``) accept valid values and
refuse the rest at construction, through the public constructors users call, with a
message naming the option; no value holding CR, LF, a double quote or a backslash is
ever accepted.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rfc3986_validator import validate_rfc3986

from invalidtoken_mw import (
    ChallengeSettings,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    Reason,
    Renderer,
)
from invalidtoken_mw import _grammar as grammar
from support.servers import make_verifier

LATIN1 = [chr(c) for c in range(0x100)]


def _chars(*ranges: tuple[int, int]) -> set[str]:
    return {chr(c) for low, high in ranges for c in range(low, high + 1)}


# -- character classes, against the RFC ranges -------------------------------------------

ALPHA_DIGIT = _chars((0x41, 0x5A), (0x61, 0x7A), (0x30, 0x39))
CLASSES = [
    # RFC 6749 Appendix A: NQCHAR = %x21 / %x23-5B / %x5D-7E
    pytest.param(
        grammar.SCOPE_TOKEN_RE, _chars((0x21, 0x21), (0x23, 0x5B), (0x5D, 0x7E)), id="NQCHAR"
    ),
    # NQSCHAR = %x20-21 / %x23-5B / %x5D-7E
    pytest.param(
        grammar.NQSCHARS_RE, _chars((0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)), id="NQSCHAR"
    ),
    # RFC 9110 §5.6.2 tchar
    pytest.param(grammar.TOKEN_RE, ALPHA_DIGIT | set("!#$%&'*+-.^_`|~"), id="tchar"),
    # RFC 9110 §11.2 token68 / RFC 6750 §2.1 b64token, before the "=" padding
    pytest.param(grammar.TOKEN68_RE, ALPHA_DIGIT | set("-._~+/="), id="token68"),
]


@pytest.mark.parametrize(("rule", "allowed"), CLASSES)
def test_character_class_is_exactly_the_rfc_range(rule: object, allowed: set[str]) -> None:
    """Each one-character value matches the rule if and only if the RFC allows it."""
    assert isinstance(rule, type(grammar.TOKEN_RE))
    matched = {c for c in LATIN1 if rule.fullmatch(c)}
    # token68 needs a character before any "=": a lone "=" is no token68.
    assert matched == allowed - ({"="} if rule is grammar.TOKEN68_RE else set())


def test_b64token_is_token68() -> None:
    """RFC 6750's b64token and RFC 9110's token68 are one rule, compiled once."""
    assert grammar.B64TOKEN_RE is grammar.TOKEN68_RE


def test_quoted_string_unescapes_only_quoted_pairs() -> None:
    """RFC 9110 §5.6.4: a quoted-string holds qdtext and quoted-pairs, nothing else."""
    assert grammar.QUOTED_STRING_RE.fullmatch(r'"a \"b\" \\ c"')
    assert not grammar.QUOTED_STRING_RE.fullmatch('"a"b"')
    assert not grammar.QUOTED_STRING_RE.fullmatch('"a\nb"')


# -- RFC 3986, against an independent implementation --------------------------------------

URI_ALPHABET = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=%"


@st.composite
def uri_references(draw: st.DrawFn) -> str:
    """URI references built from the RFC 3986 parts, absolute or relative."""
    pchar = st.sampled_from(list(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"))
    pct = st.integers(0, 255).map(lambda b: f"%{b:02x}")
    segment = st.lists(pchar | pct, max_size=6).map("".join)
    path = "".join("/" + s for s in draw(st.lists(segment, max_size=3)))
    host = draw(
        st.sampled_from(["example.com", "127.0.0.1", "[::1]", "[2001:db8::7]", "[v1.x]", ""])
        | st.from_regex(r"[a-z0-9.-]{0,12}", fullmatch=True)
    )
    authority = draw(st.sampled_from(["", "user:pw@"])) + host
    authority += draw(st.sampled_from(["", ":", ":8443"]))
    scheme = draw(st.sampled_from(["https:", "tag:", "urn:", "a+b.c-d:", ""]))
    head = draw(st.sampled_from([f"//{authority}", ""]))
    query = draw(st.sampled_from(["", "?", "?a=1&b=/?"]))
    fragment = draw(st.sampled_from(["", "#", "#top", "#a/b?c"]))
    return f"{scheme}{head}{path}{query}{fragment}"


@given(uri_references())
@example("https://[::ffff:192.0.2.1]:443/a")
@example("//example.com")
@example("./a:b")
def test_uri_rules_agree_with_rfc3986_validator_on_uris(value: str) -> None:
    """On built URI references, URI and URI-reference agree with rfc3986-validator."""
    assert bool(grammar.URI_REFERENCE_RE.fullmatch(value)) == bool(
        validate_rfc3986(value, rule="URI_reference")
    )
    assert bool(grammar.URI_RE.fullmatch(value)) == bool(validate_rfc3986(value, rule="URI"))


@given(st.text(URI_ALPHABET, max_size=40))
@example("a:b")
@example("1:x")
@example("[::1]")
@example("%zz")
@example("http://[fe80::1%25eth0]/")
@example("https://[1:2:3:4:5:6:7:8:9]/")
def test_uri_rules_agree_with_rfc3986_validator_on_junk(value: str) -> None:
    """On random strings of URI characters, both implementations give the same verdict."""
    assert bool(grammar.URI_REFERENCE_RE.fullmatch(value)) == bool(
        validate_rfc3986(value, rule="URI_reference")
    )
    assert bool(grammar.URI_RE.fullmatch(value)) == bool(validate_rfc3986(value, rule="URI"))


# -- the three options ------------------------------------------------------------------

# The values issue 14 found accepted, and their cousins.
BAD_EXAMPLES = [
    "{reason}",
    "https://example.com/errors/{reason}",
    "%zz",
    "https://example.com/%zz",
    "https://example.com/%4",
    "<x>|y^z",
    "https://example.com/<x>|y^z",
    "https://example.com/a`b",
    "",
]


def _refusal(option: str, value: str) -> str:
    """The ValueError message a public constructor gives for ``option=value``."""
    if option == "problem_type_base":
        with pytest.raises(ValueError, match=rf"^{option}=") as refused:
            Renderer(problem_type_base=value)
    else:
        with pytest.raises(ValueError, match=rf"^{option}=") as refused:
            ChallengeSettings(**{option: value})
    return str(refused.value)


OPTIONS = ["error_uri", "resource_metadata", "problem_type_base"]


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("value", BAD_EXAMPLES)
def test_bad_examples_are_refused_naming_the_option(option: str, value: str) -> None:
    """Each bad example raises ValueError naming the option and an example of a good value."""
    message = _refusal(option, value)
    assert "such as 'https://" in message
    assert "percent-encoding" in message


def test_braces_in_problem_type_base_say_the_reason_is_appended() -> None:
    """A '{reason}' template gets told the reason is appended, not substituted."""
    message = _refusal("problem_type_base", "https://example.com/errors/{reason}")
    assert "appended to the base, not substituted" in message


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("error_uri", "/docs/errors", "relative reference"),
        ("error_uri", "docs.example.com/errors", "relative reference"),
        ("resource_metadata", "http://api.example.com/.well-known/x", "requires https"),
        ("resource_metadata", "/.well-known/oauth-protected-resource", "relative reference"),
        ("resource_metadata", "https:///path", "names no host"),
        ("resource_metadata", "https://api.example.com/meta#part", "fragment"),
        ("problem_type_base", "https://example.com:", "with a reason appended"),
        ("problem_type_base", "1:x/", "URI syntax"),
    ],
)
def test_each_option_has_its_own_rule(option: str, value: str, why: str) -> None:
    """error_uri is absolute, resource_metadata an https URL, problem_type_base a reference."""
    assert why in _refusal(option, value)


VALID = [
    ("error_uri", "https://docs.example.com/errors#bearer"),
    ("error_uri", "urn:example:errors"),
    ("error_uri", "https://[2001:db8::1]:8443/errors?lang=en"),
    ("resource_metadata", "https://api.example.com/.well-known/oauth-protected-resource"),
    ("resource_metadata", "HTTPS://127.0.0.1:8443/.well-known/oauth-protected-resource/v1"),
    ("problem_type_base", "https://example.com/errors/"),
    ("problem_type_base", "https://example.com/errors#"),
    ("problem_type_base", "tag:invalidtoken-mw,2026:reason:"),
    ("problem_type_base", "/problems/"),
]


@pytest.mark.parametrize(("option", "value"), VALID)
def test_valid_values_are_kept(option: str, value: str) -> None:
    """Valid values construct and are stored unchanged."""
    if option == "problem_type_base":
        assert Renderer(problem_type_base=value).problem_type_base == value
    else:
        assert getattr(ChallengeSettings(**{option: value}), option) == value


# The empty string is a URI reference too, but an empty base is refused on purpose (a
# type that is just the reason's name says nothing about where to look it up).
@given(uri_references().filter(lambda u: bool(u and grammar.URI_REFERENCE_RE.fullmatch(u))))
def test_every_uri_reference_is_a_problem_type_base_unless_appending_breaks_it(
    value: str,
) -> None:
    """A non-empty URI-reference base is accepted exactly when each type it gives is one too."""
    types_ok = all(grammar.URI_REFERENCE_RE.fullmatch(value + r.value) for r in Reason)
    if types_ok:
        assert Renderer(problem_type_base=value).problem_type_base == value
    else:
        _refusal("problem_type_base", value)


FORBIDDEN = st.sampled_from(["\r", "\n", '"', "\\"])


@given(
    option=st.sampled_from(OPTIONS),
    head=st.sampled_from(["https://example.com/", "tag:x:", ""]) | st.text(max_size=10),
    bad=FORBIDDEN,
    tail=st.text(max_size=10),
)
def test_no_cr_lf_quote_or_backslash_ever_passes(
    option: str, head: str, bad: str, tail: str
) -> None:
    """Whatever surrounds it, a CR, LF, double quote or backslash is refused."""
    _refusal(option, head + bad + tail)


@given(option=st.sampled_from(OPTIONS), value=st.text(max_size=30))
def test_random_text_passes_only_as_a_uri(option: str, value: str) -> None:
    """Random text is accepted only when it follows the RFC 3986 grammar."""
    if grammar.uri_problem(value) is not None:
        _refusal(option, value)


@pytest.mark.parametrize("middleware", [InvalidTokenMiddleware, InvalidTokenWSGIMiddleware])
@pytest.mark.parametrize("option", ["error_uri", "resource_metadata"])
def test_middlewares_refuse_a_template_at_construction(middleware: type, option: str) -> None:
    """Both middlewares refuse a '{reason}' URI when built, not on the first request."""
    with pytest.raises(ValueError, match=rf"^{option}="):
        middleware(lambda *_: None, verifier=make_verifier(), **{option: "{reason}"})
