"""Cold-path throughput: raw fastembed vs. the whole offload function, in the same run.

The offload function does more than embed (parse, idempotency record in Redis, S3 archive put,
chunking, Qdrant upsert). This measures how much of the model's throughput survives all that:
the same passages are embedded directly with fastembed, then pushed as SQS-shaped events through
the real handler (Redis and S3 are real local servers, Qdrant runs in local mode). Rounds
alternate so machine noise hits both sides alike; medians are reported.

    python bench/cold_path.py [--jobs 30] [--turns 10] [--rounds 3] [--tokens 90]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORDS = (
    "invoice shipment warehouse Rotterdam customer refund schedule meeting budget forecast quarter "
    "contract renewal supplier delivery pallet container customs clearance deadline Tuesday Friday "
    "manager approval discount pricing region north south storage capacity forklift driver route"
).split()


def passage(i: int, counter, tokens: int) -> str:
    words, n = [], 0
    k = i
    while n < tokens:
        words.append(WORDS[(k * 7 + len(words) * 3) % len(WORDS)])
        if len(words) % 12 == 0:
            words[-1] += "."
        k += 1
        n = counter.count_text(" ".join(words))
    return " ".join(words)


def make_jobs(round_no: int, jobs: int, turns: int, tokens: int, counter):
    from vicw.models import OffloadJob, Turn

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    session = f"bench-{round_no}-{uuid.uuid4().hex[:6]}"  # new points every round: no idempotent shortcut
    out = []
    for j in range(jobs):
        ts = [
            Turn(seq=j * turns + t, role="user" if t % 2 == 0 else "assistant", name="Ana" if t % 2 == 0 else "Bot",
                 content=passage(j * turns + t, counter, tokens), timestamp=t0 + timedelta(minutes=j * turns + t), tokens=tokens)
            for t in range(turns)
        ]
        out.append(OffloadJob(job_id=OffloadJob.make_id("bench", session, ts[0].seq, ts[-1].seq), tenant="bench",
                              session_id=session, turns=ts, token_count=sum(t.tokens for t in ts)))
    return out


def sqs_events(jobs, batch: int) -> list[dict]:
    from vicw.lambda_context import sqs_event

    messages = [{"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": j.model_dump_json(),
                 "Attributes": {"ApproximateReceiveCount": "1"}} for j in jobs]
    arn = "arn:aws:sqs:us-east-1:000000000000:vicw-offload"
    return [sqs_event(messages[i : i + batch], arn) for i in range(0, len(messages), batch)]


def iqr(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return f"{q[0]:.2f}-{q[2]:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=30, help="jobs per round")
    ap.add_argument("--turns", type=int, default=10, help="turns per job")
    ap.add_argument("--tokens", type=int, default=90, help="tokens per turn")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=10, help="SQS records per invocation")
    ap.add_argument("--qdrant", choices=["disk", "memory"], default="disk",
                    help="local-mode Qdrant on disk (sqlite commit per point) or in memory (closer to a server's cost)")
    ap.add_argument("--workers", type=int, default=None, help="COLD_PATH_WORKERS for the handler (default: settings)")
    args = ap.parse_args()

    from vicw.local.services import aws_env, moto_server, redis_server

    tmp = Path(tempfile.mkdtemp(prefix="vicw-bench-"))
    redis_proc = redis_server(tmp / "redis", graph=False, persist=False).start()
    moto_proc = moto_server(tmp).start()
    try:
        os.environ.update(aws_env(f"http://127.0.0.1:{moto_proc.port}"))
        os.environ.update({
            "REDIS_URL": f"redis://127.0.0.1:{redis_proc.port}/0", "QDRANT_PATH": str(tmp / "qdrant") if args.qdrant == "disk" else ":memory:",
            "ARCHIVE_BUCKET": "bench-archive", "GRAPH_BACKEND": "none", "HF_HUB_OFFLINE": "1",
            "FASTEMBED_CACHE_PATH": str(tmp / "fastembed"), "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        })
        if args.workers is not None:
            os.environ["COLD_PATH_WORKERS"] = str(args.workers)
        from vicw import container
        from vicw.aws import client
        from vicw.lambda_context import local_context
        from vicw.tokens import TokenCounter
        from vicw.vector_store import chunk_job

        container.reset()
        client("s3").create_bucket(Bucket="bench-archive")
        spec = importlib.util.spec_from_file_location("offload_app", REPO / "functions" / "offload" / "app.py")
        app = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(app)
        embedder = container.embedder()
        embedder.warm_up()
        model = embedder._load()  # noqa: SLF001 - timing the model load alone
        counter = TokenCounter()

        warm = make_jobs(-1, 2, args.turns, args.tokens, counter)  # first invoke builds clients and the collection
        for event in sqs_events(warm, args.batch):
            app.handler(event, local_context("vicw-offload"))

        raw_rates, pipe_rates, ratios, cpu_ratios = [], [], [], []
        passages_per_round = 0
        for r in range(args.rounds):
            jobs = make_jobs(r, args.jobs, args.turns, args.tokens, counter)
            raw_s = pipe_s = 0.0
            passages_per_round = 0
            before = container.vector_store().count("bench")
            # Interleave per invocation, alternating which side goes first, so a burst of noise on a
            # shared machine hits both sides alike. CPU time (this process, all threads) is reported
            # too: it is what the handler adds in work, whatever the neighbours do.
            for n, start in enumerate(range(0, len(jobs), args.batch)):
                chunk = jobs[start : start + args.batch]
                texts = [c.text for j in chunk for c in chunk_job(j)]
                passages_per_round += len(texts)
                [event] = sqs_events(chunk, args.batch)

                def raw_side(texts=texts) -> None:
                    assert len(list(model.embed(texts, batch_size=embedder.batch_size))) == len(texts)

                def pipe_side(event=event) -> None:
                    failures = app.handler(event, local_context("vicw-offload"))["batchItemFailures"]
                    if failures:
                        raise SystemExit(f"bench records failed: {failures}")

                timings = {}
                for name, side in ((("raw", raw_side), ("pipe", pipe_side)) if n % 2 == 0 else (("pipe", pipe_side), ("raw", raw_side))):
                    wall, cpu = time.perf_counter(), time.process_time()
                    side()
                    timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
                raw_s += timings["raw"][0]
                pipe_s += timings["pipe"][0]
                ratios.append(timings["raw"][0] / timings["pipe"][0])
                cpu_ratios.append(timings["raw"][1] / timings["pipe"][1])
            added = container.vector_store().count("bench") - before
            if added != passages_per_round:
                raise SystemExit(f"expected {passages_per_round} new points, got {added}")
            raw_rates.append(passages_per_round / raw_s)
            pipe_rates.append(passages_per_round / pipe_s)
            print(f"round {r + 1}/{args.rounds}: raw {raw_rates[-1]:.1f}/s, pipeline {pipe_rates[-1]:.1f}/s", file=sys.stderr)
        texts = [c.text for j in jobs for c in chunk_job(j)]

        raw, pipe = statistics.median(raw_rates), statistics.median(pipe_rates)
        mean_tokens = statistics.mean(counter.count_text(t) for t in texts)
        print(f"\n{args.rounds} rounds of {passages_per_round} passages ({args.jobs} jobs x {args.turns} turns, "
              f"~{mean_tokens:.0f} tokens each as embedded), {args.batch} records per invocation, {os.cpu_count()} CPUs\n")
        print("| path | passages/s (median) | all rounds |")
        print("|---|---:|---|")
        print(f"| raw fastembed (`TextEmbedding.embed`) | {raw:.1f} | {', '.join(f'{x:.1f}' for x in raw_rates)} |")
        print(f"| offload handler (SQS event -> Redis idempotency -> S3 -> embed -> Qdrant) | {pipe:.1f} | "
              f"{', '.join(f'{x:.1f}' for x in pipe_rates)} |")
        print(f"| ratio pipeline / raw, wall clock | **{statistics.median(ratios):.2f}** | "
              f"median of {len(ratios)} paired invocations, IQR {iqr(ratios)} |")
        print(f"| ratio pipeline / raw, CPU time | **{statistics.median(cpu_ratios):.2f}** | "
              f"median of {len(cpu_ratios)} paired invocations, IQR {iqr(cpu_ratios)} |")
        print(f"\npipeline / raw = **{statistics.median(ratios):.2f}** wall clock (target >= 0.85), "
              f"COLD_PATH_WORKERS={container.settings().cold_path_workers}, Qdrant local mode on {args.qdrant}; load average {os.getloadavg()[0]:.1f}")
        container.vector_store().close()
        return 0
    finally:
        moto_proc.stop()
        redis_proc.stop()


if __name__ == "__main__":
    raise SystemExit(main())
