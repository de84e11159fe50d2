"""GuardSettings: one checked, documented home for every middleware option."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask import Flask

from invalidtoken_mw import GuardSettings, InvalidTokenMiddleware, JWTVerifier
from invalidtoken_mw.flask import InvalidToken
from support.tokens import AUDIENCE, ISSUER, SECRET

VERIFIER = JWTVerifier(key=SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)


def test_strings_from_config_are_read_as_what_they_stand_for() -> None:
    """Switches, numbers, lists and 'none' arrive as strings from config and the environment."""
    settings = GuardSettings.from_mapping(
        {
            "INVALIDTOKEN_OPTIONAL": "false",
            "INVALIDTOKEN_LOG_ACCEPTED": "Yes",
            "INVALIDTOKEN_MAX_TOKEN_BYTES": "4096",
            "INVALIDTOKEN_EXCLUDE_PATHS": "/health, /metrics",
            "INVALIDTOKEN_SCOPES": "orders:read orders:write,admin",
            "INVALIDTOKEN_LOG_RATE_LIMIT": "20, 2.5",
            "INVALIDTOKEN_CLIENT_IP_HEADER": "none",
        },
        verifier=VERIFIER,
    )
    assert (
        False,
        True,
        4096,
        ("/health", "/metrics"),
        ("orders:read", "orders:write", "admin"),
        (20, 2.5),
        None,
    ) == (
        settings.optional,
        settings.log_accepted,
        settings.max_token_bytes,
        settings.exclude_paths,
        settings.scopes,
        settings.log_rate_limit,
        settings.client_ip_header,
    )


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("optional", "maybe", r"optional must be true or false"),
        (
            "max_token_bytes",
            "8k",
            r"max_token_bytes must be a whole number, e.g. max_token_bytes=8192",
        ),
        ("retry_after", 1.5, r"retry_after must be a whole number"),
        ("exclude_paths", "health", r"exclude_paths entries must start with '/'"),
        ("log_rate_limit", "50", r"log_rate_limit must be \(burst, per_second\)"),
        ("request_id_header", "x request id", r"request_id_header must be a header name"),
        ("fingerprint_key", "short", r"fingerprint_key must be at least 16 bytes"),
        ("realm", 'a"b', r"realm=.* is not allowed"),
    ],
)
def test_a_bad_value_is_refused_with_its_option_named(
    option: str, value: Any, message: str
) -> None:
    """Every check names the option and says what would work."""
    with pytest.raises(ValueError, match=message):
        GuardSettings(verifier=VERIFIER, **{option: value})


def test_an_unknown_option_lists_the_known_ones() -> None:
    """A misspelt keyword names itself and the fields."""
    with pytest.raises(TypeError, match=r"unknown option\(s\): relam; the options are .*realm"):
        InvalidTokenMiddleware(lambda *_: None, verifier=VERIFIER, relam="x")  # type: ignore[arg-type]


def test_every_field_is_documented_in_the_class_docstring() -> None:
    """Each field carries its own documentation, collected under Attributes."""
    doc = GuardSettings.__doc__ or ""
    fields = dataclasses.fields(GuardSettings)
    assert [] == [f.name for f in fields if not f.metadata.get("doc")]
    assert [] == [f.name for f in fields if f"        {f.name}: " not in doc]


def test_flask_config_strings_reach_the_guard() -> None:
    """INVALIDTOKEN_OPTIONAL='false' is off (a non-empty string used to be truthy)."""
    app = Flask("settings")
    app.config.update(INVALIDTOKEN_VERIFIER=VERIFIER, INVALIDTOKEN_OPTIONAL="false")
    InvalidToken(app)

    @app.get("/orders")
    def orders() -> str:
        return "ok"

    assert 401 == app.test_client().get("/orders").status_code


def test_the_middleware_takes_ready_settings_or_a_guard() -> None:
    """settings= and guard= are alternatives to the keywords, not additions."""
    settings = GuardSettings(verifier=VERIFIER, realm="orders")
    by_settings = InvalidTokenMiddleware(lambda *_: None, settings=settings)  # type: ignore[arg-type]
    by_guard = InvalidTokenMiddleware(lambda *_: None, guard=by_settings.guard)  # type: ignore[arg-type]
    assert by_settings.guard is by_guard.guard
    assert "orders" == by_guard.guard.settings.realm
    with pytest.raises(TypeError, match="guard= alone"):
        InvalidTokenMiddleware(lambda *_: None, guard=by_settings.guard, realm="x")  # type: ignore[arg-type]
