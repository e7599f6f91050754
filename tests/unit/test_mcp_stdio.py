"""`vicw mcp`: where the URL and the key come from, and what it says when there is no key."""

from __future__ import annotations

import pytest

from tests.conftest import patched_env
from vicw.mcp_stdio import resolve_target

CLEAR = ("VICW_URL", "VICW_API_KEY", "VICW_API_KEY_FILE")


def test_flags_win_over_environment(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("  from-the-file-123 \n")
    with patched_env({"VICW_URL": "http://env:1", "VICW_API_KEY": "from-env-456"}, clear=("VICW_API_KEY_FILE",)):
        target = resolve_target("http://flag:2/", str(key_file))
    assert (target.url, target.key, target.endpoint) == ("http://flag:2/", "from-the-file-123", "http://flag:2/mcp")


def test_environment_then_the_local_development_key(tmp_path):
    key_file = tmp_path / "k"
    key_file.write_text("file-key-789")
    with patched_env({"VICW_API_KEY_FILE": str(key_file), "VICW_API_KEY": "env-key"}, clear=("VICW_URL",)):
        assert resolve_target(None, None) == resolve_target("http://127.0.0.1:8000", None)
        assert resolve_target(None, None).key == "file-key-789"
    with patched_env({"VICW_API_KEY": "env-key"}, clear=("VICW_URL", "VICW_API_KEY_FILE")):
        assert resolve_target(None, None).key == "env-key"
    (tmp_path / "dev-api-key").write_text("vicw-dev-abc\n")
    with patched_env({"VICW_DATA_DIR": str(tmp_path)}, clear=CLEAR):
        assert resolve_target(None, None).key == "vicw-dev-abc"


def test_missing_key_says_what_to_do(tmp_path):
    with patched_env({"VICW_DATA_DIR": str(tmp_path)}, clear=CLEAR), pytest.raises(ValueError, match="--key-file"):
        resolve_target(None, None)
    with pytest.raises(ValueError, match="cannot read the API key file"):
        resolve_target(None, str(tmp_path / "absent"))
