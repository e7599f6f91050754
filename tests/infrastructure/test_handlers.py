"""Each Lambda handler (functions/*/app.py), invoked in this process with each sample event under
events/, against real local services: Redis with FalkorDB, Qdrant local mode, a moto server for
SQS/SNS/S3 created from template.yaml, and the scripted OpenAI-compatible LLM.

The environment is the one `sam local invoke --env-vars infra/sam-local/env.json` gives each
function, with the addresses of these local services put in its place.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest

from vicw import container
from vicw.aws_resources import ensure_local_resources, function_environment, read_template
from vicw.lambda_context import local_context

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SAM_LOCAL_ENV = json.loads((ROOT / "infra" / "sam-local" / "env.json").read_text())

# Which function each sample event is for.
EVENT_FUNCTION = {
    "chat_request.json": "ChatFunction",
    "offload_batch.json": "OffloadFunction",
    "graph_batch.json": "GraphFunction",
    "maintenance_schedule.json": "MaintenanceFunction",
}
FOLDER = {"ChatFunction": "chat", "OffloadFunction": "offload", "GraphFunction": "graph",
          "MaintenanceFunction": "maintenance"}


def test_every_sample_event_is_run_by_a_test():
    assert {p.name for p in EVENTS.glob("*.json")} == set(EVENT_FUNCTION)


@pytest.mark.parametrize("function", sorted(SAM_LOCAL_ENV))
def test_sam_local_env_names_only_declared_variables(function):
    """`sam local invoke --env-vars` silently ignores a variable the template does not declare."""
    declared = function_environment(read_template(ROOT / "template.yaml"), function)
    undeclared = set(SAM_LOCAL_ENV[function]) - set(declared)
    assert not undeclared, f"{function}: declare {sorted(undeclared)} in template.yaml or sam local ignores them"


def _load(function: str):
    path = ROOT / "functions" / FOLDER[function] / "app.py"
    spec = importlib.util.spec_from_file_location(f"vicw_fn_{FOLDER[function]}_events_{uuid.uuid4().hex[:6]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def local_env(monkeypatch, tmp_path, redis_url, moto_endpoint, vicw_env, scripted_llm, redis_client):
    """Returns a function that sets a function's sam-local environment, pointed at local services."""
    scripted_llm.reset()
    resources = ensure_local_resources(prefix=f"h{uuid.uuid4().hex[:8]}")

    def apply(function: str) -> None:
        env = {**SAM_LOCAL_ENV[function], **{k: v for k, v in resources.items()}}
        env.update({
            "REDIS_URL": redis_url,
            "FALKORDB_URL": redis_url,
            "QDRANT_PATH": str(tmp_path / "qdrant"),
            "QDRANT_URL": "",
            "VICW_BACKUP_URL": str(tmp_path / "backups"),
            "POWERTOOLS_METRICS_DISABLED": "true",
        })
        if function == "ChatFunction":
            # The sample key stays; the scripted model stands in for the one set on AWS.
            env.update({"VICW_LLM_PROVIDER": "openai", "VICW_LLM_API_URL": scripted_llm.url,
                        "VICW_LLM_MODEL_NAME": vicw_env["VICW_LLM_MODEL_NAME"], "LLM_MAX_RETRIES": "0"})
        if function == "GraphFunction":
            env["GRAPH_BACKEND"] = "falkordb"  # the real graph code path, not "none"
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("QDRANT_URL")
        monkeypatch.delenv("VICW_API_KEYS_PARAMETER", raising=False)
        container.reset()

    yield apply
    container.reset()


@pytest.mark.parametrize("event_file", sorted(EVENT_FUNCTION))
def test_handler_succeeds_on_its_sample_event(event_file, local_env):
    function = EVENT_FUNCTION[event_file]
    local_env(function)
    event = json.loads((EVENTS / event_file).read_text())
    app = _load(function)
    result = app.handler(event, local_context(f"vicw-{FOLDER[function]}"))

    if function == "ChatFunction":
        assert result["statusCode"] == 200, result
        body = json.loads(result["body"])
        assert body["session_id"] == "demo-session" and body["response"]
    elif function in ("OffloadFunction", "GraphFunction"):
        poison = event["Records"][1]["messageId"]
        assert result == {"batchItemFailures": [{"itemIdentifier": poison}]}, result
    else:
        assert not result["failed"] and "location" in result["backup"], result
