"""Differential test: JWTVerifier against ``jwt.decode`` (PyJWT) on the registered claims.

Hypothesis draws a configuration (algorithm, issuer, audience, leeway, required claims)
and a claims set, signs it with HS256, RS256 or ES256, and asks both our verifier and
``jwt.decode`` (configured identically) for a verdict:

* on RFC 7519 values (NumericDates are JSON numbers, StringOrURIs are strings) the
  verifier accepts exactly the tokens ``jwt.decode`` accepts, with the same claims, and
  when exactly one claim is wrong by construction its ``Reason`` names that claim;
* a caching verifier answers a resent token as it answered it the first time;
* off that domain (numeric strings, booleans, ``null``, NaN, infinities, integers past
  any float, lists as times, non-string ``aud`` or ``iss`` members) the verifier may be
  stricter than ``jwt.decode`` but never looser, and it only ever raises AuthFailure.

Every drawn time lies at least ``MARGIN`` seconds from each ``now`` +/- ``leeway``
boundary, so the clock moving during a run (or a slow, shared machine) cannot change an
answer. The generator's own model of which claims are wrong is checked against PyJWT on
every example, so a wrong model fails loudly instead of testing nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from invalidtoken_mw.reasons import AuthFailure, Reason
from invalidtoken_mw.revocation import MemoryRevocationStore
from invalidtoken_mw.verify import JWTVerifier
from support.tokens import AUDIENCE, ISSUER, session_keys

if TYPE_CHECKING:
    from collections.abc import Iterator

ALGORITHMS = ("HS256", "RS256", "ES256")
SECOND_ISSUER = "https://second-issuer.example"
SECOND_AUDIENCE = "https://second-api.example"
OTHER_AUDIENCE = "https://other-api.example"
ISSUERS = (ISSUER, SECOND_ISSUER, "https://evil.example", ISSUER + "/", "")
AUDIENCES = (AUDIENCE, SECOND_AUDIENCE, OTHER_AUDIENCE, "")
TIMES = ("exp", "nbf", "iat")
REGISTERED = ("iss", "sub", "aud", "exp", "nbf", "iat", "jti")
# Not registered, but configurable as required: a required claim may be any name.
EXTRA_NAMES = ("scope", "client_id", "roles", "tenant", "cnf")
# Seconds between any drawn time and the nearest now +/- leeway boundary.
MARGIN = 30
LEEWAYS = (0, 5, 60, 90.5, 300, 3600)

_JWS = PyJWS()
_PROFILE_EXAMPLES = settings().max_examples  # the loaded profile's (conftest.py)
_LONG = os.environ.get("INVALIDTOKEN_FUZZ_PROFILE") == "long"


def _examples(standard: int) -> int:
    """``standard`` examples normally; the long profile's count when that is more."""
    return max(standard, _PROFILE_EXAMPLES) if _LONG else standard


# -- configuration and the two verdicts ------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One configuration, given identically to JWTVerifier and to ``jwt.decode``."""

    alg: str
    issuer: str | tuple[str, ...] | None
    audience: str | tuple[str, ...] | None
    leeway: float
    required: tuple[str, ...]

    def verifier(self, *, cache_size: int = 0) -> JWTVerifier:
        """Our verifier for this configuration (no caches unless ``cache_size``)."""
        return JWTVerifier(
            key=session_keys().verifying_key(self.alg),
            algorithms=[self.alg],
            issuer=self.issuer,
            audience=self.audience,
            leeway=self.leeway,
            required_claims=self.required,
            cache_size=cache_size,
        )

    def pyjwt(self, token: str) -> dict[str, Any] | Exception:
        """``jwt.decode``'s claims, or whatever it raised (anything at all is a refusal)."""
        try:
            return jwt.decode(
                token,
                key=session_keys().verifying_key(self.alg),
                algorithms=[self.alg],
                issuer=list(self.issuer) if isinstance(self.issuer, tuple) else self.issuer,
                audience=list(self.audience) if isinstance(self.audience, tuple) else self.audience,
                leeway=self.leeway,
                options={"require": list(self.required)},
            )
        except Exception as exc:  # noqa: BLE001 - any exception is PyJWT refusing the token
            return exc

    def sign(self, payload: str) -> str:
        """Sign exact claims JSON text (which ``jwt.encode`` could not write) with PyJWS."""
        return _JWS.encode(
            payload.encode(), session_keys().signing_key(self.alg), algorithm=self.alg
        )


def ours(verifier: JWTVerifier, token: str, api: str = "sync") -> dict[str, Any] | AuthFailure:
    """Our verifier's claims, or the AuthFailure it raised; anything else propagates."""
    try:
        if api == "async":
            return asyncio.run(verifier.verify_async(token))
        return verifier.verify(token)
    except AuthFailure as failure:
        return failure


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON text, so NaN equals NaN and ``1`` differs from ``1.0`` and ``True``."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


@st.composite
def configs(draw: st.DrawFn, *, audience: bool = True) -> Config:
    """Any configuration: one of three algorithms, one or two issuers or none, one or two
    audiences (or none unless ``audience``), a leeway, and up to four required claims.
    """
    audiences: list[str | tuple[str, ...] | None] = [AUDIENCE, (AUDIENCE, SECOND_AUDIENCE)]
    if not audience:
        audiences.append(None)
    return Config(
        alg=draw(st.sampled_from(ALGORITHMS)),
        issuer=draw(st.sampled_from([None, ISSUER, (ISSUER, SECOND_ISSUER)])),
        audience=draw(st.sampled_from(audiences)),
        leeway=draw(st.sampled_from(LEEWAYS)),
        required=tuple(
            draw(st.lists(st.sampled_from(REGISTERED + EXTRA_NAMES), unique=True, max_size=4))
        ),
    )


# -- RFC 7519 claim sets, with a model of which claims are wrong ----------------------

_ABSENT = object()
_ALL_PLACES = ("past", "recent", "soon", "future")
# Where a NumericDate may lie for its claim to be right (the wrong places: exp "past",
# nbf and iat "future").
_RIGHT_PLACES = {
    "exp": ("recent", "soon", "future"),
    "nbf": ("past", "recent", "soon"),
    "iat": ("past", "recent", "soon"),
}
_WRONG_PLACES = {"exp": ("past",), "nbf": ("future",), "iat": ("future",)}


@st.composite
def numeric_dates(
    draw: st.DrawFn, leeway: float, places: tuple[str, ...] = _ALL_PLACES
) -> tuple[int | float, str]:
    """A NumericDate (int or float) and where it lies: ``past`` (beyond the leeway),
    ``recent`` or ``soon`` (inside it), or ``future`` (beyond it), one of ``places``;
    never within MARGIN seconds of ``now - leeway`` or ``now + leeway``.
    """
    now = int(time.time())
    inside = leeway >= 2 * MARGIN  # else "recent" and "soon" would sit on a boundary
    place = draw(st.sampled_from([p for p in places if inside or p in {"past", "future"}]))
    distance = draw(st.one_of(st.integers(0, 3600), st.integers(0, 10**10)))
    base = {
        "past": now - leeway - MARGIN - distance,
        "recent": now - leeway / 2,
        "soon": now + leeway / 2,
        "future": now + leeway + MARGIN + distance,
    }[place]
    if draw(st.booleans()):
        return int(base), place
    return base + draw(st.floats(0, 0.999)), place


_FINITE_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
_NOT_STRINGS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(_FINITE_JSON, max_size=2),
    st.dictionaries(st.text(max_size=4), _FINITE_JSON, max_size=2),
)
_NOT_NULL = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=12),
    st.lists(_FINITE_JSON, max_size=2),
    st.dictionaries(st.text(max_size=4), _FINITE_JSON, max_size=2),
)
_EXTRA_NAMES = st.sampled_from(EXTRA_NAMES) | st.text(max_size=8).filter(
    lambda name: name not in REGISTERED
)


@dataclass(frozen=True)
class ClaimCase:
    """A claims set and, per wrong claim, the reasons that may name it."""

    claims: dict[str, Any]
    wrong: dict[str, frozenset[Reason]]


def _tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else value


def _wrong_times(claims: dict[str, Any], leeway: float) -> Iterator[tuple[str, Reason]]:
    now = time.time()
    if "exp" in claims and claims["exp"] < now - leeway:
        yield "exp", Reason.EXPIRED
    for name in ("nbf", "iat"):
        if name in claims and claims[name] > now + leeway:
            yield name, Reason.NOT_YET_VALID


def _wrong_iss_and_aud(claims: dict[str, Any], config: Config) -> Iterator[tuple[str, Reason]]:
    if config.issuer is not None:
        if "iss" not in claims:
            yield "iss", Reason.MISSING_CLAIM
        elif claims["iss"] not in _tuple(config.issuer):
            yield "iss", Reason.WRONG_ISSUER
    if config.audience is not None:
        if "aud" not in claims:
            yield "aud", Reason.MISSING_CLAIM
        elif not set(_tuple(config.audience)) & set(_tuple(claims["aud"])):
            # [] and "" name no audience, so not this one (PyJWT calls them missing).
            yield "aud", Reason.WRONG_AUDIENCE


def _wrong_claims(claims: dict[str, Any], config: Config) -> dict[str, frozenset[Reason]]:
    """The model: each claim of ``claims`` that ``config`` must refuse, and why.

    Only for RFC 7519 values; the test checks it against PyJWT on every example.
    """
    wrong = [*_wrong_times(claims, config.leeway), *_wrong_iss_and_aud(claims, config)]
    wrong += [
        (name, Reason.MALFORMED_TOKEN)
        for name in ("sub", "jti")
        if name in claims and not isinstance(claims[name], str)
    ]
    # RFC 7519 has no null claim: PyJWT calls a required claim that is null absent.
    wrong += [(name, Reason.MISSING_CLAIM) for name in config.required if claims.get(name) is None]
    return {name: frozenset(r for n, r in wrong if n == name) for name, _ in wrong}


@dataclass(frozen=True)
class _Drawing:
    """One claim set being drawn: which claims must (``must``) or may be wrong."""

    draw: st.DrawFn
    config: Config
    spoiled: frozenset[str]
    must: bool

    def present(self, name: str) -> bool:
        """Whether ``name`` goes in: a required claim may be wrong by its absence."""
        required = name in self.config.required
        if name in self.spoiled:
            return not required or not self.draw(st.booleans())
        return required or self.draw(st.booleans())

    def times(self, claims: dict[str, Any]) -> None:
        for name in TIMES:
            if self.present(name):
                places: tuple[str, ...] = _RIGHT_PLACES[name]
                if name in self.spoiled:
                    places = _WRONG_PLACES[name] if self.must else _ALL_PLACES
                claims[name], _ = self.draw(numeric_dates(self.config.leeway, places))

    def issuer(self, claims: dict[str, Any]) -> None:
        configured = self.config.issuer
        if "iss" not in self.spoiled:
            if configured is not None or self.present("iss"):
                claims["iss"] = self.draw(st.sampled_from(_tuple(configured or ISSUERS)))
            return
        wrong: list[object] = []
        if configured is not None or "iss" in self.config.required:
            wrong.append(_ABSENT)
        if configured is not None:
            wrong += [iss for iss in ISSUERS if iss not in _tuple(configured)]
        claims["iss"] = self.draw(
            st.sampled_from(wrong if self.must and wrong else [_ABSENT, *ISSUERS])
        )

    def audience(self, claims: dict[str, Any]) -> None:
        if self.config.audience is None:
            return  # test_no_audience_configured_refuses_token_with_aud
        mine = _tuple(self.config.audience)
        if "aud" not in self.spoiled:
            others = self.draw(st.lists(st.sampled_from(AUDIENCES).filter(bool), max_size=2))
            one = self.draw(st.sampled_from(mine))
            claims["aud"] = self.draw(st.just(one) | st.permutations([one, *others]))
            return
        pool = [aud for aud in AUDIENCES if aud not in mine] if self.must else AUDIENCES
        shape = self.draw(st.sampled_from(["absent", "string", "list"]))
        if shape == "string":
            claims["aud"] = self.draw(st.sampled_from(pool))
        elif shape == "list":
            claims["aud"] = self.draw(st.lists(st.sampled_from(pool).filter(bool), max_size=3))

    def strings(self, claims: dict[str, Any]) -> None:
        for name in ("sub", "jti"):
            if name in self.spoiled and (self.must or self.draw(st.booleans())):
                if self.present(name):
                    claims[name] = self.draw(_NOT_STRINGS)
            elif self.present(name):
                claims[name] = self.draw(st.text(max_size=12))

    def extras(self, claims: dict[str, Any]) -> None:
        claims.update(self.draw(st.dictionaries(_EXTRA_NAMES, _FINITE_JSON, max_size=4)))
        for name in sorted(set(self.config.required) - set(REGISTERED)):
            if name in self.spoiled:
                if self.must or self.draw(st.booleans()):
                    claims[name] = None if self.draw(st.booleans()) else _ABSENT
            elif claims.get(name) is None:
                claims[name] = self.draw(_NOT_NULL)


@st.composite
def claim_cases(draw: st.DrawFn, config: Config) -> ClaimCase:
    """RFC 7519 claims (times as numbers, ``iss``/``aud`` as strings) for ``config``:
    all right, exactly one claim wrong, or any number of them wrong; ``sub`` and ``jti``
    may be non-strings, and nested extra claims ride along.

    With no audience configured the token carries no ``aud``: that case has its own
    test (:func:`test_no_audience_configured_refuses_token_with_aud`).
    """
    spoilable = sorted({*TIMES, "iss", "aud", "sub", "jti", *config.required})
    mode = draw(st.sampled_from(["right", "one", "one", "any"]))
    # "one": that claim is wrong where the configuration lets it be; "any": each may be.
    spoiled = {"right": [], "one": [draw(st.sampled_from(spoilable))], "any": spoilable}
    drawing = _Drawing(draw, config, frozenset(spoiled[mode]), must=mode == "one")
    claims: dict[str, Any] = {}
    drawing.times(claims)
    drawing.issuer(claims)
    drawing.audience(claims)
    drawing.strings(claims)
    drawing.extras(claims)
    claims = {name: value for name, value in claims.items() if value is not _ABSENT}
    return ClaimCase(claims, _wrong_claims(claims, config))


@st.composite
def rfc_tokens(draw: st.DrawFn) -> tuple[Config, ClaimCase, str]:
    """A configuration, a claim case for it, and the case's claims signed for it."""
    config = draw(configs())
    case = draw(claim_cases(config))
    token = config.sign(json.dumps(case.claims, allow_nan=False))
    note(f"config={config!r}\nclaims={case.claims!r}\nwrong={case.wrong!r}")
    return config, case, token


# -- the properties on RFC 7519 values -------------------------------------------------


@settings(max_examples=_examples(400))
@given(drawn=rfc_tokens())
def test_accepts_exactly_what_pyjwt_accepts(drawn: tuple[Config, ClaimCase, str]) -> None:
    """Same verdict and claims as ``jwt.decode``; one wrong claim gives its own reason."""
    config, case, token = drawn
    theirs = config.pyjwt(token)
    # The model is right: PyJWT refuses exactly the tokens it calls wrong.
    assert isinstance(theirs, dict) == (not case.wrong), theirs
    mine = ours(config.verifier(cache_size=0), token)
    event(f"{len(case.wrong)} wrong claims" if len(case.wrong) != 1 else f"wrong: {[*case.wrong]}")
    if isinstance(theirs, dict):
        assert theirs == mine
        return
    assert isinstance(mine, AuthFailure), f"accepted what PyJWT refuses: {theirs!r}"
    assert "unexpected_error" not in mine.context, mine.context
    if len(case.wrong) == 1:
        [(claim, reasons)] = case.wrong.items()
        assert mine.reason in reasons, (claim, mine)
        if mine.reason is Reason.MISSING_CLAIM:
            assert f" {claim} " in mine.description, mine.description


@settings(max_examples=_examples(150))
@given(drawn=rfc_tokens(), apis=st.tuples(st.sampled_from(["sync", "async"]), st.booleans()))
def test_a_caching_verifier_answers_a_resent_token_the_same(
    drawn: tuple[Config, ClaimCase, str], apis: tuple[str, bool]
) -> None:
    """First and second call of a caching verifier agree with each other and with PyJWT."""
    config, _, token = drawn
    first_api, second_sync = apis
    verifier = config.verifier(cache_size=100)
    theirs = config.pyjwt(token)
    first = ours(verifier, token, first_api)
    if isinstance(first, dict):
        assert theirs == first
        first.clear()  # what the application does with its copy must not reach the cache
    second = ours(verifier, token, "sync" if second_sync else "async")
    if isinstance(theirs, dict):
        assert theirs == second
    else:
        assert isinstance(first, AuthFailure)
        assert isinstance(second, AuthFailure)
        assert first.reason is second.reason


@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize(
    "aud",
    [
        pytest.param(AUDIENCE, id="string"),
        pytest.param([AUDIENCE], id="list"),
        pytest.param([OTHER_AUDIENCE, SECOND_AUDIENCE], id="other-list"),
        pytest.param(5, id="number"),
        pytest.param([AUDIENCE, 1], id="list-with-number"),
    ],
)
def test_no_audience_configured_refuses_token_with_aud(alg: str, aud: Any) -> None:
    """No ``audience`` configured: an ``aud`` the service cannot be in is wrong_audience."""
    config = Config(alg, ISSUER, None, 60, ("exp",))
    now = int(time.time())
    token = config.sign(json.dumps({"iss": ISSUER, "aud": aud, "exp": now + 3600, "iat": now}))
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, session_keys().verifying_key(alg), algorithms=[alg], issuer=ISSUER)
    mine = ours(config.verifier(), token)
    assert isinstance(mine, AuthFailure), mine
    assert Reason.WRONG_AUDIENCE is mine.reason


# -- off the RFC 7519 domain: never looser than jwt.decode -----------------------------


def _off_domain_times(now: int) -> list[str]:
    """JSON texts for exp/nbf/iat that are not NumericDates, or are numbers past a float."""
    return [
        json.dumps(str(now + 3600)),
        json.dumps(str(now - 3600)),
        json.dumps(str(now + 3600) + ".5"),
        '"1.5e9"',
        '""',
        "true",
        "false",
        "null",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        str(10**309),
        str(-(10**309)),
        f"[{now + 3600}]",
        "[]",
        "{}",
    ]


_OFF_AUDIENCES = ("5", "0", "1.5", "true", "false", "null", "{}", f'["{AUDIENCE}", 1]', "[null]")
# With no audience configured jwt.decode accepts an aud it finds falsy; what it refuses
# there is the subject of test_no_audience_configured_refuses_token_with_aud.
_FALSY_AUDIENCES = ("0", "false", "null", "{}", "[]", '""', "0.0")
_OFF_ISSUERS = ("5", "null", "true", f'["{ISSUER}"]', "{}")
_OFF_EXTRAS = ("NaN", "Infinity", "1e400", str(10**309), '{"a": [NaN, -Infinity]}', "-0")


@st.composite
def off_domain_tokens(draw: st.DrawFn) -> tuple[Config, str]:
    """A configuration and a token whose claims JSON mixes RFC 7519 values with values
    off that domain, written literally (``NaN``, ``1e400``) and sometimes repeated.
    """
    config = draw(configs(audience=False))
    now = int(time.time())
    good = json.loads(json.dumps(draw(claim_cases(config)).claims))
    members: list[tuple[str, str]] = [(name, json.dumps(value)) for name, value in good.items()]
    off: dict[str, st.SearchStrategy[str]] = {
        **dict.fromkeys(TIMES, st.sampled_from(_off_domain_times(now))),
        "iss": st.sampled_from(_OFF_ISSUERS),
        "aud": st.sampled_from(_OFF_AUDIENCES if config.audience else _FALSY_AUDIENCES),
        "sub": st.sampled_from(("NaN", "1e400", str(10**309), "true")),
        "jti": st.sampled_from(("NaN", "-Infinity", "null", "[]")),
        **dict.fromkeys(EXTRA_NAMES, st.sampled_from(_OFF_EXTRAS)),
    }
    replaced = draw(st.lists(st.sampled_from(sorted(off)), min_size=1, max_size=3, unique=True))
    members = [(n, v) for n, v in members if n not in replaced]
    members += [(name, draw(off[name])) for name in replaced]
    if draw(st.booleans()):
        # A repeated member: every JSON reader here keeps the last one (RFC 7515 4).
        name = draw(st.sampled_from(replaced))
        members.insert(0, (name, draw(off[name])))
    members = draw(st.permutations(members))
    payload = "{" + ",".join(f"{json.dumps(n)}:{v}" for n, v in members) + "}"
    note(f"config={config!r}\npayload={payload}")
    return config, config.sign(payload)


def _never_looser(mine: dict[str, Any] | AuthFailure, theirs: dict[str, Any] | Exception) -> None:
    event(f"ours {'refuses' if isinstance(mine, AuthFailure) else 'accepts'}")
    event(f"jwt.decode {'accepts' if isinstance(theirs, dict) else 'refuses'}")
    if isinstance(mine, AuthFailure):
        assert "unexpected_error" not in mine.context, mine.context
        return
    assert isinstance(theirs, dict), f"accepted what jwt.decode refuses: {theirs!r}"
    assert same_json(theirs, mine)


@settings(max_examples=_examples(300))
@given(drawn=off_domain_tokens())
def test_off_domain_values_are_never_accepted_where_pyjwt_refuses(
    drawn: tuple[Config, str],
) -> None:
    """Stricter than ``jwt.decode`` at most, with and without the cache, AuthFailure only."""
    config, token = drawn
    theirs = config.pyjwt(token)
    _never_looser(ours(config.verifier(cache_size=0), token), theirs)
    caching = config.verifier(cache_size=100)
    first = ours(caching, token)
    _never_looser(first, theirs)
    second = ours(caching, token)
    _never_looser(second, theirs)
    assert isinstance(first, AuthFailure) == isinstance(second, AuthFailure)


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize("claim", TIMES)
@pytest.mark.parametrize(
    "number",
    [
        pytest.param(str(10**309), id="1e309-int"),
        pytest.param(str(-(10**309)), id="-1e309-int"),
        pytest.param("1e308", id="1e308"),
        pytest.param("-1e308", id="-1e308"),
    ],
)
def test_numbers_past_a_float_with_a_revocation_store_give_only_auth_failures(
    number: str, claim: str, api: str
) -> None:
    """A revocation store reads ``iat`` too: a signed number no float holds is no 500."""
    config = Config("HS256", ISSUER, AUDIENCE, 60, ())
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "jti": "jti-1", "exp": now + 3600}
    members = [(name, json.dumps(value)) for name, value in claims.items() if name != claim]
    payload = "{" + ",".join(f"{json.dumps(n)}:{v}" for n, v in [*members, (claim, number)]) + "}"
    token = config.sign(payload)
    verifier = JWTVerifier(
        key=session_keys().verifying_key("HS256"),
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        required_claims=(),
        revocation=MemoryRevocationStore(),
    )
    for _ in range(2):  # the second answer comes from the cache
        mine = ours(verifier, token, api)
        if isinstance(mine, AuthFailure):
            assert "unexpected_error" not in mine.context, mine.context
        else:
            assert same_json(config.pyjwt(token), mine)
