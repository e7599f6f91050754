"""Secrets read at run time from AWS (Secrets Manager or SSM Parameter Store), cached in memory.

A name starting with "/" is an SSM parameter (SecureString decrypted); anything else is a
Secrets Manager id or ARN. Values are cached for `max_age` seconds, so a rotated key is picked
up within that time without a cold start, and a warm Lambda does not call AWS on every request.
Error messages name the secret, never its value.
"""

from __future__ import annotations

import json
from functools import cache

from aws_lambda_powertools.utilities import parameters
from pydantic import SecretStr

from vicw.aws import BOTO_CONFIG
from vicw.errors import Misconfigured

DEFAULT_MAX_AGE = 300  # seconds
# Field names tried, in order, when a Secrets Manager secret holds a JSON object.
_JSON_FIELDS = ("api_key", "apiKey", "key", "value")


class SecretUnavailable(Misconfigured):
    """The secret could not be read (missing, no permission, or unreachable)."""


# Powertools providers built on the same botocore config as vicw/aws.py (2 s connect, 2 attempts),
# instead of the module-level defaults (60 s timeouts, more retries). One per process, so their
# caches (max_age) are shared by every caller.
@cache
def _ssm() -> parameters.SSMProvider:
    return parameters.SSMProvider(boto_config=BOTO_CONFIG)


@cache
def _secrets() -> parameters.SecretsProvider:
    return parameters.SecretsProvider(boto_config=BOTO_CONFIG)


def get_secret_value(name: str, max_age: int = DEFAULT_MAX_AGE, force: bool = False) -> SecretStr:
    """The secret named `name` (SSM parameter if it starts with "/", else Secrets Manager).

    `force` skips the cache (e.g. after the upstream API rejected the cached key).
    """
    try:
        if name.startswith("/"):
            raw = _ssm().get(name, decrypt=True, max_age=max_age, force_fetch=force)
        else:
            raw = _secrets().get(name, max_age=max_age, force_fetch=force)
    except parameters.exceptions.GetParameterError as exc:
        kind = "SSM parameter" if name.startswith("/") else "secret"
        reason = type(exc.__cause__).__name__ if exc.__cause__ else "GetParameterError"
        raise SecretUnavailable(f"cannot read {kind} {name!r}: {reason}") from None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    return SecretStr(_unwrap(str(raw or ""), name))


def _unwrap(raw: str, name: str) -> str:
    """Accept a plain string, or a JSON object holding the key under a usual field name."""
    text = raw.strip()
    if not text.startswith("{"):
        if not text:
            raise SecretUnavailable(f"secret {name!r} is empty")
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text
    if not isinstance(data, dict):
        return text
    for field in _JSON_FIELDS:
        if isinstance(data.get(field), str) and data[field]:
            return data[field]
    values = [v for v in data.values() if isinstance(v, str) and v]
    if len(values) == 1:
        return values[0]
    raise SecretUnavailable(f"secret {name!r} is a JSON object without one of the fields {', '.join(_JSON_FIELDS)}")
