"""Server-sent events for `stream: true`, in the OpenAI chunk format.

Deltas go to the client as the provider yields them; the reply is stored in the window once,
after the stream completes. A client that disconnects mid-stream leaves the window with its
own message and no half reply.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from fastapi.responses import StreamingResponse

from vicw.api.schemas import OpenAIChatRequest
from vicw.conversation import Conversation, IncomingMessage
from vicw.llm.base import Completion, LLMError


def _chunk(cid: str, model: str, delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
    body = {
        "id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra:
        body.update(extra)
    return f"data: {json.dumps(body)}\n\n"


def stream_response(
    convo: Conversation, tenant: str, session_id: str, new: list[IncomingMessage], system: str | None,
    body: OpenAIChatRequest, max_tokens: int | None,
) -> StreamingResponse:
    from vicw.api.openai_compat import extension

    pending = convo.begin(
        tenant, session_id, new, system_prompt=system, max_tokens=max_tokens, temperature=body.temperature, stop=body.stop_list()
    )
    assert convo.llm is not None
    llm = convo.llm
    cid = f"chatcmpl-{uuid.uuid4().hex}"

    def events() -> Iterator[str]:
        started = time.perf_counter()
        parts: list[str] = []
        yield _chunk(cid, llm.model, {"role": "assistant", "content": ""})
        try:
            for delta in llm.stream(pending.request):
                if delta:
                    parts.append(delta)
                    yield _chunk(cid, llm.model, {"content": delta})
        except LLMError as exc:
            err = {"error": {"message": str(exc), "type": "llm_error", "code": exc.status_code}}
            yield f"data: {json.dumps(err)}\n\n"
            yield "data: [DONE]\n\n"
            return
        completion = Completion(text="".join(parts), model=llm.model)
        result = convo.finish(pending, completion, (time.perf_counter() - started) * 1000)
        yield _chunk(cid, llm.model, {}, "stop", {"vicw": extension(session_id, result)})
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
