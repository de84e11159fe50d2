"""DPoP (RFC 9449): each check of a proof, pinned by a proof that violates exactly it.

Unit tests of :class:`~invalidtoken_mw.dpop.DPoPVerifier` (sans-IO, a fixed clock),
then the guard's policy through the ASGI and WSGI middlewares called directly: the
modes, the challenges of RFC 9449 §7.1, the downgrade refusal of §7.2, nonces and CORS.
The proofs here are crafted with PyJWT and cryptography so that each breaks one rule;
tests/test_dpop_client.py makes real proofs with an independent client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import der_to_raw_signature
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from invalidtoken_mw import (
    GuardSettings,
    InvalidTokenMiddleware,
    InvalidTokenWSGIMiddleware,
    JWTVerifier,
)
from invalidtoken_mw.dpop import (
    DEFAULT_DPOP_ALGORITHMS,
    DPoPVerifier,
    MemoryReplayCache,
    jwk_thumbprint,
    normalize_htu,
    replay_key,
)
from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.testing import LocalIssuer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

NOW = 1_800_000_000
URL = "https://api.example.com/orders"
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2ln"
ALGS = " ".join(DEFAULT_DPOP_ALGORITHMS)
KEY = ec.generate_private_key(ec.SECP256R1())
JWK = ECAlgorithm.to_jwk(KEY.public_key(), as_dict=True)
JKT = jwk_thumbprint(JWK)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ath(token: str = TOKEN) -> str:
    return b64url(hashlib.sha256(token.encode()).digest())


def proof(
    *,
    key: Any = KEY,
    alg: str = "ES256",
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A proof for GET URL with TOKEN at NOW; ``claims``/``header`` override, ``drop`` removes."""
    body: dict[str, Any] = {"jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath()}
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    head: dict[str, Any] = {"typ": "dpop+jwt", "jwk": JWK}
    head.update(header or {})
    return jwt.encode(body, key, algorithm=alg, headers=head)


def verifier(**options: Any) -> DPoPVerifier:
    return DPoPVerifier(clock=lambda: NOW, **options)


def refusal(
    lines: list[str], *, method: str = "GET", url: str = URL, **options: Any
) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        verifier(**options).check(lines, method, url, TOKEN)
    return caught.value


def test_a_valid_proof_passes_and_names_its_key() -> None:
    """RFC 9449 §4.3: a proof meeting every check gives the key's thumbprint and jti."""
    checked = verifier().check([proof()], "GET", URL, TOKEN)
    assert (checked.jkt, checked.jti) == (JKT, "j-1")


def test_thumbprint_matches_rfc7638_example() -> None:
    """RFC 7638 §3.1's example key gives its published thumbprint."""
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
            "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
            "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
            "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
            "qDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_missing_dpop_header_is_refused() -> None:
    """§4.3 (1): there is not more than one DPoP header, and §7.1: one is required."""
    failure = refusal([])
    assert (failure.reason, failure.description) == (
        Reason.INVALID_DPOP_PROOF,
        "The request carries no DPoP proof; send one DPoP header.",
    )


def test_two_dpop_headers_are_refused() -> None:
    """§4.3 (1): not more than one DPoP HTTP request header field."""
    assert "more than one" in refusal([proof(), proof(jti="j-2")]).description
    assert "more than one" in refusal([f"{proof()}, {proof(jti='j-2')}"]).description


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b", "W10.e30.c2ln", "a.b.c.d", "!!.e30.e30"])
def test_not_a_jws_is_refused(value: str) -> None:
    """§4.3 (2): the DPoP header value is a single well-formed JWT."""
    assert refusal([value]).description == "The DPoP proof is not a well-formed signed JWT."


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat", "ath"])
def test_each_required_claim_is_required(claim: str) -> None:
    """§4.3 (3): all required claims per §4.2 are present (ath: a token is presented)."""
    failure = refusal([proof(drop=(claim,))])
    assert failure.description == f"The DPoP proof lacks a valid {claim} claim."


@pytest.mark.parametrize("typ", [None, "JWT", "at+jwt", "DPoP+JWT "])
def test_typ_must_be_dpop_jwt(typ: str | None) -> None:
    """§4.3 (4): the typ JOSE header parameter has the value dpop+jwt."""
    failure = refusal([proof(header={"typ": typ})])
    assert failure.description == "The DPoP proof header must have typ dpop+jwt."


def test_symmetric_and_none_algorithms_are_refused() -> None:
    """§4.3 (5): alg is an asymmetric algorithm, not none, and supported."""
    hs = jwt.encode(
        {"jti": "j"}, "s" * 32, algorithm="HS256", headers={"typ": "dpop+jwt", "jwk": JWK}
    )
    none = jwt.encode({"jti": "j"}, "", algorithm="none", headers={"typ": "dpop+jwt", "jwk": JWK})
    for value in (hs, none):
        assert "algorithm this service does not accept" in refusal([value]).description


def test_an_algorithm_outside_the_allowlist_is_refused() -> None:
    """§4.3 (5): alg is one the server supports (dpop_algorithms)."""
    failure = refusal([proof()], algorithms=("RS256",))
    assert "algorithm this service does not accept" in failure.description


def test_configuring_a_symmetric_algorithm_fails_at_start_up() -> None:
    """Never none or HS*: a clear ValueError at construction."""
    for algs in (("HS256",), ("none",), ()):
        with pytest.raises(ValueError, match="asymmetric"):
            DPoPVerifier(algorithms=algs)


def test_signature_must_verify_with_the_embedded_key() -> None:
    """§4.3 (6): the JWT signature verifies with the public key in the jwk header."""
    other = ec.generate_private_key(ec.SECP256R1())
    failure = refusal([proof(key=other)])
    assert failure.description == "The DPoP proof signature is invalid."
    assert failure.context == {"dpop_jkt": JKT}


def test_private_key_in_jwk_is_refused() -> None:
    """§4.3 (7): the jwk header does not contain a private key."""
    private = ECAlgorithm.to_jwk(KEY, as_dict=True)
    failure = refusal([proof(header={"jwk": private})])
    assert "private key" in failure.description


@pytest.mark.parametrize("jwk", [None, "key", {"kty": "oct", "x": "AA"}, {"kty": "EC"}])
def test_a_missing_or_unusable_jwk_is_refused(jwk: object) -> None:
    """§4.3 (3), (6): the jwk header is a public key the signature can be checked with."""
    assert "valid jwk" in refusal([proof(header={"jwk": jwk})]).description


def test_key_of_another_type_than_alg_is_refused() -> None:
    """§4.3 (6): an RSA jwk cannot verify an ES256 proof."""
    rsa_jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)
    assert "valid jwk" in refusal([proof(header={"jwk": rsa_jwk})]).description


def test_an_ecdsa_signature_of_the_wrong_size_or_curve_is_refused() -> None:
    """§4.3 (6): ES256 is R || S of 32 bytes each on P-256 (RFC 7518 §3.4), nothing else."""
    head, body, signature = proof().split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    for wrong in (raw[:-1], raw + raw[:1], raw[32:] + raw[:32]):
        failure = refusal([f"{head}.{body}.{b64url(wrong)}"])
        assert failure.description == "The DPoP proof signature is invalid."
    # A P-384 key under ES256 (RFC 7518 §3.4: P-256 only), even with a good SHA-256
    # signature by that key (PyJWT will not make one; it once passed here).
    p384 = ec.generate_private_key(ec.SECP384R1())
    p384_jwk = ECAlgorithm.to_jwk(p384.public_key(), as_dict=True)
    head = b64url(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": p384_jwk}).encode())
    signing_input = f"{head}.{body}"
    der = p384.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    wrong_curve = f"{signing_input}.{b64url(der_to_raw_signature(der, p384.curve))}"
    assert "valid jwk" in refusal([wrong_curve]).description
    es384 = proof(key=p384, alg="ES384", header={"jwk": p384_jwk})
    assert verifier().check([es384], "GET", URL, TOKEN).jkt == jwk_thumbprint(p384_jwk)


def signed(payload: str, key: Any = KEY) -> str:
    """A proof whose payload segment is exactly ``payload`` (any JSON text), signed."""
    head = b64url(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": JWK}).encode())
    signing_input = f"{head}.{b64url(payload.encode())}"
    algorithm = ECAlgorithm(ECAlgorithm.SHA256)
    return f"{signing_input}.{b64url(algorithm.sign(signing_input.encode(), key))}"


def test_the_claims_are_read_as_json_reads_them() -> None:
    """Whitespace around the claims is JSON; data after them, or no object, is no JWT."""
    claims = json.dumps({"jti": "j-1", "htm": "GET", "htu": URL, "iat": NOW, "ath": ath()})
    for text in (claims, f" \n{claims}\t ", claims.replace(",", " , ")):
        assert verifier().check([signed(text)], "GET", URL, TOKEN).jti == "j-1"
    for text in (f"{claims} x", f"{claims}{claims}", "[]", "1", claims[:-1], ""):
        failure = refusal([signed(text)])
        assert failure.description == "The DPoP proof is not a well-formed signed JWT."


def test_htm_must_match_the_method() -> None:
    """§4.3 (8): htm matches the HTTP method of the current request (case-sensitive)."""
    assert "(htm)" in refusal([proof()], method="POST").description
    assert "(htm)" in refusal([proof(htm="get")]).description


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/other",
        "http://api.example.com/orders",
        "https://evil.example/orders",
    ],
)
def test_htu_must_match_the_uri(htu: str) -> None:
    """§4.3 (9): htu matches the target URI (another path, scheme or host fails)."""
    assert "(htu)" in refusal([proof(htu=htu)]).description


@pytest.mark.parametrize(
    "htu",
    [
        "https://API.Example.COM:443/orders",
        "https://api.example.com/orders?page=2#top",
        "https://api.example.com/%6Frders",
        "https://api.example.com/a/../orders",
    ],
)
def test_htu_is_compared_after_normalisation_without_query(htu: str) -> None:
    """§4.3 (9) with RFC 3986 §6.2.2/§6.2.3: case, default port, unreserved %XX, dot
    segments, query and fragment do not matter."""
    assert verifier().check([proof(htu=htu)], "GET", URL, TOKEN).jkt == JKT


def test_normalize_htu() -> None:
    """The normal form: lower-case scheme and host, no default port, '/' for no path."""
    assert normalize_htu("HTTP://Example.COM:80") == "http://example.com/"
    assert normalize_htu("https://h:8443/a%2fb") == "https://h:8443/a%2Fb"
    assert normalize_htu("ftp://h/") is None
    assert normalize_htu("https://user@h/") is None


def test_nonce_required_when_configured() -> None:
    """§4.3 (10): with server nonces, the proof's nonce is one the server provided."""
    secret = b"0123456789abcdef0123"
    failure = refusal([proof()], nonce_secret=secret)
    assert failure.reason is Reason.DPOP_NONCE_REQUIRED
    assert (
        refusal([proof(nonce="made-up")], nonce_secret=secret).reason is Reason.DPOP_NONCE_REQUIRED
    )
    nonce = verifier(nonce_secret=secret).nonce()
    assert verifier(nonce_secret=secret).check([proof(nonce=nonce)], "GET", URL, TOKEN)


def test_nonces_are_stateless_and_last_two_slots() -> None:
    """Two instances with one secret agree; a nonce stays good for its slot and the next."""
    secret = b"0123456789abcdef0123"
    first = DPoPVerifier(nonce_secret=secret, nonce_lifetime=60, clock=lambda: NOW).nonce()
    other = DPoPVerifier(nonce_secret=secret, nonce_lifetime=60, clock=lambda: NOW + 60)
    later = DPoPVerifier(nonce_secret=secret, nonce_lifetime=60, clock=lambda: NOW + 120)
    assert other.nonce_accepted(first)
    assert not later.nonce_accepted(first)
    assert not DPoPVerifier(nonce_secret=b"another-secret-0123456").nonce_accepted(first)


@pytest.mark.parametrize("iat", [NOW - 331, NOW + 31, True, float("nan"), float("inf")])
def test_iat_must_be_within_the_window(iat: object) -> None:
    """§4.3 (11): iat is within an acceptable window (300 s, 30 s leeway either way).

    NaN (which Python's JSON reads) compares false with everything: it was accepted
    once, and a proof accepted without a time would outlive its replay-cache entry.
    """
    failure = refusal([proof(iat=iat)])
    assert "(iat)" in failure.description or "iat claim" in failure.description


def test_iat_at_the_edges_of_the_window_passes() -> None:
    """The window is inclusive: 300 s old plus 30 s leeway, 30 s ahead."""
    for iat in (NOW - 330, NOW + 30):
        assert verifier().check([proof(iat=iat)], "GET", URL, TOKEN)


def test_ath_must_be_the_hash_of_the_token() -> None:
    """§4.3 (12): ath equals the hash of the access token presented."""
    failure = refusal([proof(ath=ath("another-token"))])
    assert failure.description == "The DPoP proof was made for another access token (ath)."


def test_binding_cnf_jkt_must_be_the_proof_key() -> None:
    """§4.3 (12) and §6.1: the token's cnf.jkt is the thumbprint of the proof's key."""
    checked = verifier().check([proof()], "GET", URL, TOKEN)
    DPoPVerifier.bind(checked, {"cnf": {"jkt": JKT}})
    with pytest.raises(AuthFailure) as mismatch:
        DPoPVerifier.bind(checked, {"cnf": {"jkt": "x" * 43}})
    with pytest.raises(AuthFailure) as unbound:
        DPoPVerifier.bind(checked, {"sub": "u"})
    assert mismatch.value.reason is unbound.value.reason is Reason.DPOP_KEY_MISMATCH


def test_replay_is_one_cache_operation_and_refused() -> None:
    """§11.1: a jti seen within the window is refused; each proof costs one operation."""
    cache = MemoryReplayCache()
    dpop = verifier(replay_cache=cache)
    checked = dpop.check([proof()], "GET", URL, TOKEN)
    dpop.check_replay(checked)
    assert cache.operations == 1
    with pytest.raises(AuthFailure) as replayed:
        dpop.check_replay(checked)
    assert replayed.value.reason is Reason.DPOP_REPLAYED
    assert cache.operations == 2  # the refusal took exactly one operation


def test_a_shared_replay_cache_gets_a_fixed_size_key() -> None:
    """Another store (Redis, your own) is given a hash of the key's thumbprint and jti."""

    keys: list[str] = []

    class Recording(MemoryReplayCache):
        def remember(self, key: str, ttl: int) -> bool:
            keys.append(key)
            return super().remember(key, ttl)

    long_jti = "j" * 256
    dpop = verifier(replay_cache=Recording())
    checked = dpop.check([proof(jti=long_jti)], "GET", URL, TOKEN)
    dpop.check_replay(checked)
    with pytest.raises(AuthFailure):
        dpop.check_replay(checked)
    assert keys == [replay_key(JKT, long_jti)] * 2
    assert len(keys[0]) == 40
    assert long_jti not in keys[0]


def test_memory_replay_cache_is_bounded() -> None:
    """The in-memory cache never holds more than maxsize proofs."""
    cache = MemoryReplayCache(maxsize=8)
    for number in range(100):
        assert cache.remember(str(number), 60)
    assert len(cache) == 8


def test_a_failing_replay_cache_is_a_503_never_a_500() -> None:
    """A store that raises gives dpop_replay_unavailable."""

    class Down(MemoryReplayCache):
        def remember(self, key: str, ttl: int) -> bool:
            raise ConnectionError(key, ttl)

    dpop = verifier(replay_cache=Down())
    with pytest.raises(AuthFailure) as caught:
        dpop.check_replay(dpop.check([proof()], "GET", URL, TOKEN))
    assert caught.value.reason is Reason.DPOP_REPLAY_UNAVAILABLE


# -- the guard's policy through the middlewares --------------------------------------


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    local = LocalIssuer()
    yield local
    local.close()


async def _claims(request: Any) -> JSONResponse:
    return JSONResponse({"sub": request.state.token_claims["sub"]})


def asgi(issuer: LocalIssuer, **options: Any) -> TestClient:
    app = Starlette(routes=[Route("/orders", _claims)])
    mw = InvalidTokenMiddleware(app, verifier=issuer.verifier(), realm="orders", **options)
    return TestClient(mw, base_url="https://api.example.com")


def wsgi(issuer: LocalIssuer, **options: Any) -> httpx.Client:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"sub": environ["invalidtoken_mw.claims"]["sub"]}).encode()]

    mw = InvalidTokenWSGIMiddleware(app, verifier=issuer.verifier(), realm="orders", **options)
    return httpx.Client(transport=httpx.WSGITransport(mw), base_url="https://api.example.com")


def live_proof(token: str, *, jti: str = "", **claims: Any) -> str:
    body = {"jti": jti or str(uuid.uuid4()), "htm": "GET", "htu": URL, "iat": int(time.time())}
    body.update(ath=ath(token), **claims)
    return jwt.encode(body, KEY, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": JWK})


@pytest.fixture(params=["asgi", "wsgi"])
def make(request: pytest.FixtureRequest, issuer: LocalIssuer) -> Callable[..., httpx.Client]:
    factory: Callable[..., Any] = asgi if request.param == "asgi" else wsgi

    def made(*, issuer_override: LocalIssuer | None = None, **options: Any) -> httpx.Client:
        client: httpx.Client = factory(issuer_override or issuer, **options)
        return client

    return made


def test_off_keeps_todays_answer_to_a_dpop_header(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """dpop="off" (the default): `Authorization: DPoP` is no bearer token, as before."""
    token = issuer.token(cnf={"jkt": JKT})
    answer = make().get(
        "/orders", headers={"authorization": f"DPoP {token}", "dpop": live_proof(token)}
    )
    assert answer.status_code == 401
    assert answer.json()["reason"] == "missing_token"
    assert answer.headers["www-authenticate"] == 'Bearer realm="orders"'
    # And a bound token sent as Bearer is accepted, as before: off is off.
    assert make().get("/orders", headers={"authorization": f"Bearer {token}"}).status_code == 200


def test_allowed_accepts_both_and_challenges_with_both(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """§7.1: with both schemes accepted, a request without credentials gets both challenges."""
    client = make(dpop="allowed")
    token = issuer.token(cnf={"jkt": JKT})
    headers = {"authorization": f"DPoP {token}", "dpop": live_proof(token)}
    assert client.get("/orders", headers=headers).json() == {"sub": "user-1"}
    plain = issuer.token()
    assert client.get("/orders", headers={"authorization": f"Bearer {plain}"}).status_code == 200
    bare = client.get("/orders")
    assert (
        bare.headers["www-authenticate"]
        == f'Bearer realm="orders", DPoP realm="orders", algs="{ALGS}"'
    )


def test_required_refuses_bearer_without_error_code(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """dpop="required": a bearer token is an unsupported method; only the DPoP challenge."""
    answer = make(dpop="required").get(
        "/orders", headers={"authorization": f"Bearer {issuer.token()}"}
    )
    assert (answer.status_code, answer.json()["reason"]) == (401, "dpop_required")
    assert answer.headers["www-authenticate"] == f'DPoP realm="orders", algs="{ALGS}"'


def test_bound_token_as_bearer_is_refused_when_allowed(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """§7.2: a DPoP-bound access token presented as a bearer token is refused."""
    token = issuer.token(cnf={"jkt": JKT})
    answer = make(dpop="allowed").get("/orders", headers={"authorization": f"Bearer {token}"})
    assert answer.json()["reason"] == "dpop_bound_bearer"
    assert answer.headers["www-authenticate"].startswith(
        'Bearer realm="orders", error="invalid_token"'
    )
    assert answer.headers["www-authenticate"].endswith(f'DPoP realm="orders", algs="{ALGS}"')


def test_token_without_binding_under_dpop_scheme_is_refused(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """§7.1: the RS checks the token is bound to the proof's key; an unbound one is not."""
    token = issuer.token()
    answer = make(dpop="allowed").get(
        "/orders", headers={"authorization": f"DPoP {token}", "dpop": live_proof(token)}
    )
    assert answer.json()["reason"] == "dpop_key_mismatch"


def test_nonce_error_sends_dpop_nonce_exposed_under_cors(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """§8: use_dpop_nonce with a DPoP-Nonce header; CORS exposes it with the challenge."""
    client = make(dpop="required", dpop_nonce_secret=b"0123456789abcdef0123")
    token = issuer.token(cnf={"jkt": JKT})
    answer = client.get(
        "/orders",
        headers={
            "authorization": f"DPoP {token}",
            "dpop": live_proof(token),
            "origin": "https://app.example.com",
        },
    )
    assert answer.json()["reason"] == "dpop_nonce_required"
    nonce = answer.headers["dpop-nonce"]
    exposed = {v.strip() for v in answer.headers["access-control-expose-headers"].split(",")}
    assert {"dpop-nonce", "www-authenticate"} <= exposed
    retried = client.get(
        "/orders",
        headers={"authorization": f"DPoP {token}", "dpop": live_proof(token, nonce=nonce)},
    )
    assert retried.status_code == 200


def test_replayed_proof_through_the_guard_takes_one_cache_operation(
    make: Callable[..., httpx.Client], issuer: LocalIssuer
) -> None:
    """A replay is refused with exactly one replay-cache operation (the benchmark target)."""
    cache = MemoryReplayCache()
    client = make(dpop="allowed", dpop_replay_cache=cache)
    token = issuer.token(cnf={"jkt": JKT})
    headers = {"authorization": f"DPoP {token}", "dpop": live_proof(token)}
    assert client.get("/orders", headers=headers).status_code == 200
    before = cache.operations
    answer = client.get("/orders", headers=headers)
    assert answer.json()["reason"] == "dpop_replayed"
    assert cache.operations - before == 1


def test_settings_reject_unknown_mode_and_expose_algorithms() -> None:
    """A clear ValueError for a bad mode; the algorithms are a plain settings attribute."""
    checked = JWTVerifier(key="k" * 32, algorithms=["HS256"])
    with pytest.raises(ValueError, match="dpop must be"):
        GuardSettings(verifier=checked, dpop="on")
    settings = GuardSettings(verifier=checked, dpop="allowed", dpop_algorithms="ES256,EdDSA")
    assert settings.dpop_algorithms == ("ES256", "EdDSA")


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(max_size=300)
    | st.builds(
        lambda a, b, c: f"{a}.{b}.{c}",
        st.sampled_from([proof().split(".")[0], "e30", "W10", "eyJ0eXAiOiJkcG9wK2p3dCJ9"]),
        st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=80),
        st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=80),
    ),
    method=st.sampled_from(["GET", "POST", "get"]),
    url=st.sampled_from([URL, "http://x", "not a url", ""]),
)
def test_any_header_value_is_a_refusal_never_a_crash(value: str, method: str, url: str) -> None:
    """Whatever the DPoP header holds, the check refuses with an AuthFailure (never a 500)."""
    with pytest.raises(AuthFailure):
        verifier().check([value], method, url, TOKEN)


# -- DPoP beside the resource identifier (RFC 9728) and step-up (RFC 9470) ----------------


def test_dpop_with_a_resource_and_step_up(make: Callable[..., httpx.Client]) -> None:
    """Metadata names the DPoP algorithms; a DPoP request meets step-up like a bearer one.

    RFC 9728 §2: ``dpop_signing_alg_values_supported`` (and, with ``dpop="required"``,
    ``dpop_bound_access_tokens_required``). A DPoP-bound token without the required
    ``acr`` gets ``insufficient_user_authentication`` in the DPoP challenge, with the
    challenge's ``acr_values`` and ``resource_metadata``.
    """
    resource = URL  # the proofs' htu is the resource itself
    with LocalIssuer(audience=resource) as local:
        client = make(
            issuer_override=local, dpop="required", resource=resource, acr_values=["urn:mfa"]
        )
        metadata = client.get("/.well-known/oauth-protected-resource/orders").json()
        weak = local.token(cnf={"jkt": JKT})
        refused = client.get(
            "/orders", headers={"authorization": f"DPoP {weak}", "dpop": live_proof(weak)}
        )
        strong = local.token(cnf={"jkt": JKT}, acr="urn:mfa")
        accepted = client.get(
            "/orders", headers={"authorization": f"DPoP {strong}", "dpop": live_proof(strong)}
        )
    assert metadata["dpop_signing_alg_values_supported"] == list(DEFAULT_DPOP_ALGORITHMS)
    assert metadata["dpop_bound_access_tokens_required"] is True
    assert (refused.status_code, refused.json()["reason"]) == (
        401,
        "insufficient_user_authentication",
    )
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith('DPoP realm="orders", error="insufficient_user_authentication"')
    assert 'acr_values="urn:mfa"' in challenge
    assert (
        'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/orders"'
        in challenge
    )
    assert accepted.status_code == 200, accepted.text


def test_resent_dpop_tokens_are_remembered_in_a_bounded_memo() -> None:
    """The `Authorization: DPoP` value -> token memo gives back the same token, and is bounded."""
    from invalidtoken_mw.guard import Guard  # noqa: PLC0415 - only this test needs it

    checked = JWTVerifier(key="k" * 32, algorithms=["HS256"])
    guard = Guard(GuardSettings(verifier=checked, dpop="allowed"))
    request = object()  # never read: a DPoP value needs only the header
    first = guard._dpop_found(request, ["DPoP tok-0"])  # type: ignore[arg-type]  # noqa: SLF001
    again = guard._dpop_found(request, ["DPoP tok-0"])  # type: ignore[arg-type]  # noqa: SLF001
    assert (first.token, again) == ("tok-0", first)
    for number in range(1, 600):
        found = guard._dpop_found(request, [f"DPoP tok-{number}"])  # type: ignore[arg-type]  # noqa: SLF001
        assert found.token == f"tok-{number}"
    assert 0 < len(guard._dpop_tokens) <= 256  # noqa: SLF001
    with pytest.raises(AuthFailure) as refused:
        guard._dpop_found(request, ['DPoP "quoted"'])  # type: ignore[arg-type]  # noqa: SLF001
    assert refused.value.reason is Reason.MALFORMED_TOKEN
    assert 'DPoP "quoted"' not in guard._dpop_tokens  # noqa: SLF001 - refusals are not kept
