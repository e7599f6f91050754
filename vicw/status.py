"""`vicw status`: a running VICW's /health and /stats, readable at a glance."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"


def default_api_key() -> str | None:
    """VICW_API_KEY if set, else the development key `vicw local` wrote into its data directory."""
    if os.environ.get("VICW_API_KEY"):
        return os.environ["VICW_API_KEY"]
    key_file = Path(os.environ.get("VICW_DATA_DIR", ".vicw")) / "dev-api-key"
    return key_file.read_text().strip() if key_file.is_file() else None


def fetch_status(url: str, api_key: str | None, timeout: float = 10.0) -> dict[str, Any]:
    """{"url", "health", "stats"}; stats holds {"error": ...} when the key is missing or refused."""
    base = url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout) as http:
        auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        health = http.get("/health", headers=auth).json()  # 503 still carries the report; details for admin keys
        if not api_key:
            stats: dict[str, Any] = {"error": "no API key (pass --api-key, set VICW_API_KEY, or run vicw local for a dev key)"}
        else:
            resp = http.get("/stats", headers={"Authorization": f"Bearer {api_key}"})
            stats = resp.json() if resp.status_code == 200 else {"error": f"HTTP {resp.status_code}: {_message(resp)}"}
    return {"url": base, "health": health, "stats": stats}


def _message(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("detail") or resp.text)[:200]
    except ValueError:
        return resp.text[:200]


def _pairs(info: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    return " ".join(f"{k}={v}" for k, v in info.items() if k not in skip and v is not None and not isinstance(v, dict))


def _per_queue(parts: dict[str, Any]) -> str:
    if not parts:
        return "-"
    return " | ".join(f"{name}: {_pairs(v) or '-'}" for name, v in parts.items())


def render_status(report: dict[str, Any]) -> str:
    health, stats = report["health"], report["stats"]
    lines = [f"VICW {report['url']}  {health.get('status', '?').upper()}  (version {health.get('version', '?')})"]
    checks = health.get("checks", {})
    width = max((len(n) for n in checks), default=8)
    for name, check in checks.items():
        latency = f"{check['latency_ms']:>7.1f} ms" if "latency_ms" in check else " " * 10
        extra = _pairs(check, skip=("status", "latency_ms"))
        lines.append(f"  {name:<{width}}  {check.get('status', '?'):<15}{latency}  {extra}".rstrip())
    if "error" in stats:
        lines.append(f"stats: {stats['error']}")
        return "\n".join(lines)
    window = stats.get("window", {})
    rows = [
        ("window", f"sessions={window.get('sessions')} budget={window.get('budget')} "
                   f"offload_at={window.get('offload_threshold')} hysteresis={window.get('hysteresis_threshold')} "
                   f"target={window.get('target_after_relief')} outbox={window.get('outbox_pending')}"
         if "error" not in window else f"error={window['error']}"),
        ("queues", _per_queue(stats["queues"]) if "queues" in stats else "(an admin tenant's key shows every tenant's queues)"),
        ("workers", _per_queue(stats["workers"]) if "workers" in stats else "(admin only)"),
        ("vectors", _pairs(stats.get("vectors", {})) or "-"),
        ("graph", _pairs(stats.get("graph", {})) or "-"),
    ]
    lines.append(f"tenant {stats.get('tenant')}")
    lines += [f"  {name:<{width}}  {text}" for name, text in rows]
    return "\n".join(lines)
