"""BedrockProvider through boto3 against a local server speaking the Converse wire format."""

from __future__ import annotations

import pytest

from tests.conftest import patient
from tests.fakes.converse_server import ScriptedConverse, aws_error, converse_texts
from tests.fakes.llm_server import Reply
from vicw.llm.base import CompletionRequest, LLMError, LLMRateLimited, LLMTimeout
from vicw.llm.bedrock import LEADING_USER_PLACEHOLDER, BedrockProvider

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture()
def bedrock(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with ScriptedConverse() as server:
        yield server


def provider(server: ScriptedConverse, **kw) -> BedrockProvider:
    kw.setdefault("timeout", patient(30))  # bounds a hang; timeout tests pass their own
    kw.setdefault("max_retries", 0)
    return BedrockProvider(MODEL, region="us-east-1", endpoint_url=server.endpoint, **kw)


def request(**kw) -> CompletionRequest:
    messages = kw.pop(
        "messages",
        [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Memory: the user's dog is Biscuit."},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": "What is my dog's name?"},
        ],
    )
    kw.setdefault("max_tokens", 64)
    kw.setdefault("temperature", 0.3)
    return CompletionRequest(messages=messages, **kw)


def test_converse_maps_the_request_and_reads_usage(bedrock):
    bedrock.script("Biscuit.")
    result = provider(bedrock).complete(request(stop=["\nUser:"]))

    assert result.text == "Biscuit."
    assert result.finish_reason == "stop"
    sent = bedrock.converse_requests[-1]
    assert sent.path == f"/model/{MODEL}/converse".replace(":", "%3A")
    assert sent.body["system"] == [{"text": "Be brief."}, {"text": "Memory: the user's dog is Biscuit."}]
    assert sent.body["messages"] == [
        {"role": "user", "content": [{"text": "Hi"}, {"text": "What is my dog's name?"}]},
    ]
    assert sent.body["inferenceConfig"] == {"maxTokens": 64, "temperature": 0.3, "stopSequences": ["\nUser:"]}
    usage = bedrock.usage_for(sent.body, "Biscuit.")
    assert (result.prompt_tokens, result.completion_tokens) == (usage["inputTokens"], usage["outputTokens"])
    assert "Authorization" in sent.headers  # boto3 signed it (SigV4 with the dummy credentials)


def test_alternation_is_enforced(bedrock):
    messages = [
        {"role": "assistant", "content": "Welcome back."},
        {"role": "user", "content": "a"},
        {"role": "tool", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "assistant", "content": "d"},
        {"role": "user", "content": "   "},
        {"role": "user", "content": "e"},
    ]
    provider(bedrock).complete(request(messages=messages))
    sent = bedrock.converse_requests[-1].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user", "assistant", "user"]
    assert sent["messages"][0]["content"] == [{"text": LEADING_USER_PLACEHOLDER}]
    assert sent["messages"][2]["content"] == [{"text": "a"}, {"text": "b"}]
    assert sent["messages"][3]["content"] == [{"text": "c"}, {"text": "d"}]
    assert "system" not in sent


def test_max_tokens_stop_reason_is_length(bedrock):
    bedrock.script(Reply(text="truncat", finish_reason="length"))
    assert provider(bedrock).complete(request()).finish_reason == "length"


def test_converse_stream_decodes_the_event_stream(bedrock):
    text = "Your dog is called Biscuit, I believe."
    bedrock.script(text)
    stream = provider(bedrock).stream(request())
    deltas = list(stream)

    assert len(deltas) > 1 and "".join(deltas) == text
    assert bedrock.converse_requests[-1].path.endswith("/converse-stream")
    done = stream.completion
    usage = bedrock.usage_for(bedrock.converse_requests[-1].body, text)
    assert (done.text, done.finish_reason) == (text, "stop")
    assert (done.prompt_tokens, done.completion_tokens) == (usage["inputTokens"], usage["outputTokens"])


def test_throttling_maps_to_429(bedrock):
    bedrock.script(aws_error("ThrottlingException", 429, "Too many requests, please wait"))
    with pytest.raises(LLMRateLimited) as caught:
        provider(bedrock).complete(request())
    assert caught.value.status_code == 429 and "Too many requests" in str(caught.value)


def test_throttling_is_retried_by_the_client(bedrock):
    bedrock.script(aws_error("ThrottlingException", 429), "after retry")
    assert provider(bedrock, max_retries=1).complete(request()).text == "after retry"
    assert len(bedrock.converse_requests) == 2


def test_validation_error_is_a_400_with_the_message(bedrock):
    bedrock.script(aws_error("ValidationException", 400, "temperature must be between 0 and 1"))
    with pytest.raises(LLMError) as caught:
        provider(bedrock).complete(request(temperature=1.5))
    assert caught.value.status_code == 400
    assert "ValidationException" in str(caught.value) and "temperature must be" in str(caught.value)


def test_other_errors_are_502(bedrock):
    bedrock.script(aws_error("AccessDeniedException", 403, "You don't have access to the model"))
    with pytest.raises(LLMError) as caught:
        provider(bedrock).complete(request())
    assert caught.value.status_code == 502 and "AccessDeniedException" in str(caught.value)


def test_model_timeout_is_504(bedrock):
    bedrock.script(aws_error("ModelTimeoutException", 408, "model took too long"))
    with pytest.raises(LLMTimeout):
        provider(bedrock).complete(request())


def test_read_timeout_is_504(bedrock):
    bedrock.script(Reply(text="late", delay=1.5))
    with pytest.raises(LLMTimeout) as caught:
        provider(bedrock, timeout=0.4).complete(request())
    assert caught.value.status_code == 504


def test_exception_mid_stream_is_mapped(bedrock):
    bedrock.script(Reply(text="partial answer", stream_error="throttlingException"))
    stream = provider(bedrock).stream(request())
    received = []
    with pytest.raises(LLMRateLimited):
        for delta in stream:
            received.append(delta)
    assert "".join(received) == "partial answer"


def test_prompt_with_only_system_messages_is_rejected_locally(bedrock):
    with pytest.raises(LLMError) as caught:
        provider(bedrock).complete(request(messages=[{"role": "system", "content": "x"}]))
    assert caught.value.status_code == 400
    assert bedrock.converse_requests == []


def test_check_names_model_and_region(bedrock):
    assert provider(bedrock).check() == {"provider": "bedrock", "model": MODEL, "region": "us-east-1"}


def test_texts_helper_sees_system_and_messages():
    body = {"system": [{"text": "s"}], "messages": [{"role": "user", "content": [{"text": "u"}]}]}
    assert converse_texts(body) == ["s", "u"]
