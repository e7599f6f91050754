"""Chat function cold start: a fresh Python process imports functions/chat/app.py (which builds
its dependencies, as Lambda's init phase does) and serves its first request through the handler.
Also lists each function's unzipped package size from `.aws-sam/build` (run `sam build` first).

    python bench/cold_start.py [--runs 5] [--json out.json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

PROBE = r"""
import json, time, sys
t0 = time.perf_counter()
from vicw.local.runner import apigw_v2_event, load_function
from vicw.lambda_context import local_context
chat = load_function("chat")
t1 = time.perf_counter()
event = apigw_v2_event("POST", "/sessions/cold/messages", "", {"authorization": "Bearer bench-key-000000",
    "content-type": "application/json"}, json.dumps({"messages": [{"role": "user", "content": "hello"}]}).encode(), "127.0.0.1")
result = chat.handler(event, local_context("vicw-chat", 29))
t2 = time.perf_counter()
assert result["statusCode"] == 200, result
print(json.dumps({"import_ms": (t1 - t0) * 1000, "first_request_ms": (t2 - t1) * 1000}))
"""


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def package_sizes(build: Path = REPO / ".aws-sam" / "build") -> dict[str, float] | None:
    """Unzipped MiB of each function's code and each layer (a function ships with its layers)."""
    if not build.is_dir():
        return None
    return {d.name: round(tree_bytes(d) / 2**20, 2) for d in sorted(build.iterdir()) if d.is_dir()}


def run(runs: int) -> dict:
    from bench.hot_path import local_servers
    from vicw.aws_resources import ensure_local_resources

    samples = []
    with local_servers() as env:
        os.environ.update(env)
        queues = ensure_local_resources()
        child_env = {**os.environ, **env, **queues, "VICW_API_KEYS": "bench-key-000000:bench", "VICW_LLM_PROVIDER": "none",
                     "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "0"}
        for _ in range(runs):
            out = subprocess.run([sys.executable, "-c", PROBE], check=False, env=child_env, cwd=REPO, capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                raise SystemExit(out.stderr[-2000:])
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    med = {k: round(statistics.median(s[k] for s in samples), 1) for k in ("import_ms", "first_request_ms")}
    return {"runs": runs, "median": med, "all": samples, "package_mib": package_sizes(), "load_avg_1m": round(os.getloadavg()[0], 1)}


def markdown(data: dict) -> str:
    m = data["median"]
    lines = ["| chat function cold start (fresh process) | median ms |", "|---|---:|",
             f"| import + build dependencies (init phase) | {m['import_ms']:.0f} |",
             f"| first request through the Mangum handler | {m['first_request_ms']:.0f} |",
             f"| total | {m['import_ms'] + m['first_request_ms']:.0f} |",
             f"\n{data['runs']} runs; 1-min load average {data['load_avg_1m']}."]
    if data["package_mib"]:
        lines += ["", "| `.aws-sam/build` entry | unzipped MiB |", "|---|---:|"]
        lines += [f"| {name} | {mib} |" for name, mib in data["package_mib"].items()]
        lines.append("\nA function's deployed size is its own folder plus the layers it uses (Lambda limit: 250 MiB).")
    else:
        lines.append("\nNo `.aws-sam/build`: run `sam build` (see infra/lambda_sizes.py) to get package sizes.")
    return "\n".join(lines)


def main() -> int:
    return bench_cli(__doc__, lambda p: p.add_argument("--runs", type=int, default=5), lambda a: run(a.runs), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
