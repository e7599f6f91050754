"""The sample events under events/ (used by `sam local invoke` and by handler tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from vicw.models import OffloadJob

EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.mark.parametrize("name", ["offload_batch.json", "graph_batch.json"])
def test_sqs_batch_has_one_valid_job_and_one_poison_record(name):
    records = json.loads((EVENTS / name).read_text())["Records"]
    assert len(records) == 2 and len({r["messageId"] for r in records}) == 2
    for r in records:
        assert r["eventSource"] == "aws:sqs"
        assert r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest()
    job = OffloadJob.model_validate_json(records[0]["body"])
    assert job.turns and job.token_count == sum(t.tokens for t in job.turns)
    with pytest.raises(ValidationError):
        OffloadJob.model_validate_json(records[1]["body"])


def test_chat_request_is_an_http_api_v2_post_with_a_bearer_key():
    event = json.loads((EVENTS / "chat_request.json").read_text())
    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == "/chat"
    assert event["headers"]["authorization"] == "Bearer dev-key-change-me"
    body = json.loads(event["body"])
    assert body["session_id"] and body["message"]
