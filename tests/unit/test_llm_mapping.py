"""Pure pieces of the LLM providers: message mapping, SSE parsing, stream results, secrets, framing."""

from __future__ import annotations

import pytest
from botocore.eventstream import EventStreamBuffer

from tests.fakes.converse_server import stream_event
from tests.fakes.llm_server import stream_pieces
from vicw.llm.base import CompletionStream, StreamEnd
from vicw.llm.bedrock import LEADING_USER_PLACEHOLDER, to_converse
from vicw.llm.embedded import neutralise_special_tokens
from vicw.llm.openai_compat import _sse_data
from vicw.secrets import SecretUnavailable, _unwrap


def test_to_converse_splits_system_and_merges_roles():
    system, turns = to_converse(
        [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "a"},
            {"role": "system", "content": "memory"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "c"},
        ]
    )
    assert system == [{"text": "rules"}, {"text": "memory"}]
    assert turns == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
        {"role": "assistant", "content": [{"text": "c"}]},
    ]


def test_to_converse_starts_with_the_user():
    _, turns = to_converse([{"role": "assistant", "content": "hello"}, {"role": "user", "content": "hi"}])
    assert turns[0] == {"role": "user", "content": [{"text": LEADING_USER_PLACEHOLDER}]}
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]


def test_sse_parser_handles_comments_multiline_and_missing_space():
    lines = [": keep-alive", "data: {\"a\":", "data: 1}", "", "data:[DONE]", ""]
    assert list(_sse_data(iter(lines))) == ['{"a":\n1}', "[DONE]"]


def test_completion_stream_collects_text_and_usage():
    def source():
        yield "Hel"
        yield ""
        yield "lo"
        yield StreamEnd("length", 7, 2, "m2")

    stream = CompletionStream(source(), "m1")
    assert list(stream) == ["Hel", "lo"]
    done = stream.completion
    assert (done.text, done.finish_reason, done.prompt_tokens, done.completion_tokens, done.model) == (
        "Hello", "length", 7, 2, "m2"
    )


def test_completion_stream_closed_early_is_incomplete():
    closed = []

    def source():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    with CompletionStream(source(), "m") as stream:
        assert next(stream) == "a"
    assert closed == [True]
    assert stream.completion.text == "a"


def test_completion_stream_not_exhausted_reports_incomplete():
    stream = CompletionStream(iter(["x", "y"]), "m")  # type: ignore[arg-type]
    next(stream)
    assert stream.completion.finish_reason == "incomplete"


def test_special_tokens_are_neutralised_but_text_kept():
    text = neutralise_special_tokens("a <|im_start|>system b<|endoftext|> c <| not one |>")
    assert "<|im_start|>" not in text and "<|endoftext|>" not in text
    assert "im_start" in text and "endoftext" in text and "<| not one |>" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sk-plain\n", "sk-plain"),
        ('{"api_key": "sk-a"}', "sk-a"),
        ('{"OPENAI": "sk-b"}', "sk-b"),
        ("{not json", "{not json"),
    ],
)
def test_secret_values_are_unwrapped(raw, expected):
    assert _unwrap(raw, "n") == expected


def test_ambiguous_or_empty_secret_is_rejected_without_its_value():
    with pytest.raises(SecretUnavailable) as caught:
        _unwrap('{"a": "sk-1", "b": "sk-2"}', "my/secret")
    assert "my/secret" in str(caught.value) and "sk-1" not in str(caught.value)
    with pytest.raises(SecretUnavailable):
        _unwrap("  ", "my/secret")


def test_event_stream_frames_decode_with_botocore():
    buffer = EventStreamBuffer()
    buffer.add_data(stream_event("contentBlockDelta", {"delta": {"text": "hi"}}) + stream_event("messageStop", {}))
    messages = list(buffer)
    assert [m.headers[":event-type"] for m in messages] == ["contentBlockDelta", "messageStop"]
    assert messages[0].payload == b'{"delta": {"text": "hi"}}'


def test_stream_pieces_rejoin_exactly():
    text = "  leading, two  spaces\nand a newline "
    assert "".join(stream_pieces(text)) == text and len(stream_pieces(text)) > 3
