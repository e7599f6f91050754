"""Backups through the admin routes of a running VICW and the CLI: who may run them, where they may
write, and every check a restore makes before it touches a store."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from tests.conftest import API_KEY, API_KEY_B
from vicw.cli import main


@pytest.fixture()
def admin(vicw, monkeypatch):
    from vicw.config import get_settings

    monkeypatch.setenv("VICW_ADMIN_TENANTS", "ops,tenant-a")
    get_settings.cache_clear()
    yield vicw
    get_settings.cache_clear()


def record(api, session: str, n: int = 4) -> dict:
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} about the Rotterdam depot"} for i in range(n)]
    assert api.post(f"/sessions/{session}/messages", json={"messages": msgs}).status_code == 200
    return api.get(f"/sessions/{session}").json()


def wipe_windows(redis_client) -> None:
    keys = [*redis_client.scan_iter(match="vicw:t:*"), *redis_client.scan_iter(match="vicw:outbox*")]
    if keys:
        redis_client.delete(*keys)


def test_admin_routes_need_an_admin_tenant(admin, api):
    import httpx

    assert httpx.post(f"{admin.url}/admin/backups", json={}).status_code == 401
    other = httpx.post(f"{admin.url}/admin/backups", json={}, headers={"Authorization": f"Bearer {API_KEY_B}"})
    assert other.status_code == 403 and "VICW_ADMIN_TENANTS" in other.json()["detail"]
    assert httpx.post(f"{admin.url}/admin/restores", json={"from": "x"},
                      headers={"Authorization": f"Bearer {API_KEY_B}"}).status_code == 403
    # local targets are folder names under VICW_DATA_DIR/backups, nothing else
    for bad in ("../escape", "/tmp/elsewhere", "a/b", ".."):
        resp = api.post("/admin/backups", json={"to": bad})
        assert resp.status_code == 422, bad
    assert "no manifest.json" in api.post("/admin/restores", json={"from": "never-written"}).json()["detail"]


def test_backup_then_restore_through_the_server(admin, api, redis_client):
    before = record(api, "s1")
    made = api.post("/admin/backups", json={"to": "b1"})
    assert made.status_code == 200, made.text
    folder = admin.data_dir / "backups" / "b1"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["counts"]["redis_keys"] >= 1 and manifest["embedding_dim"] == 384
    assert manifest["files"]["window.jsonl.gz"]["sha256"] == made.json()["manifest"]["files"]["window.jsonl.gz"]["sha256"]
    assert api.post("/admin/backups", json={"to": "b1"}).status_code == 409  # never overwritten

    refused = api.post("/admin/restores", json={"from": "b1"})
    assert refused.status_code == 409 and "refusing to restore" in refused.json()["detail"]
    wipe_windows(redis_client)
    assert api.get("/sessions/s1").json()["messages"] == 0

    # a flipped byte in one file: nothing is restored
    shutil.copytree(folder, folder.with_name("corrupt"))
    raw = bytearray((folder.with_name("corrupt") / "window.jsonl.gz").read_bytes())
    raw[-5] ^= 0xFF
    (folder.with_name("corrupt") / "window.jsonl.gz").write_bytes(bytes(raw))
    corrupt = api.post("/admin/restores", json={"from": "corrupt"})
    assert corrupt.status_code == 409 and "window.jsonl.gz is corrupt" in corrupt.json()["detail"]

    # vectors from another model or size: refused, naming the settings involved
    shutil.copytree(folder, folder.with_name("other-model"))
    other = json.loads((folder.with_name("other-model") / "manifest.json").read_text())
    other["embedding_dim"] = 768
    (folder.with_name("other-model") / "manifest.json").write_text(json.dumps(other))
    mismatch = api.post("/admin/restores", json={"from": "other-model"})
    assert mismatch.status_code == 409 and "EMBEDDING_DIM" in mismatch.json()["detail"]
    assert api.get("/sessions/s1").json()["messages"] == 0

    restored = api.post("/admin/restores", json={"from": "b1"})
    assert restored.status_code == 200 and restored.json()["verified"], restored.text
    after = api.get("/sessions/s1").json()
    assert {k: after[k] for k in ("messages", "tokens", "total_turns")} == {k: before[k] for k in ("messages", "tokens", "total_turns")}


def test_window_rows_keep_types_ttls_and_binary_values(redis_client, tmp_path):
    from vicw.backup import dump_redis, load_redis

    redis_client.set("vicw:t:x:s:{a}:window", "{\"turns\": []}")
    redis_client.set("vicw:bin", b"\xff\x00\xfe", px=600_000)
    redis_client.hset("vicw:outbox", mapping={"j1": "{}", "j2": "{\"a\": 1}"})
    redis_client.zadd("vicw:outbox:since", {"j1": 1.5, "j2": 2.25})
    redis_client.rpush("vicw:list", "a", "b", "a")
    redis_client.sadd("vicw:set", "x", "y")
    redis_client.set("other:key", "not ours")
    redis_client.set("vicw:rl:tenant-a:chat", "1.5", px=60_000)  # rate-limit state is not backed up
    rows = list(dump_redis(redis_client))
    path = tmp_path / "w.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    snapshot = {k: (redis_client.type(k), redis_client.dump(k)) for k in redis_client.scan_iter(match="vicw:*")
                if not k.startswith(b"vicw:rl")}
    redis_client.flushdb()
    with gzip.open(path, "rt") as f:
        assert load_redis(redis_client, (json.loads(line) for line in f)) == 6
    assert {k: (redis_client.type(k), redis_client.dump(k)) for k in redis_client.scan_iter(match="vicw:*")} == snapshot
    assert redis_client.get("other:key") is None
    assert 0 < redis_client.pttl("vicw:bin") <= 600_000 and redis_client.ttl("vicw:list") == -1


def test_cli_backup_in_process_and_through_the_server(admin, api, redis_client, tmp_path, capsys):
    before = record(api, "cli")
    assert main(["backup", "create", "--url", admin.url, "--api-key", API_KEY, "--to", "via-server"]) == 0
    assert (admin.data_dir / "backups" / "via-server" / "manifest.json").is_file()
    assert main(["backup", "create", "--url", admin.url, "--api-key", API_KEY_B]) == 1  # not an admin tenant

    target = tmp_path / "direct"
    assert main(["backup", "create", "--to", str(target), "--no-archive"]) == 0
    manifest = json.loads((target / "manifest.json").read_text())
    assert "archive.jsonl.gz" not in manifest["files"] and manifest["counts"]["archive_objects"] is None
    capsys.readouterr()
    assert main(["backup", "restore", "--from", str(target)]) == 1
    assert "refusing to restore" in capsys.readouterr().err
    wipe_windows(redis_client)
    assert main(["backup", "restore", "--from", str(target)]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert api.get("/sessions/cli").json()["messages"] == before["messages"] > 0


def test_nightly_maintenance_run_writes_a_backup(admin, api, monkeypatch):
    from vicw.aws import client
    from vicw.backup import read_manifest
    from vicw.config import get_settings
    from vicw.local.runner import load_function

    handler = load_function("maintenance").handler
    assert handler({"source": "aws.events"}, None)["backup"] == {"skipped": "VICW_BACKUP_URL is not set"}

    record(api, "nightly")
    client("s3").create_bucket(Bucket="vicw-nightly-backups")
    monkeypatch.setenv("VICW_BACKUP_URL", "s3://vicw-nightly-backups/prod")
    get_settings.cache_clear()
    result = handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)["backup"]
    assert result["location"].startswith("s3://vicw-nightly-backups/prod/vicw-") and result["counts"]["redis_keys"] >= 1
    assert read_manifest(result["location"]).counts == result["counts"]
    keys = [o["Key"] for o in client("s3").list_objects_v2(Bucket="vicw-nightly-backups")["Contents"]]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["archive.jsonl.gz", "graph.json.gz", "manifest.json",
                                                         "vectors.jsonl.gz", "window.jsonl.gz"]


def test_restore_moves_session_counters_past_the_vectors_it_brings_back(vicw, redis_client):
    """Vectors in a backup can be ahead of its windows: the next turn must not reuse a restored seq."""
    from tests.unit.test_cold_path_chunks import make_job
    from vicw import container
    from vicw.backup import create_backup, restore_backup

    windows, vectors = container.window_store(), container.vector_store()
    windows.advance_seq("tenant-a", "behind", 3)  # the window as it was a little earlier
    job = make_job(tenant="tenant-a", session_id="behind", texts=["the red door", "the blue door"], first_seq=30)
    chunks = vectors.chunks(job)
    vectors.upsert_job(job, [[0.05 * (i + 1)] * vectors.dim for i in range(len(chunks))], chunks)
    target = str(vicw.data_dir / "backups" / "ahead")
    create_backup(target, include_archive=False)

    wipe_windows(redis_client)
    vectors.delete_tenant("tenant-a")
    restore_backup(target)
    assert windows.load("tenant-a", "behind").next_seq == job.last_seq + 1
