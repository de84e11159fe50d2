"""Hypothesis strategies for the sans-IO core, kept in one place.

Each strategy says in its docstring what it draws and why; the property tests in
``test_challenge.py`` and ``test_extract.py`` combine them. :func:`check_challenge` is
the oracle they check every built challenge against. The
strategies after it draw whole requests (raw ``Authorization`` bytes, query strings,
token segments, JOSE headers, claims) for ``test_fuzz.py``.
"""

from __future__ import annotations

import base64
import json
import string
import time
import urllib.parse

from hypothesis import strategies as st

from invalidtoken_mw import AuthFailure, ChallengeSettings, Reason
from invalidtoken_mw.testing import parse_challenges
from support.tokens import AUDIENCE, ISSUER, OTHER_SECRET, SECRET, b64url, hs256_raw

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


@st.composite
def param_name_spellings(draw: st.DrawFn, name: str = "access_token") -> str:
    """``name`` with any of its characters percent-encoded, in either hex case.

    ``access%5Ftoken`` and ``%61ccess_token`` are the same parameter to every query
    parser; the extractor must see them as the application will.
    """
    spelled = []
    for char in name:
        if draw(st.booleans()):
            escape = f"%{ord(char):02X}"
            spelled.append(escape.lower() if draw(st.booleans()) else escape)
        else:
            spelled.append(char)
    return "".join(spelled)


# Near misses: one character off, '+' (a space), a double encoding, a fullwidth letter.
_NEAR_MISS_NAMES = (
    "access_tokens",
    "access+token",
    "access%255Ftoken",
    "Access_token",
    "access_token ",
    "\uff41ccess_token",
    "access%20token",
)


@st.composite
def parameter_strings(draw: st.DrawFn) -> str:
    """A query string or form body: access_token spellings among other fields.

    Fields are separated by '&' or ';' and may lack '=' or a value, so the
    extractor's reading can be compared with :func:`urllib.parse.parse_qsl`'s.
    """
    names = st.one_of(
        param_name_spellings(),
        st.sampled_from(_NEAR_MISS_NAMES),
        st.text(string.ascii_lowercase + "_%", max_size=14),
    )
    values = st.text(B64TOKEN_CHARS + "%;=", max_size=12)
    fields = draw(
        st.lists(
            st.tuples(names, st.sampled_from(["=", ""]), values).map("".join),
            max_size=5,
        )
    )
    separators = draw(st.lists(st.sampled_from("&;"), min_size=len(fields), max_size=len(fields)))
    return "".join(sep + field for sep, field in zip(separators, fields, strict=True))[1:]


def scope_claim_values() -> st.SearchStrategy[object]:
    """``scope``/``scp`` claim values: scope-tokens joined by any whitespace, lists, junk.

    Any Unicode space or separator may stand between scopes, so a property can check
    that only U+0020 splits and only RFC 6749 scope-tokens are granted.
    """
    separators = st.sampled_from(
        [" ", "  ", "\t", "\n", "\x1c", "\x85", "\u00a0", "\u2028", "\u3000", "\u200b", ""]
    )
    parts = st.one_of(st.text(NQCHARS, min_size=1, max_size=8), hostile_text(max_size=8))
    joined = st.lists(st.tuples(parts, separators).map("".join), max_size=5).map("".join)
    return st.one_of(joined, st.lists(st.one_of(joined, parts, st.integers()), max_size=4))


def reasons() -> st.SearchStrategy[Reason]:
    """Any member of the failure taxonomy."""
    return st.sampled_from(Reason)


def scope_lists() -> st.SearchStrategy[list[str]]:
    """Scope names as an application might pass them: valid scope-tokens mixed with hostile text."""
    return st.lists(
        st.one_of(st.text(NQCHARS, min_size=1, max_size=12), hostile_text(max_size=12)),
        max_size=6,
    )


@st.composite
def auth_failures(draw: st.DrawFn) -> AuthFailure:
    """An AuthFailure of any reason with a hostile (or absent) description and hostile scopes."""
    description = draw(st.none() | hostile_text())
    return AuthFailure(draw(reasons()), description, scopes=draw(scope_lists()))


def realms() -> st.SearchStrategy[str]:
    """Every realm ChallengeSettings accepts: printable ASCII without '"' or '\\', not blank."""
    return st.text(QDTEXT_CHARS, min_size=1, max_size=30).filter(lambda s: bool(s.strip()))


# RFC 3986 §3.3: the characters a path segment holds without percent-encoding (pchar).
PCHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"


@st.composite
def uris(draw: st.DrawFn) -> str:
    """https URLs, valid for error_uri and resource_metadata alike.

    A host, then path segments of any pchar or percent-encoded octet, and a query.
    """
    host = draw(
        st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){0,2}", fullmatch=True)
    )
    port = draw(st.sampled_from(["", ":443", ":8443"]))
    segment = st.lists(
        st.sampled_from(list(PCHARS)) | st.integers(0, 255).map(lambda b: f"%{b:02X}"),
        max_size=8,
    ).map("".join)
    path = "".join("/" + s for s in draw(st.lists(segment, max_size=4)))
    query = draw(st.sampled_from(["", "?lang=en", "?a=1&b=%2F"]))
    return f"https://{host}{port}{path}{query}"


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


# The oracle the property tests check outputs against.
CHALLENGE_PARAMS = frozenset(
    {"realm", "error", "error_description", "error_uri", "scope", "resource_metadata"}
)


def check_challenge(header: str) -> dict[str, str]:
    """Assert ``header`` is one RFC 9110 Bearer challenge safe to send, and return its params.

    It parses, each parameter appears once, every value is quoted,
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


# -- whole requests, for fuzzing the core and both middlewares (test_fuzz.py) ------------

FUZZ_REVOKED_JTI = "revoked-by-the-fuzz-store"
"""The ``jti`` the fuzz tests' revocation store holds: :func:`claim_sets` draws it sometimes."""
FUZZ_SCOPE = "orders:write"
"""The scope the fuzz tests' strict middlewares require: :func:`claim_sets` grants it sometimes."""

# Bytes that break naive parsers of header values, query strings and JSON.
_TRICKY_BYTES = (
    b"\r",
    b"\n",
    b"\r\n ",
    b"\x00",
    b"\t",
    b" ",
    b",",
    b";",
    b'"',
    b"'",
    b"\\",
    b"=",
    b".",
    b"%",
    b"%00",
    b"%0d%0a",
    b"+",
    b"&",
    b"\x7f",
    b"\x80",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x80\xa8",
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate
    b"eyJ",
    b"Bearer ",
)


def junk_bytes(*, max_size: int = 60) -> st.SearchStrategy[bytes]:
    """Any bytes at all, biased toward separators, control bytes and invalid UTF-8."""
    pieces = st.one_of(st.sampled_from(_TRICKY_BYTES), st.binary(min_size=1, max_size=8))
    return st.lists(pieces, max_size=max_size // 4).map(b"".join)


_SCHEMES = (
    b"Bearer ",
    b"bearer ",
    b"BEARER   ",
    b"Bearer\t",
    b"Bearer",
    b"Bearer,",
    b"Bearer:",
    b" Bearer ",
    b"Bearer Bearer ",
    b"Basic ",
    b"Token ",
    b"",
)


@st.composite
def raw_authorizations(draw: st.DrawFn) -> bytes:
    """A raw ``Authorization`` value as bytes: a scheme, junk, SECRET_MARKER, junk.

    SECRET_MARKER sits where the token would be, so an echo of any part of the value
    is detected. Sometimes the value is padded past the 8 KiB limit, sometimes it
    carries a real JWT-shaped token from :func:`fuzz_tokens`.
    """
    scheme = draw(st.sampled_from(_SCHEMES))
    middle = draw(st.one_of(junk_bytes(), fuzz_tokens().map(str.encode)))
    padding = b"A" * draw(st.sampled_from([0, 0, 0, 8180, 9000]))
    return scheme + draw(junk_bytes()) + SECRET_MARKER.encode() + middle + padding


_PARAM_NAMES = (
    "access_token",
    "access_token",
    "ACCESS_TOKEN",
    "access%5Ftoken",
    "access_token[]",
    "a",
    "",
)


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    """A raw query string (or form body): parameters, often ``access_token``, with hostile values.

    Values are tokens from :func:`fuzz_tokens` (each prefixed with SECRET_MARKER),
    percent-encoded junk or raw junk; separators are ``&`` or ``;``; a parameter may
    repeat or have no ``=``.
    """
    params: list[bytes] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.sampled_from(_PARAM_NAMES)).encode()
        value = draw(
            st.one_of(
                fuzz_tokens().map(lambda t: (SECRET_MARKER + t).encode()),
                junk_bytes().map(lambda b: urllib.parse.quote_from_bytes(b).encode()),
                junk_bytes(),
            )
        )
        joiner = draw(st.sampled_from([b"=", b"=", b""]))
        params.append(name + joiner + (value if joiner else b""))
    return draw(st.sampled_from([b"&", b";"])).join(params)


def token_segments() -> st.SearchStrategy[str]:
    """One dot-free segment: base64url of random bytes or JSON, empty, padded, or illegal text."""
    return st.one_of(
        st.binary(max_size=48).map(b64url),
        st.just(b64url(b'{"alg":"HS256"}')),
        st.just(""),
        st.text(B64TOKEN_CHARS.replace(".", "") + "=", max_size=24),
        st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode()),  # '+', '/', '='
    )


@st.composite
def segment_tokens(draw: st.DrawFn) -> str:
    """A token of 1 to 6 :func:`token_segments` joined by dots: truncated JWTs, JWE shapes, junk."""
    return ".".join(draw(st.lists(token_segments(), min_size=1, max_size=6)))


def _nested(depth: int, opener: str) -> str:
    if opener == "[":
        return "[" * depth + "]" * depth or "[]"
    return '{"a":' * depth + "0" + "}" * depth if depth else "{}"


def deep_json() -> st.SearchStrategy[str]:
    """JSON text of lists or objects nested 0 to 1500 deep (past any recursion limit)."""
    return st.builds(
        _nested,
        st.one_of(st.integers(0, 40), st.integers(300, 600), st.integers(900, 1500)),
        st.sampled_from(["[", "{"]),
    )


_HUGE_NUMBERS = (
    "1e308",
    "-1e308",
    "1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9223372036854775808",
    "-9223372036854775809",
    "1" + "0" * 400,
    "1" + "0" * 5000,  # past Python's int-to-str digit limit
    "0.0000000001",
    "-0",
)


def json_texts() -> st.SearchStrategy[str]:
    """Hostile JSON values as text: wrong types, huge numbers, deep nesting, control characters."""
    return st.one_of(
        st.sampled_from(_HUGE_NUMBERS),
        deep_json(),
        # Raw UTF-8 (no lone surrogates: the JSON must encode) and escaped (any code point).
        st.text(st.characters(exclude_categories=["Cs"]), max_size=40).map(
            lambda s: json.dumps(s, ensure_ascii=False)
        ),
        hostile_text(max_size=40).map(json.dumps),
        st.sampled_from(["null", "true", "false", "[]", "{}", '""', '[""]', "[1,2]"]),
        st.integers().map(str),
    )


def _object_text(members: list[tuple[str, str]]) -> str:
    """A JSON object with members in order, duplicates kept (RFC 7515 §4: last one wins)."""
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in members) + "}"


_ALGS = ("HS256", "HS256", "HS256", "none", "None", "NONE", "nOnE", "hs256", "RS256", "HS512", "")
_KIDS = (
    "../../../../etc/passwd",
    "/dev/null",
    "..\\..\\windows\\win.ini",
    "' OR '1'='1",
    "1; DROP TABLE keys; --",
    "key\r\nX-Injected: 1",
    "\x00",
    "k" * 5000,
    "\u202etxt.exe",
)


@st.composite
def jose_headers(draw: st.DrawFn) -> str:
    """A JOSE header as JSON text: mostly ``alg`` HS256, a hostile ``kid``, key-carrying headers.

    Members may repeat (duplicate keys), take any of :func:`json_texts` or be
    ``jku``/``x5u``/``jwk``/``x5c``/``crit`` values a verifier must never act on.
    """
    members: list[tuple[str, str]] = []
    if draw(st.integers(0, 9)):
        alg = draw(st.one_of(st.sampled_from(_ALGS).map(json.dumps), json_texts()))
        members.append(("alg", alg))
    optional = {
        "kid": st.one_of(st.sampled_from(_KIDS).map(json.dumps), json_texts()),
        "typ": st.sampled_from(['"JWT"', '"at+jwt"', '"application/at+jwt"', "1", "null"]),
        "jku": st.just('"http://127.0.0.1:9/jwks.json"'),
        "x5u": st.just('"http://127.0.0.1:9/cert.pem"'),
        "jwk": st.just('{"kty":"oct","k":"c2VjcmV0"}'),
        "x5c": st.just('["MIIB"]'),
        "crit": st.sampled_from(['["exp"]', '["b64"]', "[]", '"b64"']),
        "b64": st.sampled_from(["false", "true"]),
        "zip": st.just('"DEF"'),
    }
    names = draw(st.lists(st.sampled_from(sorted(optional)), max_size=4))
    members += [(name, draw(optional[name])) for name in names]
    if draw(st.booleans()) and members:
        name, _ = draw(st.sampled_from(members))
        members.append((name, draw(json_texts())))  # a duplicate member
    return _object_text(members)


_TIME_OFFSETS = (-(10**6), -7200, -30, 30, 7200, 10**6)


@st.composite
def claim_sets(draw: st.DrawFn) -> str:
    """A claims set as JSON text: each registered claim good, absent or hostile, plus extras.

    Good values make a valid token for tokens.ISSUER and tokens.AUDIENCE with
    FUZZ_SCOPE, so every later check (issuer, audience, scope, revocation by
    FUZZ_REVOKED_JTI) is reached; times sit well away from the 60 s leeway boundary
    so the verdict never depends on when the test runs.
    """
    now = int(time.time())
    good = {
        "iss": st.sampled_from([ISSUER, ISSUER + "/"]).map(json.dumps),
        "aud": st.sampled_from([AUDIENCE, [AUDIENCE, "x"], "other", []]).map(json.dumps),
        "sub": st.sampled_from(["user-1", "admin"]).map(json.dumps),
        "exp": st.sampled_from(_TIME_OFFSETS).map(lambda d: str(now + d)),
        "nbf": st.sampled_from(_TIME_OFFSETS).map(lambda d: str(now + d)),
        "iat": st.sampled_from(_TIME_OFFSETS).map(lambda d: str(now + d)),
        "jti": st.sampled_from(["jti-1", FUZZ_REVOKED_JTI]).map(json.dumps),
        "scope": st.sampled_from([FUZZ_SCOPE, "orders:read", f"a {FUZZ_SCOPE} b"]).map(json.dumps),
        "scp": st.sampled_from([[FUZZ_SCOPE], ["x"], FUZZ_SCOPE]).map(json.dumps),
    }
    members: list[tuple[str, str]] = []
    for name, value in good.items():
        kind = draw(st.sampled_from(["good", "good", "good", "absent", "hostile"]))
        if kind == "good":
            members.append((name, draw(value)))
        elif kind == "hostile":
            members.append((name, draw(json_texts())))
    extras = st.tuples(hostile_text(max_size=10), json_texts())
    members += draw(st.lists(extras, max_size=2))
    if draw(st.booleans()) and members:
        name, _ = draw(st.sampled_from(members))
        members.append((name, draw(st.one_of(json_texts(), *good.values()))))
    return _object_text(members)


@st.composite
def jwt_tokens(draw: st.DrawFn) -> str:
    """A compact JWS from :func:`jose_headers` and :func:`claim_sets`: signed with the test
    secret (so claim checks are reached), forged, unsigned, or with a random signature.
    """
    header, payload = draw(jose_headers()), draw(claim_sets())
    signing = draw(st.sampled_from(["secret", "secret", "other", "unsigned", "random"]))
    if signing in {"secret", "other"}:
        return hs256_raw(header, payload, SECRET if signing == "secret" else OTHER_SECRET)
    unsigned = f"{b64url(header.encode())}.{b64url(payload.encode())}."
    return unsigned + (
        draw(st.binary(min_size=1, max_size=64).map(b64url)) if signing == "random" else ""
    )


def fuzz_tokens() -> st.SearchStrategy[str]:
    """A bearer token as a client might send it: :func:`jwt_tokens` or :func:`segment_tokens`."""
    return st.one_of(jwt_tokens(), segment_tokens())
