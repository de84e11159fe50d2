"""Compact JWS serialisation helpers shared by the verifier and the log (RFC 7515 §7.1)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

# Three base64url segments; the signature may be empty only to be refused later.
JWS_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def decode_object(segment: str) -> dict[str, Any] | None:
    """Decode a base64url JSON segment; ``None`` unless it is a JSON object."""
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
