"""The `vicw` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path


def cmd_local(args: argparse.Namespace) -> int:
    from vicw.local.runner import LocalVicw

    local = LocalVicw(Path(args.data_dir), port=args.port, host=args.host)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        local.start()
    except Exception as exc:
        local.stop()
        print(f"vicw local failed to start: {exc}", file=sys.stderr)
        return 1
    from vicw import container

    provider = container.llm()
    print(f"VICW is running at {local.url}  (data in {Path(args.data_dir).resolve()})", flush=True)
    print(f"  redis: {local.redis_url}  aws: {local.aws_endpoint}", flush=True)
    print(f"  LLM: {provider.name + ' / ' + provider.model if provider else 'not configured (set VICW_LLM_API_URL)'}", flush=True)
    if local.dev_key:
        print(f"  development API key: {local.dev_key}", flush=True)
        print(f"  try: curl -H 'Authorization: Bearer {local.dev_key}' {local.url}/stats", flush=True)
    print("  press Ctrl-C to stop", flush=True)
    stop.wait()
    print("stopping...", flush=True)
    local.stop()
    print("stopped.", flush=True)
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from vicw.config import load_settings

    settings = load_settings()
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "********" if value.get_secret_value() else ""
        rows.append((name.upper(), value, settings.source_of(name)))
    if args.json:
        print(json.dumps({n: {"value": v, "source": src} for n, v, src in rows}, default=str, indent=2))
    else:
        width = max(len(n) for n, _, _ in rows)
        for n, v, src in rows:
            print(f"{n:<{width}}  {v!s:<40}  {src}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from vicw import replay

    if args.what == "dlq":
        result = replay.replay_dlq(args.queue)
    else:
        result = replay.replay_archive(
            tenant=args.tenant, session_id=args.session, since=args.since, target=args.target, progress=not args.quiet
        )
    print(json.dumps(result, default=str, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vicw", description="Virtual Infinite Context Window")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("local", help="run everything on this machine (no Docker, no cloud account)")
    p.add_argument("--port", type=int, default=int(os.environ.get("VICW_PORT", "8000")))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--data-dir", default=os.environ.get("VICW_DATA_DIR", ".vicw"))
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("config", help="settings")
    csub = p.add_subparsers(dest="config_command", required=True)
    show = csub.add_parser("show", help="print the effective settings and where each came from")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("replay", help="reprocess offload jobs")
    rsub = p.add_subparsers(dest="what", required=True)
    dlq = rsub.add_parser("dlq", help="move a DLQ's messages back to its source queue")
    dlq.add_argument("--queue", choices=["offload", "graph"], required=True)
    dlq.set_defaults(func=cmd_replay)
    arc = rsub.add_parser("archive", help="re-enqueue archived jobs (e.g. after a model or rules change)")
    arc.add_argument("--tenant")
    arc.add_argument("--session")
    arc.add_argument("--since", help="ISO-8601 date or datetime")
    arc.add_argument("--target", choices=["vectors", "graph", "all"], default="all")
    arc.add_argument("--quiet", action="store_true")
    arc.set_defaults(func=cmd_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vicw.config import SettingsError

    try:
        return args.func(args)
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
