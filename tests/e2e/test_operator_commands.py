"""Operator commands against a real `vicw local`, each run as its own process with no VICW or AWS
environment variables: they find the stack through the connection file it writes.

One `vicw local` subprocess serves the whole module (tmp data dir, free port). The runbooks'
`vicw` commands are taken from docs/runbooks/*.md verbatim: all of them must parse, and the ones
that need nothing from a shell variable are run against this stack.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import patient, wait_until
from vicw.local.services import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = "# Lighthouse log\n\nThe keeper, Ottilie, repaints the lamp room every third Tuesday in teal.\n"


def bare_env() -> dict[str, str]:
    """What an operator's fresh shell has: no VICW_*, AWS_* or store settings at all."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update({"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"})
    return env


def vicw(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vicw.cli", *args], cwd=cwd, env=bare_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    """stderr lines other than the target note and progress bars."""
    lines = [ln for ln in re.split(r"[\r\n]+", proc.stderr) if ln.strip()]
    return [ln for ln in lines if not ln.startswith("using vicw local") and "|" not in ln]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("operator")
    data = home / ".vicw"  # the default data dir, seen from `home`
    port = free_port()
    env = {**bare_env(), "VICW_LLM_PROVIDER": "none", "COLD_PATH_WORKERS": "1",
           "HEALTH_CHECK_TIMEOUT": str(patient(30))}  # a busy test machine answers slower than production
    log = open(home / "local.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "vicw.cli", "local", "--port", str(port)], cwd=home, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: (data / "connection.json").exists() or proc.poll() is not None, 120, what="vicw local up")
        assert proc.poll() is None, Path(log.name).read_text()
        conn = json.loads((data / "connection.json").read_text())
        key = (data / "dev-api-key").read_text().strip()
        with httpx.Client(base_url=conn["url"], headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            yield {"home": home, "data": data, "proc": proc, "conn": conn, "http": http, "log": Path(log.name)}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def stats(stack) -> dict:
    return stack["http"].get("/stats").json()


def idle(stack) -> dict | None:
    s = stats(stack)
    q = s["queues"]
    return s if all(q[n]["visible"] == 0 and q[n]["in_flight"] == 0 for n in ("offload", "graph")) else None


def test_connection_file_is_private_and_names_no_secret(stack):
    path = stack["data"] / "connection.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert (stack["data"] / "dev-api-key").read_text().strip() not in text
    assert stack["conn"]["pid"] == stack["proc"].pid


def test_status_and_ingest_find_the_stack(stack):
    out = vicw("status", cwd=stack["home"])
    assert out.returncode == 0, out.stderr
    assert "HEALTHY" in out.stdout and "tenant dev" in out.stdout
    (stack["home"] / "lighthouse.md").write_text(DOC)
    out = vicw("ingest", "lighthouse.md", cwd=stack["home"])
    assert out.returncode == 0, out.stderr
    assert "lighthouse.md: 1 parts" in out.stdout
    s = wait_until(lambda: (s := idle(stack)) and s["vectors"].get("points", 0) >= 1 and s, 120, what="ingest embedded")
    assert s["vectors"]["points"] == 1


def test_replay_archive_twice_changes_nothing(stack):
    before = wait_until(lambda: idle(stack), 120)
    for _ in range(2):  # safe to run twice
        out = vicw("replay", "archive", "--target", "all", "--json", cwd=stack["home"])
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        assert (result["found"], result["jobs"], result["skipped"]) == (1, 1, 0)
        assert result["sent"] == {"offload": 1, "graph": 1} and result["failed"] == {"offload": 0, "graph": 0}
        after = wait_until(lambda: idle(stack), 120)
        assert after["vectors"] == before["vectors"] and after["graph"] == before["graph"]


def test_replay_dlq_moves_messages_back(stack):
    env = stack["conn"]["env"]
    aws = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": env["AWS_REGION"],
           "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto takes any
    import boto3

    s3, client = boto3.client("s3", **aws), boto3.client("sqs", **aws)
    key = s3.list_objects_v2(Bucket=env["ARCHIVE_BUCKET"])["Contents"][0]["Key"]
    job = s3.get_object(Bucket=env["ARCHIVE_BUCKET"], Key=key)["Body"].read().decode()
    client.send_message(QueueUrl=env["OFFLOAD_DLQ_URL"], MessageBody=job)  # as if it had failed 3 times
    before = wait_until(lambda: idle(stack), 120)
    processed = before["workers"]["offload"]["processed"]
    out = vicw("replay", "dlq", "--queue", "offload", "--json", cwd=stack["home"])
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["moved"], result["failed"], result["dlq_depth_after"]) == (1, 0, 0)
    after = wait_until(lambda: (s := idle(stack)) and s["workers"]["offload"]["processed"] > processed and s, 120,
                       what="the replayed job processed")
    assert after["queues"]["offload"]["dlq"] == 0 and after["vectors"] == before["vectors"]  # idempotent
    out = vicw("replay", "dlq", "--queue", "offload", cwd=stack["home"])  # twice: nothing left to move
    assert out.returncode == 3
    assert errors(out) == ["vicw replay dlq --queue offload: the offload dead-letter queue is empty; nothing to replay"]


def test_backup_create_and_restore_through_the_running_stack(stack):
    out = vicw("backup", "create", "--to", "ops-drill", "--json", cwd=stack["home"])
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["manifest"]["counts"]["vectors"] == 1
    assert (stack["data"] / "backups" / "ops-drill" / "manifest.json").is_file()
    out = vicw("backup", "restore", "--from", "ops-drill", cwd=stack["home"])
    assert out.returncode == 1 and len(errors(out)) == 1 and "--force" in errors(out)[0]  # stores hold data
    out = vicw("backup", "restore", "--from", "ops-drill", "--force", "--json", cwd=stack["home"])
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["verified"] is True


def test_config_show_and_data_dir_from_elsewhere(stack, tmp_path):
    out = vicw("config", "show", "--json", "--data-dir", str(stack["data"]), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["OFFLOAD_QUEUE_URL"]["value"] == stack["conn"]["env"]["OFFLOAD_QUEUE_URL"]
    assert shown["REDIS_URL"]["source"].startswith("vicw local at ")
    out = vicw("status", "--json", "--data-dir", str(stack["data"]), cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["stats"]["tenant"] == "dev"


def runbook_commands() -> list[str]:
    """Every `vicw ...` command in the runbooks, verbatim (code blocks and inline code)."""
    found: list[str] = []
    for page in sorted((ROOT / "docs" / "runbooks").glob("*.md")):
        text = page.read_text()
        blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
        for block in blocks:
            for line in block.splitlines():
                line = line.strip()
                if line.startswith("vicw "):
                    found.append(re.split(r"\s+#", line)[0].strip())
        outside = re.sub(r"```.*?```", "", text, flags=re.S)
        found += [m for m in re.findall(r"`(vicw [^`]+)`", outside)]
    return list(dict.fromkeys(found))


@pytest.fixture()
def bare_here(stack, monkeypatch):
    """This process as an operator's fresh shell in the stack's folder (cheaper than a process per
    command); everything the commands change is put back afterwards."""
    from vicw import aws, container
    from vicw.config import get_settings

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(bare_env())
    monkeypatch.chdir(stack["home"])
    get_settings.cache_clear()
    aws.client.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()
    aws.client.cache_clear()
    container.reset()


def test_runbook_commands_parse_and_run(stack, bare_here, capsys):
    from vicw.cli import build_parser, main

    commands = runbook_commands()
    assert any(c.startswith("vicw replay dlq") for c in commands) and any("replay archive" in c for c in commands)
    parser = build_parser()
    ran = []
    for command in commands:
        argv = shlex.split(command)[1:]
        if argv[:1] == ["local"] or len(argv) < 1:
            continue
        args = parser.parse_args(argv)  # every documented command is a valid one
        if "$" in command or args.command not in ("status", "replay", "backup", "ingest", "config"):
            continue
        rc = main(argv)
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and not ln.startswith("using vicw local")]
        # Placeholders (tenant T, an example backup name) give a clear one-line refusal, never a traceback.
        assert rc in (0, 1, 3), (command, rc, err)
        assert rc == 0 or len(err) == 1, (command, err)
        ran.append(command)
    assert "vicw status" in ran and "vicw replay dlq --queue offload" in ran and "vicw replay archive --target vectors" in ran


def test_errors_are_one_line_and_a_clean_stop_removes_the_file(stack):
    out = vicw("replay", "archive", "--since", "last tuesday", cwd=stack["home"])
    assert out.returncode == 2 and len(errors(out)) == 1 and "--since" in errors(out)[0]
    proc = stack["proc"]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0, stack["log"].read_text()
    assert not (stack["data"] / "connection.json").exists()
    for argv in (("replay", "dlq", "--queue", "offload"), ("status",), ("backup", "create")):
        out = vicw(*argv, cwd=stack["home"])
        assert out.returncode == 2, (argv, out.stdout, out.stderr)
        assert len(errors(out)) == 1 and "Traceback" not in out.stderr, (argv, out.stderr)
