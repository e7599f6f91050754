"""POST /v1/chat/completions: the OpenAI chat API in front of VICW's memory.

Clients resend the whole conversation every time; only what VICW has not stored yet is recorded,
so no reply is ever added twice.
"""

from __future__ import annotations

import time
import uuid

from vicw import bootstrap
from vicw.api.schemas import OpenAIChatRequest, check_session_id, extension
from vicw.conversation import IncomingMessage


def session_for(body: OpenAIChatRequest, header: str | None) -> str:
    from vicw.api.errors import ApiError

    session_id = header or body.user
    if not session_id:
        raise ApiError(400, "no session: send an X-Session-Id header (or the request's `user` field)")
    try:
        return check_session_id(session_id)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None


def prepare(body: OpenAIChatRequest, tenant: str, header: str | None):  # noqa: ANN201
    session_id = session_for(body, header)
    history = [IncomingMessage(m.role, m.text(), m.name) for m in body.messages]
    system = [m.content for m in history if m.role == "system"]
    convo = bootstrap.conversation()
    new = convo.new_from_client_history(tenant, session_id, history)
    return session_id, new, (system[-1] if system else None)


def complete(body: OpenAIChatRequest, tenant: str, header: str | None):  # noqa: ANN201
    session_id, new, system = prepare(body, tenant, header)
    max_tokens = body.max_completion_tokens or body.max_tokens
    convo = bootstrap.conversation()
    if body.stream:
        from vicw.api.streaming import stream_response

        return stream_response(convo, tenant, session_id, new, system, body, max_tokens)
    result = convo.chat(
        tenant, session_id, new, system_prompt=system, max_tokens=max_tokens, temperature=body.temperature, stop=body.stop_list()
    )
    assert result.completion is not None and result.plan is not None
    c = result.completion
    prompt_tokens = c.prompt_tokens if c.prompt_tokens is not None else result.plan.prompt_tokens
    completion_tokens = c.completion_tokens
    if completion_tokens is None:
        completion_tokens = convo.counter.count_text(c.text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": c.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "vicw": extension(session_id, result),
    }
