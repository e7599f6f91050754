"""OpenAICompatProvider against a real local HTTP server speaking the OpenAI chat API."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from tests.conftest import patient
from tests.fakes import Reply, ScriptedLLM, llm_server  # noqa: F401 - fixture
from vicw.llm.base import CompletionRequest, CompletionStream, LLMError, LLMRateLimited, LLMTimeout
from vicw.llm.openai_compat import OpenAICompatProvider

KEY = "sk-test-0123456789abcdef"


def provider(server: ScriptedLLM, **kw) -> OpenAICompatProvider:
    kw.setdefault("api_key", SecretStr(KEY))
    kw.setdefault("model", "test-model")
    kw.setdefault("timeout", patient(30))  # bounds a hang; timeout tests pass their own
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff", 0.01)
    return OpenAICompatProvider(server.url, **kw)


def request(text: str = "hello", **kw) -> CompletionRequest:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]
    kw.setdefault("max_tokens", 32)
    kw.setdefault("temperature", 0.2)
    return CompletionRequest(messages=messages, **kw)


def test_complete_sends_the_request_and_returns_real_usage(llm_server):
    llm_server.script("The answer is 42.")
    result = provider(llm_server).complete(request("what is it?", stop=["\n\n"]))

    assert result.text == "The answer is 42."
    assert result.finish_reason == "stop"
    sent = llm_server.chat_requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body["model"] == "test-model"
    assert sent.body["messages"] == request("what is it?").messages
    assert (sent.body["temperature"], sent.body["max_tokens"], sent.body["stop"]) == (0.2, 32, ["\n\n"])
    expected = llm_server.usage_for(sent, "The answer is 42.")
    assert result.prompt_tokens == expected["prompt_tokens"]
    assert result.completion_tokens == expected["completion_tokens"]


def test_request_model_overrides_default_and_missing_usage_is_none(llm_server):
    llm_server.script(Reply(text="hi", usage={}))
    result = provider(llm_server).complete(request(model="other-model"))
    assert llm_server.chat_requests[-1].body["model"] == "other-model"
    assert result.prompt_tokens is None and result.completion_tokens is None


def test_no_key_sends_no_authorization_header(llm_server):
    provider(llm_server, api_key=None).complete(request())
    assert "Authorization" not in llm_server.chat_requests[-1].headers


def test_stream_yields_deltas_and_reports_usage(llm_server):
    text = "One two three, four five."
    llm_server.script(text)
    stream = provider(llm_server).stream(request("count"))
    assert isinstance(stream, CompletionStream)
    deltas = list(stream)

    assert len(deltas) > 1 and "".join(deltas) == text
    sent = llm_server.chat_requests[-1]
    assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    done = stream.completion
    assert done.text == text and done.finish_reason == "stop"
    assert done.completion_tokens == llm_server.usage_for(sent, text)["completion_tokens"]


def test_stream_finish_reason_length(llm_server):
    llm_server.script(Reply(text="cut short", finish_reason="length"))
    stream = provider(llm_server).stream(request())
    assert "".join(stream) == "cut short"
    assert stream.completion.finish_reason == "length"


def test_timeout_maps_to_504(llm_server):
    llm_server.script(Reply(text="too late", delay=1.0))
    with pytest.raises(LLMTimeout) as caught:
        provider(llm_server, timeout=0.3, max_retries=0).complete(request())
    assert caught.value.status_code == 504


def test_stream_stall_maps_to_504(llm_server):
    llm_server.script(Reply(text="a b c d", chunk_delay=0.6))
    with pytest.raises(LLMTimeout):
        list(provider(llm_server, timeout=0.3, max_retries=0).stream(request()))


def test_rate_limit_is_retried_then_succeeds(llm_server):
    llm_server.script(Reply.error(429), Reply.error(429), "finally")
    assert provider(llm_server, max_retries=2).complete(request()).text == "finally"
    assert len(llm_server.chat_requests) == 3


def test_rate_limit_after_retries_maps_to_429(llm_server):
    llm_server.script(*[Reply.error(429, "slow down")] * 3)
    with pytest.raises(LLMRateLimited) as caught:
        provider(llm_server, max_retries=2).complete(request())
    assert caught.value.status_code == 429 and "slow down" in str(caught.value)
    assert len(llm_server.chat_requests) == 3


def test_server_error_is_retried(llm_server):
    llm_server.script(Reply.error(503), "recovered")
    assert provider(llm_server).complete(request()).text == "recovered"
    assert len(llm_server.chat_requests) == 2


def test_client_error_is_not_retried_and_maps_to_502(llm_server):
    llm_server.script(Reply.error(400, "max_tokens is too large"))
    with pytest.raises(LLMError) as caught:
        provider(llm_server).complete(request())
    assert caught.value.status_code == 502
    assert "HTTP 400" in str(caught.value) and "max_tokens is too large" in str(caught.value)
    assert len(llm_server.chat_requests) == 1


def test_error_messages_never_contain_the_key(llm_server):
    llm_server.script(Reply.error(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(LLMError) as caught:
        provider(llm_server).complete(request())
    message = str(caught.value)
    assert KEY not in message and "***" in message and "HTTP 401" in message
    assert KEY not in str(provider(llm_server).check())


def test_stream_error_status_raises_before_any_delta(llm_server):
    llm_server.script(Reply.error(500, "boom"), Reply.error(500, "boom"))
    with pytest.raises(LLMError) as caught:
        list(provider(llm_server, max_retries=1).stream(request()))
    assert caught.value.status_code == 502 and "boom" in str(caught.value)


def test_dropped_connection_is_retried(llm_server):
    llm_server.script(Reply(disconnect=True), "after reconnect")
    assert provider(llm_server).complete(request()).text == "after reconnect"


def test_unreachable_server_maps_to_502():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    llm = OpenAICompatProvider(f"http://127.0.0.1:{port}/v1/chat/completions", max_retries=1, backoff=0.01, timeout=2)
    with pytest.raises(LLMError) as caught:
        llm.complete(request())
    assert caught.value.status_code == 502 and "unreachable" in str(caught.value)


def test_non_json_body_maps_to_502(llm_server):
    llm_server.script(Reply(status=200, body="<html>proxy page</html>"))
    with pytest.raises(LLMError):
        provider(llm_server).complete(request())


def test_key_source_is_read_per_request(llm_server):
    keys = iter([SecretStr("sk-old"), SecretStr("sk-new")])
    llm = provider(llm_server, api_key=lambda: next(keys))
    llm.complete(request())
    llm.complete(request())
    assert [r.headers["Authorization"] for r in llm_server.chat_requests] == ["Bearer sk-old", "Bearer sk-new"]


def test_check_reports_host_and_model_only(llm_server):
    info = provider(llm_server).check()
    assert info == {"provider": "openai", "model": "test-model", "url_host": "127.0.0.1"}


def test_rejects_a_url_that_is_not_http():
    with pytest.raises(ValueError):
        OpenAICompatProvider("localhost:11434/v1/chat/completions")


def test_error_event_mid_stream_raises_after_partial_text(llm_server):
    llm_server.script(Reply(text="partial words", stream_error="upstream overloaded"))
    received = []
    with pytest.raises(LLMError) as caught:
        for delta in provider(llm_server).stream(request()):
            received.append(delta)
    assert "".join(received) == "partial words" and "overloaded" in str(caught.value)
