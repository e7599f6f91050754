"""Files only their owner may read: what `vicw local` and `vicw backup` write on this machine.

Window state, vectors, the archive's copies and the development API key are user data or
credentials. Their folders are 0700 and their files 0600, whatever the caller's umask:

* `private_umask()` while a process writes them (child servers such as redis-server inherit it, so
  their AOF/RDB files and logs are created 0600 too);
* `make_private_dir()` / `tighten()` for folders that already exist (a data dir made by an older
  version, or by hand), since a umask only applies to new files.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_UMASK = 0o077
DIR_MODE, FILE_MODE = 0o700, 0o600


def make_private_dir(path: Path | str) -> Path:
    """Create `path` (and parents) if needed; the folder itself ends up 0700."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    path.chmod(DIR_MODE)
    return path


def tighten(root: Path | str) -> None:
    """Make every folder under `root` 0700 and every file 0600 (symlinks are left alone)."""
    root = Path(root)
    if not root.exists():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, DIR_MODE)
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                if stat.S_ISREG(os.lstat(full).st_mode):
                    os.chmod(full, FILE_MODE)
            except FileNotFoundError:  # a server removed its temporary file meanwhile
                continue
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]


def write_private(path: Path | str, text: str) -> None:
    """Write a file that is 0600 from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(path, FILE_MODE)


@contextmanager
def private_umask() -> Iterator[None]:
    """New files and folders are created without any group/other permission inside the block."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)
