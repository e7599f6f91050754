"""`vicw status` against a running VICW."""

from __future__ import annotations

import json

from tests.conftest import API_KEY
from vicw.cli import main


def test_status_prints_health_and_stats(vicw, api, capsys):
    api.post("/sessions/st/messages", json={"messages": [{"role": "user", "content": "hello"}]})
    rc = main(["status", "--url", vicw.url, "--api-key", API_KEY])
    out = capsys.readouterr().out
    health = api.get("/health").json()
    assert rc == (0 if health["status"] == "healthy" else 1)
    lines = out.splitlines()
    assert lines[0].startswith(f"VICW {vicw.url}  {health['status'].upper()}")
    for check in ("redis", "queue", "llm", "vectors", "graph"):
        assert any(line.split()[:1] == [check] for line in lines), check
    assert "tenant tenant-a" in out
    window = next(line for line in lines if line.strip().startswith("window"))
    assert "sessions=1" in window and "offload_at=0.8 hysteresis=0.7 target=0.6" in window
    assert "offload: visible=" in out and "dlq=" in out

    assert main(["status", "--url", vicw.url, "--api-key", API_KEY, "--json"]) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert report["stats"]["tenant"] == "tenant-a" and set(report["health"]["checks"]) >= {"redis", "vectors"}


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
