"""kill -9 of everything `vicw local` runs, then a restart on the same data dir: nothing acknowledged is lost.

`vicw local` runs as a real subprocess in its own process group, with its own redis-server
(+FalkorDB) and moto. Turns are acknowledged one by one over HTTP until several offload jobs were
shed; then SIGKILL goes to the process group and to the servers' groups at once (the servers also
die with their parent). moto kept the queues and the S3 archive in memory, so every message in
flight is gone. After a restart on the same `--data-dir`, every acknowledged turn must be in the
window or in the vector store: the outbox kept each job until both consumers confirmed it, the
restart sends the unconfirmed ones again, and Redis's append-only file (fsync always) kept the
windows and the outbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_until
from tests.reliability.conftest import STACK_VARS
from vicw.local.services import free_port

SESSIONS = ("crash-a", "crash-b")
TURNS_PER_SESSION = 30  # 60 acknowledged turns, ~6 jobs shed at MAX_CONTEXT_TOKENS=1024
FIRST_PART = 18  # turns per session before waiting for a confirmed job
TENANT = "dev"  # the generated development key's tenant


def vicw_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in STACK_VARS and not k.startswith(("VICW_", "AWS_")) and k not in ("GRAPH_BACKEND", "RATE_LIMITS")}
    env.update({
        "MAX_CONTEXT_TOKENS": "1024", "LLM_MAX_TOKENS": "128", "RATE_LIMITS": "", "COLD_PATH_WORKERS": "1",
        "OUTBOX_RESEND_AFTER_SECONDS": "1", "POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true",
        "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
    })
    return env


def start(data: Path, log: Path) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    exe = str(Path(sys.executable).with_name("vicw"))
    proc = subprocess.Popen([exe, "local", "--data-dir", str(data), "--port", str(port)], env=vicw_env(data),
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, f"vicw local exited: {log.read_text()[-2000:]}"
        return (data / "connection.json").exists() and httpx.get(f"{url}/health", timeout=5).status_code in (200, 503)

    wait_until(up, 90, every=0.5, what="vicw local serving")
    return proc, url, (data / "dev-api-key").read_text().strip()


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def kill_everything(proc: subprocess.Popen) -> list[int]:
    """SIGKILL the process group of `vicw local` and the groups of the servers it started, at once."""
    servers = children(proc.pid)
    groups = {os.getpgid(proc.pid)} | {os.getpgid(p) for p in servers if alive(p)}
    for group in groups:
        os.killpg(group, signal.SIGKILL)
    proc.wait(10)
    wait_until(lambda: not any(alive(p) for p in servers), 20, what="every server process gone")
    return servers


def redis_client(data: Path):
    import redis

    env = json.loads((data / "connection.json").read_text())["env"]
    return redis.Redis.from_url(env["REDIS_URL"])


@pytest.mark.timeout(600)
def test_sigkill_of_the_whole_local_stack_loses_no_acknowledged_turn(tmp_path):
    from vicw.models import WindowState
    from vicw.window_store import OUTBOX, OUTBOX_SENT, OUTBOX_SINCE

    data, log = tmp_path / "data", tmp_path / "vicw-local.log"
    proc, url, key = start(data, log)
    acked: dict[str, list[str]] = {s: [] for s in SESSIONS}

    def say(api: httpx.Client, turns: range) -> None:
        for i in turns:
            for session in SESSIONS:
                text = (f"[{session} #{i}] The night porter logged parcel {7000 + i} for room {100 + i}; the courier "
                        f"from Hamburg promised a second van before dawn, and the invoice total was {i * 41} euros.")
                r = api.post(f"/sessions/{session}/messages", json={"messages": [{"role": "user", "content": text}]})
                assert r.status_code == 200, r.text
                acked[session].append(text)

    def shed() -> int:
        return sum(WindowState.model_validate_json(r.get(f"vicw:t:{TENANT}:s:{{{s}}}:window")).offloaded_jobs for s in SESSIONS)

    try:
        r = redis_client(data)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            # First half, then wait until some jobs are confirmed: the kill must hit stored jobs
            # (their points must be on disk) as well as jobs still on the lost queues.
            say(api, range(FIRST_PART))
            wait_until(lambda: shed() - r.hlen(OUTBOX) >= 1, 120, every=0.5, what="a job confirmed by both consumers")
            confirmed_before = shed() - r.hlen(OUTBOX)
            say(api, range(FIRST_PART, TURNS_PER_SESSION))
            # A fast machine may have confirmed every job by now. Keep talking, one turn at a time,
            # until a job is caught in the outbox right after the turn that shed it (its consumers
            # need a poll, an embedding and a write before they confirm), then kill at once.
            more, in_outbox = TURNS_PER_SESSION, r.hlen(OUTBOX)
            while in_outbox < 1 and more < 3 * TURNS_PER_SESSION:
                say(api, range(more, more + 1))
                more, in_outbox = more + 1, r.hlen(OUTBOX)
            jobs = shed()
    finally:
        servers = kill_everything(proc)
    assert jobs >= 4, "too few jobs were shed for the crash to prove anything"
    assert in_outbox >= 1, "every job was confirmed before the kill: the crash proved nothing about the queues"
    assert len(servers) >= 2  # redis-server and moto were running, and are gone

    proc, url, key = start(data, log)
    try:
        r = redis_client(data)

        def drained():
            return r.zcard(OUTBOX_SINCE) == 0 and r.zcard(OUTBOX_SENT) == 0 and r.hlen(OUTBOX) == 0

        wait_until(drained, 240, every=1.0, what="every job confirmed by both consumers after the restart")
        states = {s: WindowState.model_validate_json(r.get(f"vicw:t:{TENANT}:s:{{{s}}}:window")) for s in SESSIONS}
        r.close()
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop releases the vector store's folder
        proc.wait(60)

    from vicw.bootstrap import build_vector_store
    from vicw.config import Settings

    # The store `vicw local` uses by default, opened on its folder now that the stack is stopped.
    vectors = build_vector_store(Settings(qdrant_path=str(data / "qdrant"), qdrant_url=None))
    try:
        for session, state in states.items():
            points = list(vectors.scroll(TENANT, session, include_tenant_wide_documents=False))
            indexed = {p.seq for p in points}
            live = {t.seq for t in state.turns}
            assert not indexed & live, "a turn is both in the window and indexed"
            assert indexed | live == set(range(state.next_seq)), f"{session}: turns neither live nor indexed"
            stored = [t.content for t in state.turns] + [p.text for p in points]
            missing = [a for a in acked[session] if not any(a in s for s in stored)]
            assert not missing, f"{session}: {len(missing)} acknowledged turns lost, e.g. {missing[:1]}"
    finally:
        vectors.close()
    print(f"jobs shed {jobs}: {confirmed_before} confirmed before the kill, {in_outbox} in the outbox at the kill")
