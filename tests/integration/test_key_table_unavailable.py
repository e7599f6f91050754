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
