"""A scripted OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, no model behind it.

    with ScriptedLLM() as llm:
        llm.script("first answer", Reply.error(429), Reply(text="slow", delay=2.0))
        ...                                   # point the code under test at llm.url
        assert llm.chat_requests[-1].messages[-1]["content"] == "hello"

Replies are taken from the script queue in order; when it is empty the default responder answers
(by default: "ok: <last user message>"). Every request is recorded, so a test can assert exactly
which messages, temperature or stop sequences the model saw. Requests whose client hung up before the answer
was complete (a cancelled stream) are also listed in `aborted`. `usage` is counted with the same
tokenizer and chat framing as the application (cl100k_base), like a real OpenAI endpoint reports it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from vicw.tokens import TokenCounter

_counter: TokenCounter | None = None


def _tokens() -> TokenCounter:
    global _counter
    if _counter is None:
        _counter = TokenCounter("cl100k_base")
    return _counter


@dataclass
class Reply:
    """One scripted answer.

    text: the assistant message (split into word-sized deltas when streamed).
    status/body: a raw answer instead of a completion, e.g. an error (see Reply.error) or a
        non-JSON page from a misbehaving proxy; a str/bytes body is sent as is.
    delay: seconds to wait before answering (provokes client timeouts).
    chunk_delay: seconds between streamed chunks.
    disconnect: close the connection without answering (a transport error for the client).
    stream_error: when streaming, fail after the text deltas with this error (OpenAI: an `error`
        event; Converse: an exception frame of this type, e.g. "modelStreamErrorException").
    usage: override the reported usage (e.g. {} to report none).
    """

    text: str = ""
    status: int = 200
    body: Any = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    finish_reason: str = "stop"
    disconnect: bool = False
    stream_error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    usage: dict[str, int] | None = None

    @classmethod
    def error(cls, status: int, message: str = "scripted error", **kw: Any) -> Reply:
        body = {"error": {"message": message, "type": "scripted", "code": status}}
        return cls(status=status, body=body, **kw)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    received_at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or [])

    @property
    def last_user_message(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    @property
    def prompt_text(self) -> str:
        """Every message's content joined: handy for 'did the model see X?' assertions."""
        return "\n".join(str(m.get("content") or "") for m in self.messages)


Responder = Callable[[RecordedRequest], "str | Reply"]


def echo_responder(request: RecordedRequest) -> Reply:
    return Reply(text=f"ok: {request.last_user_message}")


def stream_pieces(text: str) -> list[str]:
    """Split into word-sized deltas whose concatenation is exactly `text`."""
    pieces: list[str] = []
    current = ""
    for ch in text:
        if ch == " " and current.strip():
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces


class ScriptedServer:
    """A threaded HTTP server on 127.0.0.1 with a reply queue and a request log (see ScriptedLLM)."""

    handler: type[BaseHTTPRequestHandler]
    thread_name = "scripted-server"

    def __init__(self, responder: Responder) -> None:
        self.default_responder: Responder = responder
        self._responder = responder
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.aborted: list[RecordedRequest] = []  # requests whose client hung up before the answer ended
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        handler = type("BoundHandler", (self.handler,), {"owner": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- scripting -------------------------------------------------------------------------
    def script(self, *replies: str | Reply) -> Self:
        """Queue replies, answered in order before the default responder takes over."""
        with self._lock:
            for reply in replies:
                self._queue.append(Reply(text=reply) if isinstance(reply, str) else reply)
        return self

    def respond_with(self, responder: Responder) -> Self:
        """Replace the default responder (called with the RecordedRequest; returns str or Reply)."""
        self._responder = responder
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.aborted.clear()
            self._responder = self.default_responder

    @property
    def pending(self) -> int:
        return len(self._queue)

    # --- used by the handlers --------------------------------------------------------------
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        reply = self._responder(request)
        return Reply(text=reply) if isinstance(reply, str) else reply


class ScriptedLLM(ScriptedServer):
    """The OpenAI-compatible server. Use as a context manager, or call start()/stop()."""

    thread_name = "scripted-llm"

    def __init__(self, model: str = "scripted-model", responder: Responder | None = None) -> None:
        super().__init__(responder or echo_responder)
        self.model = model

    @property
    def base_url(self) -> str:
        """The OpenAI SDK style base URL (…/v1)."""
        return f"{self.endpoint}/v1"

    @property
    def url(self) -> str:
        """The full chat/completions URL (what VICW_LLM_API_URL holds)."""
        return f"{self.base_url}/chat/completions"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def usage_for(self, request: RecordedRequest, text: str) -> dict[str, int]:
        """The usage this server reports for `text` answering `request`."""
        prompt = count_prompt_tokens(request.messages)
        completion = _tokens().count_text(text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return _tokens().count_messages(
        {"role": str(m.get("role", "")), "content": str(m.get("content") or "")} for m in messages
    )


class ScriptedHandler(BaseHTTPRequestHandler):
    """Shared plumbing for the fake servers' request handlers."""

    owner: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def read_json(self) -> tuple[RecordedRequest, dict[str, Any] | None]:
        """Read and record the request; the parsed body, or None after answering 400."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            body = None
        request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body, time.time())
        self.owner.record(request)
        if not isinstance(body, dict):
            self.send_json(400, {"message": "body is not a JSON object"})
            return request, None
        return request, body

    def pace(self, reply: Reply) -> bool:
        """Apply the reply's delay / disconnect; False when the connection was dropped."""
        if reply.delay:
            time.sleep(reply.delay)
        if reply.disconnect:
            self.close_connection = True
            self.connection.shutdown(2)  # socket.SHUT_RDWR
            return False
        return True

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class _OpenAIHandler(ScriptedHandler):
    owner: ScriptedLLM

    def do_GET(self) -> None:
        self.owner.record(RecordedRequest(self.command, self.path, dict(self.headers.items()), None, time.time()))
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": self.owner.model, "object": "model", "created": 0, "owned_by": "scripted"}]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        request, body = self.read_json()
        if body is None:
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not isinstance(body.get("messages"), list):
            self.send_json(400, {"error": {"message": "'messages' must be a list"}})
            return
        reply = self.owner.next_reply(request)
        if not self.pace(reply):
            return
        try:
            if reply.body is not None or reply.status != 200:
                self.send_json(reply.status, reply.body if reply.body is not None else {"error": {}}, reply.headers)
            elif body.get("stream"):
                self._send_stream(request, reply)
            else:
                self._send_completion(request, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout, or it cancelled)
            with self.owner._lock:
                self.owner.aborted.append(request)

    def _model(self, request: RecordedRequest) -> str:
        return str((request.body or {}).get("model") or self.owner.model)

    def _usage(self, request: RecordedRequest, reply: Reply) -> dict[str, int]:
        return reply.usage if reply.usage is not None else self.owner.usage_for(request, reply.text)

    def _send_completion(self, request: RecordedRequest, reply: Reply) -> None:
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model(request),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        usage = self._usage(request, reply)
        if usage:
            payload["usage"] = usage
        self.send_json(200, payload, reply.headers)

    def _send_stream(self, request: RecordedRequest, reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.close_connection = True
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self._model(request),
        }

        def emit(choices: list[dict[str, Any]], **extra: Any) -> None:
            self.wfile.write(b"data: " + json.dumps({**base, "choices": choices, **extra}).encode() + b"\n\n")
            self.wfile.flush()

        emit([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        for piece in stream_pieces(reply.text):
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            emit([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        if reply.stream_error:
            self.wfile.write(b"data: " + json.dumps({"error": {"message": reply.stream_error}}).encode() + b"\n\n")
            self.wfile.flush()
            return
        emit([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
        options = (request.body or {}).get("stream_options") or {}
        usage = self._usage(request, reply)
        if options.get("include_usage") and usage:
            emit([], usage=usage)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


ScriptedLLM.handler = _OpenAIHandler
