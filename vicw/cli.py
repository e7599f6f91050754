"""The `vicw` command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vicw.redaction import mask_credentials


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
    except Exception as exc:  # noqa: BLE001 - an operator sees one line, never a traceback
        local.stop()
        print(mask_credentials(f"vicw local failed to start: {exc}"), file=sys.stderr)
        return 1
    from vicw import bootstrap

    provider = bootstrap.llm()
    print(f"VICW is running at {local.url}  (data in {Path(args.data_dir).resolve()})", flush=True)
    print(mask_credentials(f"  redis: {local.redis_url}  aws: {local.aws_endpoint}"), flush=True)
    print(f"  LLM: {provider.name + ' / ' + provider.model if provider else 'not configured (set VICW_LLM_API_URL)'}", flush=True)
    if local.dev_key:
        print(f"  development API key: {local.dev_key}", flush=True)
        print(f"  try: curl -H 'Authorization: Bearer {local.dev_key}' {local.url}/stats", flush=True)
    print(f"  operator commands find it from this folder (or with --data-dir {args.data_dir}): "
          "vicw status | ingest | replay | backup | config show", flush=True)
    print("  press Ctrl-C to stop", flush=True)
    stop.wait()
    print("stopping...", flush=True)
    local.stop()
    print("stopped.", flush=True)
    return 0


# --- operator commands: each finds its stack the same way (vicw/stack.py) ---------------------------
def _target(args: argparse.Namespace):  # noqa: ANN202 - vicw.stack.Target, imported lazily
    from vicw.stack import resolve

    target = resolve(data_dir=args.data_dir, stack=args.stack, region=args.region)
    if target.kind != "environment":
        _note(args, f"using {target.description}")
    elif target.hint and not target.hint.startswith("no running"):
        _note(args, target.hint)  # a stale or unreadable connection file: say it was ignored
    return target


class _Stderr:
    """Whatever sys.stderr is at the time of writing (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Keep stdout for the command's own output (`--json` must stay parseable); only warnings
    and errors are logged, to stderr. Restored afterwards (tests call main() in-process)."""
    import logging

    from vicw.observability import logger

    handler = logger.registered_handler
    level = logger.log_level
    stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    logger.setLevel(os.environ.get("VICW_CLI_LOG_LEVEL", "WARNING"))
    if stream is not None:
        handler.stream = _Stderr()  # not setStream: that flushes the old stream, which may be closed
    try:
        yield
    finally:
        logger.setLevel(level)
        if stream is not None:
            handler.stream = stream


def _note(args: argparse.Namespace, line: str) -> None:
    if not getattr(args, "quiet", False):
        print(line, file=sys.stderr, flush=True)


def _api(args: argparse.Namespace, target, what: str) -> tuple[str, str | None]:  # noqa: ANN001
    """(base URL, API key) of the chat API for `status`, `ingest` and local backups."""
    from vicw.status import DEFAULT_URL, default_api_key

    url = args.url or target.url or os.environ.get("VICW_URL") or (DEFAULT_URL if target.kind == "environment" else None)
    if not url:
        raise target.missing("VICW_URL", what)
    key = getattr(args, "api_key", None) or os.environ.get("VICW_API_KEY") or target.api_key
    if not key and target.kind == "environment":
        key = default_api_key()
    return url, key


def _no_key(target, what: str) -> str:  # noqa: ANN001
    where = "a key of the stack's VICW_API_KEYS_PARAMETER" if target.kind == "stack" else "an API key"
    return f"{what} needs an API key: pass --api-key or set VICW_API_KEY ({where})"


def cmd_config_show(args: argparse.Namespace) -> int:
    from pydantic import SecretStr

    from vicw.config import load_settings
    from vicw.redaction import mask_value

    target = _target(args)
    target.apply()
    settings = load_settings()
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = "********" if value.get_secret_value() else ""
        source = target.description if name.upper() in target.env else settings.source_of(name)
        rows.append((name.upper(), mask_value(value), source))
    if args.json:
        print(json.dumps({n: {"value": v, "source": src} for n, v, src in rows}, default=str, indent=2))
    else:
        width = max(len(n) for n, _, _ in rows)
        for n, v, src in rows:
            print(f"{n:<{width}}  {v!s:<40}  {src}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    from vicw.stack import mask_url
    from vicw.status import fetch_status, render_status

    target = _target(args)
    url, key = _api(args, target, "vicw status")
    try:
        report = fetch_status(url, key, timeout=args.timeout)
    except (httpx.HTTPError, ValueError) as exc:
        print(f"vicw status: VICW at {mask_url(url)} is not answering ({type(exc).__name__}); start `vicw local`, "
              "or pass --url, --data-dir or --stack", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=str) if args.json else render_status(report))
    return 0 if report["health"].get("status") == "healthy" else 1


def _post_admin(args: argparse.Namespace, url: str, key: str | None, path: str, body: dict, what: str) -> int:
    import httpx

    from vicw.stack import mask_url

    if not key:
        print(f"{what} needs an admin tenant's API key: pass --api-key or set VICW_API_KEY", file=sys.stderr)
        return 2
    try:
        resp = httpx.post(url.rstrip("/") + path, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=3600)
    except httpx.HTTPError as exc:
        print(f"{what}: VICW at {mask_url(url)} is not answering ({type(exc).__name__})", file=sys.stderr)
        return 2
    try:
        out = resp.json()
    except ValueError:
        out = {"error": resp.text[:300]}
    if resp.status_code != 200:
        detail = out.get("error", out) if isinstance(out, dict) else out
        if isinstance(detail, dict):
            detail = detail.get("message") or detail
        print(f"{what} failed: HTTP {resp.status_code}: {detail}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out, indent=2))
    elif "location" in out:
        counts = out.get("manifest", {}).get("counts", {})
        print(f"backup written to {out['location']}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    else:
        print("restored: " + json.dumps(out, default=str))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from vicw.backup import BackupError, create_backup, restore_backup

    what = f"vicw backup {args.action}"
    if args.url:
        from vicw.status import default_api_key

        url, key = args.url, args.api_key or default_api_key()
    else:
        target = _target(args)
        if target.kind == "local":
            url, key = _api(args, target, what)
        else:
            url = key = None
    if url:
        # A running `vicw local` owns its stores (one process per Qdrant folder): it does the work.
        if args.action == "create":
            return _post_admin(args, url, key, "/admin/backups", {"to": args.to, "include_archive": not args.no_archive}, what)
        return _post_admin(args, url, key, "/admin/restores", {"from": args.source, "force": args.force}, what)
    if target.kind == "environment" and not ({"REDIS_URL", "REDIS_URL_SECRET"} & set(os.environ)):
        raise target.missing("REDIS_URL", what)
    target.apply()
    try:
        if args.action == "create":
            manifest = create_backup(args.to, include_archive=not args.no_archive, qdrant_snapshot=args.qdrant_snapshot)
            print(manifest.model_dump_json(indent=2))
        else:
            print(json.dumps(restore_backup(args.source, force=args.force), indent=2, default=str))
    except BackupError as exc:
        print(mask_credentials(f"{what} failed: {exc}"), file=sys.stderr)
        return 1
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        print(f"{what} failed: a running `vicw local` owns that folder; run the command from the folder "
              "`vicw local` runs in, or pass --data-dir (or --url) to reach it.", file=sys.stderr)
        return 1
    return 0


def _since(value: str | None) -> str | None:
    from datetime import datetime

    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value!r} is not an ISO-8601 date or datetime (e.g. 2026-11-26 or "
                         "2026-11-26T03:30:00Z)") from None
    return value


def cmd_replay(args: argparse.Namespace) -> int:
    from vicw import replay

    if args.what == "archive":
        try:
            since = _since(args.since)
        except ValueError as exc:
            print(f"vicw replay archive: {exc}", file=sys.stderr)
            return 2
        if args.session and not args.tenant:
            print("vicw replay archive: --session needs --tenant (sessions are named within a tenant)", file=sys.stderr)
            return 2
    target = _target(args)
    target.apply()
    from vicw.config import get_settings

    s = get_settings()
    if args.what == "dlq":
        what = f"vicw replay dlq --queue {args.queue}"
        for setting in (f"{args.queue.upper()}_QUEUE_URL", f"{args.queue.upper()}_DLQ_URL"):
            if not getattr(s, setting.lower()):
                raise target.missing(setting, what)
        result = replay.replay_dlq(args.queue, settings=s)
        if args.json:
            print(json.dumps(result, default=str, indent=2))
        elif result["dlq_depth_before"] == 0 and not result["moved"]:
            pass
        else:
            print(f"{args.queue} DLQ: moved {result['moved']} message(s) back to the {args.queue} queue, "
                  f"{result['failed']} failed ({result['method']})")
        if result["dlq_depth_before"] == 0 and not result["moved"]:
            print(f"{what}: the {args.queue} dead-letter queue is empty; nothing to replay", file=sys.stderr)
            return 3
        return 1 if result["failed"] else 0

    what = f"vicw replay archive --target {args.target}"
    needed = ["ARCHIVE_BUCKET"]
    needed += ["OFFLOAD_QUEUE_URL"] if args.target in ("vectors", "all") else []
    needed += ["GRAPH_QUEUE_URL"] if args.target in ("graph", "all") else []
    for setting in needed:
        if not getattr(s, setting.lower()):
            raise target.missing(setting, what)
    from vicw import bootstrap

    result = replay.replay_archive(tenant=args.tenant, session_id=args.session, since=since, target=args.target,
                                   progress=not args.quiet and not args.json, windows=bootstrap.window_store(), settings=s)
    failed = sum(result["failed"].values())
    if args.json:
        print(json.dumps(result, default=str, indent=2))
    elif result["found"]:
        sent = ", ".join(f"{n}={c}" for n, c in result["sent"].items())
        print(f"archive: found {result['found']} job(s), re-sent {result['jobs']} ({sent}), skipped {result['skipped']}, "
              f"failed {failed}")
    if not result["found"]:
        scope = ", ".join(f"{k} {v}" for k, v in (("tenant", args.tenant), ("session", args.session), ("since", args.since)) if v)
        print(f"{what}: no archived jobs{' for ' + scope if scope else ''}; nothing to replay", file=sys.stderr)
        return 3
    return 1 if failed or result["skipped"] else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Post Markdown/text files to POST /ingest of a running VICW, with a progress bar."""
    import httpx
    from tqdm import tqdm

    from vicw.stack import mask_url

    paths = [Path(p) for p in args.paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"vicw ingest: not a file: {', '.join(missing)}", file=sys.stderr)
        return 2
    target = _target(args)
    url, key = _api(args, target, "vicw ingest")
    if not key:
        print(_no_key(target, "vicw ingest"), file=sys.stderr)
        return 2
    failures = 0
    results = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as http:
        bar = tqdm(paths, unit="file", disable=args.quiet or args.json)
        for path in bar:
            bar.set_postfix_str(path.name)
            body: dict[str, object] = {"document": path.read_text(encoding="utf-8", errors="replace"),
                                       "metadata": {"title": path.stem, "source": path.name}}
            if args.session:
                body["session_id"] = args.session
            try:
                resp = http.post("/ingest", json=body)
            except httpx.HTTPError as exc:
                bar.close()
                print(f"vicw ingest: VICW at {mask_url(url)} is not answering ({type(exc).__name__}); start `vicw local`, "
                      "or pass --url, --data-dir or --stack", file=sys.stderr)
                return 2
            if resp.status_code == 202:
                out = resp.json()
                results.append({"path": str(path), **out})
                if not args.json:
                    tqdm.write(f"{path}: {out['parts']} parts, {out['tokens']} tokens (job {out['job_id']})")
            else:
                failures += 1
                results.append({"path": str(path), "status": resp.status_code, "error": resp.text[:300]})
                tqdm.write(f"{path}: HTTP {resp.status_code}: {resp.text[:300]}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
    return 1 if failures else 0


def _locate(p: argparse.ArgumentParser) -> None:
    """The options every operator command shares: which stack to act on."""
    p.add_argument("--data-dir", default=None,
                   help="the folder of a running `vicw local` (default: $VICW_DATA_DIR, else .vicw)")
    p.add_argument("--stack", default=os.environ.get("VICW_STACK") or None,
                   help="a deployed CloudFormation stack: settings come from its outputs (default: $VICW_STACK)")
    p.add_argument("--region", help="the stack's region (default: $AWS_REGION)")


def cmd_mcp(args: argparse.Namespace) -> int:
    from vicw.mcp_stdio import main

    return main(args.url, args.key_file)


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
    _locate(show)
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("status", help="health and statistics of a running VICW")
    p.add_argument("--url", help="default: the stack's URL, else $VICW_URL, else http://127.0.0.1:8000")
    p.add_argument("--api-key", help="default: $VICW_API_KEY, then the local development key")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    _locate(p)
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
        b.add_argument("--url", help="run inside the VICW at this URL (a running `vicw local` is found without it); "
                                     "local targets are then folder names under its VICW_DATA_DIR/backups")
        b.add_argument("--api-key", help="an admin tenant's key (default: $VICW_API_KEY, then the development key)")
        b.add_argument("--json", action="store_true")
        _locate(b)
        b.set_defaults(func=cmd_backup)

    p = sub.add_parser("replay", help="reprocess offload jobs")
    rsub = p.add_subparsers(dest="what", required=True)
    dlq = rsub.add_parser("dlq", help="move a DLQ's messages back to its source queue")
    dlq.add_argument("--queue", choices=["offload", "graph"], required=True)
    dlq.add_argument("--json", action="store_true")
    _locate(dlq)
    dlq.set_defaults(func=cmd_replay)
    arc = rsub.add_parser("archive", help="re-enqueue archived jobs (e.g. after a model or rules change)")
    arc.add_argument("--tenant")
    arc.add_argument("--session")
    arc.add_argument("--since", help="ISO-8601 date or datetime")
    arc.add_argument("--target", choices=["vectors", "graph", "all"], default="all")
    arc.add_argument("--quiet", action="store_true", help="no progress bar")
    arc.add_argument("--json", action="store_true")
    _locate(arc)
    arc.set_defaults(func=cmd_replay)
    p = sub.add_parser("ingest", help="add Markdown/text documents to long-term memory")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--session", help="attach to one session (default: shared by every session of the tenant)")
    p.add_argument("--url", help="default: the stack's URL, else $VICW_URL, else http://127.0.0.1:8000")
    p.add_argument("--api-key", help="default: $VICW_API_KEY, then the local development key")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    _locate(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("mcp", help="serve VICW's memory tools to a local MCP client over stdio")
    p.add_argument("--url", help="the running VICW (default: $VICW_URL, then http://127.0.0.1:8000)")
    p.add_argument("--key-file", help="file holding the API key (default: $VICW_API_KEY_FILE, then $VICW_API_KEY, "
                                      "then the local development key)")
    p.set_defaults(func=cmd_mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from vicw.config import SettingsError

    try:
        if args.command == "local":
            return args.func(args)
        with _logs_to_stderr():
            return args.func(args)
    except SettingsError as exc:
        print(_one_line(str(exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - an operator sees one line, never a traceback
        return _report_failure(args, exc)


def _one_line(text: str) -> str:
    from vicw.stack import mask_text

    return mask_text(" ".join(text.split()))


def _report_failure(args: argparse.Namespace, exc: Exception) -> int:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

    command = " ".join(str(v) for v in (args.command, getattr(args, "what", None) or getattr(args, "action", None)) if v)
    if isinstance(exc, EndpointConnectionError):
        message = (f"cannot reach {exc.kwargs.get('endpoint_url', 'the AWS endpoint')}: is `vicw local` running? "
                   "(or pass --data-dir / --stack)")
    elif isinstance(exc, NoCredentialsError):
        message = "no AWS credentials: configure a profile (AWS_PROFILE) or run against `vicw local`"
    elif isinstance(exc, NoRegionError):
        message = "no AWS region: pass --region or set AWS_REGION"
    elif isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        message = f"AWS refused {exc.operation_name}: {err.get('Code')}: {err.get('Message')}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    print(f"vicw {command} failed: {_one_line(message)}", file=sys.stderr)
    if os.environ.get("VICW_DEBUG"):
        import traceback

        traceback.print_exc()
    return 1


if __name__ == "__main__":
    sys.exit(main())
