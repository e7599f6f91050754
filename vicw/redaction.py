"""Credentials inside URLs, masked wherever text leaves the process (logs, `vicw config show`, CLI).

Settings that are secrets are `SecretStr` already; this catches the ones that hide in plain URLs:
`redis://:password@host`, `neo4j+s://user:password@host`, `https://host/?api-key=...`. The user
name stays (it helps to see which account is used); the password, a user-info token
(`https://token@host`) and credential-like query values become `****`.
"""

from __future__ import annotations

import re

MASK = "****"

# scheme://user:password@ — the password runs to the last '@' before the host part.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@?#\"'<>]*:)(?P<secret>[^\s?#\"'<>]*)@")
# scheme://token@ (user-info without a colon is usually a token: https://ghp_...@host)
_TOKEN_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<secret>[^\s:/@?#\"'<>]+)@")
# ?api-key=... &token=... (any case, '-' or '_' or nothing between the words)
_QUERY = re.compile(
    r"(?P<head>[?&;](?:[A-Za-z0-9_\-]*[-_])?"
    r"(?:api[-_]?key|apikey|key|token|access[-_]?token|auth|authorization|password|passwd|pwd|secret|"
    r"client[-_]?secret|signature|sig|credential|security[-_]?token)=)(?P<secret>[^&#\s\"'<>]+)",
    re.IGNORECASE,
)


def mask_credentials(text: str) -> str:
    """`text` with every URL password and credential-like query value replaced by `****`."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m["head"] + MASK + "@" if m["secret"] else m[0], text)
    text = _TOKEN_USERINFO.sub(lambda m: m[0] if m["secret"] == MASK else m["head"] + MASK + "@", text)
    return _QUERY.sub(lambda m: m["head"] + MASK, text)


def mask_value(value: object) -> object:
    """`mask_credentials` through strings, lists and dicts (other values are returned as they are)."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, (list, tuple)):
        return type(value)(mask_value(v) for v in value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    return value
