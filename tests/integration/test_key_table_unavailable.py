"""A key table that cannot be loaded refuses every request with a JSON 503 that says why (never a
bare 500, never a key in the message)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import running_vicw


@pytest.mark.parametrize(
    ("env", "clear", "says"),
    [
        # The SSM parameter does not exist (moto has none): a deploy before `put-parameter`.
        ({"VICW_API_KEYS_PARAMETER": "/vicw/test/no-such-parameter"}, ("VICW_API_KEYS",), "/vicw/test/no-such-parameter"),
        # A 7-character key: the table parser rejects the entry, naming only its position.
        ({"VICW_API_KEYS": "dev-key:dev-tenant"}, ("VICW_API_KEYS_PARAMETER",), "entry 1 is malformed"),
    ],
)
def test_unloadable_key_table_gives_json_503(tmp_path, redis_url, moto_endpoint, vicw_env, env, clear, says):
    base = {k: v for k, v in vicw_env.items() if k not in clear}
    with running_vicw(tmp_path, redis_url, moto_endpoint, {**base, **env}, clear=clear) as local:
        r = httpx.post(f"{local.url}/chat", json={"session_id": "s", "message": "hi"},
                       headers={"Authorization": "Bearer dev-key"}, timeout=30)
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["type"] == "service_unavailable"
    assert "API key table could not be loaded" in body["error"]["message"] and says in body["error"]["message"]
    assert "dev-key" not in body["error"]["message"]
    assert r.headers["retry-after"]


def test_docs_are_served_only_when_the_setting_says_so(tmp_path, redis_url, moto_endpoint, vicw_env):
    with running_vicw(tmp_path, redis_url, moto_endpoint, {**vicw_env, "VICW_PUBLIC_DOCS": "false"}) as local:
        assert httpx.get(f"{local.url}/docs", timeout=30).status_code == 404
        assert httpx.get(f"{local.url}/openapi.json", timeout=30).status_code == 404


def test_redis_url_from_a_secret_and_tls_required(tmp_path, redis_url, moto_endpoint, vicw_env):
    """REDIS_URL_SECRET is read at run time; with REDIS_REQUIRE_TLS a redis:// URL is a JSON 503
    that names the secret, never the URL."""
    from vicw.aws import client

    client("ssm").put_parameter(Name="/vicw/test/redis-url", Type="SecureString", Value=redis_url, Overwrite=True)
    env = {**vicw_env, "REDIS_URL_SECRET": "/vicw/test/redis-url"}
    with running_vicw(tmp_path, redis_url, moto_endpoint, env) as local:
        from tests.conftest import API_KEY
        from vicw import container

        container.reset()
        assert container.redis_url() == redis_url
        r = httpx.get(f"{local.url}/sessions/s1", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
        assert r.status_code == 200, r.text
        container.reset()
        import os

        os.environ["REDIS_REQUIRE_TLS"] = "true"
        try:
            container.reset()
            r = httpx.get(f"{local.url}/sessions/s1", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
        finally:
            os.environ.pop("REDIS_REQUIRE_TLS")
            container.reset()
    assert r.status_code == 503 and "/vicw/test/redis-url" in r.text and "rediss://" in r.text
    assert redis_url not in r.text
