r"""The RFC grammar the library reads and writes, each rule once, its ABNF beside it.

Rules are regular-expression source strings, composed the way the ABNF composes them;
the ones the library matches against are compiled here, once, at import (the ``*_RE``
names), so no request compiles a pattern. ``fullmatch`` a compiled rule to test a whole
value. Core rules (RFC 5234 Appendix B.1) used below: ``ALPHA = %x41-5A / %x61-7A``,
``DIGIT = %x30-39``, ``HEXDIG = DIGIT / "A"-"F"``, ``SP = %x20``, ``HTAB = %x09``,
``VCHAR = %x21-7E``, ``DQUOTE = %x22``.

Nothing here accepts CR, LF, ``"`` or ``\\`` except where the RFC rule itself does
(``quoted-string``, which the challenge parser reads but the library never writes).
"""

from __future__ import annotations

import re

__all__ = [
    "AUTH_PARAM_START_RE",
    "B64TOKEN_RE",
    "COMMA_RE",
    "FOLDED_BEARER_RE",
    "FOLDED_CREDENTIALS_RE",
    "NQSCHARS_RE",
    "OWS_RE",
    "QUERY_SEPARATORS_RE",
    "QUOTED_STRING_RE",
    "SCOPE_TOKEN_RE",
    "SPACES_RE",
    "TOKEN68_RE",
    "TOKEN_RE",
    "URI_RE",
    "URI_REFERENCE_RE",
    "uri_problem",
]

# -- HTTP (RFC 9110, which obsoletes RFC 7230) -------------------------------------------

# RFC 9110 §5.6.3
#   OWS = *( SP / HTAB )
#   BWS = OWS
OWS = r"[ \t]*"
BWS = OWS

# RFC 9110 §5.6.2
#   token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`"
#         / "|" / "~" / DIGIT / ALPHA
TCHAR = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
TOKEN = TCHAR + "+"

# RFC 9110 §5.5
#   obs-text = %x80-FF
# RFC 9110 §5.6.4
#   quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE
#   qdtext        = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#   quoted-pair   = "\" ( HTAB / SP / VCHAR / obs-text )
QDTEXT = r"[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]"
QUOTED_PAIR = r"\\[\t \x21-\x7e\x80-\xff]"
QUOTED_STRING = rf'"(?:{QDTEXT}|{QUOTED_PAIR})*"'

# RFC 9110 §11.2
#   token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
# RFC 6750 §2.1 names the same rule b64token:
#   b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
B64TOKEN = TOKEN68

# RFC 9110 §11.2
#   auth-param = token BWS "=" BWS ( token / quoted-string )
# A parameter starts with "name=" followed by a value: "=" then "=" or "," (or nothing)
# is the padding of a token68, not a parameter.
AUTH_PARAM_START = rf"{TOKEN}{BWS}=(?!{BWS}(?:[=,]|$))"

# RFC 9110 §5.6.1: a list element ends at "," (#rule); RFC 9110 §11.6.1 separates the
# auth-scheme from its token68 or parameters with 1*SP.
COMMA = ","
SPACES = " +"

# RFC 9110 §5.3: several Authorization lines may be combined into one, comma-separated.
# After a Bearer token (a b64token never holds ","), a comma, OWS, the next credentials'
# auth-scheme (a token) and a space can only be such folding.
FOLDED_CREDENTIALS = rf",{OWS}{TOKEN}[ \t]"
FOLDED_BEARER = rf",{OWS}bearer(?:[ \t]|\Z)"

# -- OAuth 2.0 (RFC 6749 Appendix A, RFC 6750 §3) ----------------------------------------

# RFC 6749 Appendix A
#   NQCHAR  = %x21 / %x23-5B / %x5D-7E
#   NQSCHAR = %x20-21 / %x23-5B / %x5D-7E
# RFC 6750 §3: error_description (and, here, the realm) is *NQSCHAR; error_uri and each
# scope are NQCHARs.
NQCHAR = r"[\x21\x23-\x5b\x5d-\x7e]"
NQSCHAR = r"[\x20\x21\x23-\x5b\x5d-\x7e]"
NQSCHARS = NQSCHAR + "*"

# RFC 6749 §3.3
#   scope       = scope-token *( SP scope-token )
#   scope-token = 1*NQCHAR
SCOPE_TOKEN = NQCHAR + "+"

# -- Query strings and form bodies --------------------------------------------------------

# application/x-www-form-urlencoded pairs are split on "&"; Bottle, Python before 3.9.2
# and older python-multipart split on ";" as well (HTML 4.01 §B.2.2 suggested it).
QUERY_SEPARATORS = "[&;]"

# -- URIs (RFC 3986) ------------------------------------------------------------------------

# RFC 3986 §2.1-2.3
#   pct-encoded = "%" HEXDIG HEXDIG
#   unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
#   sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
HEXDIG = r"[0-9A-Fa-f]"
PCT_ENCODED = rf"%{HEXDIG}{HEXDIG}"
UNRESERVED = r"[A-Za-z0-9\-._~]"
SUB_DELIMS = r"[!$&'()*+,;=]"

# RFC 3986 §3.3
#   pchar = unreserved / pct-encoded / sub-delims / ":" / "@"
PCHAR = rf"(?:{UNRESERVED}|{PCT_ENCODED}|{SUB_DELIMS}|[:@])"

# RFC 3986 §3.1
#   scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME = r"[A-Za-z][A-Za-z0-9+\-.]*"

# RFC 3986 §3.2.1-3.2.3
#   userinfo = *( unreserved / pct-encoded / sub-delims / ":" )
#   port     = *DIGIT
USERINFO = rf"(?:{UNRESERVED}|{PCT_ENCODED}|{SUB_DELIMS}|:)*"
PORT = r"[0-9]*"

# RFC 3986 §3.2.2
#   dec-octet   = DIGIT / %x31-39 DIGIT / "1" 2DIGIT / "2" %x30-34 DIGIT / "25" %x30-35
#   IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet
DEC_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
IPV4ADDRESS = rf"{DEC_OCTET}\.{DEC_OCTET}\.{DEC_OCTET}\.{DEC_OCTET}"

#   h16  = 1*4HEXDIG
#   ls32 = ( h16 ":" h16 ) / IPv4address
#   IPv6address =                            6( h16 ":" ) ls32
#               /                       "::" 5( h16 ":" ) ls32
#               / [               h16 ] "::" 4( h16 ":" ) ls32
#               / [ *1( h16 ":" ) h16 ] "::" 3( h16 ":" ) ls32
#               / [ *2( h16 ":" ) h16 ] "::" 2( h16 ":" ) ls32
#               / [ *3( h16 ":" ) h16 ] "::"    h16 ":"   ls32
#               / [ *4( h16 ":" ) h16 ] "::"              ls32
#               / [ *5( h16 ":" ) h16 ] "::"              h16
#               / [ *6( h16 ":" ) h16 ] "::"
H16 = rf"{HEXDIG}{{1,4}}"
LS32 = rf"(?:{H16}:{H16}|{IPV4ADDRESS})"


def _before_double_colon(at_most: int) -> str:
    """``[ *n( h16 ":" ) h16 ]`` of the IPv6address rule, for ``n = at_most``."""
    return rf"(?:(?:{H16}:){{0,{at_most}}}{H16})?"


IPV6ADDRESS = (
    "(?:"
    + "|".join(
        (
            rf"(?:{H16}:){{6}}{LS32}",
            rf"::(?:{H16}:){{5}}{LS32}",
            rf"{_before_double_colon(0)}::(?:{H16}:){{4}}{LS32}",
            rf"{_before_double_colon(1)}::(?:{H16}:){{3}}{LS32}",
            rf"{_before_double_colon(2)}::(?:{H16}:){{2}}{LS32}",
            rf"{_before_double_colon(3)}::{H16}:{LS32}",
            rf"{_before_double_colon(4)}::{LS32}",
            rf"{_before_double_colon(5)}::{H16}",
            rf"{_before_double_colon(6)}::",
        )
    )
    + ")"
)

#   IPvFuture  = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
#   IP-literal = "[" ( IPv6address / IPvFuture  ) "]"
#   reg-name   = *( unreserved / pct-encoded / sub-delims )
#   host       = IP-literal / IPv4address / reg-name
IPVFUTURE = rf"[vV]{HEXDIG}+\.(?:{UNRESERVED}|{SUB_DELIMS}|:)+"
IP_LITERAL = rf"\[(?:{IPV6ADDRESS}|{IPVFUTURE})\]"
REG_NAME = rf"(?:{UNRESERVED}|{PCT_ENCODED}|{SUB_DELIMS})*"
HOST = rf"(?:{IP_LITERAL}|{IPV4ADDRESS}|{REG_NAME})"

# RFC 3986 §3.2
#   authority = [ userinfo "@" ] host [ ":" port ]
AUTHORITY = rf"(?:{USERINFO}@)?{HOST}(?::{PORT})?"

# RFC 3986 §3.3
#   path-abempty  = *( "/" segment )
#   path-absolute = "/" [ segment-nz *( "/" segment ) ]
#   path-noscheme = segment-nz-nc *( "/" segment )
#   path-rootless = segment-nz *( "/" segment )
#   path-empty    = 0<pchar>
#   segment       = *pchar
#   segment-nz    = 1*pchar
#   segment-nz-nc = 1*( unreserved / pct-encoded / sub-delims / "@" )
#                 ; non-zero-length segment without any colon ":"
SEGMENT = rf"{PCHAR}*"
SEGMENT_NZ = rf"{PCHAR}+"
SEGMENT_NZ_NC = rf"(?:{UNRESERVED}|{PCT_ENCODED}|{SUB_DELIMS}|@)+"
PATH_ABEMPTY = rf"(?:/{SEGMENT})*"
PATH_ABSOLUTE = rf"/(?:{SEGMENT_NZ}(?:/{SEGMENT})*)?"
PATH_NOSCHEME = rf"{SEGMENT_NZ_NC}(?:/{SEGMENT})*"
PATH_ROOTLESS = rf"{SEGMENT_NZ}(?:/{SEGMENT})*"
PATH_EMPTY = ""

# RFC 3986 §3.4-3.5
#   query    = *( pchar / "/" / "?" )
#   fragment = *( pchar / "/" / "?" )
QUERY = rf"(?:{PCHAR}|[/?])*"
FRAGMENT = QUERY

# RFC 3986 §3 and §4.2
#   hier-part     = "//" authority path-abempty / path-absolute / path-rootless / path-empty
#   relative-part = "//" authority path-abempty / path-absolute / path-noscheme / path-empty
HIER_PART = rf"(?://{AUTHORITY}{PATH_ABEMPTY}|{PATH_ABSOLUTE}|{PATH_ROOTLESS}|{PATH_EMPTY})"
RELATIVE_PART = rf"(?://{AUTHORITY}{PATH_ABEMPTY}|{PATH_ABSOLUTE}|{PATH_NOSCHEME}|{PATH_EMPTY})"

# RFC 3986 §3, §4.2 and §4.1
#   URI           = scheme ":" hier-part [ "?" query ] [ "#" fragment ]
#   relative-ref  = relative-part [ "?" query ] [ "#" fragment ]
#   URI-reference = URI / relative-ref
URI = rf"{SCHEME}:{HIER_PART}(?:\?{QUERY})?(?:#{FRAGMENT})?"
RELATIVE_REF = rf"{RELATIVE_PART}(?:\?{QUERY})?(?:#{FRAGMENT})?"
URI_REFERENCE = rf"(?:{URI}|{RELATIVE_REF})"

# The characters a URI can hold at all (RFC 3986 §2: unreserved, reserved and "%").
_URI_CHAR = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_PCT_ENCODED = re.compile(PCT_ENCODED)

# -- Compiled, once --------------------------------------------------------------------------

OWS_RE = re.compile(OWS)
TOKEN_RE = re.compile(TOKEN)
TOKEN68_RE = re.compile(TOKEN68)
B64TOKEN_RE = TOKEN68_RE
#: A quoted-string; group 1 is its content, still escaped.
QUOTED_STRING_RE = re.compile(rf'"((?:{QDTEXT}|{QUOTED_PAIR})*)"')
AUTH_PARAM_START_RE = re.compile(AUTH_PARAM_START)
COMMA_RE = re.compile(COMMA)
SPACES_RE = re.compile(SPACES)
FOLDED_CREDENTIALS_RE = re.compile(FOLDED_CREDENTIALS)
FOLDED_BEARER_RE = re.compile(FOLDED_BEARER, re.IGNORECASE)  # auth-schemes ignore case
NQSCHARS_RE = re.compile(NQSCHARS)
SCOPE_TOKEN_RE = re.compile(SCOPE_TOKEN)
QUERY_SEPARATORS_RE = re.compile(QUERY_SEPARATORS)
URI_RE = re.compile(URI)
URI_REFERENCE_RE = re.compile(URI_REFERENCE)


def uri_problem(value: object, *, absolute: bool = False) -> str | None:
    """Why ``value`` is not an RFC 3986 URI reference (a ``URI`` if ``absolute``), or ``None``.

    The answer is a phrase for a configuration error message, e.g. ``"'{' at offset 19
    is not allowed in a URI"``; it quotes the value's characters with ``repr``, so it
    can be shown whatever the value holds.
    """
    if not isinstance(value, str):
        return f"it is a {type(value).__name__}, not a string"
    problem = _character_problem(value) if value else "it is empty"
    if problem is not None or URI_RE.fullmatch(value):
        return problem
    if not URI_REFERENCE_RE.fullmatch(value):
        return "it does not follow the URI syntax of RFC 3986"
    return "it is a relative reference, without a scheme such as https" if absolute else None


def _character_problem(value: str) -> str | None:
    """The first character no URI holds, or the first ``%`` that is no ``%XX``."""
    for offset, char in enumerate(value):
        if not _URI_CHAR.fullmatch(char):
            return f"{char!r} at offset {offset} is not allowed in a URI"
    offset = value.find("%")
    while offset != -1:
        if not _PCT_ENCODED.match(value, offset):
            return f"'%' at offset {offset} does not start a %XX escape"
        offset = value.find("%", offset + 1)
    return None
