"""Real servers for the tests: Redis+FalkorDB and a moto AWS endpoint, started once per run."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from vicw.local.services import aws_env, moto_server, redis_server

# Keep every model offline: a missing local file must fail fast, never download.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Tests never depend on how fast this machine is: timeouts in tests only bound a hang, are
# generous, and scale with VICW_TEST_PATIENCE (e.g. 3 on a machine that is very busy). Nothing
# asserts a duration; waiting for something to happen is polling (wait_until), never a sleep.
PATIENCE = float(os.environ.get("VICW_TEST_PATIENCE", "1"))


def patient(seconds: float) -> float:
    return seconds * PATIENCE


HTTP_TIMEOUT = patient(60)  # for test clients talking to a local stack


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
    with patched_env(aws_env(endpoint)):
        yield endpoint
    proc.stop()


@pytest.fixture()
def data_dir(tmp_path) -> Path:
    return tmp_path


API_KEY = "test-key-tenant-a-0001"
API_KEY_B = "test-key-tenant-b-0002"
ADMIN_KEY = "test-key-admin-ops-0003"  # tenant "ops", listed in VICW_ADMIN_TENANTS


@pytest.fixture(scope="session")
def scripted_llm():
    from tests.fakes.llm_server import ScriptedLLM

    with ScriptedLLM() as server:
        yield server


@pytest.fixture(scope="session")
def vicw_env(redis_url, moto_endpoint, scripted_llm):
    """Environment for an in-process VICW talking to the session's real servers."""
    return {
        "VICW_API_KEYS": f"{API_KEY}:tenant-a,{API_KEY_B}:tenant-b,{ADMIN_KEY}:ops",
        "VICW_ADMIN_TENANTS": "ops",
        "VICW_LLM_API_URL": scripted_llm.url,
        "VICW_LLM_MODEL_NAME": "scripted-model",
        "LLM_TIMEOUT": str(patient(15)),  # the scripted LLM answers at once; this only bounds a hang
        "HEALTH_CHECK_TIMEOUT": str(patient(30)),  # production: 2 s; a busy test machine is slower
        "LLM_MAX_RETRIES": "0",
        "MAX_CONTEXT_TOKENS": "4096",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }


@contextmanager
def patched_env(values: dict, clear: tuple[str, ...] = ()):
    """Set (and unset) environment variables for a block, restoring the previous values after."""
    saved = {k: os.environ.get(k) for k in (*values, *clear)}
    for key in clear:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def running_vicw(tmp_path, redis_url, moto_endpoint, env: dict, cold_path: bool = False, clear: tuple[str, ...] = ()):
    """VICW in this process on a free port, through the real Lambda handlers; stopped (and the
    environment restored) when the block ends."""
    from vicw.local.runner import LocalVicw

    with patched_env(env, clear):
        local = LocalVicw(tmp_path, port=0, redis_url=redis_url, aws_endpoint=moto_endpoint, cold_path=cold_path).start()
        try:
            yield local
        finally:
            local.stop()


def run_in_threads(work, threads: int) -> None:
    """Start `threads` threads running `work` at once and wait for all of them."""
    started = [threading.Thread(target=work) for _ in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join()


def wait_until(predicate, timeout: float = 60, every: float = 0.25, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail with its last value after `timeout`
    (scaled by VICW_TEST_PATIENCE)."""
    timeout = patient(timeout)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:  # noqa: BLE001 - a store may still be coming back
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise AssertionError(f"{what} not met within {timeout}s; last value: {last!r}")


@contextmanager
def llm_timeout(seconds: float):
    """Make the running app's LLM client give up after `seconds` (tests of the 504 path), without
    a short LLM_TIMEOUT for every other test."""
    import httpx

    from vicw import container

    provider = container.llm()
    saved = provider.timeout, provider._client.timeout
    provider.timeout, provider._client.timeout = seconds, httpx.Timeout(seconds)
    try:
        yield
    finally:
        provider.timeout, provider._client.timeout = saved


@pytest.fixture()
def vicw(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    """A running VICW (hot path only) with a clean Redis and a reset scripted LLM."""
    scripted_llm.reset()
    with running_vicw(tmp_path, redis_url, moto_endpoint, vicw_env) as local:
        yield local


@pytest.fixture()
def api(vicw):
    import httpx

    with httpx.Client(base_url=vicw.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=HTTP_TIMEOUT) as client:
        yield client
