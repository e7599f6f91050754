"""The cold-path AWS resources of template.yaml, created against any endpoint boto3 points at.

Locally (moto, LocalStack) nothing runs CloudFormation for us, so this module reads the same
template.yaml that `sam deploy` uses and creates its SNS topic, SQS queues (with their
dead-letter queues and redrive policies), topic → queue subscriptions and S3 bucket with the same
settings. Local runs and tests therefore exercise the deployed shape, not a hand-kept copy.

Finding the template: an explicit path, else $VICW_TEMPLATE_PATH, else `template.yaml` at the
repository root next to this package (a checkout or an editable install), else in the current
directory or one of its parents. A wheel install outside a checkout has no template: set
VICW_TEMPLATE_PATH then. (The file is not duplicated into the package so it cannot drift.)

The environment variables each Lambda function reads are listed once, in FUNCTION_SETTINGS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vicw.aws import client

TEMPLATE_NAME = "template.yaml"

# Settings fields (vicw/config.py) each function needs from its environment, by logical id in
# template.yaml. tests/infrastructure checks every one is set on that function in the template.
_COMMON = ("log_level", "redis_url", "redis_url_secret", "redis_require_tls")
FUNCTION_SETTINGS: dict[str, tuple[str, ...]] = {
    "ChatFunction": (
        *_COMMON,
        "offload_topic_arn", "offload_queue_url", "graph_queue_url", "offload_dlq_url", "graph_dlq_url",
        "archive_bucket", "max_receive_count",
        "qdrant_url", "qdrant_api_key_secret", "qdrant_collection",
        "graph_backend", "neo4j_uri", "neo4j_user", "neo4j_password_secret",
        "vicw_llm_provider", "vicw_llm_api_url", "vicw_llm_model_name", "vicw_llm_api_key_secret",
        "bedrock_model_id", "llm_timeout", "llm_max_tokens",
        "vicw_api_keys_parameter", "rate_limits", "vicw_public_docs",
        "max_context_tokens", "offload_threshold", "hysteresis_threshold", "target_after_relief",
    ),
    "OffloadFunction": (
        *_COMMON,
        "qdrant_url", "qdrant_api_key_secret", "qdrant_collection", "archive_bucket", "embedding_model", "embedding_dim",
        "cold_path_batch_size", "cold_path_workers", "max_receive_count",
    ),
    "GraphFunction": (
        *_COMMON,
        "graph_backend", "neo4j_uri", "neo4j_user", "neo4j_password_secret",
        "cold_path_batch_size", "cold_path_workers", "max_receive_count",
    ),
    "MaintenanceFunction": (
        *_COMMON,
        "retention_days", "archive_bucket",
        "offload_topic_arn", "outbox_resend_after_seconds",  # outbox re-send
        "vicw_backup_url", "embedding_model", "embedding_dim",  # nightly backup
        "qdrant_url", "qdrant_api_key_secret", "qdrant_collection",
        "graph_backend", "neo4j_uri", "neo4j_user", "neo4j_password_secret",
    ),
}


# --- reading the template ------------------------------------------------------------------------
def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> dict[str, Any]:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


@lru_cache(maxsize=1)
def _cfn_loader() -> type:
    """A safe YAML loader that turns CloudFormation short forms (!Ref, !GetAtt, ...) into the
    long JSON forms ({"Ref": ...}, {"Fn::GetAtt": [...]}), as CloudFormation itself does.
    (PyYAML is a development dependency: imported only when a template is read.)"""
    import yaml

    loader = type("CfnLoader", (yaml.SafeLoader,), {})
    loader.add_multi_constructor("!", _construct_intrinsic)
    return loader


def load_template(text: str) -> dict[str, Any]:
    import yaml

    return yaml.load(text, Loader=_cfn_loader())  # noqa: S506 - a SafeLoader subclass


def find_template(template_path: Path | str | None = None) -> Path:
    candidates: list[Path] = []
    if template_path is not None:
        candidates.append(Path(template_path))
    elif os.environ.get("VICW_TEMPLATE_PATH"):
        candidates.append(Path(os.environ["VICW_TEMPLATE_PATH"]))
    else:
        candidates.append(Path(__file__).resolve().parent.parent / TEMPLATE_NAME)
        cwd = Path.cwd()
        candidates += [d / TEMPLATE_NAME for d in (cwd, *cwd.parents)]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{TEMPLATE_NAME} not found (looked at {', '.join(map(str, candidates[:3]))}...); "
        "pass template_path or set VICW_TEMPLATE_PATH"
    )


@lru_cache(maxsize=8)
def _read_template(path: Path, mtime: float) -> dict[str, Any]:  # mtime: re-read when the file changes
    return load_template(path.read_text())


def read_template(template_path: Path | str | None = None) -> dict[str, Any]:
    path = find_template(template_path)
    return _read_template(path, path.stat().st_mtime)


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(p["Default"]) for name, p in template.get("Parameters", {}).items() if "Default" in p}


def _resolve_number(value: Any, params: Mapping[str, str]) -> int:
    if isinstance(value, dict) and "Ref" in value:
        return int(params[value["Ref"]])
    return int(value)


# --- what the template declares -------------------------------------------------------------------
@dataclass(frozen=True)
class QueueDef:
    visibility_timeout: int
    max_receive_count: int | None  # None for a queue without a redrive policy (a DLQ)
    dlq_name: str | None  # logical id of its dead-letter queue
    retention_seconds: int | None = None


def _resources(template: Mapping[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == type_}


def queue_definitions(
    template_path: Path | str | None = None, parameters: Mapping[str, str] | None = None
) -> dict[str, QueueDef]:
    """Every SQS queue of the template by logical id, with parameter defaults (or `parameters`)."""
    template = read_template(template_path)
    params = {**parameter_defaults(template), **(parameters or {})}
    out: dict[str, QueueDef] = {}
    for name, res in _resources(template, "AWS::SQS::Queue").items():
        props = res.get("Properties", {})
        redrive = props.get("RedrivePolicy")
        out[name] = QueueDef(
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            max_receive_count=_resolve_number(redrive["maxReceiveCount"], params) if redrive else None,
            dlq_name=redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] if redrive else None,
            retention_seconds=int(props["MessageRetentionPeriod"]) if "MessageRetentionPeriod" in props else None,
        )
    return out


def function_environment(template: Mapping[str, Any], function: str) -> dict[str, Any]:
    """The environment a function gets: Globals merged with its own variables (its own win)."""
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own = template["Resources"][function].get("Properties", {}).get("Environment", {}).get("Variables", {})
    return {**glob, **own}


def physical_name(prefix: str, logical_id: str) -> str:
    """Local resource name: `vicw-offload-queue` for prefix `vicw` and `OffloadQueue`."""
    words: list[str] = []
    for ch in logical_id:
        if ch.isupper() and words and not words[-1][-1:].isupper():
            words.append(ch)
        elif words:
            words[-1] += ch
        else:
            words.append(ch)
    return "-".join([prefix, *(w.lower() for w in words)])


# --- creating them ------------------------------------------------------------------------------
def _create_bucket(s3: Any, name: str, props: Mapping[str, Any], region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    for rule in props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", []):
        algorithm = rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}]},
        )


def ensure_local_resources(
    prefix: str = "vicw",
    template_path: Path | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create (or find) the template's topic, queues, subscriptions and bucket; idempotent.

    Returns environment variable → value for every chat-function variable the template binds to
    one of these resources (OFFLOAD_TOPIC_ARN, OFFLOAD_QUEUE_URL, GRAPH_QUEUE_URL,
    OFFLOAD_DLQ_URL, GRAPH_DLQ_URL, ARCHIVE_BUCKET).
    """
    template = read_template(template_path)
    params = {**parameter_defaults(template), **(parameters or {})}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    sqs, sns, s3 = client("sqs", region), client("sns", region), client("s3", region)

    # Ref / GetAtt values of the created resources, by logical id.
    ref: dict[str, str] = {}
    arn: dict[str, str] = {}

    queues = queue_definitions(template_path, params)
    # Dead-letter queues first: a redrive policy needs its target's ARN.
    for name in sorted(queues, key=lambda n: queues[n].dlq_name is not None):
        q = queues[name]
        attrs = {"VisibilityTimeout": str(q.visibility_timeout)}
        if q.retention_seconds:
            attrs["MessageRetentionPeriod"] = str(q.retention_seconds)
        if q.dlq_name:
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": arn[q.dlq_name], "maxReceiveCount": q.max_receive_count}
            )
        url = sqs.create_queue(QueueName=physical_name(prefix, name))["QueueUrl"]
        # create_queue refuses changed attributes on an existing queue; set them explicitly instead.
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
        ref[name] = url
        arn[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    for name in _resources(template, "AWS::SNS::Topic"):
        topic_arn = sns.create_topic(Name=physical_name(prefix, name))["TopicArn"]  # idempotent by name
        ref[name] = arn[name] = topic_arn

    for res in _resources(template, "AWS::SNS::Subscription").values():
        props = res["Properties"]
        topic_arn = ref[props["TopicArn"]["Ref"]]
        endpoint = arn[props["Endpoint"]["Fn::GetAtt"][0]]
        existing = {
            s["Endpoint"]: s["SubscriptionArn"]
            for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        }
        sub_arn = existing.get(endpoint) or sns.subscribe(
            TopicArn=topic_arn, Protocol=props["Protocol"], Endpoint=endpoint, ReturnSubscriptionArn=True
        )["SubscriptionArn"]
        raw = str(props.get("RawMessageDelivery", False)).lower()
        sns.set_subscription_attributes(SubscriptionArn=sub_arn, AttributeName="RawMessageDelivery", AttributeValue=raw)

    for name, res in _resources(template, "AWS::S3::Bucket").items():
        bucket = physical_name(prefix, name)
        _create_bucket(s3, bucket, res.get("Properties", {}), region)
        ref[name] = bucket

    env: dict[str, str] = {}
    for var, value in function_environment(template, "ChatFunction").items():
        if isinstance(value, dict) and value.get("Ref") in ref:
            env[var] = ref[value["Ref"]]
    return env
