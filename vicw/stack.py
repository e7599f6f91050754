"""Which VICW an operator command acts on, and the settings it needs to reach it.

One rule for every operator command (`status`, `ingest`, `replay`, `backup`, `config show`):

1. `--stack NAME [--region R]`: a deployed stack. Queue URLs, topic, buckets and store settings
   come from the CloudFormation stack's Outputs, among them `RedisUrlSecret`: the name of the SSM
   parameter or Secrets Manager secret holding the Redis URL, read at run time exactly as the
   functions read it (vicw/bootstrap.py), so the URL itself never passes through the command.
2. otherwise a running `vicw local`, found through the connection file in `--data-dir`
   (default `$VICW_DATA_DIR`, else `.vicw`, the same default as `vicw local`);
3. otherwise the environment, as the Lambda functions read it (`OFFLOAD_QUEUE_URL`, ...).

A command that still lacks a setting fails with one line naming it and these three ways to supply it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Literal

from vicw.config import SettingsError
from vicw.redaction import mask_credentials

# Stack output -> the setting (environment variable) it provides. template.yaml must export each.
STACK_OUTPUTS: dict[str, str] = {
    "OffloadTopicArn": "OFFLOAD_TOPIC_ARN",
    "OffloadQueueUrl": "OFFLOAD_QUEUE_URL",
    "GraphQueueUrl": "GRAPH_QUEUE_URL",
    "OffloadDLQUrl": "OFFLOAD_DLQ_URL",
    "GraphDLQUrl": "GRAPH_DLQ_URL",
    "ArchiveBucketName": "ARCHIVE_BUCKET",
    "BackupUrl": "VICW_BACKUP_URL",
    "ApiKeysParameterName": "VICW_API_KEYS_PARAMETER",
    "RedisUrlSecret": "REDIS_URL_SECRET",
}
# One output holding the store settings taken from template parameters, as a JSON object
# (several may be empty: optional stores are switched off by an empty parameter).
STORE_SETTINGS_OUTPUT = "StoreSettings"
API_URL_OUTPUT = "ApiUrl"

DEFAULT_DATA_DIR = ".vicw"


class TargetError(SettingsError):
    """An operator command cannot find the stack, or a setting it needs."""


def default_data_dir() -> str:
    return os.environ.get("VICW_DATA_DIR") or DEFAULT_DATA_DIR


def mask_url(value: str) -> str:
    """Hide the credentials in a URL (see vicw.redaction): redis://:s3cret@host -> redis://:****@host."""
    return mask_credentials(value)


def mask_text(text: str) -> str:
    """mask_url applied to every URL in a message."""
    return mask_credentials(text)


@dataclass
class Target:
    kind: Literal["local", "stack", "environment"]
    description: str
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    api_key: str | None = None
    hint: str = ""  # why no local stack was used, when that matters to an error

    def apply(self) -> None:
        """Make this target's settings the process's settings (boto3 and Settings read the environment)."""
        os.environ.update(self.env)
        from vicw import aws, bootstrap
        from vicw.config import get_settings

        get_settings.cache_clear()
        aws.client.cache_clear()
        bootstrap.reset()

    def missing(self, setting: str, what: str) -> TargetError:
        """The one-line error for a setting this target does not provide."""
        if self.kind == "stack":
            how = f"{self.description} has no value for it (deploy the current template.yaml)"
        elif self.kind == "local":
            how = f"{self.description} did not provide it; restart `vicw local`"
        else:
            how = (f"start `vicw local` (or pass --data-dir to the one running), pass --stack NAME for a "
                   f"deployed stack, or export {setting}")
            if self.hint:
                how = f"{self.hint}; {how}"
        return TargetError(f"{what} needs {setting}: {how}")


def resolve(*, data_dir: str | None = None, stack: str | None = None, region: str | None = None) -> Target:
    if stack:
        return from_stack(stack, region)
    from vicw.local.connection import read_connection

    explicit = data_dir is not None
    folder = data_dir if explicit else default_data_dir()
    conn, why = read_connection(folder)
    if conn is not None and conn.pid == os.getpid():
        # `vicw local` runs in this very process (tests, embedding): its settings are the environment.
        return Target("environment", "this process's settings", url=conn.url, api_key=conn.api_key())
    if conn is not None:
        return Target("local", f"vicw local at {conn.url} ({conn.path})", env=conn.env, url=conn.url, api_key=conn.api_key())
    if explicit:
        raise TargetError(f"{why}; start it with `vicw local --data-dir {folder}`")
    return Target("environment", "the environment's settings", url=os.environ.get("VICW_URL"), hint=why)


def from_stack(name: str, region: str | None = None) -> Target:
    """Read a deployed stack's outputs (DescribeStacks) into settings."""
    from botocore.exceptions import BotoCoreError, ClientError

    from vicw.aws import client

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise TargetError(f"--stack {name} needs a region: pass --region or set AWS_REGION")
    try:
        stacks = client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        raise TargetError(f"stack {name} in {region}: {exc.response.get('Error', {}).get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise TargetError(f"cannot read stack {name} in {region}: {mask_text(str(exc))}") from None
    if not stacks:
        raise TargetError(f"stack {name} not found in {region}")
    info = stacks[0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in info.get("Outputs", [])}
    env: dict[str, str] = {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    for key, setting in STACK_OUTPUTS.items():
        if outputs.get(key):
            env[setting] = outputs[key]
    if outputs.get(STORE_SETTINGS_OUTPUT):
        try:
            stored = json.loads(outputs[STORE_SETTINGS_OUTPUT])
        except ValueError:
            raise TargetError(f"stack {name}: output {STORE_SETTINGS_OUTPUT} is not JSON") from None
        env.update({str(k): str(v) for k, v in stored.items() if v not in (None, "")})
    return Target("stack", f"stack {name} ({region})", env=env, url=outputs.get(API_URL_OUTPUT))
