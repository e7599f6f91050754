"""In Lambda the same add_metric calls must come out as valid CloudWatch Embedded Metric Format.

The schema below is written from the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
a root `_aws` object with an integer epoch-millisecond `Timestamp` and `CloudWatchMetrics` directives
(Namespace, Dimensions as arrays of dimension-set arrays, Metrics as {Name, Unit, StorageResolution});
every dimension a directive names is a string member of the root, every metric a number or an array
of at most 100 numbers.
"""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from vicw.observability import M

UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits",
    "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]
NON_WHITESPACE = {"type": "string", "minLength": 1, "pattern": r".*[^\s].*"}

EMF_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {**NON_WHITESPACE, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {**NON_WHITESPACE, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {**NON_WHITESPACE, "maxLength": 1024},
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
NUMBER_OR_VALUES = {"oneOf": [{"type": "number"}, {"type": "array", "maxItems": 100, "items": {"type": "number"}}]}


def member_schema(doc: dict) -> dict:
    """The target members a document's directives reference, as required root properties."""
    dims = {d for directive in doc["_aws"]["CloudWatchMetrics"] for ds in directive["Dimensions"] for d in ds}
    names = {m["Name"] for directive in doc["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}
    return {
        "type": "object",
        "required": sorted(dims | names),
        "properties": {**{d: {"type": "string"} for d in dims}, **{n: NUMBER_OR_VALUES for n in names}},
    }


def emf_documents(text: str) -> list[dict]:
    docs = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            jsonschema.validate(doc, EMF_SCHEMA)
            jsonschema.validate(doc, member_schema(doc))
            docs.append(doc)
    return docs


def metric_values(docs: list[dict]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for doc in docs:
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "VICW" and ["service"] in directive["Dimensions"]
            for m in directive["Metrics"]:
                v = doc[m["Name"]]
                out.setdefault(m["Name"], []).extend(v if isinstance(v, list) else [v])
    return out


def test_the_schema_rejects_what_the_spec_forbids():
    good = {"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["service"]],
                                                           "Metrics": [{"Name": "X", "Unit": "Count"}]}]},
            "service": "vicw", "X": [1.0]}
    emf_documents(json.dumps(good))
    bad_unit = json.loads(json.dumps(good))
    bad_unit["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Tokens"
    missing_member = {k: v for k, v in good.items() if k != "X"}
    string_time = json.loads(json.dumps(good))
    string_time["_aws"]["Timestamp"] = "2026-01-01"
    blank_namespace = json.loads(json.dumps(good))
    blank_namespace["_aws"]["CloudWatchMetrics"][0]["Namespace"] = "  "
    for doc in (bad_unit, missing_member, string_time, blank_namespace):
        with pytest.raises(jsonschema.ValidationError):
            emf_documents(json.dumps(doc))


@pytest.fixture()
def emf_enabled(monkeypatch, redis_url, redis_client):
    """Settings for the real chat and graph handlers with EMF on (as in Lambda) and nothing else configured."""
    from vicw import container

    for name in ("POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_DEV", "OFFLOAD_TOPIC_ARN", "OFFLOAD_QUEUE_URL", "QDRANT_PATH",
                 "QDRANT_URL", "ARCHIVE_BUCKET", "VICW_API_KEYS_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("GRAPH_BACKEND", "none")
    monkeypatch.setenv("VICW_LLM_PROVIDER", "none")
    monkeypatch.setenv("VICW_API_KEYS", "emf-test-key-0001:emf")
    container.reset()
    yield
    container.reset()


def test_handlers_print_valid_emf(emf_enabled, capsys):
    from tests.unit.test_cold_path_chunks import make_job
    from vicw.lambda_context import local_context, sqs_event
    from vicw.local.runner import apigw_v2_event, load_function

    assert os.environ.get("POWERTOOLS_METRICS_DISABLED") is None
    chat = load_function("chat")
    body = json.dumps({"messages": [{"role": "user", "content": f"line {i} " * 40} for i in range(30)]}).encode()
    event = apigw_v2_event("POST", "/sessions/emf/messages", "", {"authorization": "Bearer emf-test-key-0001",
                                                                 "content-type": "application/json"}, body, "127.0.0.1")
    assert chat.handler(event, local_context("vicw-chat"))["statusCode"] == 200

    graph = load_function("graph")
    messages = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": make_job(texts=[f"fact {i}"]).model_dump_json()}
                for i in range(2)]
    messages.append({"MessageId": "bad", "ReceiptHandle": "rb", "Body": "not a job"})
    result = graph.handler(sqs_event(messages, "arn:aws:sqs:us-east-1:000000000000:graph", "us-east-1"))
    assert result["batchItemFailures"] == [{"itemIdentifier": "bad"}]

    docs = emf_documents(capsys.readouterr().out)
    assert len(docs) == 2  # one flush per invocation
    values = metric_values(docs)
    assert values[M.WINDOW_PRESSURE] and 0 < values[M.WINDOW_PRESSURE][0] <= 100
    assert values[M.OFFLOADS][0] >= 1 and values[M.OFFLOADED_TURNS][0] >= values[M.OFFLOADS][0]
    assert values[M.RECORDS_PROCESSED] == [2.0] and values[M.RECORDS_FAILED] == [1.0]
    units = {m["Name"]: m.get("Unit") for d in docs for x in d["_aws"]["CloudWatchMetrics"] for m in x["Metrics"]}
    assert units[M.WINDOW_PRESSURE] == "Percent" and units[M.RECORDS_PROCESSED] == "Count"


def test_every_metric_name_and_unit_in_use_is_valid_emf(emf_enabled, capsys):
    """Every name in M, with the unit its call sites use, passes Powertools' checks and the schema."""
    from vicw.observability import metrics

    units = {name: ("Milliseconds" if name.endswith("Ms") else "Percent" if name == M.WINDOW_PRESSURE else "Count")
             for attr, name in vars(M).items() if attr.isupper()}
    for name, unit in units.items():
        metrics.add_metric(name=name, unit=unit, value=1)
    metrics.flush_metrics()
    [doc] = emf_documents(capsys.readouterr().out)
    assert set(metric_values([doc])) == set(units)
