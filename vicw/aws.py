"""boto3 clients, built once per process. They honour AWS_ENDPOINT_URL (moto locally) natively."""

from __future__ import annotations

from functools import lru_cache

import boto3
from botocore.config import Config

# Short timeouts everywhere: an unreachable endpoint (a VPC without the endpoint or NAT it needs)
# must fail fast with an error, not hang a cold start past Lambda's 10 s init limit.
BOTO_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"})
_CONFIG = BOTO_CONFIG


@lru_cache(maxsize=16)
def client(service: str, region: str | None = None):  # noqa: ANN201 - boto3 clients are dynamically typed
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)
