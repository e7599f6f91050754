"""`vicw status` against a running VICW."""

from __future__ import annotations

import json

import httpx

from tests.conftest import ADMIN_KEY, API_KEY, API_KEY_B
from vicw.cli import main


def test_status_prints_health_and_stats(vicw, api, capsys):
    api.post("/sessions/st/messages", json={"messages": [{"role": "user", "content": "hello"}]})
    rc = main(["status", "--url", vicw.url, "--api-key", ADMIN_KEY])
    out = capsys.readouterr().out
    health = api.get("/health").json()
    assert rc == (0 if health["status"] == "healthy" else 1)
    lines = out.splitlines()
    assert lines[0].startswith(f"VICW {vicw.url}  {health['status'].upper()}")
    for check in ("redis", "queue", "llm", "vectors", "graph"):
        assert any(line.split()[:1] == [check] for line in lines), check
    assert "model=scripted-model" in out  # an admin key sees what each check found
    assert "tenant ops" in out
    assert "offload: visible=" in out and "dlq=" in out  # and every tenant's queues

    assert main(["status", "--url", vicw.url, "--api-key", API_KEY]) in (0, 1)
    out = capsys.readouterr().out
    assert "tenant tenant-a" in out
    window = next(line for line in out.splitlines() if line.strip().startswith("window"))
    assert "sessions=1" in window and "offload_at=0.8 hysteresis=0.7 target=0.6" in window
    assert "offload: visible=" not in out and "scripted-model" not in out  # a tenant sees its own figures only

    assert main(["status", "--url", vicw.url, "--api-key", API_KEY, "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert report["stats"]["tenant"] == "tenant-a" and set(report["health"]["checks"]) >= {"redis", "vectors"}


def test_stats_show_a_tenant_only_its_own_activity(vicw, api, redis_client):
    from vicw import container
    from vicw.models import OffloadJob, Turn, utcnow
    from vicw.worker_stats import record_outcome

    # Another tenant's activity: a job waiting in the outbox, cold-path counters.
    turn = Turn(seq=0, role="user", content="b's turn", timestamp=utcnow(), tokens=3)
    job = OffloadJob(job_id="b-job", tenant="tenant-b", session_id="b1", turns=[turn], token_count=3)
    container.window_store().r.hset("vicw:outbox", job.job_id, job.model_dump_json())
    record_outcome(redis_client, "offload", processed=7, failed=1)
    api.post("/sessions/mine/messages", json={"messages": [{"role": "user", "content": "hello"}]})

    mine = api.get("/stats").json()
    assert mine["tenant"] == "tenant-a" and mine["scope"] == "tenant"
    assert mine["window"]["sessions"] == 1 and mine["window"]["outbox_pending"] == 0  # b's job is not counted
    assert "queues" not in mine and "workers" not in mine and "outbox_pending_all_tenants" not in mine["window"]
    b = api.get("/stats", headers={"Authorization": f"Bearer {API_KEY_B}"}).json()
    assert b["window"]["outbox_pending"] == 1 and "workers" not in b

    admin = api.get("/stats", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert admin["scope"] == "all tenants" and admin["window"]["outbox_pending_all_tenants"] >= 1
    assert admin["workers"]["offload"] == {"processed": 7, "failed": 1} and set(admin["queues"]) == {"offload", "graph"}


def test_public_health_shows_statuses_only(vicw):
    with httpx.Client(base_url=vicw.url, timeout=30) as anon:
        for headers in ({}, {"Authorization": f"Bearer {API_KEY}"}, {"Authorization": "Bearer not-a-key-at-all"}):
            r = anon.get("/health", headers=headers)
            body = r.json()
            assert r.status_code in (200, 503) and set(body) == {"status", "failing", "checks"}, body
            assert all(set(c) == {"status"} for c in body["checks"].values()), body
            text = r.text
            assert "scripted-model" not in text and "127.0.0.1" not in text and "openai" not in text, text
        detail = anon.get("/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
        assert detail["checks"]["llm"]["model"] == "scripted-model" and "latency_ms" in detail["checks"]["redis"]


def test_status_finds_the_development_key_and_reports_refusals(vicw, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("VICW_API_KEY", raising=False)
    monkeypatch.setenv("VICW_DATA_DIR", str(tmp_path / "dev"))
    (tmp_path / "dev").mkdir()
    main(["status", "--url", vicw.url])
    assert "stats: no API key" in capsys.readouterr().out
    (tmp_path / "dev" / "dev-api-key").write_text(API_KEY + "\n")
    main(["status", "--url", vicw.url])
    assert "tenant tenant-a" in capsys.readouterr().out
    main(["status", "--url", vicw.url, "--api-key", "not-a-known-key"])
    assert "stats: HTTP 401" in capsys.readouterr().out


def test_status_of_nothing_running(capsys):
    assert main(["status", "--url", "http://127.0.0.1:9", "--timeout", "1"]) == 2
    assert "not answering" in capsys.readouterr().err
