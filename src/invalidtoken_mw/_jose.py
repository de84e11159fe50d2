"""Compact JWS serialisation helpers shared by the verifier and the log (RFC 7515 §7.1)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

# Three base64url segments; the signature may be empty only to be refused later.
JWS_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Deeper JSON is refused: no token needs it, and copying or re-reading it (the verifier's
# cache, PyJWT, the application) could exhaust the stack, depending on how deep it already is.
MAX_JSON_DEPTH = 64


def decode_object(segment: str) -> dict[str, Any] | None:
    """Decode a base64url JSON segment; ``None`` unless a JSON object at most 64 levels deep."""
    try:
        text = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(text)
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    # Counting brackets is cheap and only over-estimates the depth (strings may hold some).
    if text.count(b"[") + text.count(b"{") > MAX_JSON_DEPTH and too_deep(value):
        return None
    return value


def too_deep(value: dict[str, Any]) -> bool:
    """Whether lists and objects nest deeper than MAX_JSON_DEPTH (iteratively: no recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
