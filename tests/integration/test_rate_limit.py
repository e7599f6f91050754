"""The per-key limiter against a real Redis: parsing, route groups, the GCRA bucket, fail-open."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from tests.conftest import run_in_threads
from vicw.rate_limit import (
    KEY_PREFIX,
    RateLimiter,
    Rule,
    parse_rate_limits,
    route_group,
)


def test_parse_rate_limits():
    assert parse_rate_limits("chat=60/60, ingest=5/10,default=600/60") == {
        "chat": Rule(60, 60), "ingest": Rule(5, 10), "default": Rule(600, 60)}
    assert parse_rate_limits("") == {}
    assert parse_rate_limits(None) == {}


@pytest.mark.parametrize("spec", ["chat=60", "chat=0/60", "chat=6/0", "uploads=1/1", "chat=a/b", "chat=1/1,,x"])
def test_parse_rejects_bad_rules_with_a_clear_message(spec):
    with pytest.raises(ValueError, match="RATE_LIMITS"):
        parse_rate_limits(spec)


@pytest.mark.parametrize(("path", "group"), [
    ("/chat", "chat"), ("/v1/chat/completions", "chat"), ("/ingest", "ingest"), ("/ingest/{job_id}", "ingest"),
    ("/sessions/{session_id}", "default"), ("/chatty", "default"), ("/stats", "default"),
])
def test_route_groups(path, group):
    assert route_group(path) == group


def test_burst_then_one_per_interval(redis_client):
    limiter = RateLimiter(redis_client, parse_rate_limits("chat=3/3,default=100/60"))
    assert [limiter.hit("k1", "chat").allowed for _ in range(3)] == [True, True, True]
    denied = limiter.hit("k1", "chat")
    assert not denied.allowed and 0 < denied.retry_after <= 1.0  # one token per second
    # another key and another group have their own budgets
    assert limiter.hit("k2", "chat").allowed
    assert limiter.hit("k1", "default").allowed
    time.sleep(denied.retry_after + 0.05)
    started = time.monotonic()
    assert limiter.hit("k1", "chat").allowed
    again = limiter.hit("k1", "chat")
    if time.monotonic() - started < 0.9:  # a busy machine may take a whole refill between the two calls
        assert not again.allowed


def test_group_without_a_rule_uses_default_and_no_rules_means_unlimited(redis_client):
    limiter = RateLimiter(redis_client, parse_rate_limits("default=1/60"))
    assert limiter.hit("k", "ingest").allowed and not limiter.hit("k", "ingest").allowed
    unlimited = RateLimiter(redis_client, {})
    assert all(unlimited.hit("k", "chat").allowed for _ in range(50))


def test_concurrent_hits_never_exceed_the_burst(redis_client):
    limiter = RateLimiter(redis_client, parse_rate_limits("chat=20/600"))
    results: list[bool] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            ok = limiter.hit("shared", "chat").allowed
            with lock:
                results.append(ok)

    run_in_threads(worker, 8)
    assert len(results) == 80 and sum(results) == 20


def test_keys_hold_a_digest_and_expire(redis_client):
    limiter = RateLimiter(redis_client, parse_rate_limits("chat=2/4"))
    digest = "ab" * 32
    limiter.hit(digest, "chat")
    keys = [k.decode() for k in redis_client.scan_iter(match=f"{KEY_PREFIX}:*")]
    assert keys == [f"{KEY_PREFIX}:chat:{digest}"]
    assert 0 < redis_client.pttl(keys[0]) <= 2_100  # gone once the bucket is full again


def test_redis_down_raises_from_hit():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, socket_timeout=0.2)
    limiter = RateLimiter(dead, parse_rate_limits("chat=1/60"))
    with pytest.raises(redis.RedisError):
        limiter.hit("k", "chat")
