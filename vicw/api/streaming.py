"""Server-sent events for `stream: true`, in the OpenAI chunk format.

Deltas go to the client as the provider yields them; the reply is stored in the window once,
after the whole stream went out. A client that disconnects mid-stream stops the generation: the
provider's stream is closed (the upstream HTTP response, or the embedded model between two
tokens, releasing it for other sessions) and the half reply the client never finished reading
is **not stored** — the window keeps the client's own message only, and the next request (which
resends the conversation) carries on from there. The abandoned stream is logged and counted
(`StreamsAbandoned`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from vicw.api.schemas import OpenAIChatRequest
from vicw.conversation import Conversation, IncomingMessage
from vicw.llm.base import Completion, LLMError
from vicw.observability import M, logger, metrics

_END = object()


def _chunk(cid: str, model: str, delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
    body = {
        "id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body)}\n\n"


def _next(iterator: Iterator[str]) -> object:
    return next(iterator, _END)


class ClosingStreamingResponse(StreamingResponse):
    """Closes its body iterator however the response ends, so the generator's cleanup (closing
    the LLM stream) runs at once when the client disconnects, not whenever it is collected."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()


def stream_response(
    convo: Conversation, tenant: str, session_id: str, new: list[IncomingMessage], system: str | None,
    body: OpenAIChatRequest, max_tokens: int | None,
) -> StreamingResponse:
    from vicw.api.schemas import extension

    pending = convo.begin(
        tenant, session_id, new, system_prompt=system, max_tokens=max_tokens, temperature=body.temperature, stop=body.stop_list()
    )
    assert convo.llm is not None
    llm = convo.llm
    cid = f"chatcmpl-{uuid.uuid4().hex}"

    async def events() -> AsyncIterator[str]:
        started = time.perf_counter()
        parts: list[str] = []
        stream = iter(llm.stream(pending.request))
        delivered = False
        try:
            yield _chunk(cid, llm.model, {"role": "assistant", "content": ""})
            try:
                while True:
                    # One delta at a time in a worker thread; a disconnect cancels us between
                    # deltas (the running call is waited for, never abandoned mid-token).
                    delta = await anyio.to_thread.run_sync(_next, stream)
                    if delta is _END:
                        break
                    if delta:
                        parts.append(str(delta))
                        yield _chunk(cid, llm.model, {"content": delta})
            except LLMError as exc:
                delivered = True  # nothing to store: the error event is the answer
                err = {"error": {"message": str(exc), "type": "llm_error", "code": exc.status_code}}
                yield f"data: {json.dumps(err)}\n\n"
                yield "data: [DONE]\n\n"
                return
            delivered = True
            completion = Completion(text="".join(parts), model=llm.model)
            result = await anyio.to_thread.run_sync(
                convo.finish, pending, completion, (time.perf_counter() - started) * 1000
            )
            yield _chunk(cid, llm.model, {}, "stop", {"vicw": extension(session_id, result)})
            yield "data: [DONE]\n\n"
        finally:
            if not delivered:  # the client went away mid-stream: stop generating, store nothing
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
                metrics.add_metric(name=M.STREAMS_ABANDONED, unit="Count", value=1)
                logger.info("stream abandoned by the client; generation stopped, partial reply not stored",
                            extra={"session_id": session_id, "deltas_sent": len(parts)})

    return ClosingStreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
