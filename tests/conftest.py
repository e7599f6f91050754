"""Real servers for the tests: Redis+FalkorDB and a moto AWS endpoint, started once per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vicw.local.services import aws_env, moto_server, redis_server

# Keep every model offline: a missing local file must fail fast, never download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory):
    proc = redis_server(tmp_path_factory.mktemp("redis"), persist=False).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def redis_url(redis_proc) -> str:
    return f"redis://127.0.0.1:{redis_proc.port}/0"


@pytest.fixture()
def redis_client(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> str:
    proc = moto_server(tmp_path_factory.mktemp("moto")).start()
    endpoint = f"http://127.0.0.1:{proc.port}"
    saved = {k: os.environ.get(k) for k in aws_env(endpoint)}
    os.environ.update(aws_env(endpoint))
    yield endpoint
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    proc.stop()


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    return tmp_path
