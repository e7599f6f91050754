"""A scripted Amazon Bedrock Runtime server speaking the Converse wire format, for tests.

    with ScriptedConverse() as bedrock:
        bedrock.script("hello", aws_error("ThrottlingException", 429, "Too many requests"))
        client = boto3.client("bedrock-runtime", endpoint_url=bedrock.endpoint, ...)

* POST /model/{modelId}/converse        → JSON (output.message, stopReason, usage, metrics).
* POST /model/{modelId}/converse-stream → `application/vnd.amazon.eventstream`: the AWS event-stream
  binary framing (prelude with lengths + CRC32, typed headers, payload, message CRC32), so boto3
  parses it with its own decoder exactly as it does a real Bedrock stream.
Errors use the rest-json convention: HTTP status, `x-amzn-ErrorType` header, `{"message": ...}` body.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from typing import Any
from urllib.parse import unquote

from tests.fakes.llm_server import (
    RecordedRequest,
    Reply,
    Responder,
    ScriptedHandler,
    ScriptedServer,
    _tokens,
    stream_pieces,
)

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def aws_error(error_type: str, status: int, message: str = "scripted error", **kw: Any) -> Reply:
    """A rest-json AWS error reply, e.g. aws_error("ValidationException", 400, "bad maxTokens")."""
    headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return Reply(status=status, body={"message": message}, headers=headers, **kw)


def converse_texts(body: dict[str, Any]) -> list[str]:
    """Every text block of a Converse request (system first), for usage counting and assertions."""
    texts = [b.get("text", "") for b in body.get("system") or []]
    for message in body.get("messages") or []:
        texts += [b.get("text", "") for b in message.get("content") or []]
    return texts


def echo_last_user(request: RecordedRequest) -> Reply:
    messages = [m for m in (request.body or {}).get("messages") or [] if m.get("role") == "user"]
    last = " ".join(b.get("text", "") for b in messages[-1]["content"]) if messages else ""
    return Reply(text=f"ok: {last}")


# --- AWS event-stream framing ------------------------------------------------------------------
def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def encode_event(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total, headers length, CRC), headers, payload, CRC."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def stream_event(event_type: str, body: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_event(headers, json.dumps(body).encode())


def stream_exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_event(headers, json.dumps({"message": message}).encode())


class ScriptedConverse(ScriptedServer):
    """The Bedrock Runtime server. `endpoint` is what boto3's endpoint_url takes."""

    thread_name = "scripted-converse"

    def __init__(self, responder: Responder | None = None) -> None:
        super().__init__(responder or echo_last_user)

    @property
    def converse_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if "/converse" in r.path]

    def usage_for(self, body: dict[str, Any], text: str) -> dict[str, int]:
        counter = _tokens()
        prompt = sum(counter.count_text(t) for t in converse_texts(body))
        completion = counter.count_text(text)
        return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}


class _ConverseHandler(ScriptedHandler):
    owner: ScriptedConverse

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        request, body = self.read_json()
        if body is None:
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "model" or parts[2] not in ("converse", "converse-stream"):
            self.send_json(404, {"message": f"no route {self.path}"}, {"x-amzn-ErrorType": "UnknownOperationException"})
            return
        request.body = {**body, "modelId": unquote(parts[1])}
        reply = self.owner.next_reply(request)
        if not self.pace(reply):
            return
        try:
            if reply.body is not None or reply.status != 200:
                self.send_json(reply.status, reply.body if reply.body is not None else {}, reply.headers)
            elif parts[2] == "converse-stream":
                self._send_stream(body, reply)
            else:
                self._send_converse(body, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, int]:
        if reply.usage is not None:
            return reply.usage
        return self.owner.usage_for(body, reply.text)

    def _send_converse(self, body: dict[str, Any], reply: Reply) -> None:
        payload = {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": _STOP_REASONS.get(reply.finish_reason, reply.finish_reason),
            "usage": self._usage(body, reply),
            "metrics": {"latencyMs": int(reply.delay * 1000)},
        }
        self.send_json(200, payload, reply.headers)

    def _send_stream(self, body: dict[str, Any], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def emit(frame: bytes) -> None:
            self.wfile.write(frame)
            self.wfile.flush()

        emit(stream_event("messageStart", {"role": "assistant"}))
        for piece in stream_pieces(reply.text):
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
            emit(stream_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
        if reply.stream_error:
            emit(stream_exception(reply.stream_error, "scripted failure mid-stream"))
            return
        emit(stream_event("contentBlockStop", {"contentBlockIndex": 0}))
        stop = _STOP_REASONS.get(reply.finish_reason, reply.finish_reason)
        emit(stream_event("messageStop", {"stopReason": stop}))
        emit(stream_event("metadata", {"usage": self._usage(body, reply), "metrics": {"latencyMs": 1}}))


ScriptedConverse.handler = _ConverseHandler
