"""The security regression suite: known JWT attacks, each sent through both middlewares.

Every case is a request an attacker (or a careless client) can send, answered by the
ASGI middleware (httpx's ASGI transport) and the WSGI middleware (httpx's WSGI
transport) with the same verdict. Every answer is also checked for what must never
happen: the token echoed, a challenge that does not parse, other than exactly one
``auth_rejected`` event. The core-level twins of several cases live in
the ``test_verify_*.py`` modules; this file pins the end-to-end behaviour in one place.

=================================  ===============================================
attack                             expected
=================================  ===============================================
``alg: none``, every spelling      401 ``algorithm_not_allowed``
HS256 keyed with the RSA key       401 ``algorithm_not_allowed`` (PEM, JWK, DER, n)
hostile ``kid`` (paths, SQL, CRLF) 401 ``unknown_key``; one JWKS fetch; no injection
``jku``/``x5u``/``jwk``/``x5c``    refused; the URL's server receives zero requests
JWE (five segments)                401 ``malformed_token``, "encrypted" description
1 MB Authorization header          401 ``malformed_token``, fast, small log event
100 KB claim                       401 ``malformed_token`` before any decoding
duplicate JSON keys                last one wins, in every check and in the log
padding / encoding variants        none gets past the revocation list
=================================  ===============================================
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from invalidtoken_mw import (
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
    MemoryRevocationStore,
)
from support.rejections import ok_asgi, ok_wsgi
from support.strategies import check_challenge
from support.tokens import (
    AUDIENCE,
    ISSUER,
    KIDS,
    OTHER_SECRET,
    SECRET,
    Keys,
    b64url,
    claims,
    hs256_raw,
    mint,
)

if TYPE_CHECKING:
    from support.jwks_server import JWKSServer

ADAPTERS = pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
KID = KIDS["RS256"]
HS256 = {"alg": "HS256", "typ": "JWT"}
NOW = int(time.time())


@dataclass(frozen=True)
class Sent:
    """One answer of a middleware and the events it logged."""

    status: int
    headers: httpx.Headers
    body: dict[str, Any] | None
    events: list[dict[str, Any]]

    @property
    def reason(self) -> str:
        """The refusal's reason (``"ok"`` for a 200)."""
        return "ok" if self.body is None else str(self.body["reason"])


def fragments(token: str) -> list[str]:
    """What must never be echoed: the token and each of its parts, of 16 or more characters."""
    return [part for part in {token, *token.split(".")} if len(part) >= 16]


def send(
    adapter: str,
    verifier: JWTVerifier,
    authorization: str | None,
    *,
    target: str = "/orders",
    **options: Any,
) -> Sent:
    """Send one GET through a fresh middleware of ``adapter``; check what it must never do."""
    options = {"realm": "api", "log_rate_limit": None, **options}
    headers = {} if authorization is None else {"authorization": authorization}
    with capture_logs() as captured:
        if adapter == "asgi":
            asgi = InvalidTokenMiddleware(ok_asgi, verifier=verifier, **options)

            async def call() -> httpx.Response:
                transport = httpx.ASGITransport(app=asgi)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    return await client.get(target, headers=headers)

            response = asyncio.run(call())
        else:
            wsgi = InvalidTokenWSGIMiddleware(ok_wsgi, verifier=verifier, **options)
            transport = httpx.WSGITransport(app=wsgi)
            with httpx.Client(transport=transport, base_url="http://t") as client:
                response = client.get(target, headers=headers)
    events = [dict(e) for e in captured]
    written = repr(list(response.headers.items())) + response.text + repr(events)
    secret = authorization.partition(" ")[2] if authorization else ""
    assert [] == [part for part in fragments(secret) if part in written]
    if response.status_code == 200:
        assert [] == events
        return Sent(200, response.headers, None, events)
    assert ["auth_rejected"] == [e["event"] for e in events]
    assert response.status_code >= 500 or check_challenge(response.headers["www-authenticate"])
    return Sent(response.status_code, response.headers, response.json(), events)


def static_verifier(**options: Any) -> JWTVerifier:
    """A verifier for HS256 tokens signed with ``tokens.SECRET``."""
    return JWTVerifier(
        key=SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE, **options
    )


def rsa_verifier(key: Any) -> JWTVerifier:
    """A verifier configured with an RSA public key in some form (PEM, JWK, key object)."""
    return JWTVerifier(key=key, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE)


def jwks_verifier(server: JWKSServer, **options: Any) -> JWTVerifier:
    """A verifier using ``server``'s JWKS."""
    options.setdefault("algorithms", ["RS256"])
    return JWTVerifier(jwks_url=server.url, issuer=ISSUER, audience=AUDIENCE, **options)


# -- alg: none ------------------------------------------------------------------------------


@ADAPTERS
@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE", "NoNe"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"], ids=["empty-sig", "with-sig"])
def test_alg_none_in_every_spelling_is_refused(adapter: str, spelling: str, signature: str) -> None:
    """An unsigned token is algorithm_not_allowed in any spelling, with or without a signature."""
    unsigned = (
        f"{b64url(json.dumps({'alg': spelling}).encode())}.{b64url(json.dumps(claims()).encode())}"
    )
    sent = send(adapter, static_verifier(), f"Bearer {unsigned}.{signature}")
    assert (401, "algorithm_not_allowed") == (sent.status, sent.reason)


# -- HS/RS key confusion ---------------------------------------------------------------------


def _confusion_secrets(keys: Keys) -> dict[str, bytes]:
    """Every form of the public RSA key an attacker may use as an HMAC secret."""
    public = keys.rsa.public_key()
    jwk = keys.jwk("RS256", KID)
    return {
        "pem": keys.rsa_public_pem(),
        "pem-pkcs1": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "jwk-json": json.dumps(jwk).encode(),
        "jwk-n": base64.urlsafe_b64decode(jwk["n"] + "=="),
    }


KEY_FORMS = ["pem-str", "pem-bytes", "jwk", "object"]
FORGERY_SECRETS = ["pem", "pem-pkcs1", "der", "jwk-json", "jwk-n"]


def _rsa_key_form(keys: Keys, form: str) -> Any:
    pem = keys.rsa_public_pem()
    return {
        "pem-str": pem.decode(),
        "pem-bytes": pem,
        "jwk": keys.jwk("RS256", KID),
        "object": keys.rsa.public_key(),
    }[form]


@ADAPTERS
@pytest.mark.parametrize("form", KEY_FORMS)
@pytest.mark.parametrize("secret", FORGERY_SECRETS)
def test_hs256_keyed_with_a_static_rsa_key_is_refused(
    adapter: str, keys: Keys, form: str, secret: str
) -> None:
    """HS256 signed with the RSA public key (any form) against an RS256 key is refused."""
    forged = hs256_raw(HS256, claims(), _confusion_secrets(keys)[secret])
    sent = send(adapter, rsa_verifier(_rsa_key_form(keys, form)), f"Bearer {forged}")
    assert (401, "algorithm_not_allowed") == (sent.status, sent.reason)


@ADAPTERS
@pytest.mark.parametrize("jwk_alg", ["RS256", None], ids=["jwk-alg", "jwk-no-alg"])
@pytest.mark.parametrize("secret", FORGERY_SECRETS)
def test_hs256_keyed_with_a_published_rsa_key_is_refused_even_if_allowlisted(
    adapter: str, keys: Keys, jwks: JWKSServer, jwk_alg: str | None, secret: str
) -> None:
    """With HS256 allowlisted next to RS256, an HMAC keyed with the JWKS's RSA key never passes."""
    jwk = keys.jwk("RS256", KID)
    if jwk_alg is None:
        del jwk["alg"]
    jwks.jwks = {"keys": [jwk]}
    verifier = jwks_verifier(jwks, algorithms=["RS256", "HS256"])
    forged = hs256_raw({**HS256, "kid": KID}, claims(), _confusion_secrets(keys)[secret])
    sent = send(adapter, verifier, f"Bearer {forged}")
    assert (401, "algorithm_not_allowed") == (sent.status, sent.reason)


@pytest.mark.parametrize("form", KEY_FORMS)
def test_an_rsa_key_can_never_be_configured_as_an_hmac_secret(keys: Keys, form: str) -> None:
    """Allowlisting HS256 for an RSA key fails at construction, whatever form the key takes."""
    with pytest.raises(ValueError, match="HS256"):
        JWTVerifier(key=_rsa_key_form(keys, form), algorithms=["HS256"], issuer=ISSUER)


# -- hostile kid values ----------------------------------------------------------------------

HOSTILE_KIDS = {
    "path-unix": "../../../../etc/passwd",
    "path-absolute": "/dev/null",
    "path-windows": "..\\..\\windows\\win.ini",
    "path-url": "https://evil.example/jwks.json",
    "sql-or": "' OR '1'='1",
    "sql-drop": "1; DROP TABLE keys; --",
    "crlf": "rsa-1\r\nX-Injected: yes",
    "nul": "rsa-1\x00",
    "unicode": "rsa\u20121",
    "huge": "k" * 4000,
}


@ADAPTERS
@pytest.mark.parametrize("kid", HOSTILE_KIDS.values(), ids=HOSTILE_KIDS.keys())
def test_hostile_kid_is_only_a_dictionary_key(adapter: str, jwks: JWKSServer, kid: str) -> None:
    """A kid with paths, SQL or CRLF is unknown_key: one JWKS fetch, no injection, clean log."""
    verifier = jwks_verifier(jwks, jwks_cooldown=5.0)
    token = mint("RS256", headers={"kid": kid})
    sent = send(adapter, verifier, f"Bearer {token}")
    [event] = sent.events
    logged = str(event["kid"])
    expected_headers = {"www-authenticate", "content-type", "content-length", "cache-control"}
    assert (401, "unknown_key", 1, expected_headers) == (
        sent.status,
        sent.reason,
        jwks.requests,
        set(sent.headers),
    )
    assert [] == [c for c in "\r\n\x00" if c in logged]
    assert len(logged) <= 200


@ADAPTERS
@pytest.mark.parametrize("kid", HOSTILE_KIDS.values(), ids=HOSTILE_KIDS.keys())
def test_hostile_kid_is_ignored_by_a_static_key(adapter: str, kid: str) -> None:
    """With a static key the kid chooses nothing: a correctly signed token is accepted."""
    sent = send(adapter, static_verifier(), f"Bearer {mint(headers={'kid': kid})}")
    assert 200 == sent.status


# -- keys named by the token -----------------------------------------------------------------


def _key_carrying_headers(keys: Keys, attacker: JWKSServer) -> dict[str, dict[str, Any]]:
    forger = keys.rsa_other_jwk()
    return {
        "jku": {"jku": attacker.url},
        "x5u": {"x5u": attacker.url},
        "jwk": {"jwk": forger},
        "x5c": {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"], "x5u": attacker.url},
        "all": {"jku": attacker.url, "x5u": attacker.url, "jwk": forger},
    }


@ADAPTERS
@pytest.mark.parametrize("carrier", ["jku", "x5u", "jwk", "x5c", "all"])
def test_jku_x5u_jwk_headers_are_never_fetched_or_trusted(
    adapter: str, keys: Keys, jwks: JWKSServer, attacker: JWKSServer, carrier: str
) -> None:
    """Tokens signed by the attacker's key, naming it by URL or inline, are refused unasked."""
    named = _key_carrying_headers(keys, attacker)[carrier]
    forger = keys.rsa_other
    outcomes = []
    for kid, verifier in (
        ("attacker", jwks_verifier(jwks)),  # the attacker's kid: not in the real JWKS
        (KID, jwks_verifier(jwks)),  # the real kid, the attacker's signature
        (KID, rsa_verifier(keys.rsa.public_key())),
    ):
        token = mint("RS256", headers={**named, "kid": kid}, key=forger)
        outcomes.append(send(adapter, verifier, f"Bearer {token}").reason)
    hmac_forgery = hs256_raw(
        {**HS256, "jwk": {"kty": "oct", "k": b64url(OTHER_SECRET)}}, claims(), OTHER_SECRET
    )
    outcomes.append(send(adapter, static_verifier(), f"Bearer {hmac_forgery}").reason)
    expected = ["unknown_key", "bad_signature", "bad_signature", "bad_signature"]
    assert (expected, 0) == (outcomes, attacker.requests)


# -- JWE -------------------------------------------------------------------------------------

JWE_DESCRIPTION = (
    "The access token is encrypted (JWE); this service accepts signed tokens (JWS) only."
)


def _jwe(header: dict[str, str], *, encrypted_key: bool = True) -> str:
    parts = [
        b64url(json.dumps(header).encode()),
        b64url(b"k" * 256) if encrypted_key else "",
        b64url(b"iv" * 6),
        b64url(json.dumps(claims()).encode()),
        b64url(b"tag" * 5),
    ]
    return ".".join(parts)


@ADAPTERS
@pytest.mark.parametrize(
    "token",
    [
        _jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
        _jwe({"alg": "dir", "enc": "A128CBC-HS256"}, encrypted_key=False),
        _jwe({"alg": "HS256", "enc": "A256GCM", "cty": "JWT"}),
    ],
    ids=["rsa-oaep", "dir", "claims-alg-hs256"],
)
def test_jwe_tokens_are_malformed_and_say_encrypted(adapter: str, token: str) -> None:
    """A five-part JWE is malformed_token, and the description says encrypted tokens are refused."""
    sent = send(adapter, static_verifier(), f"Bearer {token}")
    assert sent.body is not None
    assert (401, "malformed_token", JWE_DESCRIPTION) == (
        sent.status,
        sent.reason,
        sent.body["error_description"],
    )


# -- sizes -----------------------------------------------------------------------------------

MEGABYTE = 1 << 20


@ADAPTERS
@pytest.mark.parametrize(
    "value",
    [
        "Bearer " + "A" * MEGABYTE,
        "Bearer eyJ" + "A" * MEGABYTE + ".eyJ" + "B" * 100 + ".sig",
        "Bearer " + "%" * MEGABYTE,
        "Basic " + "A" * MEGABYTE,
    ],
    ids=["b64token", "jwt-shaped", "junk", "basic"],
)
def test_one_megabyte_authorization_header_is_refused_fast(adapter: str, value: str) -> None:
    """A 1 MB Authorization value is malformed_token before any parsing, fast, with a small log."""
    started = time.perf_counter()
    sent = send(adapter, static_verifier(), value)
    elapsed = time.perf_counter() - started
    [event] = sent.events
    assert (401, "malformed_token") == (sent.status, sent.reason)
    assert elapsed < 2.0
    assert len(repr(event)) < 2000


@ADAPTERS
def test_oversized_query_token_is_refused(adapter: str) -> None:
    """A 60 KB access_token query parameter (httpx's URL limit is 64 KB) is malformed_token."""
    sent = send(
        adapter,
        static_verifier(),
        None,
        target="/orders?access_token=" + "A" * 60_000,
        allow_query_token=True,
    )
    assert (401, "malformed_token") == (sent.status, sent.reason)


def _hundred_kb_claim(secret: bytes = SECRET) -> str:
    return hs256_raw(HS256, claims(blob="x" * 100_000), secret)


@ADAPTERS
@pytest.mark.parametrize("secret", [SECRET, OTHER_SECRET], ids=["signed", "forged"])
def test_token_with_a_100kb_claim_is_refused_before_decoding(adapter: str, secret: bytes) -> None:
    """A 100 KB claim makes the token malformed (oversized), forged or not: no decoding happens."""
    sent = send(adapter, static_verifier(), f"Bearer {_hundred_kb_claim(secret)}")
    [event] = sent.events
    assert (401, "malformed_token") == (sent.status, sent.reason)
    assert len(repr(event)) < 2000


@ADAPTERS
def test_token_with_a_100kb_claim_passes_when_the_limits_allow_it(adapter: str) -> None:
    """Raising max_token_bytes on the middleware and the verifier lets the big token through."""
    limit = 200_000
    verifier = static_verifier(max_token_bytes=limit)
    sent = send(adapter, verifier, f"Bearer {_hundred_kb_claim()}", max_token_bytes=limit)
    assert 200 == sent.status


# -- duplicate JSON keys ----------------------------------------------------------------------


def _members(*pairs: tuple[str, Any]) -> str:
    """A JSON object with the members in order, duplicates kept."""
    return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"


def _claims_with(*duplicates: tuple[str, Any]) -> str:
    base = claims(scope="orders:write")
    names = {name for name, _ in duplicates}
    return _members(*((k, v) for k, v in base.items() if k not in names), *duplicates)


DUPLICATES = [
    pytest.param(
        _members(("alg", "none"), ("alg", "HS256")), _claims_with(), "ok", id="alg-none-then-hs256"
    ),
    pytest.param(
        _members(("alg", "HS256"), ("alg", "none")),
        _claims_with(),
        "algorithm_not_allowed",
        id="alg-hs256-then-none",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("exp", NOW - 7200), ("exp", NOW + 3600)),
        "ok",
        id="exp-past-then-future",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("exp", NOW + 3600), ("exp", NOW - 7200)),
        "expired",
        id="exp-future-then-past",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("aud", "other"), ("aud", AUDIENCE)),
        "ok",
        id="aud-other-then-ours",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("aud", AUDIENCE), ("aud", "other")),
        "wrong_audience",
        id="aud-ours-then-other",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("iss", ISSUER), ("iss", "https://evil.example")),
        "wrong_issuer",
        id="iss-ours-then-evil",
    ),
    pytest.param(
        json.dumps(HS256),
        _claims_with(("scope", "orders:write"), ("scope", "orders:read")),
        "insufficient_scope",
        id="scope-write-then-read",
    ),
]


@ADAPTERS
@pytest.mark.parametrize(("header", "payload", "expected"), DUPLICATES)
def test_duplicate_json_keys_last_one_wins_everywhere(
    adapter: str, header: str, payload: str, expected: str
) -> None:
    """Of duplicate members the last wins in every check, so no two parsers disagree (RFC 7515)."""
    sent = send(
        adapter, static_verifier(), f"Bearer {hs256_raw(header, payload)}", scopes=["orders:write"]
    )
    assert expected == sent.reason


@ADAPTERS
def test_duplicate_json_keys_log_the_value_that_was_checked(adapter: str) -> None:
    """The log names the last of duplicate sub and kid members, the values the checks used."""
    header = _members(("alg", "HS256"), ("kid", "first"), ("kid", "last"))
    payload = _claims_with(("sub", "alice"), ("sub", "mallory"), ("exp", NOW - 7200))
    sent = send(adapter, static_verifier(), f"Bearer {hs256_raw(header, payload)}")
    [event] = sent.events
    assert ("expired", "mallory", "last") == (sent.reason, event["sub"], event["kid"])


# -- encoding variants against the revocation list ---------------------------------------------

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _last_char_variants(segment: str) -> list[str]:
    """Other spellings of ``segment`` decoding to the same bytes (non-zero unused low bits)."""
    unused = {2: 4, 3: 2}.get(len(segment) % 4, 0)  # bits of the last character that carry nothing
    index = B64URL.index(segment[-1])
    spellings = {
        segment[:-1] + B64URL[(index & ~((1 << unused) - 1)) | low] for low in range(1 << unused)
    }
    return sorted(spellings - {segment})


def _variants(token: str) -> list[str]:
    """Other spellings of ``token``: non-canonical base64url, padding, the standard alphabet."""
    head, body, signature = token.split(".")

    def standard(segment: str) -> str:
        return segment.replace("-", "+").replace("_", "/")

    return [
        *(f"{head}.{body}.{s}" for s in _last_char_variants(signature)),
        *(f"{head}.{b}.{signature}" for b in _last_char_variants(body)),
        token + "=",
        token + "==",
        f"{head}=.{body}.{signature}",
        f"{head}.{body}=.{signature}=",
        f"{head}==.{body}==.{signature}==",
        ".".join(standard(s) for s in (head, body, signature)) + "/+",
    ]


@ADAPTERS
@pytest.mark.parametrize("alg", ["HS256", "RS256"])
def test_no_spelling_of_a_revoked_token_gets_past_the_revocation_list(
    adapter: str, keys: Keys, alg: str
) -> None:
    """Each spelling is refused outright or treated as the token: never accepted once revoked."""
    # Non-canonical base64url (unused low bits of the last character set) decodes to the
    # same bytes; PyJWT refuses such a signature, and a changed header or claims segment
    # breaks the signature, so today every variant is refused before and after.
    store = MemoryRevocationStore()
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE, "revocation": store}
    key = SECRET if alg == "HS256" else keys.rsa.public_key()
    verifier = JWTVerifier(key=key, algorithms=[alg], **options)
    payload = claims(jti="to-be-revoked")
    token = mint(alg, payload)
    spellings = [token, *_variants(token)]
    before = [send(adapter, verifier, f"Bearer {v}").reason for v in spellings]
    store.revoke(jti="to-be-revoked", issuer=ISSUER, expires_at=payload["exp"])
    after = [send(adapter, verifier, f"Bearer {v}").reason for v in spellings]
    outcomes = set(zip(before, after, strict=True))
    assert ("ok", "revoked") == (before[0], after[0])
    assert len(spellings) >= 10
    allowed = {("ok", "revoked"), ("malformed_token",) * 2, ("bad_signature",) * 2}
    assert set() == outcomes - allowed
