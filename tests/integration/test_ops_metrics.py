"""GET /metrics: the same add_metric calls that become EMF in Lambda move Prometheus series locally,
for the chat path and the in-process cold path; the route's access rules."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import API_KEY, patched_env, patient, running_vicw
from vicw.observability import M, metrics


@pytest.fixture()
def live(tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    """VICW with the cold-path pollers running in this process (so their metrics share the registry)."""
    env = {**vicw_env, "MAX_CONTEXT_TOKENS": "2048", "LLM_MAX_TOKENS": "256"}
    scripted_llm.reset()
    with patched_env({}, clear=("VICW_METRICS_TOKEN",)), running_vicw(tmp_path, redis_url, moto_endpoint, env, cold_path=True) as local:
        yield local


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple], float]:
    resp = httpx.get(f"{url}/metrics", headers=headers, timeout=patient(60))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def paragraph(i: int) -> str:
    return f"Note {i}: the warehouse in Tilburg ships pallets of blue ceramic tiles every Tuesday. " * 6


def test_chat_and_cold_path_metrics_move(live, scripted_llm):
    before = scrape(live.url)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=30) as api:
        for i in range(2):
            scripted_llm.script(f"reply {i}")
            assert api.post("/chat", json={"session_id": "m1", "message": f"hello {i}"}).status_code == 200
        # enough text to push the window past its threshold: offload jobs go to the cold path
        msgs = [{"role": "user" if i % 2 else "assistant", "content": paragraph(i)} for i in range(24)]
        got = api.post("/sessions/m1/messages", json={"messages": msgs}).json()
        assert got["offload_jobs"] >= 1

    deadline = time.monotonic() + patient(60)
    while True:
        after = scrape(live.url)
        done = value(after, "vicw_cold_path_records_processed_total") - value(before, "vicw_cold_path_records_processed_total")
        if done >= 2 * got["offload_jobs"] or time.monotonic() > deadline:  # offload + graph queue
            break
        time.sleep(0.3)

    def moved(name: str, at_least: float = 1.0) -> None:
        delta = value(after, name) - value(before, name)
        assert delta >= at_least, f"{name} moved by {delta}"

    moved("vicw_chat_requests_total", 2)
    for hist in ("chat_latency_seconds", "llm_latency_seconds", "retrieval_latency_seconds", "hot_path_latency_seconds",
                 "prompt_tokens", "memories_injected"):
        moved(f"vicw_{hist}_count", 2)
    moved("vicw_chat_latency_seconds_sum", 1e-6)
    moved("vicw_prompt_tokens_sum", 10)
    moved("vicw_window_pressure_ratio_count", 3)
    moved("vicw_offloads_total", got["offload_jobs"])
    moved("vicw_offloaded_turns_total", 1)
    moved("vicw_tokens_saved_total", 0)  # the series exists (it only grows once prompts shed history)
    moved("vicw_cold_path_records_processed_total", 2 * got["offload_jobs"])
    moved("vicw_embedding_latency_seconds_count", 1)
    assert ("vicw_cold_path_records_failed_total", ()) in after
    # scraped gauges: queue depths, DLQ depths and the outbox, read at scrape time
    assert value(after, "vicw_dlq_depth", queue="offload") == 0
    assert ("vicw_dlq_depth", (("queue", "graph"),)) in after
    assert ("vicw_queue_messages", (("queue", "offload"), ("state", "visible"))) in after
    assert value(after, "vicw_outbox_pending") == 0
    assert value(after, "vicw_scrape_source_up", source="sqs") == 1
    assert value(after, "vicw_scrape_source_up", source="redis") == 1


def test_every_metric_name_is_exported(live):
    """Names with no call site yet (echo, boredom) still reach Prometheus through the same call."""
    before = scrape(live.url)
    metrics.add_metric(name=M.ECHO_REGENERATIONS, unit="Count", value=1)
    metrics.add_metric(name=M.BOREDOM_WARNINGS, unit="Count", value=2)
    metrics.add_metric(name=M.LLM_ERRORS, unit="Count", value=1)
    after = scrape(live.url)
    assert value(after, "vicw_echo_regenerations_total") - value(before, "vicw_echo_regenerations_total") == 1
    assert value(after, "vicw_boredom_warnings_total") - value(before, "vicw_boredom_warnings_total") == 2
    assert value(after, "vicw_llm_errors_total") - value(before, "vicw_llm_errors_total") == 1


def test_metrics_access_rules(live, monkeypatch):
    from vicw.config import get_settings
    from vicw.local.runner import _invoke, apigw_v2_event

    # no token configured: loopback yes, anyone else no
    remote = _invoke(live.chat.handler, apigw_v2_event("GET", "/metrics", "", {}, b"", "203.0.113.9"))
    assert remote["statusCode"] == 403
    # a tenant's API key is not a scrape credential
    assert httpx.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=patient(60)).status_code == 200

    monkeypatch.setenv("VICW_METRICS_TOKEN", "scrape-token-123456")
    get_settings.cache_clear()
    try:
        assert httpx.get(f"{live.url}/metrics", timeout=patient(60)).status_code == 401
        assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer wrong"}, timeout=patient(60)).status_code == 401
        scrape(live.url, Authorization="Bearer scrape-token-123456")
        event = apigw_v2_event("GET", "/metrics", "", {"authorization": "Bearer scrape-token-123456"}, b"", "203.0.113.9")
        assert _invoke(live.chat.handler, event)["statusCode"] == 200
    finally:
        monkeypatch.delenv("VICW_METRICS_TOKEN")
        get_settings.cache_clear()


def exported_names() -> set[str]:
    """Every series name GET /metrics can produce."""
    from vicw.metrics_export import PREFIX, SCRAPED, SPECS

    names = {PREFIX + n for n in SCRAPED.values()} | {PREFIX + "queue_messages", PREFIX + "scrape_source_up"}
    for spec in SPECS.values():
        base = PREFIX + spec.name
        names |= {base + "_total"} if spec.kind == "counter" else {base + "_bucket", base + "_sum", base + "_count"}
    return names


def test_dashboard_and_alerts_use_only_exported_metrics():
    import json
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
    dashboard = json.loads((root / "grafana" / "dashboards" / "vicw.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    alerts = yaml.safe_load((root / "alerts.yml").read_text())
    exprs += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    used = {name for e in exprs for name in re.findall(r"\bvicw_[a-z_]+", e)}
    assert used and not (used - exported_names()), used - exported_names()
    # each metric the brief names is on the dashboard
    for wanted in ("chat_requests_total", "chat_latency_seconds", "llm_latency_seconds", "retrieval_latency_seconds",
                   "hot_path_latency_seconds", "prompt_tokens", "tokens_saved_total", "window_pressure_ratio",
                   "offloads_total", "memories_injected", "echo_regenerations_total", "boredom_warnings_total",
                   "cold_path_records_processed_total", "cold_path_records_failed_total", "embedding_latency_seconds",
                   "dlq_depth"):
        assert any("vicw_" + wanted in e for e in exprs), wanted
    assert yaml.safe_load((root / "prometheus.yml").read_text())["scrape_configs"][0]["metrics_path"] == "/metrics"
    assert {"prometheus", "grafana"} <= set(yaml.safe_load((root / "docker-compose.yml").read_text())["services"])
