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

    if not os.environ.get("VICW_API_KEYS") and not os.environ.get("VICW_API_KEYS_PARAMETER"):
        # The generated development key belongs to tenant "dev"; let it run `vicw backup --url`.
        os.environ.setdefault("VICW_ADMIN_TENANTS", "dev")
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


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    from vicw.status import default_api_key, fetch_status, render_status

    try:
        report = fetch_status(args.url, args.api_key or default_api_key(), timeout=args.timeout)
    except (httpx.HTTPError, ValueError) as exc:
        print(f"VICW at {args.url} is not answering: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=str) if args.json else render_status(report))
    return 0 if report["health"].get("status") == "healthy" else 1


def _backup_via_server(args: argparse.Namespace, path: str, body: dict) -> int:
    import httpx

    from vicw.status import default_api_key

    key = args.api_key or default_api_key()
    if not key:
        print("no API key: pass --api-key or set VICW_API_KEY (an admin tenant's key)", file=sys.stderr)
        return 2
    resp = httpx.post(args.url.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=3600)
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 200 else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from vicw.backup import BackupError, create_backup, restore_backup

    if args.url:  # run inside the server that owns the stores (`vicw local`)
        if args.action == "create":
            return _backup_via_server(args, "/admin/backups", {"to": args.to, "include_archive": not args.no_archive})
        return _backup_via_server(args, "/admin/restores", {"from": args.source, "force": args.force})
    try:
        if args.action == "create":
            manifest = create_backup(args.to, include_archive=not args.no_archive, qdrant_snapshot=args.qdrant_snapshot)
            print(manifest.model_dump_json(indent=2))
        else:
            print(json.dumps(restore_backup(args.source, force=args.force), indent=2, default=str))
    except BackupError as exc:
        print(f"backup {args.action} failed: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        print(f"backup {args.action} failed: {exc}\nA running `vicw local` owns that folder: add "
              "--url http://127.0.0.1:8000 to run the backup inside it.", file=sys.stderr)
        return 1
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


def cmd_ingest(args: argparse.Namespace) -> int:
    """Post Markdown/text files to POST /ingest of a running VICW, with a progress bar."""
    import httpx
    from tqdm import tqdm

    key = args.api_key or os.environ.get("VICW_API_KEY")
    dev_key = Path(os.environ.get("VICW_DATA_DIR", ".vicw")) / "dev-api-key"
    if not key and dev_key.exists():
        key = dev_key.read_text().strip()
    if not key:
        print("no API key: pass --api-key or set VICW_API_KEY", file=sys.stderr)
        return 2
    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    failures = 0
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        bar = tqdm(paths, unit="file", disable=args.quiet)
        for path in bar:
            bar.set_postfix_str(path.name)
            body: dict[str, object] = {"document": path.read_text(encoding="utf-8", errors="replace"),
                                       "metadata": {"title": path.stem, "source": path.name}}
            if args.session:
                body["session_id"] = args.session
            resp = http.post("/ingest", json=body)
            if resp.status_code == 202:
                out = resp.json()
                tqdm.write(f"{path}: {out['parts']} parts, {out['tokens']} tokens (job {out['job_id']})")
            else:
                failures += 1
                tqdm.write(f"{path}: HTTP {resp.status_code}: {resp.text[:300]}", file=sys.stderr)
    return 1 if failures else 0


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

    p = sub.add_parser("status", help="health and statistics of a running VICW")
    p.add_argument("--url", default=os.environ.get("VICW_URL", "http://127.0.0.1:8000"))
    p.add_argument("--api-key", help="default: $VICW_API_KEY, then the local development key")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("backup", help="back up or restore window state, vectors and graph")
    bsub = p.add_subparsers(dest="action", required=True)
    for action in ("create", "restore"):
        b = bsub.add_parser(action, help="write a backup" if action == "create" else "restore into empty stores")
        if action == "create":
            b.add_argument("--to", help="directory or s3://bucket/prefix (default: a new folder under "
                                        "$VICW_BACKUP_URL or VICW_DATA_DIR/backups)")
            b.add_argument("--no-archive", action="store_true", help="skip the archive listing")
            b.add_argument("--qdrant-snapshot", action="store_true", help="also take a server-side Qdrant snapshot")
        else:
            b.add_argument("--from", dest="source", required=True, help="directory or s3://bucket/prefix")
            b.add_argument("--force", action="store_true", help="merge into stores that already hold data")
        b.add_argument("--url", help="run inside the VICW at this URL (needed while `vicw local` runs); "
                                     "local targets are then folder names under its VICW_DATA_DIR/backups")
        b.add_argument("--api-key", help="an admin tenant's key (default: $VICW_API_KEY, then the development key)")
        b.set_defaults(func=cmd_backup)

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
    p = sub.add_parser("ingest", help="add Markdown/text documents to long-term memory")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--session", help="attach to one session (default: shared by every session of the tenant)")
    p.add_argument("--url", default=os.environ.get("VICW_URL", "http://127.0.0.1:8000"))
    p.add_argument("--api-key", help="default: $VICW_API_KEY, then the local development key")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_ingest)
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
