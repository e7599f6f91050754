"""`vicw local`: the whole system on 127.0.0.1, exercising the Lambda code paths.

* HTTP requests are turned into API Gateway HTTP API (v2) events and given to the real chat
  Lambda handler (Mangum inside), exactly as API Gateway would. Only `stream: true` requests go
  straight to the ASGI app, because API Gateway + Lambda would buffer them (see docs/llm.md).
* Pollers receive from the offload and graph queues over HTTP and invoke the real cold-path
  handlers with SQS event payloads, deleting only the records not reported in
  `batchItemFailures`; failed records come back after the visibility timeout and reach the DLQ
  after maxReceiveCount, as with a Lambda event source mapping.
* One process owns the local Qdrant folder, so the chat app and the offload handler share it.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import os
import secrets
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from vicw.lambda_context import local_context, poll_once
from vicw.local.services import ManagedProcess, aws_env, moto_server, redis_server

REPO_ROOT = Path(__file__).resolve().parents[2]
COLD_PATH_TIMEOUT_S = 120  # the cold-path functions' Timeout in template.yaml


def load_function(name: str) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name (Lambda imports it as `app`)."""
    path = REPO_ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"vicw_function_{name}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apigw_v2_event(method: str, path: str, query: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    now = time.time()
    params: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        k, _, v = pair.partition("=")
        params[k] = v
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": params or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        # Always base64: arbitrary bytes (even invalid UTF-8) reach the app unchanged.
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


class QueuePoller(threading.Thread):
    """Plays the part of a Lambda event source mapping for one queue."""

    def __init__(self, name: str, queue_url: str, handler: Any, batch_size: int, stop: threading.Event) -> None:
        super().__init__(name=f"poller-{name}", daemon=True)
        self.queue_name, self.queue_url, self.handler = name, queue_url, handler
        self.batch_size = max(1, min(batch_size, 10))
        self.stop_event = stop
        self.invocations = 0
        self.errors = 0

    def run(self) -> None:
        from vicw.aws import client
        from vicw.observability import logger

        sqs = client("sqs")
        arn = None
        while not self.stop_event.is_set():
            try:
                arn = arn or sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                context = local_context(f"vicw-{self.queue_name}", timeout_seconds=COLD_PATH_TIMEOUT_S)
                received, _ = poll_once(sqs, self.queue_url, self.handler, context, max_messages=self.batch_size,
                                        wait_seconds=1, queue_arn=arn)
            except Exception as exc:  # noqa: BLE001 - endpoint restarting, or the invocation crashed: the batch comes back
                self.errors += 1
                logger.warning("cold-path poll failed", extra={"queue": self.queue_name, "error": type(exc).__name__})
                arn = None
                self.stop_event.wait(1.0)
                continue
            self.invocations += bool(received)


class OutboxFlusher(threading.Thread):
    """Re-sends offload jobs that could not reach the queue when their turn completed."""

    def __init__(self, stop: threading.Event, every: float = 5.0) -> None:
        super().__init__(name="outbox-flusher", daemon=True)
        self.stop_event, self.every = stop, every

    def run(self) -> None:
        from vicw import bootstrap

        while not self.stop_event.wait(self.every):
            try:
                bootstrap.publisher().flush_outbox(older_than=bootstrap.settings().outbox_resend_after_seconds)
            except Exception:  # noqa: BLE001, S112 - Redis or SQS down: try again next round
                continue


class LocalVicw:
    """Starts (or attaches to) the local services, then serves the chat handler and runs the pollers."""

    def __init__(
        self,
        data_dir: Path,
        port: int = 8000,
        host: str = "127.0.0.1",
        *,
        redis_url: str | None = None,
        aws_endpoint: str | None = None,
        cold_path: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port, self.host = port, host
        self.redis_url, self.aws_endpoint = redis_url, aws_endpoint
        self.cold_path = cold_path
        self.processes: list[ManagedProcess] = []
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.server: Any = None
        self.dev_key: str | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalVicw:
        from vicw.private_files import PRIVATE_UMASK, make_private_dir, tighten

        # Everything written under the data dir (by this process and the servers it starts) is
        # private: 0700 folders, 0600 files. The umask stays for the life of the stack: the
        # servers and the cold path keep creating files.
        self._umask: int | None = os.umask(PRIVATE_UMASK)
        make_private_dir(self.data_dir)
        tighten(self.data_dir)
        owns_redis, fresh_queues = self.redis_url is None, self.aws_endpoint is None
        if self.redis_url is None:
            proc = redis_server(self.data_dir / "redis").start()
            self.processes.append(proc)
            self.redis_url = f"redis://127.0.0.1:{proc.port}/0"
        if self.aws_endpoint is None:
            proc = moto_server(self.data_dir).start()
            self.processes.append(proc)
            self.aws_endpoint = f"http://127.0.0.1:{proc.port}"
        self._configure_env()
        from vicw import aws, bootstrap

        aws.client.cache_clear()  # clients built for another endpoint must not be reused

        bootstrap.reset()
        self.chat = load_function("chat")
        self._recover(owns_redis=owns_redis, fresh_queues=fresh_queues)
        if self.cold_path:
            self._start_cold_path()
        flusher = OutboxFlusher(self.stop_event)
        flusher.start()
        self.threads.append(flusher)
        self._start_http()
        from vicw.local.connection import write_connection

        key_file = self.data_dir / "dev-api-key" if self.dev_key else None
        wildcard = self.host in ("0.0.0.0", "::")  # noqa: S104 - recognising the wildcard, not binding to it
        write_connection(self.data_dir, f"http://127.0.0.1:{self.port}" if wildcard else self.url, key_file)
        return self

    def _configure_env(self) -> None:
        from vicw.aws_resources import ensure_local_resources

        os.environ.update(aws_env(self.aws_endpoint or ""))
        redis_base = (self.redis_url or "").rsplit("/", 1)[0]
        os.environ.update({
            "REDIS_URL": self.redis_url or "",
            "FALKORDB_URL": redis_base,
            "QDRANT_PATH": str(self.data_dir / "qdrant"),
            "VICW_DATA_DIR": str(self.data_dir),
            "HF_HUB_OFFLINE": "1",
            "FASTEMBED_CACHE_PATH": str(self.data_dir / "fastembed_cache"),
        })
        os.environ.setdefault("GRAPH_BACKEND", "falkordb")
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        os.environ.setdefault("VICW_PUBLIC_DOCS", "true")  # a developer's own machine: the API docs are handy
        os.environ.update(ensure_local_resources())
        if not os.environ.get("VICW_API_KEYS") and not os.environ.get("VICW_API_KEYS_PARAMETER"):
            key_file = self.data_dir / "dev-api-key"
            if not key_file.exists():
                from vicw.private_files import write_private

                write_private(key_file, "vicw-dev-" + secrets.token_urlsafe(24))
            self.dev_key = key_file.read_text().strip()
            os.environ["VICW_API_KEYS"] = f"{self.dev_key}:dev"

    def _recover(self, *, owns_redis: bool, fresh_queues: bool) -> None:
        """Pick up where a killed stack left off (a no-op after a clean stop).

        The local queues live in moto's memory, so after a crash (or any restart) every job the
        outbox still holds (unsent, or sent and not confirmed by both consumers) is sent again.
        The window, outbox and idempotency records are in Redis's append-only file and survive.
        """
        from vicw import bootstrap
        from vicw.cold_path import clear_in_progress_records
        from vicw.observability import logger

        ws = bootstrap.window_store()
        cleared = clear_in_progress_records(ws.r) if owns_redis and self.cold_path else 0
        resent = bootstrap.publisher().resend_all_unconfirmed() if fresh_queues else 0
        if cleared or resent:
            logger.warning("recovered from an unclean stop", extra={"jobs_resent": resent, "stale_in_progress_records": cleared})

    def _start_cold_path(self) -> None:
        from vicw import bootstrap

        s = bootstrap.settings()
        for name, url in (("offload", s.offload_queue_url), ("graph", s.graph_queue_url)):
            if not url:
                continue
            handler = load_function(name).handler
            for _ in range(s.cold_path_workers):
                poller = QueuePoller(name, url, handler, s.cold_path_batch_size, self.stop_event)
                poller.start()
                self.threads.append(poller)

    def _start_http(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.gateway, host=self.host, port=self.port, log_level="warning", lifespan="off", interface="asgi3")
        self.server = uvicorn.Server(config)
        thread = threading.Thread(target=self.server.run, name="http", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        if self.port == 0:
            self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.threads.append(thread)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        from vicw.local.connection import remove_connection

        remove_connection(self.data_dir)  # first: operator commands must not find a stack going away
        self.stop_event.set()
        if self.server is not None:
            self.server.should_exit = True
        for t in self.threads:
            t.join(timeout=5)
        for proc in reversed(self.processes):
            proc.stop()
        from vicw import bootstrap

        bootstrap.reset()
        umask = getattr(self, "_umask", None)
        if umask is not None:
            os.umask(umask)
            self._umask = None

    # --- the API Gateway stand-in ----------------------------------------------------------------
    async def gateway(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        # API Gateway refuses oversized payloads itself; here the same caps as the app apply while
        # the body streams in, so an endless or huge body is refused without being buffered.
        from vicw import bootstrap
        from vicw.api.limits import BodyLimits, BodyTooLarge

        limits = BodyLimits.from_settings(bootstrap.settings())
        try:
            body = await limits.read(scope, receive)
        except BodyTooLarge as exc:
            await limits.reject(send, exc, close=True)
            return
        if body is None:
            return  # the client went away before its body was complete
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1").lower()
            headers[key] = f"{headers[key]},{v.decode('latin-1')}" if key in headers else v.decode("latin-1")
        if _wants_stream(scope["path"], body):
            await self._stream_direct(scope, body, receive, send)
            return
        event = apigw_v2_event(
            scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"), headers, body,
            (scope.get("client") or ("127.0.0.1", 0))[0],
        )
        result = await asyncio.get_running_loop().run_in_executor(None, _invoke, self.chat.handler, event)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        out_headers = [(k.encode(), str(v).encode()) for k, v in (result.get("headers") or {}).items()
                       if k.lower() != "content-length"]
        out_headers += [(b"set-cookie", c.encode()) for c in result.get("cookies") or []]
        out_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": result.get("statusCode", 500), "headers": out_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _stream_direct(self, scope: dict, body: bytes, receive: Any, send: Any) -> None:
        from vicw.api.limits import replaying

        # After the body, the app sees the real receive: a client that disconnects mid-stream
        # shows up as http.disconnect, which stops the response and the generation behind it.
        await self.chat.app(scope, replaying(body, receive), send)


_loops = threading.local()


def _invoke(handler: Any, event: dict) -> dict:
    # Mangum drives the app on the thread's event loop; executor threads have none of their own.
    if getattr(_loops, "loop", None) is None:
        _loops.loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loops.loop)
    return handler(event, local_context("vicw-chat", timeout_seconds=29))


def _wants_stream(path: str, body: bytes) -> bool:
    if not path.endswith("/chat/completions") or b'"stream"' not in body:
        return False
    try:
        return json.loads(body).get("stream") is True
    except (ValueError, AttributeError):
        return False
