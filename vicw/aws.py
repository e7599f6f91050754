"""boto3 clients, built once per process. They honour AWS_ENDPOINT_URL (moto locally) natively."""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})


@lru_cache(maxsize=16)
def client(service: str, region: str | None = None):  # noqa: ANN201 - boto3 clients are dynamically typed
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)
