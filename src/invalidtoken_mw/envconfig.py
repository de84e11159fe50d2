"""Build a :class:`~invalidtoken_mw.JWTVerifier` from environment variables.

For twelve-factor deployments and the examples. With the default prefix:

==============================  ================================================
``INVALIDTOKEN_KEY``            HMAC secret, PEM public key or JWK JSON
``INVALIDTOKEN_KEY_FILE``       file holding the key (wins over ``KEY``)
``INVALIDTOKEN_JWKS_URL``       JWKS endpoint (instead of a key)
``INVALIDTOKEN_ISSUER_URL``     issuer to discover (instead of a key or JWKS URL)
``INVALIDTOKEN_ALGORITHMS``     comma-separated allowlist, e.g. ``RS256,ES256``
``INVALIDTOKEN_ISSUER``         expected issuer(s), comma-separated
``INVALIDTOKEN_AUDIENCE``       this resource's audience(s), comma-separated
``INVALIDTOKEN_LEEWAY``         seconds of clock skew tolerated
``INVALIDTOKEN_TOKEN_TYPE``     required ``typ``, e.g. ``at+jwt``
``INVALIDTOKEN_REDIS_URL``      share revocations through this Redis
==============================  ================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invalidtoken_mw.settings import as_list, as_number
from invalidtoken_mw.verify import JWTVerifier

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["verifier_from_env"]

_LISTS = ("algorithms", "issuer", "audience")


def verifier_from_env(
    env: Mapping[str, str] | None = None,
    *,
    prefix: str = "INVALIDTOKEN_",
    **defaults: Any,  # noqa: ANN401 - any JWTVerifier keyword
) -> JWTVerifier:
    """A verifier configured by ``{prefix}*`` variables; ``defaults`` fill in the rest.

    Args:
        env: The variables (default: ``os.environ``).
        prefix: Their common prefix.
        **defaults: :class:`JWTVerifier` keywords used where no variable is set,
            e.g. ``algorithms=["RS256"]`` or ``revocation=MemoryRevocationStore()``.

    Values are read with the same rules as :class:`~invalidtoken_mw.GuardSettings`
    (comma-separated lists, decimal numbers); a bad one names its variable.

    Raises:
        ValueError: The resulting configuration is unusable (the verifier's message).
        OSError: ``{prefix}KEY_FILE`` cannot be read.
    """
    env = os.environ if env is None else env
    settings: dict[str, Any] = dict(defaults)

    def value(name: str) -> str | None:
        raw = env.get(prefix + name)
        return raw or None

    for name in _LISTS:
        raw = value(name.upper())
        if raw is not None:
            settings[name] = list(as_list(prefix + name.upper(), raw))
    key_file = value("KEY_FILE")
    key = Path(key_file).read_text(encoding="utf-8") if key_file else value("KEY")
    if key is not None:
        settings["key"] = key
    for name in ("JWKS_URL", "ISSUER_URL"):
        if value(name) is not None:
            settings[name.lower()] = value(name)
    if value("LEEWAY") is not None:
        settings["leeway"] = as_number(prefix + "LEEWAY", value("LEEWAY"), float, "30")
    if value("TOKEN_TYPE") is not None:
        settings["token_type"] = value("TOKEN_TYPE")
    redis_url = value("REDIS_URL")
    if redis_url is not None:
        from invalidtoken_mw.redis_store import RedisRevocationStore  # noqa: PLC0415

        settings["revocation"] = RedisRevocationStore(redis_url)
    return JWTVerifier(**settings)
