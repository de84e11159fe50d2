"""JWTVerifier: the ``alg`` allowlist, ``alg: none``, key confusion and forged signatures."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from invalidtoken_mw.verify import JWTVerifier
from support.tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    Keys,
    b64url,
    claims,
    hs256_raw,
    mint,
    session_keys,
    tamper_claims,
    tamper_signature,
)
from support.verifying import (
    APIS,
    CLAIMS_B64,
    HS256,
    failure_of,
    static_verifier,
    verdict,
)

# -- algorithms ------------------------------------------------------------------------


@APIS
@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2ln"], ids=["unsigned", "junk-sig"])
def test_alg_none_in_any_spelling_is_not_allowed(spelling: str, signature: str, api: str) -> None:
    """alg none, whatever its case, is refused before any key is touched."""
    header = b64url(json.dumps({"alg": spelling, "typ": "JWT"}).encode())
    token = f"{header}.{CLAIMS_B64}.{signature}"
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(), token, api)


@pytest.mark.parametrize("spelling", ["none", "None", "NONE", "nOnE"])
def test_alg_none_description_says_the_token_is_unsigned(spelling: str) -> None:
    """The alg-none refusal, in any spelling, tells the client a signature is required."""
    header = b64url(json.dumps({"alg": spelling}).encode())
    failure = failure_of(static_verifier(), f"{header}.{CLAIMS_B64}.")
    expected = "The access token is not signed (alg none); this service requires a signature."
    assert expected == failure.description


@APIS
@pytest.mark.parametrize(
    ("verifier_alg", "token_alg"),
    [
        pytest.param("HS256", "RS256", id="rs256-to-hs256"),
        pytest.param("RS256", "PS256", id="ps256-same-rsa-key-to-rs256"),
        pytest.param("RS256", "ES256", id="es256-to-rs256"),
        pytest.param("EdDSA", "ES256", id="es256-to-eddsa"),
        pytest.param("ES256", "EdDSA", id="eddsa-to-es256"),
    ],
)
def test_algorithm_outside_the_allowlist(verifier_alg: str, token_alg: str, api: str) -> None:
    """A validly signed token whose alg is not in the configured allowlist is refused."""
    token = mint(token_alg)
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(verifier_alg), token, api)


@APIS
@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"typ": "JWT"}, id="alg-missing"),
        pytest.param({"alg": 256}, id="alg-number"),
        pytest.param({"alg": ["HS256"]}, id="alg-list"),
        pytest.param({"alg": "hs256"}, id="alg-wrong-case"),
        pytest.param({"alg": "HS384"}, id="alg-other-hmac"),
    ],
)
def test_alg_header_must_name_an_allowed_algorithm(header: dict[str, Any], api: str) -> None:
    """A missing, non-string, miscased or unlisted alg is refused even with a good HMAC."""
    expected = "algorithm_not_allowed"
    assert expected == verdict(static_verifier(), hs256_raw(header, claims()), api)


def _key_forms(keys: Keys) -> dict[str, Any]:
    """The RSA public key in every form a verifier accepts."""
    pem = keys.rsa_public_pem()
    return {
        "pem-bytes": pem,
        "pem-str": pem.decode(),
        "key-object": keys.rsa.public_key(),
        "jwk": {k: v for k, v in keys.jwk("RS256", "rsa-1").items() if k != "kid"},
    }


@APIS
@pytest.mark.parametrize("form", ["pem-bytes", "pem-str", "key-object", "jwk"])
def test_hs256_signed_with_the_rsa_public_key_is_refused(keys: Keys, form: str, api: str) -> None:
    """RFC 8725 §2.1 key confusion: HS256 keyed with the public PEM or JWK never verifies."""
    key = _key_forms(keys)[form]
    verifier = JWTVerifier(key=key, algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE)
    secrets = [keys.rsa_public_pem(), json.dumps(keys.jwk("RS256", "rsa-1")).encode()]
    verdicts = [verdict(verifier, hs256_raw(HS256, claims(), secret), api) for secret in secrets]
    expected = ["algorithm_not_allowed", "algorithm_not_allowed"]
    assert expected == verdicts


# -- signatures ------------------------------------------------------------------------


def _forgeries(alg: str) -> dict[str, str]:
    """Tokens for ``alg`` whose signature does not verify, by defect."""
    keys = session_keys()
    now = int(time.time())
    forger = keys.forging_key(alg)
    good = mint(alg)
    return {
        "foreign-key": mint(alg, key=forger),
        "tampered-signature": tamper_signature(good),
        "tampered-claims": tamper_claims(good, sub="admin"),
        "tampered-exp": tamper_claims(mint(alg, claims(exp=now - 10)), exp=now + 3600),
        "expired-and-forged": mint(alg, claims(exp=now - 7200), key=forger),
        "every-claim-wrong-and-forged": mint(
            alg,
            claims(exp=now - 7200, nbf=now + 7200, iss="evil", aud="evil"),
            key=forger,
        ),
        "signature-stripped": good.rsplit(".", 1)[0] + ".",
    }


@APIS
@pytest.mark.parametrize("alg", ALGORITHMS)
@pytest.mark.parametrize("defect", list(_forgeries("HS256")))
def test_forged_or_tampered_tokens_are_bad_signature(alg: str, defect: str, api: str) -> None:
    """Any signature that does not verify is bad_signature, never expired or a claim error."""
    token = _forgeries(alg)[defect]
    expected = "bad_signature"
    assert expected == verdict(static_verifier(alg), token, api)
