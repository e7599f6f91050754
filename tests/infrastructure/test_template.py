"""template.yaml itself: settings wiring, parameters, queues, layers, and a SAM transform."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from vicw.aws_resources import (
    FUNCTION_SETTINGS,
    function_environment,
    load_template,
    queue_definitions,
    read_template,
)
from vicw.config import Settings

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return read_template(TEMPLATE_PATH)


def _functions(template: dict) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_function_has_a_settings_list_and_the_reverse(template):
    assert set(_functions(template)) == set(FUNCTION_SETTINGS)


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_function_gets_every_setting_it_reads(template, function):
    env = function_environment(template, function)
    for field in FUNCTION_SETTINGS[function]:
        assert field in Settings.model_fields, f"{field} is not a Settings field (vicw/config.py)"
        assert field.upper() in env, f"{function} reads {field.upper()} but the template does not set it"


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_function_environment_names_are_known_settings_or_runtime_variables(template, function):
    runtime_vars = {"HF_HUB_OFFLINE", "FASTEMBED_CACHE_PATH", "TIKTOKEN_CACHE_DIR"}
    for var in function_environment(template, function):
        if var.startswith("POWERTOOLS_") or var in runtime_vars:
            continue
        assert var.lower() in Settings.model_fields, f"{function}: {var} is not a Settings field (typo?)"


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_settings_named_in_handler_code_are_wired(template, function):
    """Any `settings.<field>` the handler module touches must be in that function's list."""
    code_dir = ROOT / template["Resources"][function]["Properties"]["CodeUri"]
    used = set()
    for path in code_dir.glob("**/*.py"):
        used |= set(re.findall(r"\b(?:get_)?settings(?:\(\))?\.([a-z_][a-z0-9_]*)", path.read_text()))
    missing = {f for f in used if f in Settings.model_fields} - set(FUNCTION_SETTINGS[function])
    assert not missing, f"{function} code reads {sorted(missing)}: add them to FUNCTION_SETTINGS and the template"


def test_default_settings_validate_for_the_chat_function(template, monkeypatch):
    """The template's default values must satisfy the Settings validators (thresholds, token budget)."""
    from vicw.aws_resources import parameter_defaults

    params = parameter_defaults(template)
    env = function_environment(template, "ChatFunction")
    for var, value in env.items():
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
            monkeypatch.setenv(var, params[value["Ref"]])
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    settings = Settings()
    assert settings.llm_timeout < template["Resources"]["ChatFunction"]["Properties"]["Timeout"]


def test_every_parameter_is_used(template):
    refs = set()
    for node in _walk({k: v for k, v in template.items() if k != "Parameters"}):
        if isinstance(node, dict) and "Ref" in node:
            refs.add(node["Ref"])
        if isinstance(node, dict) and "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            refs |= set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    unused = set(template["Parameters"]) - refs
    assert not unused, f"unused parameters: {sorted(unused)}"


def test_chat_timeout_fits_api_gateway_and_llm_timeout_fits_chat(template):
    chat = template["Resources"]["ChatFunction"]["Properties"]
    assert chat["Timeout"] <= 29
    llm = template["Parameters"]["LlmTimeoutSeconds"]
    assert llm["MaxValue"] < chat["Timeout"] and llm["Default"] < chat["Timeout"]


def test_cold_path_queues_have_dlqs_and_visibility_six_times_consumer_timeout(template):
    queues = queue_definitions(TEMPLATE_PATH)
    consumers = {}
    for name, fn in _functions(template).items():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                consumers[event["Properties"]["Queue"]["Fn::GetAtt"][0]] = (name, event["Properties"])
    assert set(consumers) == {"OffloadQueue", "GraphQueue"}
    dlqs = {q.dlq_name for q in queues.values() if q.dlq_name}
    assert len(dlqs) == 2, "each cold-path queue needs its own DLQ"
    default_receives = template["Parameters"]["MaxReceiveCount"]["Default"]
    for queue, (function, props) in consumers.items():
        q = queues[queue]
        assert q.dlq_name in queues and queues[q.dlq_name].dlq_name is None
        assert q.max_receive_count == default_receives
        timeout = template["Resources"][function]["Properties"]["Timeout"]
        assert q.visibility_timeout >= 6 * timeout, f"{queue}: visibility < 6 x {function} timeout"
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BatchSize"] == {"Ref": "ColdPathBatchSize"}
        assert props["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "ColdPathWorkers"}
        assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "ColdPathBatchingWindowSeconds"}
    assert template["Parameters"]["ColdPathWorkers"]["MinValue"] >= 2


def test_subscriptions_use_raw_delivery(template):
    subs = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::Subscription"]
    assert {s["Properties"]["Endpoint"]["Fn::GetAtt"][0] for s in subs} == {"OffloadQueue", "GraphQueue"}
    assert all(s["Properties"]["RawMessageDelivery"] is True for s in subs)


def test_archive_bucket_is_private_encrypted_versioned_and_expires(template):
    props = template["Resources"]["ArchiveBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    rule = props["LifecycleConfiguration"]["Rules"][0]
    assert rule["ExpirationInDays"] == {"Ref": "ArchiveRetentionDays"}


def test_backup_bucket_is_private_encrypted_and_expires_every_version(template):
    props = template["Resources"]["BackupBucket"]["Properties"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and "Prefix" not in rule and "Filter" not in rule
    assert rule["ExpirationInDays"] == {"Ref": "BackupRetentionDays"}
    assert template["Parameters"]["BackupRetentionDays"]["Default"] == 30
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    assert template["Outputs"]["BackupBucketName"]["Value"] == {"Ref": "BackupBucket"}


def _policy_statements(template: dict, function: str) -> list[dict]:
    out = []
    for policy in template["Resources"][function]["Properties"].get("Policies", []):
        for node in _walk(policy):
            if isinstance(node, dict) and "Statement" in node:
                out += node["Statement"]
    return out


def _sam_policy_targets(template: dict, function: str, policy: str) -> list:
    return [p[policy] for p in template["Resources"][function]["Properties"]["Policies"] if isinstance(p, dict) and policy in p]


def _granted(template: dict, function: str) -> set[tuple[str, str]]:
    """(action, resource as JSON) pairs of a function's inline statements."""
    out = set()
    for s in _policy_statements(template, function):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        out |= {(json.dumps(a), json.dumps(r, sort_keys=True)) for a in actions for r in resources}
    return out


@pytest.mark.parametrize("function", ["ChatFunction", "MaintenanceFunction"])
def test_functions_that_forget_may_delete_every_archive_version(template, function):
    granted = _granted(template, function)
    assert (json.dumps("s3:ListBucketVersions"), json.dumps({"Fn::GetAtt": ["ArchiveBucket", "Arn"]})) in granted
    assert (json.dumps("s3:DeleteObjectVersion"), json.dumps({"Fn::Sub": "${ArchiveBucket.Arn}/*"})) in granted


@pytest.mark.parametrize("function", sorted(FUNCTION_SETTINGS))
def test_least_privilege(template, function):
    """Explicit S3 actions (no bucket configuration, ACL or policy changes); chat publishes to the
    topic only; every function may read the Redis URL secret and nothing is granted on "*"."""
    policies = template["Resources"][function]["Properties"]["Policies"]
    text = json.dumps(policies)
    assert "S3CrudPolicy" not in text and "S3FullAccessPolicy" not in text
    assert not any(a in text for a in ("s3:PutBucket", "s3:PutObjectAcl", "s3:DeleteBucket", '"s3:*"'))
    assert "ReadRedisUrl" in text
    if function == "ChatFunction":
        assert "SQSSendMessagePolicy" not in text and "sqs:SendMessage" not in text
        assert "inference-profile/${BedrockModelId}" in text
    for s in _policy_statements(template, function):
        assert s["Resource"] != "*", (function, s)


def test_maintenance_function_can_resend_the_outbox_and_write_backups(template):
    env = function_environment(template, "MaintenanceFunction")
    assert env["VICW_BACKUP_URL"] == {"Fn::Sub": "s3://${BackupBucket}/nightly"}
    assert env["OFFLOAD_TOPIC_ARN"] == {"Ref": "OffloadTopic"}
    offload = function_environment(template, "OffloadFunction")
    # The backup manifest records the embedding model; it must be the one the vectors come from.
    assert (env["EMBEDDING_MODEL"], env["EMBEDDING_DIM"]) == (offload["EMBEDDING_MODEL"], offload["EMBEDDING_DIM"])
    assert (json.dumps("s3:PutObject"), json.dumps({"Fn::Sub": "${BackupBucket.Arn}/nightly/*"})) in _granted(
        template, "MaintenanceFunction")
    assert _sam_policy_targets(template, "MaintenanceFunction", "SNSPublishMessagePolicy") == _sam_policy_targets(
        template, "ChatFunction", "SNSPublishMessagePolicy"
    )
    props = template["Resources"]["MaintenanceFunction"]["Properties"]
    assert props["EphemeralStorage"]["Size"] == {"Ref": "MaintenanceEphemeralStorageMB"}
    storage = template["Parameters"]["MaintenanceEphemeralStorageMB"]
    assert 512 <= storage["MinValue"] <= storage["Default"] <= storage["MaxValue"] <= 10240


def test_llm_errors_alarm_watches_the_metric_the_app_emits(template):
    from vicw.observability import M

    alarm = template["Resources"]["LlmErrorsAlarm"]["Properties"]
    glob = template["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["MetricName"] == M.LLM_ERRORS
    assert alarm["Namespace"] == glob["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"] == [{"Name": "service", "Value": glob["POWERTOOLS_SERVICE_NAME"]}]
    assert "backup" in template["Resources"]["MaintenanceErrorsAlarm"]["Properties"]["AlarmDescription"]


def test_functions_use_the_layers_and_a_runtime_the_layers_target(template):
    glob = template["Globals"]["Function"]
    assert {layer["Ref"] for layer in glob["Layers"]} == {"DepsLayer", "VicwLayer"}
    # The embedding stack only where text is embedded.
    for name, fn in _functions(template).items():
        wanted = {"ChatFunction": [{"Ref": "EmbedLayer"}, {"Ref": "McpLayer"}],
                  "OffloadFunction": [{"Ref": "EmbedLayer"}]}.get(name)
        assert fn["Properties"].get("Layers") == wanted, name
    for name in ("DepsLayer", "EmbedLayer", "McpLayer", "VicwLayer"):
        props = template["Resources"][name]["Properties"]
        assert props["CompatibleRuntimes"] == [glob["Runtime"]]
    makefile = (ROOT / "layers" / "Makefile").read_text()
    assert f"LAMBDA_PYTHON := {glob['Runtime'].removeprefix('python')}" in makefile


def test_deps_layer_requirements_match_pyproject():
    def names(lines):
        return {re.split(r"[\[<>=!~; ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-") for line in lines}

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    def listed(*parts):
        return [line for line in (ROOT / "layers" / Path(*parts)).read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]

    deps, embed, mcp = (names(listed(layer, "requirements.txt")) for layer in ("deps", "embed", "mcp"))
    assert deps | embed | mcp == names(project) and not deps & embed and not deps & mcp and not embed & mcp
    # Every distribution an extra layer installs is pinned, and none is a DepsLayer requirement.
    pinned = names(listed("deps", "constraints.txt"))
    for layer in ("embed", "mcp"):
        assert names(listed(layer, "packages.txt")) <= pinned, layer
        assert not names(listed(layer, "packages.txt")) & deps, layer


def test_short_form_intrinsics_become_long_form():
    doc = load_template("A: !Ref X\nB: !GetAtt Q.Arn\nC: !Sub 'x-${Y}'\nD: !If [c, 1, 2]\nE: !Join ['', [a, b]]\n")
    assert doc == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["Q", "Arn"]},
        "C": {"Fn::Sub": "x-${Y}"},
        "D": {"Fn::If": ["c", 1, 2]},
        "E": {"Fn::Join": ["", ["a", "b"]]},
    }


def test_samconfig_has_dev_and_prod_with_a_confirmed_prod_changeset(template):
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    for env in ("dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["stack_name"] and deploy["region"]
        assert "CAPABILITY_IAM" in deploy["capabilities"].split()
        overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
        assert overrides["Stage"] == env
        assert set(overrides) <= set(template["Parameters"]), "samconfig overrides an unknown parameter"


def test_sam_transform_succeeds(template):
    samtranslator = pytest.importorskip(
        "samtranslator", reason="aws-sam-translator is not installed here (.ci/static_checks.sh runs this transform)"
    )
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("sam_translate", ROOT / "infra" / "sam_translate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sam_translate"] = module
    spec.loader.exec_module(module)
    result = module.translate(TEMPLATE_PATH)
    types = {r["Type"] for r in result["Resources"].values()}
    assert "AWS::Lambda::EventSourceMapping" in types and "AWS::ApiGatewayV2::Api" in types
    mappings = [r["Properties"] for r in result["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    json.dumps(result, default=str)
    assert samtranslator


def test_rules_refuse_a_stack_that_would_deploy_but_not_work(template):
    """A missing Qdrant URL, model or prod alarm topic fails the deploy with a message, not later."""
    rules = template["Rules"]
    text = json.dumps(rules)
    for param in ("QdrantUrl", "LlmApiUrl", "BedrockModelId", "AlarmTopicArn"):
        assert f'"Ref": "{param}"' in text, f"no rule checks {param}"
    assert rules["ProdPagesSomeone"]["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    for rule in rules.values():
        assert all(a["AssertDescription"] for a in rule["Assertions"])


def test_every_alarm_notifies_the_topic_and_app_metrics_exist(template):
    from vicw.observability import M

    names = {v for k, v in vars(M).items() if k.isupper()}
    alarms = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    for required in ("Api5xxAlarm", "ApiLatencyAlarm", "OffloadQueueAgeAlarm", "GraphQueueAgeAlarm", "OffloadDLQAlarm",
                     "GraphDLQAlarm", "MemoryUnavailableAlarm", "ColdPathFailuresAlarm", "MaintenanceNotRunAlarm"):
        assert required in alarms
    for name, props in alarms.items():
        assert props["AlarmActions"] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}, name
        if props.get("Namespace") == {"Fn::Sub": "VICW/${Stage}"}:
            assert props["MetricName"] in names, f"{name} watches {props['MetricName']}, which the app never emits"
