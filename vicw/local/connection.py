"""The connection file: how operator commands find a running `vicw local`.

`vicw local` writes `<data dir>/connection.json` (mode 0600) once it serves requests, and removes it
on a clean stop. It holds the chat URL, where the development key is, and the settings a second
process needs to reach the same stores (Redis, the moto endpoint, queue URLs, the archive bucket).
Secrets are left out: the development key stays in its own 0600 file, referenced by path.

A file left behind by a killed `vicw local` is stale: its pid is gone or its URL does not answer.
Readers ignore a stale file and say so.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "connection.json"
FORMAT = 1
# Settings a second process needs, besides the Settings fields (AWS_* are read by boto3 itself).
_PATH_VARIABLES = ("QDRANT_PATH", "VICW_DATA_DIR", "VICW_EMBEDDED_MODEL_PATH")
_AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class Connection:
    path: Path
    pid: int
    url: str
    data_dir: str
    env: dict[str, str] = field(default_factory=dict)
    api_key_file: str | None = None
    started_at: str = ""

    def api_key(self) -> str | None:
        if not self.api_key_file:
            return None
        try:
            return Path(self.api_key_file).read_text().strip() or None
        except OSError:
            return None


def connection_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / FILE_NAME


def shareable_environment() -> dict[str, str]:
    """The running process's settings that another process may reuse: no secret values."""
    from pydantic import SecretStr

    from vicw.config import Settings

    secret_fields = {name.upper() for name, info in Settings.model_fields.items()
                     if info.annotation is not None and SecretStr in getattr(info.annotation, "__args__", (info.annotation,))}
    names = {name.upper() for name in Settings.model_fields} - secret_fields
    env = {k: v for k, v in os.environ.items() if k in names}
    env.update({k: os.environ[k] for k in _AWS_VARIABLES if k in os.environ})
    for name in _PATH_VARIABLES:  # the reader may run in another working directory
        if env.get(name):
            env[name] = os.path.abspath(env[name])
    return env


def write_connection(data_dir: Path | str, url: str, api_key_file: Path | None) -> Path:
    """Write the file atomically with mode 0600 (it names the dev key's file and the local endpoints)."""
    data = Path(data_dir).resolve()
    path = connection_path(data)
    body = {
        "format": FORMAT,
        "pid": os.getpid(),
        "url": url,
        "data_dir": str(data),
        "api_key_file": str(api_key_file.resolve()) if api_key_file else None,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "env": shareable_environment(),
    }
    tmp = path.with_name(f".{FILE_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(body, fh, indent=2)
    os.replace(tmp, path)
    return path


def remove_connection(data_dir: Path | str) -> None:
    """Remove the file if this process wrote it (another `vicw local` may have taken the folder over)."""
    path = connection_path(data_dir)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _answers(url: str, timeout: float) -> bool:
    import httpx

    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=timeout).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def read_connection(data_dir: Path | str, *, check_url: bool = True, timeout: float = 3.0) -> tuple[Connection | None, str]:
    """(connection, "") for a live `vicw local`; (None, why) when there is none or the file is stale."""
    path = connection_path(data_dir)
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"no running `vicw local` found in {Path(data_dir)} (no {FILE_NAME})"
    except (OSError, ValueError) as exc:
        return None, f"{path} is unreadable ({type(exc).__name__}); restart `vicw local`"
    try:
        conn = Connection(path=path, pid=int(raw["pid"]), url=str(raw["url"]), data_dir=str(raw.get("data_dir") or data_dir),
                          env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
                          api_key_file=raw.get("api_key_file"), started_at=str(raw.get("started_at", "")))
    except (KeyError, TypeError, ValueError):
        return None, f"{path} is not a VICW connection file; restart `vicw local`"
    if not _pid_alive(conn.pid):
        return None, f"ignored stale {path}: process {conn.pid} is gone (start `vicw local` again)"
    if check_url and not _answers(conn.url, timeout):
        return None, f"ignored stale {path}: nothing answers at {conn.url} (start `vicw local` again)"
    return conn, ""
