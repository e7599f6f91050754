"""A whole VICW with its own Redis (+FalkorDB) and moto processes, so tests can stop and restart them.

`LocalVicw` without `redis_url`/`aws_endpoint` starts both servers itself and keeps them in
`local.processes`; `ManagedProcess.stop()` / `.start()` restarts one on the same port. Locally the
graph store (FalkorDB) is a module inside that same redis-server process, so stopping Redis also
takes the graph down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, API_KEY, API_KEY_B, HTTP_TIMEOUT, patient, running_vicw, wait_until  # noqa: F401 - wait_until is shared with the modules here

# Variables a previous in-process stack may have left in os.environ; this stack sets its own.
STACK_VARS = (
    "AWS_ENDPOINT_URL", "REDIS_URL", "QDRANT_PATH", "FALKORDB_URL", "OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL",
    "OFFLOAD_TOPIC_ARN", "ARCHIVE_BUCKET", "OFFLOAD_DLQ_URL", "GRAPH_DLQ_URL", "VICW_DATA_DIR",
)


def stack_env(llm_url: str, **extra: str) -> dict[str, str]:
    env = {
        "VICW_API_KEYS": f"{API_KEY}:tenant-a,{API_KEY_B}:tenant-b,{ADMIN_KEY}:ops",
        "VICW_ADMIN_TENANTS": "ops",
        "VICW_LLM_API_URL": llm_url,
        "VICW_LLM_MODEL_NAME": "scripted-model",
        "VICW_LLM_PROVIDER": "openai",
        "LLM_TIMEOUT": str(patient(15)),  # bounds a hang only; the timeout test lowers it (llm_timeout)
        "HEALTH_CHECK_TIMEOUT": str(patient(30)),
        "LLM_MAX_RETRIES": "0",
        "MAX_CONTEXT_TOKENS": "1024",
        "LLM_MAX_TOKENS": "128",
        "RATE_LIMITS": "",  # load tests measure the store, not the limiter
        "OUTBOX_RESEND_AFTER_SECONDS": "1",
        "OUTBOX_CONFIRM_AFTER_SECONDS": "3",  # jobs lost inside a restarted emulator come back quickly
        "COLD_PATH_WORKERS": "1",
        "COLD_PATH_BATCH_SIZE": "10",
        "GRAPH_BACKEND": "falkordb",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "HF_HUB_OFFLINE": "1",
    }
    env.update(extra)
    return env


@contextmanager
def own_stack(data_dir: Path, env: dict[str, str], cold_path: bool = True) -> Iterator[Any]:
    """Start LocalVicw with its own servers; restore os.environ and the cached clients afterwards."""
    from vicw import aws, container
    from vicw.local.runner import LocalVicw

    saved = dict(os.environ)
    for name in STACK_VARS:
        os.environ.pop(name, None)
    os.environ.update(env)
    aws.client.cache_clear()  # boto3 clients remember the endpoint they were built for
    local = LocalVicw(data_dir, port=0, cold_path=cold_path)
    try:
        local.start()
        yield local
    finally:
        local.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.client.cache_clear()
        container.reset()


def process(local: Any, name: str):
    return next(p for p in local.processes if p.name == name)




@pytest.fixture()
def client_for():
    clients: list[httpx.Client] = []

    def make(url: str, key: str = API_KEY, timeout: float = HTTP_TIMEOUT) -> httpx.Client:
        c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def unlimited_stack(tmp_path_factory, redis_url, moto_endpoint, vicw_env, scripted_llm):
    """One in-process VICW for a whole module, with rate limits off (every case uses its own session)."""
    env = {**vicw_env, "RATE_LIMITS": ""}
    with running_vicw(tmp_path_factory.mktemp("stack"), redis_url, moto_endpoint, env) as local:
        yield local
