"""The connection file `vicw local` leaves for operator commands: private, and ignored when stale."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from vicw.local.connection import read_connection, remove_connection, write_connection
from vicw.stack import TargetError, resolve


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def health_url():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_written_private_without_secrets_and_removed_by_its_writer(tmp_path, health_url, monkeypatch):
    monkeypatch.setenv("VICW_API_KEYS", "super-secret-key:dev")
    monkeypatch.setenv("VICW_LLM_API_KEY", "sk-also-secret")
    monkeypatch.setenv("OFFLOAD_QUEUE_URL", "http://127.0.0.1:1/123/q")
    monkeypatch.setenv("QDRANT_PATH", "relative/qdrant")
    key = tmp_path / "dev-api-key"
    key.write_text("vicw-dev-abc\n")
    path = write_connection(tmp_path, health_url, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "super-secret-key" not in text and "sk-also-secret" not in text and "vicw-dev-abc" not in text
    conn, why = read_connection(tmp_path)
    assert conn is not None and why == ""
    assert conn.api_key() == "vicw-dev-abc" and conn.env["OFFLOAD_QUEUE_URL"] == "http://127.0.0.1:1/123/q"
    assert os.path.isabs(conn.env["QDRANT_PATH"])  # usable from another working directory
    remove_connection(tmp_path)
    assert not path.exists()


def test_stale_files_are_ignored_with_a_reason(tmp_path, health_url):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / "connection.json").write_text(json.dumps({"pid": int(dead.stdout), "url": health_url}))
    conn, why = read_connection(tmp_path)
    assert conn is None and "stale" in why and "is gone" in why

    (tmp_path / "connection.json").write_text(json.dumps({"pid": os.getppid(), "url": "http://127.0.0.1:9"}))
    conn, why = read_connection(tmp_path, timeout=1)
    assert conn is None and "nothing answers" in why

    (tmp_path / "connection.json").write_text("{half a file")
    assert read_connection(tmp_path)[0] is None

    # an explicit --data-dir with nothing usable is an error naming how to start one
    with pytest.raises(TargetError, match="vicw local --data-dir"):
        resolve(data_dir=str(tmp_path))


def test_the_default_folder_without_a_stack_falls_back_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VICW_DATA_DIR", str(tmp_path))
    target = resolve()
    assert target.kind == "environment" and "no running `vicw local`" in target.hint
    message = str(target.missing("OFFLOAD_QUEUE_URL", "vicw replay dlq --queue offload"))
    assert "\n" not in message and "--stack NAME" in message and "export OFFLOAD_QUEUE_URL" in message


def test_another_writers_file_is_left_alone(tmp_path, health_url):
    (tmp_path / "connection.json").write_text(json.dumps({"pid": os.getppid(), "url": health_url}))
    remove_connection(tmp_path)  # written by someone else: not ours to remove
    assert (tmp_path / "connection.json").exists()
    conn, _ = read_connection(tmp_path)
    assert conn is not None and conn.pid == os.getppid()
