"""Per-API-key request limits, kept in Redis so every Lambda sandbox shares one budget.

RATE_LIMITS="chat=60/60,ingest=20/60,default=600/60" gives each route group `requests` per
`seconds`. Groups: `chat` (POST /chat and /v1/chat/completions), `ingest` (/ingest...), `default`
(every other authenticated route). A group without a rule falls back to `default`; an empty
RATE_LIMITS turns limiting off.

The algorithm is GCRA (a token bucket held as one timestamp per key): a key may burst up to
`requests` at once and then gets one more every `seconds / requests`. One Lua script reads and
writes the key atomically, with Redis's own clock, so concurrent sandboxes with skewed clocks
agree. The Redis key holds a SHA-256 digest of the API key, never the key itself.

If Redis cannot answer, the request is let through (fail open) and the failure is logged: see
docs/security.md for why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from vicw import errors
from vicw.auth import digest
from vicw.observability import M, logger, metrics

if TYPE_CHECKING:
    from starlette.requests import Request

    from vicw.config import Settings

KEY_PREFIX = "vicw:rl"
GROUPS = ("chat", "ingest", "default")
_RULE = re.compile(r"^\s*([a-z]+)\s*=\s*(\d+)\s*/\s*(\d+)\s*$")

# KEYS[1] = bucket key; ARGV = emission interval (µs), burst window (µs).
# Returns {allowed (1/0), retry after (µs)}.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - window
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""


@dataclass(frozen=True)
class Rule:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds}"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until the next request would be allowed


class RateLimited(errors.RateLimited):
    def __init__(self, group: str, rule: Rule, retry_after: int) -> None:
        super().__init__(
            f"rate limit exceeded for {group} requests ({rule.requests} per {rule.seconds} s per API key); "
            f"retry in {retry_after} s"
        )
        self.group, self.rule, self.retry_after = group, rule, retry_after


def parse_rate_limits(spec: str | None) -> dict[str, Rule]:
    """'chat=60/60,default=600/60' -> {"chat": Rule(60, 60), "default": Rule(600, 60)}."""
    rules: dict[str, Rule] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        m = _RULE.match(part)
        if not m:
            raise ValueError(f"RATE_LIMITS entry {part!r} is malformed: expected <group>=<requests>/<seconds>")
        group, requests, seconds = m.group(1), int(m.group(2)), int(m.group(3))
        if group not in GROUPS:
            raise ValueError(f"RATE_LIMITS names an unknown group {group!r}: expected one of {', '.join(GROUPS)}")
        if requests < 1 or seconds < 1:
            raise ValueError(f"RATE_LIMITS entry {part!r}: requests and seconds must both be at least 1")
        rules[group] = Rule(requests, seconds)
    return rules


def route_group(path: str) -> str:
    if path in ("/chat", "/v1/chat/completions"):
        return "chat"
    if path == "/ingest" or path.startswith("/ingest/"):
        return "ingest"
    return "default"


class RateLimiter:
    def __init__(self, client: redis.Redis, rules: dict[str, Rule]) -> None:
        self.r = client
        self.rules = dict(rules)
        self._script = client.register_script(_GCRA)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> RateLimiter | None:
        """`url` is the resolved Redis URL when it comes from a secret (vicw.bootstrap.redis_url)."""
        rules = parse_rate_limits(settings.rate_limits)
        if not rules:
            return None
        # Its own short timeouts: a slow Redis must not hold every request for the window store's 5 s.
        client = redis.Redis.from_url(url or settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, rules)

    def rule_for(self, group: str) -> Rule | None:
        return self.rules.get(group) or self.rules.get("default")

    def hit(self, key_digest: str, group: str) -> Decision:
        """Count one request for this key in this group (raises redis.RedisError if Redis is down)."""
        rule = self.rule_for(group)
        if rule is None:
            return Decision(True)
        interval_us = rule.seconds * 1_000_000 // rule.requests
        window_us = rule.seconds * 1_000_000
        allowed, wait_us = self._script(keys=[f"{KEY_PREFIX}:{group}:{key_digest}"], args=[interval_us, window_us])
        return Decision(bool(allowed), int(wait_us) / 1_000_000)

    def check(self, tenant: str, authorization: str, request: Request) -> None:
        """The API's hook (called after authentication). Raises an ApiError 429 when over the limit."""
        route = request.scope.get("route")
        group = route_group(getattr(route, "path", None) or request.url.path)
        _, _, key = authorization.partition(" ")
        try:
            decision = self.hit(digest(key.strip()), group)
        except redis.RedisError as exc:
            # Fail open: see the module docstring and docs/security.md.
            logger.warning("rate limiter unavailable; request allowed", extra={"error": type(exc).__name__})
            return
        if decision.allowed:
            return
        metrics.add_metric(name=M.RATE_LIMITED, unit="Count", value=1)
        rule = self.rule_for(group)
        assert rule is not None
        retry = max(1, math.ceil(decision.retry_after))
        logger.info("rate limited", extra={"tenant": tenant, "group": group, "retry_after": retry})
        from vicw.api.errors import ApiError

        err = RateLimited(group, rule, retry)
        raise ApiError(429, str(err), "rate_limit_exceeded", {"Retry-After": str(retry)})
