"""Hypothesis strategies for the sans-IO core, kept in one place.

Each strategy says in its docstring what it draws and why; the property tests in
``test_challenge.py`` and ``test_extract.py`` combine them. :func:`check_challenge` is
the oracle they check every built challenge against (conformance row 24).
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from invalidtoken_mw import AuthFailure, ChallengeSettings, Reason, parse_challenges

# RFC 6750 §2.1: the b64token alphabet (before any "=" padding).
B64TOKEN_CHARS = string.ascii_letters + string.digits + "-._~+/"
# RFC 6750 §3: realm and error_description characters (%x20-21 / %x23-5B / %x5D-7E).
QDTEXT_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')
# RFC 6750 §3: error_uri and scope-token characters (%x21 / %x23-5B / %x5D-7E).
NQCHARS = QDTEXT_CHARS.replace(" ", "")
# Present in every secret token and in no fixed text the library writes, so a token
# echoed anywhere (even in part) is detected and a false alarm is impossible.
SECRET_MARKER = "Zq7xSecret"

# Characters that break naive header builders, and Unicode that folds onto them.
_TRICKY_CHARS = (
    '"',
    "\\",
    "\r",
    "\n",
    "\t",
    "\x00",
    "\x7f",
    "\x85",
    "\u2028",
    "\u201c",
    "\u201d",
    "\u2019",
    "\u2026",
    "\uff02",  # FULLWIDTH QUOTATION MARK: NFKD folds it to '"'
    "\uff3c",  # FULLWIDTH REVERSE SOLIDUS: NFKD folds it to '\'
    "\ufe68",  # SMALL REVERSE SOLIDUS: NFKD folds it to '\'
    "\u00e9",
    "\u00a0",
    "\ufb01",
    "\ud800",
    "=",
    ",",
)


def hostile_text(*, max_size: int = 400) -> st.SearchStrategy[str]:
    """Any text at all: every code point (lone surrogates included), biased to header breakers.

    Args:
        max_size: The longest text drawn; long enough by default to cross the
            300-character description limit.
    """
    alphabet = st.one_of(st.sampled_from(_TRICKY_CHARS), st.characters())
    return st.text(alphabet, max_size=max_size)


def reasons() -> st.SearchStrategy[Reason]:
    """Any member of the failure taxonomy."""
    return st.sampled_from(Reason)


def scope_lists() -> st.SearchStrategy[list[str]]:
    """Scope names as an application might pass them: valid scope-tokens mixed with hostile text."""
    return st.lists(st.one_of(st.text(NQCHARS, min_size=1, max_size=12), hostile_text(max_size=12)))


@st.composite
def auth_failures(draw: st.DrawFn) -> AuthFailure:
    """An AuthFailure of any reason with a hostile (or absent) description and hostile scopes."""
    description = draw(st.none() | hostile_text())
    return AuthFailure(draw(reasons()), description, scopes=draw(scope_lists()))


def realms() -> st.SearchStrategy[str]:
    """Every realm ChallengeSettings accepts: printable ASCII without '"' or '\\', not blank."""
    return st.text(QDTEXT_CHARS, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))


def uris() -> st.SearchStrategy[str]:
    """URI-like values ChallengeSettings accepts for error_uri and resource_metadata."""
    return st.one_of(
        st.text(NQCHARS, min_size=1, max_size=40),
        st.sampled_from(
            [
                "https://docs.example.com/errors#token",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ]
        ),
    )


@st.composite
def challenge_settings(draw: st.DrawFn) -> ChallengeSettings:
    """A valid ChallengeSettings, with or without error_uri and resource_metadata."""
    return ChallengeSettings(
        realm=draw(realms()),
        error_uri=draw(st.none() | uris()),
        resource_metadata=draw(st.none() | uris()),
    )


@st.composite
def secret_tokens(draw: st.DrawFn) -> str:
    """A distinctive token of 16+ characters containing SECRET_MARKER, JWT-shaped or not.

    It may start with 'eyJ' and have one to five dot-separated segments, so it also
    exercises the truncated-JWT hint; it may end in '=' padding.
    """
    head = draw(st.sampled_from(["", "eyJ"]))
    segments = draw(
        st.lists(st.text(B64TOKEN_CHARS.replace(".", ""), max_size=12), min_size=1, max_size=5)
    )
    tail = draw(st.text(B64TOKEN_CHARS.replace(".", ""), min_size=6, max_size=12))
    padding = draw(st.sampled_from(["", "=", "=="]))
    segments[0] = head + SECRET_MARKER + tail + segments[0]
    return ".".join(segments) + padding


_HEADER_PREFIXES = (
    "Bearer ",
    "bearer ",
    "BEARER   ",
    "  Bearer ",
    "Bearer Bearer ",
    "Bearer bearer  ",
    "Bearer: ",
    "Bearer:",
    "Bearer=",
    "Bearer,",
    "Bearer\t",
    "Bearer\n",
    "Bearer\r\n ",
    'Bearer "',
    "Bearer '",
    "Bearer \u201c",
    "Basic ",
    "Token ",
    "",
    "Bearer x, Bearer ",
    "Bearer eyJ.eyJ.sig, Bearer ",
)
_HEADER_SUFFIXES = (
    "",
    '"',
    "'",
    "\u201d",
    " ",
    "\t",
    "\n",
    "\r\n",
    ", Bearer other",
    ", Basic dXNlcjpwYXNz",
    " trailing words",
    "\x00",
    "%",
)
_INNER_BREAKS = ("", " ", "  ", "\t", "\n", "\r\n", "\r\n ", "\u00a0", "\u200b", '"', "\\")


@st.composite
def authorization_around_secret(draw: st.DrawFn) -> tuple[str, str]:
    """An Authorization value built around a secret token, and that token.

    The value combines copy-paste mistakes: odd scheme spellings and punctuation,
    quotes, a second credential, and a space, tab or line break inside the token
    (never inside SECRET_MARKER, so an echoed part is still recognisable).
    """
    token = draw(secret_tokens())
    cut = draw(st.integers(min_value=len(SECRET_MARKER) + 3, max_value=max(len(token), 13)))
    broken = token[:cut] + draw(st.sampled_from(_INNER_BREAKS)) + token[cut:]
    prefix = draw(st.sampled_from(_HEADER_PREFIXES))
    suffix = draw(st.sampled_from(_HEADER_SUFFIXES))
    return prefix + broken + suffix, token


# The oracle the property tests check outputs against (conformance row 24).
CHALLENGE_PARAMS = frozenset(
    {"realm", "error", "error_description", "error_uri", "scope", "resource_metadata"}
)


def check_challenge(header: str) -> dict[str, str]:
    """Assert ``header`` is one RFC 9110 Bearer challenge safe to send, and return its params.

    Conformance row 24: it parses, each parameter appears once, every value is quoted,
    and no value holds CR, LF, '"', '\\' or a non-ASCII character.
    """
    assert header.isascii(), header
    assert "\r" not in header, header
    assert "\n" not in header, header
    assert "\\" not in header, header
    [challenge] = parse_challenges(header)
    expected = "bearer"
    assert expected == challenge.scheme
    assert challenge.token68 is None
    assert "realm" in challenge.params
    assert set(challenge.params) <= CHALLENGE_PARAMS, challenge.params
    # Every value quoted, none holding a quote: exactly two '"' per parameter.
    assert 2 * len(challenge.params) == header.count('"'), header
    for value in challenge.params.values():
        assert value.isascii(), value
        assert not set(value) & set('\r\n"\\'), value
    return challenge.params
