"""`vicw <command> --stack NAME`: the template exports every value the operator commands need, and
the CLI reads them from a CloudFormation DescribeStacks response.

No AWS account is here, so: (1) the SAM-translated template's outputs are checked against the
environment its functions get (the same expression, so the same value once deployed); (2) a stack
with those outputs, verbatim, is created in the moto server — moto skips AWS::Serverless
resources, so the resources the outputs refer to are recreated as plain ones of the same logical
names — and the commands run against it with nothing but `--stack` and `--region`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.conftest import patched_env
from vicw.cli import main
from vicw.stack import API_URL_OUTPUT, STACK_OUTPUTS, STORE_SETTINGS_OUTPUT, mask_url

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STACK = "vicw-ops-test"

# What each operator command reads when pointed at a deployed stack.
NEEDED = {
    "replay dlq": ("OFFLOAD_QUEUE_URL", "OFFLOAD_DLQ_URL", "GRAPH_QUEUE_URL", "GRAPH_DLQ_URL"),
    "replay archive": ("ARCHIVE_BUCKET", "OFFLOAD_QUEUE_URL", "GRAPH_QUEUE_URL"),
    "backup create|restore": ("REDIS_URL_SECRET", "QDRANT_URL", "QDRANT_COLLECTION", "QDRANT_API_KEY_SECRET", "GRAPH_BACKEND",
                              "NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD_SECRET", "EMBEDDING_MODEL", "EMBEDDING_DIM",
                              "VICW_BACKUP_URL", "ARCHIVE_BUCKET"),
    "status, ingest": ("VICW_API_KEYS_PARAMETER",),  # plus the ApiUrl output, checked below
}


@pytest.fixture(scope="module")
def translated() -> dict:
    pytest.importorskip("samtranslator", reason="aws-sam-translator is not installed (pip install -e '.[dev]')")
    spec = importlib.util.spec_from_file_location("sam_translate", ROOT / "infra" / "sam_translate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sam_translate"] = module
    spec.loader.exec_module(module)
    return module.translate(ROOT / "template.yaml", REGION)


def _store_settings(expr: dict) -> dict[str, object]:
    """StoreSettings is Fn::Sub [json, vars]: setting -> the expression each placeholder stands for."""
    text, variables = expr["Fn::Sub"]
    out: dict[str, object] = {}
    for key, value in json.loads(text).items():
        match = re.fullmatch(r"\$\{(\w+)\}", value)
        out[key] = (variables.get(match.group(1), {"Ref": match.group(1)}) if match else value)
    return out


def _provided(template: dict) -> dict[str, object]:
    """Setting -> the CloudFormation expression a stack's outputs give for it."""
    outputs = template["Outputs"]
    provided = {setting: outputs[key]["Value"] for key, setting in STACK_OUTPUTS.items()}
    provided.update(_store_settings(outputs[STORE_SETTINGS_OUTPUT]["Value"]))
    return provided


def test_translated_outputs_give_every_value_the_commands_need(translated):
    provided = _provided(translated)
    envs = {name: r["Properties"].get("Environment", {}).get("Variables", {})
            for name, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(envs) >= {"ChatFunction", "OffloadFunction", "GraphFunction", "MaintenanceFunction"}
    for command, settings in NEEDED.items():
        for setting in settings:
            assert setting in provided, f"`vicw {command} --stack` needs {setting}; no output gives it"
            users = {fn: env[setting] for fn, env in envs.items() if setting in env}
            assert users, f"no function reads {setting}"
            for fn, value in users.items():  # same expression as the function gets -> same value deployed
                assert value == provided[setting], f"{setting}: output {provided[setting]} != {fn}'s {value}"
    assert all(env.get("REDIS_URL", "") == "" for env in envs.values())  # the URL only ever comes from the secret
    api = json.dumps(translated["Outputs"][API_URL_OUTPUT]["Value"])
    assert "HttpApi" in api and "DomainName" in api


# --- the CLI against a stack in the moto server ---------------------------------------------------
def _refs(node: object) -> tuple[set[str], set[str]]:
    """(names referenced by Ref / GetAtt / Sub placeholders, condition names used by Fn::If)."""
    names: set[str] = set()
    conditions: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                names.add(value)
            elif key == "Fn::GetAtt":
                names.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                names |= {n.split(".")[0] for n in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(value, list):
                    names -= set(value[1])
            elif key == "Fn::If":
                conditions.add(value[0])
            elif key == "Condition" and isinstance(value, str):
                conditions.add(value)
            sub_names, sub_conditions = _refs(value)
            names |= sub_names
            conditions |= sub_conditions
    elif isinstance(node, list):
        for item in node:
            sub_names, sub_conditions = _refs(item)
            names |= sub_names
            conditions |= sub_conditions
    return names, conditions


def crafted_stack_template(translated: dict) -> dict:
    """The translated outputs the CLI reads, verbatim, over plain resources of the same names."""
    keys = [*STACK_OUTPUTS, STORE_SETTINGS_OUTPUT, API_URL_OUTPUT]
    outputs = {k: translated["Outputs"][k] for k in keys}
    names, conditions = _refs(outputs)
    for cond in list(conditions):
        names |= _refs(translated["Conditions"][cond])[0]
    resources = {}
    for name in names & set(translated["Resources"]):
        kind = translated["Resources"][name]["Type"]
        props = {"Name": name, "ProtocolType": "HTTP"} if kind == "AWS::ApiGatewayV2::Api" else {}
        resources[name] = {"Type": kind, "Properties": props}
    assert {r["Type"] for r in resources.values()} >= {"AWS::SQS::Queue", "AWS::SNS::Topic", "AWS::S3::Bucket"}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {n: p for n, p in translated["Parameters"].items() if n in names},
        "Conditions": {c: translated["Conditions"][c] for c in conditions},
        "Resources": resources,
        "Outputs": outputs,
    }


@pytest.fixture(scope="module")
def stack(translated, moto_endpoint, redis_url):
    from vicw.aws import client

    redis_name = translated["Parameters"]["RedisUrlSecret"]["Default"]
    client("ssm", REGION).put_parameter(Name=redis_name, Value=redis_url, Type="SecureString", Overwrite=True)
    cfn = client("cloudformation", REGION)
    cfn.create_stack(StackName=STACK, TemplateBody=json.dumps(crafted_stack_template(translated)))
    info = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert info["StackStatus"] == "CREATE_COMPLETE", info
    yield {o["OutputKey"]: o["OutputValue"] for o in info["Outputs"]}
    cfn.delete_stack(StackName=STACK)


@pytest.fixture()
def clean_env(moto_endpoint):
    """Only the moto endpoint and dummy credentials: every other value must come from the stack."""
    from vicw import aws, container
    from vicw.config import get_settings

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(("VICW_", "OFFLOAD_", "GRAPH_", "ARCHIVE_", "QDRANT_", "NEO4J_", "REDIS_", "FALKORDB_")):
            del os.environ[name]
    with patched_env({"VICW_DATA_DIR": "/nonexistent-vicw-data"}, clear=("AWS_REGION", "AWS_DEFAULT_REGION")):
        get_settings.cache_clear()
        aws.client.cache_clear()
        yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()
    aws.client.cache_clear()
    container.reset()


def test_config_show_reads_every_value_from_the_stack(stack, clean_env, capsys):
    assert main(["config", "show", "--json", "--stack", STACK, "--region", REGION]) == 0
    shown = json.loads(capsys.readouterr().out)
    for key, setting in STACK_OUTPUTS.items():
        assert shown[setting]["value"] == stack[key], setting
        assert shown[setting]["source"] == f"stack {STACK} ({REGION})"
    store = json.loads(stack[STORE_SETTINGS_OUTPUT])
    assert shown["GRAPH_BACKEND"]["value"] == store["GRAPH_BACKEND"] == "none"
    assert shown["EMBEDDING_MODEL"]["value"] == store["EMBEDDING_MODEL"]
    assert shown["REDIS_URL_SECRET"]["value"] == stack["RedisUrlSecret"] == "/vicw/dev/redis-url"
    assert stack["BackupUrl"].startswith("s3://") and stack["BackupUrl"].endswith("/nightly")


def test_replay_and_backup_against_the_stack(stack, clean_env, capsys):
    from vicw.archive import JobArchive
    from vicw.aws import client
    from vicw.models import OffloadJob

    sqs = client("sqs", REGION)
    sqs.send_message(QueueUrl=stack["OffloadDLQUrl"], MessageBody='{"not": "a job"}')
    assert main(["replay", "dlq", "--queue", "offload", "--json", "--stack", STACK, "--region", REGION]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["moved"], result["failed"]) == (1, 0)
    got = sqs.receive_message(QueueUrl=stack["OffloadQueueUrl"], WaitTimeSeconds=1)["Messages"]
    assert got[0]["Body"] == '{"not": "a job"}'
    assert main(["replay", "dlq", "--queue", "offload", "--stack", STACK, "--region", REGION]) == 3  # empty now
    assert "dead-letter queue is empty" in capsys.readouterr().err

    job = OffloadJob(job_id="job-ops-1", tenant="ops", session_id="s1", token_count=3,
                     turns=[{"role": "user", "content": "archived words", "seq": 1, "tokens": 3,
                             "timestamp": "2026-11-01T10:00:00Z"}])
    JobArchive(bucket=stack["ArchiveBucketName"], s3=client("s3", REGION)).put(job)
    assert main(["replay", "archive", "--target", "graph", "--tenant", "ops", "--json",
                 "--stack", STACK, "--region", REGION]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["found"], result["sent"], result["skipped"]) == (1, {"graph": 1}, 0)
    body = json.loads(sqs.receive_message(QueueUrl=stack["GraphQueueUrl"], WaitTimeSeconds=1)["Messages"][0]["Body"])
    assert body["job_id"] == job.job_id

    # The deployed stack's stores are network servers: backups run in this process, to BackupUrl.
    assert main(["backup", "create", "--no-archive", "--stack", STACK, "--region", REGION]) == 0
    manifest = json.loads(capsys.readouterr().out)
    bucket = stack["BackupUrl"][len("s3://"):].split("/")[0]
    keys = [o["Key"] for o in client("s3", REGION).list_objects_v2(Bucket=bucket, Prefix="nightly/")["Contents"]]
    assert any(k.endswith("/manifest.json") for k in keys) and manifest["format"] == "vicw-backup"


def test_stack_errors_are_one_line(stack, clean_env, capsys):
    assert main(["replay", "dlq", "--queue", "graph", "--stack", "no-such-stack", "--region", REGION]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-such-stack" in err and "Traceback" not in err
    assert main(["status", "--stack", STACK]) == 2  # no region anywhere
    assert "--region" in capsys.readouterr().err


def test_credentials_in_urls_are_masked():
    from vicw.redaction import MASK

    assert mask_url("rediss://:s3cret@cache.example:6379/0") == f"rediss://:{MASK}@cache.example:6379/0"
    assert mask_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000"
