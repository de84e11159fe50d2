"""DPoP (RFC 9449): verify a request's proof of possession, sans-IO.

A :class:`DPoPVerifier` is built once by the :class:`~invalidtoken_mw.guard.Guard`
from the ``dpop_*`` options and checks, for one request, what RFC 9449 §4.3 asks of a
resource server: exactly one ``DPoP`` header holding one compact JWS, ``typ``
``dpop+jwt``, an asymmetric ``alg`` from the allowlist, a public ``jwk`` (no private
members) whose key made the signature, ``htm`` and ``htu`` matching the request (the
URI compared after RFC 3986 §6.2.2 and §6.2.3 normalisation, without query and
fragment), ``iat`` within the window, the server's ``nonce`` when nonces are on,
``ath`` = BASE64URL(SHA-256(access token)), and the binding (§6.1): the token's
``cnf.jkt`` equals the RFC 7638 thumbprint of the proof's key. ``jti`` goes last to a
:class:`ReplayCache` (one operation per proof), so a refused proof never takes a slot.

Nonces are stateless (HMAC of a time slot with a configured secret): every instance
sharing the secret issues and accepts the same ones, the current slot's and the
previous one's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import ECAlgorithm

from invalidtoken_mw._grammar import B64TOKEN_RE
from invalidtoken_mw._sentences import Sentence
from invalidtoken_mw.reasons import AuthFailure, Reason

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from cryptography.hazmat.primitives import hashes

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "DPOP_MODES",
    "DPoPProof",
    "DPoPVerifier",
    "MemoryReplayCache",
    "ReplayCache",
    "jwk_thumbprint",
    "normalize_htu",
    "replay_key",
    "token_hash",
]

DPOP_MODES = ("off", "allowed", "required")
"""The values of the ``dpop`` option."""
DEFAULT_DPOP_ALGORITHMS: tuple[str, ...] = (
    "ES256",
    "ES384",
    "ES512",
    "PS256",
    "PS384",
    "PS512",
    "RS256",
    "RS384",
    "RS512",
    "EdDSA",
)
"""Asymmetric JWS algorithms accepted for proofs unless ``dpop_algorithms`` says otherwise."""
_ASYMMETRIC = frozenset(DEFAULT_DPOP_ALGORITHMS) | {"ES256K", "Ed25519", "Ed448"}
# Members of a private JWK, by kty (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7518 §3.4 and RFC 8812 §3.2: the curve each ECDSA algorithm signs with.
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "ES256K": "secp256k1"}
# RFC 7638 §3.2: the required members of each key type, in lexicographic order.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_MAX_PROOF_CHARS = 8192  # a proof with an RSA-4096 key is about 1.5 KB
_HEADERS_REMEMBERED = 256  # distinct proof headers (one per client key): bounded
_DPOP_SCHEME = "dpop "
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")  # a translated segment, before padding
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_NONCE_BYTES = 18  # 144 bits of HMAC output, 24 base64url characters


# base64url to base64, with '+', '/' and '=' (not base64url, RFC 7515 §2) made invalid.
_TO_BASE64 = bytes.maketrans(b"-_+/=", b"+/***")
_PADDING = (b"", b"===", b"==", b"=")  # by length modulo 4 (1: invalid whatever follows)
_decode_json = json.JSONDecoder().decode
_raw_decode_json = json.JSONDecoder().raw_decode


def _json_value(text: str) -> object:
    """Decode ``text`` as JSON, like ``json.loads`` but cheaper for a compact document.

    ``raw_decode`` reads a proof's claims in one call (``loads`` adds a frame and two
    whitespace matches); whitespace around them, trailing data or an error goes to the
    full decoder, which then decides as ``loads`` would.

    Raises:
        ValueError: Not JSON.
        RecursionError: Nested too deep.
    """
    try:
        value, end = _raw_decode_json(text)
    except ValueError:
        end = -1
    return value if end == len(text) else _decode_json(text)


if sys.version_info >= (3, 11):

    def _unbase64(data: bytes) -> bytes:
        """Decode one segment already translated by ``_TO_BASE64``, strictly (one C call)."""
        return binascii.a2b_base64(data + _PADDING[len(data) % 4], strict_mode=True)

else:  # pragma: no cover - Python 3.10 has no strict mode

    def _unbase64(data: bytes) -> bytes:
        """Decode one segment already translated by ``_TO_BASE64``; any stray byte fails."""
        if not _BASE64.fullmatch(data):
            raise binascii.Error("not base64url")
        return binascii.a2b_base64(data + _PADDING[len(data) % 4])


@functools.lru_cache(maxsize=256)  # a resent token is checked once
def _b64token(token: str) -> bool:
    return B64TOKEN_RE.fullmatch(token) is not None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding.

    PyJWT and cryptography offer none, so it is computed here: the key type's required
    members only, sorted, no whitespace (RFC 7638 §3).

    Raises:
        ValueError: An unsupported key type or a missing or non-string member.
    """
    members = _THUMBPRINT_MEMBERS.get(jwk.get("kty"))  # type: ignore[arg-type]
    if members is None:
        raise ValueError("unsupported key type")
    values = {name: jwk.get(name) for name in members}
    if not all(isinstance(value, str) for value in values.values()):
        raise ValueError("missing member")
    canonical = json.dumps(values, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


@functools.lru_cache(maxsize=256)  # a client resends its token with each new proof
def token_hash(token: str) -> str:
    """The ``ath`` of ``token``: BASE64URL(SHA-256(ASCII(token))) (RFC 9449 §4.2)."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


def replay_key(jkt: str, jti: str) -> str:
    """The replay cache's key of a proof: its ``jti`` per key (RFC 9449 §11.1), hashed."""
    return hashlib.sha256(f"{jkt}:{jti}".encode()).hexdigest()[:40]


def _unquote_unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, for the paths of absolute URIs."""
    if "." not in path:
        return path
    output: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    tail = "/" if path.rsplit("/", 1)[-1] in {".", ".."} else ""
    return "/" + "/".join(output) + tail


@functools.lru_cache(maxsize=256)  # a service has few URLs; a hit skips the parse
def normalize_htu(url: str) -> str | None:
    """``url`` without query and fragment, normalised per RFC 3986 §6.2.2 and §6.2.3.

    Scheme and host lower-cased, the default port dropped, an empty path made ``/``,
    percent-encoded unreserved characters decoded and the others' hex digits
    upper-cased, dot segments removed. ``None`` when it is no absolute http(s) URI.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        return None
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    authority, slash, path = rest.partition("/")
    if "@" in authority or not authority:
        return None  # RFC 9110 §4.2.4: no userinfo in http(s) URIs
    authority = authority.lower()
    default = _DEFAULT_PORTS[scheme]
    if authority.endswith(default):
        authority = authority[: -len(default)]
    elif authority.endswith(":"):
        authority = authority[:-1]
    path = slash + path if slash else "/"
    if "%" in path:
        path = _PERCENT.sub(_unquote_unreserved, path)
    return f"{scheme}://{authority}{_remove_dot_segments(path)}"


class ReplayCache(Protocol):
    """Remembers the proofs seen (their ``jti`` per key) for as long as they are valid."""

    def remember(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; ``False`` if it was already there.

        Raises:
            Exception: The store cannot answer (the guard answers 503).
        """
        ...  # pragma: no cover - protocol

    async def remember_async(self, key: str, ttl: int) -> bool:
        """As :meth:`remember`, without blocking the event loop."""
        ...  # pragma: no cover - protocol


class MemoryReplayCache:
    """The default replay cache: in memory, bounded, thread-safe, one per process.

    Args:
        maxsize: How many proofs are remembered. When full, the oldest go first: a
            replay of one of them within its window is then caught only by ``iat``
            and a nonce. Size it above your DPoP requests per window.

    Each proof is remembered for the ``ttl`` the verifier passes (its window).
    """

    def __init__(self, maxsize: int = 100_000) -> None:
        """Create an empty cache."""
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError("MemoryReplayCache maxsize must be a positive int, e.g. 100000.")
        # Key -> expiry, in insertion order: with one ttl that is expiry order, so expired
        # entries are always at the front (an OrderedDict pops there in O(1)).
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._maxsize = maxsize
        self._lock = threading.Lock()
        #: How many operations were made (for tests and benchmarks).
        self.operations = 0

    def remember(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; ``False`` if it was already there."""
        now = time.monotonic()
        with self._lock:
            self.operations += 1
            seen = self._seen
            while seen:
                oldest = next(iter(seen))
                if seen[oldest] > now and len(seen) < self._maxsize:
                    break
                del seen[oldest]
            if key in seen:
                return False
            seen[key] = now + ttl
            return True

    async def remember_async(self, key: str, ttl: int) -> bool:
        """As :meth:`remember` (never waits: a lock held for a dict operation)."""
        return self.remember(key, ttl)

    def __len__(self) -> int:
        """How many proofs are remembered now."""
        with self._lock:
            return len(self._seen)


class DPoPProof(NamedTuple):
    """A proof that passed every check but the binding and the replay cache.

    Attributes:
        jkt: The RFC 7638 thumbprint of the proof's key.
        jti: The proof's ``jti``.
    """

    jkt: str
    jti: str


class _Header(NamedTuple):
    """One distinct proof header, decoded and checked once (a client reuses its key)."""

    verify: Callable[[bytes, Any, bytes], bool] | None  # None: refused, see `refusal`
    public_key: Any  # the key object ``verify`` takes
    alg: str
    jkt: str
    refusal: str  # the sentence refusing every proof with this header


def _refused_header(alg: str, sentence: str) -> _Header:
    return _Header(None, None, alg, "", sentence)


def _ecdsa_verify(
    key_bits: int, hash_algorithm: hashes.HashAlgorithm
) -> Callable[[bytes, ec.EllipticCurvePublicKey, bytes], bool]:
    """An ECDSA check of JWS signatures (RFC 7518 §3.4) for one curve and hash.

    What PyJWT's ``ECAlgorithm.verify`` does, with its per-call allocations (the
    ``ECDSA`` object, the number conversions through hex) made once: a client signs
    every proof with the same key, and this runs on every DPoP request.
    """
    size = (key_bits + 7) // 8
    algorithm = ec.ECDSA(hash_algorithm)

    def verify(signing_input: bytes, key: ec.EllipticCurvePublicKey, signature: bytes) -> bool:
        if len(signature) != 2 * size:  # R || S, each as wide as the curve order
            return False
        der = encode_dss_signature(
            int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        )
        try:
            key.verify(der, signing_input, algorithm)
        except InvalidSignature:
            return False
        return True

    return verify


def _invalid(sentence: str, **context: object) -> AuthFailure:
    return AuthFailure(Reason.INVALID_DPOP_PROOF, sentence, context=context)


class DPoPVerifier:
    """The DPoP checks of one protected application (see the module's description).

    Args:
        algorithms: The proof ``alg`` values accepted: asymmetric only.
        iat_window: Seconds a proof stays acceptable after its ``iat``.
        leeway: Seconds of clock skew allowed either way.
        replay_cache: Where ``jti`` values are remembered; default in memory.
        nonce_secret: With a secret (16 bytes or more) the server requires its own
            ``nonce`` in every proof; ``None``: no nonces.
        nonce_lifetime: Seconds of one nonce slot; a nonce is accepted in its slot and
            the next.
        trust_forwarded: Take ``htu``'s scheme and host from ``X-Forwarded-Proto`` and
            ``X-Forwarded-Host`` (the rightmost entry), set by a trusted proxy.
        clock: The time source (for tests).

    Raises:
        ValueError: An unusable value; the message says how to fix it.
    """

    def __init__(
        self,
        *,
        algorithms: Sequence[str] = DEFAULT_DPOP_ALGORITHMS,
        iat_window: int = 300,
        leeway: int = 30,
        replay_cache: ReplayCache | None = None,
        nonce_secret: bytes | None = None,
        nonce_lifetime: int = 300,
        trust_forwarded: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Check the configuration once."""
        algorithms = tuple(algorithms)
        bad = [alg for alg in algorithms if alg not in _ASYMMETRIC]
        if bad or not algorithms:
            raise ValueError(
                f"dpop_algorithms={algorithms!r}: proofs need asymmetric algorithms"
                f" ({', '.join(DEFAULT_DPOP_ALGORITHMS)}); never none or HS*."
            )
        for name, value in (("dpop_iat_window", iat_window), ("dpop_leeway", leeway)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of seconds >= 0, got {value!r}.")
        if nonce_secret is not None and len(nonce_secret) < 16:  # noqa: PLR2004
            raise ValueError("dpop_nonce_secret must be at least 16 bytes of secret material.")
        if (
            isinstance(nonce_lifetime, bool)
            or not isinstance(nonce_lifetime, int)
            or nonce_lifetime < 1
        ):
            raise ValueError(
                f"dpop_nonce_lifetime must be a whole number >= 1, got {nonce_lifetime!r}."
            )
        self.algorithms = algorithms
        self._allowed = frozenset(algorithms)
        self.iat_window = iat_window
        self.leeway = leeway
        #: How long a ``jti`` is remembered: as long as its proof could be accepted.
        self.replay_ttl = iat_window + 2 * leeway + 1
        self._oldest = iat_window + leeway  # seconds before now the oldest iat accepted
        self.replay_cache: ReplayCache = (
            replay_cache if replay_cache is not None else MemoryReplayCache()
        )
        #: The replay cache is this process's memory: the async path calls it directly
        #: (a dict operation under a lock never waits), sparing a coroutine per proof.
        self.local_replay_cache = type(self.replay_cache) is MemoryReplayCache
        self._nonce_secret = nonce_secret
        self.nonce_lifetime = nonce_lifetime
        self.trust_forwarded = trust_forwarded
        self._clock = clock
        self._headers = functools.lru_cache(maxsize=_HEADERS_REMEMBERED)(self._read_header)

    @property
    def uses_nonces(self) -> bool:
        """Whether proofs must carry the server's nonce."""
        return self._nonce_secret is not None

    # -- nonces ------------------------------------------------------------------------

    @functools.lru_cache(maxsize=4)  # noqa: B019 - two live slots per verifier; bounded
    def _slot_nonce(self, slot: int) -> str:
        assert self._nonce_secret is not None  # noqa: S101 - only called with nonces on
        mac = hmac.new(self._nonce_secret, f"dpop-nonce:{slot}".encode(), hashlib.sha256)
        return _b64url(mac.digest()[:_NONCE_BYTES])

    def nonce(self) -> str | None:
        """The nonce to send now (``DPoP-Nonce``), or ``None`` without nonces."""
        if self._nonce_secret is None:
            return None
        return self._slot_nonce(int(self._clock()) // self.nonce_lifetime)

    def nonce_accepted(self, value: object) -> bool:
        """Whether ``value`` is a nonce of this slot or the previous one."""
        return self._nonce_secret is not None and self._nonce_ok(value)

    def _nonce_ok(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        slot = int(self._clock()) // self.nonce_lifetime
        return hmac.compare_digest(value, self._slot_nonce(slot)) or hmac.compare_digest(
            value, self._slot_nonce(slot - 1)
        )

    # -- the request -------------------------------------------------------------------

    @staticmethod
    def is_dpop(authorization: Sequence[str]) -> bool:
        """Whether the request uses the ``DPoP`` authorization scheme."""
        return bool(authorization) and authorization[0][:5].lower() == _DPOP_SCHEME

    @staticmethod
    def token_from(authorization: Sequence[str], max_bytes: int) -> str:
        """The access token of ``Authorization: DPoP <token>`` (RFC 9449 §7.1).

        Raises:
            AuthFailure: ``invalid_request`` or ``malformed_token``.
        """
        if len(authorization) != 1:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.SEVERAL_TOKENS)
        value = authorization[0]
        if len(value) > max_bytes:
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.TOO_LARGE)
        token = value[5:].strip(" ")
        if not token:
            raise AuthFailure(Reason.INVALID_REQUEST, Sentence.DPOP_NO_TOKEN)
        if not _b64token(token):
            raise AuthFailure(Reason.MALFORMED_TOKEN, Sentence.BAD_CHARACTERS)
        return token

    def url(
        self, scheme: str, host: str | None, path: str, forwarded: Callable[[str], Sequence[str]]
    ) -> str:
        """The request's URI as ``htu`` is compared with, from the adapter's parts."""
        if self.trust_forwarded:
            proto = ",".join(forwarded("x-forwarded-proto")).rsplit(",", 1)[-1].strip()
            fhost = ",".join(forwarded("x-forwarded-host")).rsplit(",", 1)[-1].strip()
            scheme = proto or scheme
            host = fhost or host
        return f"{scheme}://{host or ''}{path or '/'}"

    def check(self, lines: Sequence[str], method: str, url: str, token: str) -> DPoPProof:  # noqa: C901, PLR0912, PLR0915 - one branch per check of RFC 9449 §4.3, in its order
        """Every check of RFC 9449 §4.3 but the binding and ``jti``'s replay.

        Args:
            lines: Every ``DPoP`` header field line of the request.
            method: The request method.
            url: The request URI (:meth:`url`).
            token: The access token presented with the proof.

        Raises:
            AuthFailure: ``invalid_dpop_proof`` (which check, in the description) or
                ``dpop_nonce_required``.
        """
        # Run once per request with a fresh proof: nothing is built unless a check fails.
        if len(lines) != 1 or "," in lines[0]:
            raise _invalid(Sentence.DPOP_SEVERAL if lines else Sentence.DPOP_MISSING)
        try:
            proof = lines[0].strip(" \t").encode("ascii")
        except UnicodeEncodeError:
            raise _invalid(Sentence.DPOP_NOT_JWS) from None
        if len(proof) > _MAX_PROOF_CHARS:
            raise _invalid(Sentence.DPOP_NOT_JWS)
        # One translation to the base64 alphabet for all three segments ('.' is kept).
        parts = proof.translate(_TO_BASE64).split(b".")
        if len(parts) != 3:  # noqa: PLR2004 - a compact JWS
            raise _invalid(Sentence.DPOP_NOT_JWS)
        header = self._headers(parts[0])
        jkt = header.jkt
        if header.verify is None:
            raise _invalid(header.refusal, dpop_alg=header.alg)
        try:
            claims = _json_value(_unbase64(parts[1]).decode("utf-8"))
            signature = _unbase64(parts[2])
        except (binascii.Error, ValueError, RecursionError, UnicodeError):
            raise _invalid(Sentence.DPOP_NOT_JWS) from None
        if type(claims) is not dict:
            raise _invalid(Sentence.DPOP_NOT_JWS)
        signing_input = proof[: len(proof) - len(parts[2]) - 1]
        if not header.verify(signing_input, header.public_key, signature):
            raise _invalid(Sentence.DPOP_BAD_SIGNATURE, dpop_jkt=jkt)
        get = claims.get
        jti = get("jti")
        if type(jti) is not str or not jti or len(jti) > 256:  # noqa: PLR2004
            raise _invalid(Sentence.DPOP_CLAIM_MISSING.format(claim="jti"), dpop_jkt=jkt)
        htm, htu, iat = get("htm"), get("htu"), get("iat")
        if type(htm) is not str:
            raise _invalid(Sentence.DPOP_CLAIM_MISSING.format(claim="htm"), dpop_jkt=jkt)
        if type(htu) is not str:
            raise _invalid(Sentence.DPOP_CLAIM_MISSING.format(claim="htu"), dpop_jkt=jkt)
        if type(iat) is not int and type(iat) is not float:  # never a bool
            raise _invalid(Sentence.DPOP_CLAIM_MISSING.format(claim="iat"), dpop_jkt=jkt)
        if htm != method:
            raise _invalid(Sentence.DPOP_WRONG_HTM, dpop_jkt=jkt)
        expected = normalize_htu(url)  # None: the request's own URI is unusable
        if expected is None or (htu != url and normalize_htu(htu) != expected):
            raise _invalid(Sentence.DPOP_WRONG_HTU, dpop_jkt=jkt)
        if self._nonce_secret is not None and not self._nonce_ok(get("nonce")):
            raise AuthFailure(Reason.DPOP_NONCE_REQUIRED, context={"dpop_jkt": jkt})
        now = self._clock()
        if not now - self._oldest <= iat <= now + self.leeway:  # NaN is never within
            raise _invalid(Sentence.DPOP_STALE, dpop_jkt=jkt)
        ath = get("ath")
        if type(ath) is not str:
            raise _invalid(Sentence.DPOP_CLAIM_MISSING.format(claim="ath"), dpop_jkt=jkt)
        if not hmac.compare_digest(ath, token_hash(token)):
            raise _invalid(Sentence.DPOP_WRONG_ATH, dpop_jkt=jkt)
        return tuple.__new__(DPoPProof, (jkt, jti))

    @staticmethod
    def bind(proof: DPoPProof, claims: Mapping[str, Any]) -> None:
        """The token's ``cnf.jkt`` must be the proof key's thumbprint (RFC 9449 §6.1).

        Raises:
            AuthFailure: ``dpop_key_mismatch``.
        """
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str):
            raise AuthFailure(
                Reason.DPOP_KEY_MISMATCH,
                Sentence.DPOP_UNBOUND_TOKEN,
                context={"dpop_jkt": proof.jkt},
            )
        if not hmac.compare_digest(jkt, proof.jkt):
            raise AuthFailure(Reason.DPOP_KEY_MISMATCH, context={"dpop_jkt": proof.jkt})

    @staticmethod
    def is_bound(claims: Mapping[str, Any]) -> bool:
        """Whether the token is DPoP-bound (has ``cnf.jkt``): never as ``Bearer`` (§7.2)."""
        cnf = claims.get("cnf")
        return isinstance(cnf, dict) and "jkt" in cnf

    def _replayed(self, proof: DPoPProof) -> AuthFailure:
        return AuthFailure(Reason.DPOP_REPLAYED, context={"dpop_jkt": proof.jkt})

    def _unavailable(self, proof: DPoPProof, exc: Exception) -> AuthFailure:
        return AuthFailure(
            Reason.DPOP_REPLAY_UNAVAILABLE,
            context={"dpop_jkt": proof.jkt, "unexpected_error": type(exc).__name__},
        )

    def check_replay(self, proof: DPoPProof) -> None:
        """One replay-cache operation: a ``jti`` seen within its window is refused.

        Raises:
            AuthFailure: ``dpop_replayed``, or ``dpop_replay_unavailable``.
        """
        # In this process's memory the thumbprint (always 43 characters) and the jti
        # themselves are the key; a shared store gets a fixed-size hash of them.
        key = proof.jkt + proof.jti if self.local_replay_cache else replay_key(proof.jkt, proof.jti)
        try:
            fresh = self.replay_cache.remember(key, self.replay_ttl)
        except Exception as exc:  # noqa: BLE001 - any store failure is a 503, never a 500
            raise self._unavailable(proof, exc) from None
        if not fresh:
            raise self._replayed(proof)

    async def check_replay_async(self, proof: DPoPProof) -> None:
        """As :meth:`check_replay`, without blocking the event loop."""
        try:
            fresh = await self.replay_cache.remember_async(
                replay_key(proof.jkt, proof.jti), self.replay_ttl
            )
        except Exception as exc:  # noqa: BLE001 - any store failure is a 503, never a 500
            raise self._unavailable(proof, exc) from None
        if not fresh:
            raise self._replayed(proof)

    def _read_header(self, segment: bytes) -> _Header:  # noqa: PLR0911 - one answer per header check
        """Decode and check one (translated) proof header; remembered: a client resends its own."""
        try:
            header = _decode_json(_unbase64(segment).decode("utf-8"))
        except (binascii.Error, ValueError, RecursionError, UnicodeError):
            return _refused_header("", Sentence.DPOP_NOT_JWS)
        if not isinstance(header, dict):
            return _refused_header("", Sentence.DPOP_NOT_JWS)
        alg = header.get("alg")
        alg = alg if isinstance(alg, str) and len(alg) <= 16 else ""  # noqa: PLR2004 - log only a sane alg
        if header.get("typ") != "dpop+jwt":
            return _refused_header(alg, Sentence.DPOP_WRONG_TYP)
        if alg not in self._allowed:
            return _refused_header(alg, Sentence.DPOP_ALGORITHM)
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            return _refused_header(alg, Sentence.DPOP_NO_JWK)
        if _PRIVATE_MEMBERS.intersection(jwk):
            return _refused_header(alg, Sentence.DPOP_PRIVATE_KEY)
        if alg in _CURVES and jwk.get("crv") != _CURVES[alg]:
            return _refused_header(alg, Sentence.DPOP_NO_JWK)  # RFC 7518 §3.4: one curve per alg
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            jkt = jwk_thumbprint(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            return _refused_header(alg, Sentence.DPOP_NO_JWK)
        # The signature check, prepared once for every proof this key makes.
        verify: Callable[[bytes, Any, bytes], bool] = key.Algorithm.verify
        if isinstance(key.Algorithm, ECAlgorithm) and isinstance(
            key.key, ec.EllipticCurvePublicKey
        ):
            verify = _ecdsa_verify(key.key.curve.key_size, key.Algorithm.hash_alg())
        return _Header(verify, key.key, alg, jkt, "")
