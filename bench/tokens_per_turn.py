"""Prompt tokens per turn with VICW versus sending the whole history every turn, over a long
replayed conversation (in process, real Redis and moto, a scripted LLM whose replies are 40-120
words). The prompt VICW sends is what `build_prompt` made (window + any memories, always within
the budget); "full history" is every message so far plus the new one.

    python bench/tokens_per_turn.py [--exchanges 400] [--json out.json]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import bench_cli  # noqa: E402 - needs the repo on sys.path

VOCAB = ["shipment", "invoice", "Lyon", "depot", "pallet", "customs", "broker", "Tuesday", "refund", "garden", "budget", "tomato", "ferret", "sister", "dentist", "appointment", "contract", "renewal", "supplier", "forklift", "driver", "route", "storage", "meeting", "forecast", "quarter", "manager", "approval"]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words)).capitalize() + "."


def run(exchanges: int) -> dict:
    from bench.hot_path import local_servers
    from tests.fakes.llm_server import ScriptedLLM

    rng = random.Random(42)
    with local_servers() as env, ScriptedLLM() as llm:
        llm.respond_with(lambda request: " ".join(sentence(rng, rng.randint(8, 24)) for _ in range(rng.randint(3, 6))))
        os.environ.update(env)
        os.environ.update({"VICW_LLM_API_URL": llm.url, "VICW_LLM_MODEL_NAME": "scripted", "ECHO_RESPONSE_HISTORY_SIZE": "0"})
        from vicw import container
        from vicw.aws_resources import ensure_local_resources
        from vicw.conversation import IncomingMessage

        os.environ.update(ensure_local_resources())
        container.reset()
        conv = container.conversation()
        vicw_tokens, full_tokens = [], []
        for i in range(exchanges):
            text = " ".join(sentence(rng, rng.randint(6, 20)) for _ in range(rng.randint(1, 3)))
            result = conv.chat("bench", "long", [IncomingMessage("user", f"({i}) {text}")], use_rag=True)
            vicw_tokens.append(result.plan.prompt_tokens)
            full_tokens.append(result.full_history_tokens)
        budget = container.settings().window_budget
    total_vicw, total_full = sum(vicw_tokens), sum(full_tokens)
    return {
        "exchanges": exchanges, "budget": budget, "vicw": vicw_tokens, "full": full_tokens,
        "summary": {
            "vicw_median": statistics.median(vicw_tokens), "vicw_max": max(vicw_tokens),
            "full_median": statistics.median(full_tokens), "full_last": full_tokens[-1],
            "total_vicw": total_vicw, "total_full": total_full, "saved_ratio": round(1 - total_vicw / total_full, 3),
            "last_turn_ratio": round(full_tokens[-1] / vicw_tokens[-1], 1),
        },
    }


def markdown(data: dict) -> str:
    s = data["summary"]
    return "\n".join([
        "| prompt tokens per turn | VICW | full history |", "|---|---:|---:|",
        f"| median over {data['exchanges']} exchanges | {s['vicw_median']:.0f} | {s['full_median']:.0f} |",
        f"| largest / last turn | {s['vicw_max']} (budget {data['budget']}) | {s['full_last']} |",
        f"| total prompt tokens sent | {s['total_vicw']:,} | {s['total_full']:,} |",
        (f"\nVICW sent **{100 * s['saved_ratio']:.1f}% fewer** prompt tokens in total; on the last turn the full history "
        f"would have been **{s['last_turn_ratio']}x** larger."),
    ])


def main() -> int:
    return bench_cli(__doc__, lambda p: p.add_argument("--exchanges", type=int, default=400), lambda a: run(a.exchanges), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
