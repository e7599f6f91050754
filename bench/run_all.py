"""Run every benchmark and write bench/results/REPORT.md plus bench/results/latency_tokens.png.

    python bench/run_all.py [--quick]

Each benchmark runs in its own process (a clean interpreter, its own local servers) and leaves
its raw figures in bench/results/<name>.json (or .md); this script only collects and plots them.
--quick shrinks every run (fewer turns, no 100k retrieval size, one cold-path round, the memory
benchmark's --quick) to finish in a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))


def run(name: str, args: list[str], timeout: int = 3600) -> tuple[str, float]:
    started = time.perf_counter()
    print(f"== {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "POWERTOOLS_LOG_LEVEL": "ERROR", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, *args], check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-15:]
        return f"**{name} failed** (exit {out.returncode}):\n\n```\n" + "\n".join(tail) + "\n```", elapsed
    return out.stdout.strip(), elapsed




def plot(hot: dict | None, retrieval: dict | None, tokens: dict | None, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    if hot:
        labels = {"record_no_offload": "record\n(no shed)", "record_with_offload": "record\n(shed+publish)",
                  "chat_hot_path": "chat\nhot path", "http_messages": "HTTP\nmessages", "http_chat": "HTTP /chat"}
        keys = [k for k in labels if hot["results"].get(k, {}).get("n")]
        x = range(len(keys))
        for offset, q in ((-0.27, "p50"), (0, "p95"), (0.27, "p99")):
            axes[0].bar([i + offset for i in x], [hot["results"][k][q] for k in keys], width=0.27, label=q)
        axes[0].set_xticks(list(x), [labels[k] for k in keys], fontsize=8)
        axes[0].set_ylabel("ms per turn")
        axes[0].set_yscale("log")
        axes[0].set_title("Hot path latency (LLM excluded)")
        axes[0].legend()
    if retrieval:
        sizes = list(retrieval["sizes"])
        for q in ("p50", "p95"):
            axes[1].plot([int(n) for n in sizes], [retrieval["sizes"][n]["total"][q] for n in sizes], marker="o", label=f"retrieval {q}")
        axes[1].plot([int(n) for n in sizes], [retrieval["sizes"][n]["embed"]["p50"] for n in sizes], marker="s",
                     linestyle="--", label="query embedding p50")
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        axes[1].set_xlabel("memories in tenant")
        axes[1].set_ylabel("ms per query")
        axes[1].set_title("Retrieval latency (Qdrant local mode)")
        axes[1].legend()
    if tokens:
        axes[2].plot(tokens["full"], label="full history")
        axes[2].plot(tokens["vicw"], label="VICW prompt")
        axes[2].axhline(tokens["budget"], color="grey", linestyle=":", label="window budget")
        axes[2].set_xlabel("exchange")
        axes[2].set_ylabel("prompt tokens")
        axes[2].set_title("Prompt tokens per turn")
        axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    q = args.quick
    plan = [
        ("hot_path", ["bench/hot_path.py", "--turns", "500" if q else "2000", "--json", "bench/results/hot_path.json"]),
        ("retrieval_latency", ["bench/retrieval_latency.py", "--sizes", "1000,10000" if q else "1000,10000,100000",
                               "--queries", "30" if q else "50", "--json", "bench/results/retrieval_latency.json"]),
        ("cold_start", ["bench/cold_start.py", "--runs", "3" if q else "5", "--json", "bench/results/cold_start.json"]),
        ("tokens_per_turn", ["bench/tokens_per_turn.py", "--exchanges", "150" if q else "400",
                             "--json", "bench/results/tokens_per_turn.json"]),
        ("cold_path", ["bench/cold_path.py", *(["--jobs", "10", "--rounds", "2"] if q else [])]),
    ]
    if (REPO / "bench" / "memory" / "run.py").exists():
        plan.append(("memory", ["bench/memory/run.py", *(["--quick"] if q else [])]))

    sections: dict[str, tuple[str, float]] = {}
    for name, cmd in plan:
        sections[name] = run(name, cmd)

    def load(name: str) -> dict | None:
        f = RESULTS / f"{name}.json"
        return json.loads(f.read_text()) if f.exists() and "failed**" not in sections[name][0] else None

    hot, retrieval, tokens = load("hot_path"), load("retrieval_latency"), load("tokens_per_turn")
    png = RESULTS / "latency_tokens.png"
    plotted = plot(hot, retrieval, tokens, png)

    titles = {
        "hot_path": "Hot-path overhead per turn (scripted LLM answering at once)",
        "retrieval_latency": "Retrieval latency with query embedding, by tenant size",
        "cold_start": "Chat function cold start and package sizes",
        "tokens_per_turn": "Prompt tokens per turn vs. sending the full history",
        "cold_path": "Cold-path throughput vs. raw embedding",
        "memory": "Memory benchmark (evidence in the prompt)",
    }
    lines = [
        "# VICW benchmark report", "",
        (f"Generated by `python bench/run_all.py{' --quick' if q else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"1-min load average {os.getloadavg()[0]:.1f} at the end. The machine is shared and noisy: compare ratios measured "
        "in the same run and medians, not absolute numbers across runs."), "",
    ]
    if plotted:
        lines += [f"![latency percentiles and tokens per turn]({png.name})", ""]
    for name, (text, elapsed) in sections.items():
        lines += [f"## {titles[name]}", "", f"`python {' '.join(dict(plan)[name])}` ({elapsed:.0f} s)", "", text, ""]
    (RESULTS / "REPORT.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'REPORT.md'}" + (f" and {png}" if plotted else ""), file=sys.stderr)
    return 0 if not any("failed**" in t for t, _ in sections.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
