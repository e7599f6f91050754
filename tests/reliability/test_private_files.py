"""What `vicw local` and `vicw backup` write is private: 0700 folders, 0600 files, whatever the umask.

The data dir holds window state (Redis AOF/RDB), vectors, logs and the development API key; a
backup holds all of it again. A permissive umask (0022, the usual default) must not leak any of it
to other users of the machine, and a data dir created earlier with looser modes is tightened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from tests.reliability.conftest import own_stack, stack_env, wait_until


def loose(root: Path) -> list[str]:
    """Paths under root (root included) that group or others could read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            continue
        want = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_IMODE(mode) & 0o077 or (stat.S_ISDIR(mode) and stat.S_IMODE(mode) != want):
            found.append(f"{path.relative_to(root.parent)} {oct(stat.S_IMODE(mode))}")
    return found


def test_local_data_dir_and_backups_are_owner_only(tmp_path, scripted_llm):
    from vicw.backup import create_backup

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "notes.txt").write_text("left by an older version")
    (data / "notes.txt").chmod(0o644)
    env = stack_env(scripted_llm.url)
    env.pop("VICW_API_KEYS")  # so the stack writes its development key file
    old = os.umask(0o022)
    try:
        with own_stack(data, env, cold_path=True) as local:
            key = (data / "dev-api-key").read_text().strip()
            with httpx.Client(base_url=local.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
                for i in range(24):  # enough to shed jobs: the cold path writes the vector store and archive
                    r = api.post("/sessions/private/messages", json={"messages": [{"role": "user", "content": (
                        f"Private note {i}: the safe code is {1000 + i} and the spare key hangs behind the "
                        "boiler in the cellar of the old mill near the river bend, second hook from the left.")}]})
                    assert r.status_code == 200, r.text
                assert api.get("/sessions/private").json()["offloaded_jobs"] > 0
                wait_until(lambda: any(p.is_file() for p in (data / "qdrant").rglob("*")), 120, what="the vector store wrote files")
            manifest = create_backup(str(tmp_path / "backups" / "first"))
            assert manifest.counts
        assert (data / "redis").is_dir() and any((data / "redis").rglob("*.aof")) or any((data / "redis").rglob("appendonly*"))
        assert loose(data) == []
        assert loose(tmp_path / "backups") == []
        assert os.umask(0o022) == 0o022  # the stack gave the process its umask back
    finally:
        os.umask(old)
