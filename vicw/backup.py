"""Backups of what VICW keeps, and restores into empty stores.

A backup is one folder, on disk or under an S3 prefix (`s3://bucket/prefix`):

    window.jsonl.gz   Redis keys `vicw:*` (window state, outbox, worker counters) as portable JSON
    vectors.jsonl.gz  every Qdrant point: id, vector, payload
    graph.json.gz     the knowledge-graph export (nodes and edges with their identity properties)
    archive.jsonl.gz  the list of archived offload jobs (the S3 archive itself is the durable copy)
    manifest.json     written last: counts, sha256 of each file, embedding model and dimension

Redis values are written as JSON per type rather than DUMP payloads, because DUMP's RDB version
ties a backup to the Redis major that wrote it (a local Redis 8 dump will not RESTORE on an
ElastiCache 7 node).

Consistency: each session's window is saved atomically by the hot path, so each window key in a
backup is a real state; the stores are read one after another, so vectors and the graph may be a
few jobs ahead of or behind the windows. The archive is the source of truth for both: after a
restore, `vicw replay archive --since <backup created_at>` brings them level.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, ValidationError

from vicw.config import Settings
from vicw.observability import logger

MANIFEST = "manifest.json"
WINDOW_FILE = "window.jsonl.gz"
VECTORS_FILE = "vectors.jsonl.gz"
GRAPH_FILE = "graph.json.gz"
ARCHIVE_FILE = "archive.jsonl.gz"
REDIS_PATTERN = "vicw:*"
# Rate-limit buckets are seconds-long state; restoring them would only throttle clients wrongly.
REDIS_TRANSIENT_PREFIXES = (b"vicw:rl",)
# Keys whose presence means the window store already holds conversations.
WINDOW_DATA_PATTERNS = ("vicw:t:*", "vicw:outbox")


class BackupError(RuntimeError):
    """A backup or restore that cannot proceed safely; the message says why and what to do."""


class FileEntry(BaseModel):
    sha256: str
    bytes: int
    records: int


class BackupManifest(BaseModel):
    format: Literal["vicw-backup"] = "vicw-backup"
    version: Literal[1] = 1
    vicw_version: str
    created_at: datetime
    embedding_model: str
    embedding_dim: int
    qdrant_collection: str
    graph_backend: str
    counts: dict[str, int | None]
    files: dict[str, FileEntry]
    qdrant_snapshot: str | None = None
    redis_skipped: list[str] = Field(default_factory=list)


# --- where backups live ------------------------------------------------------------------------
class Location(Protocol):
    url: str

    def put_file(self, name: str, path: Path) -> None: ...

    def get_file(self, name: str, dest: Path) -> None: ...

    def exists(self, name: str) -> bool: ...


class DirLocation:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.url = str(self.path)

    def put_file(self, name: str, path: Path) -> None:
        # A backup holds every conversation: its folders are 0700 and its files 0600.
        from vicw.private_files import make_private_dir, private_umask

        with private_umask():
            make_private_dir(self.path)
            shutil.copyfile(path, self.path / name)
        (self.path / name).chmod(0o600)

    def get_file(self, name: str, dest: Path) -> None:
        src = self.path / name
        if not src.is_file():
            raise BackupError(f"{src} not found")
        shutil.copyfile(src, dest)

    def exists(self, name: str) -> bool:
        return (self.path / name).exists()


class S3Location:
    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise BackupError(f"not an S3 location: {url!r} (expected s3://bucket/prefix)")
        self.bucket, self.prefix, self.url = bucket, prefix.strip("/"), url

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def s3(self) -> Any:
        from vicw.aws import client

        return client("s3")

    def put_file(self, name: str, path: Path) -> None:
        self.s3.upload_file(str(path), self.bucket, self._key(name))

    def get_file(self, name: str, dest: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.download_file(self.bucket, self._key(name), str(dest))
        except ClientError as exc:
            raise BackupError(f"s3://{self.bucket}/{self._key(name)} could not be read ({exc.response['Error'].get('Code')})") from None

    def exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._key(name))
            return True
        except ClientError:
            return False


def open_location(url: str) -> Location:
    return S3Location(url) if url.startswith("s3://") else DirLocation(url)


def timestamped(base: str, when: datetime | None = None) -> str:
    """`base/vicw-YYYYmmddTHHMMSSZ`: one folder per backup under a directory or S3 prefix."""
    stamp = (when or datetime.now(UTC)).strftime("vicw-%Y%m%dT%H%M%SZ")
    return f"{base.rstrip('/')}/{stamp}"


def default_base(settings: Settings) -> str:
    return settings.vicw_backup_url or str(Path(settings.vicw_data_dir) / "backups")


# --- files ---------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_jsonl(path: Path, rows: Iterable[Any]) -> FileEntry:
    n = 0
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            n += 1
    return FileEntry(sha256=_sha256(path), bytes=path.stat().st_size, records=n)


def _read_jsonl(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


# --- Redis as portable JSON ---------------------------------------------------------------------
def _enc(raw: bytes) -> Any:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(raw).decode()}


def _dec(value: Any) -> bytes:
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else str(value).encode()


def dump_redis(r: Any, pattern: str = REDIS_PATTERN, skipped: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """One JSON-able row per key: {key, type, ttl_ms, value}. Keys of other types (a FalkorDB graph,
    a stream) are listed in `skipped` instead."""
    for key in r.scan_iter(match=pattern, count=500):
        if key.startswith(REDIS_TRANSIENT_PREFIXES):
            continue
        kind = r.type(key).decode()
        if kind == "string":
            value: Any = r.get(key)
            value = None if value is None else _enc(value)
        elif kind == "hash":
            value = [[_enc(f), _enc(v)] for f, v in r.hgetall(key).items()]
        elif kind == "list":
            value = [_enc(v) for v in r.lrange(key, 0, -1)]
        elif kind == "set":
            value = sorted(_enc(v) for v in r.smembers(key))
        elif kind == "zset":
            value = [[_enc(m), s] for m, s in r.zrange(key, 0, -1, withscores=True)]
        else:
            if kind != "none" and skipped is not None:  # "none": deleted since the scan
                skipped.append(f"{key.decode(errors='replace')} ({kind})")
            continue
        if value is None or value == []:
            continue
        ttl = r.pttl(key)
        yield {"key": _enc(key), "type": kind, "ttl_ms": ttl if ttl > 0 else None, "value": value}


def load_redis(r: Any, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    pipe = r.pipeline(transaction=False)
    for row in rows:
        key, kind, value = _dec(row["key"]), row["type"], row["value"]
        pipe.delete(key)
        if kind == "string":
            pipe.set(key, _dec(value))
        elif kind == "hash":
            pipe.hset(key, mapping={_dec(f): _dec(v) for f, v in value})
        elif kind == "list":
            pipe.rpush(key, *[_dec(v) for v in value])
        elif kind == "set":
            pipe.sadd(key, *[_dec(v) for v in value])
        elif kind == "zset":
            pipe.zadd(key, {_dec(m): float(s) for m, s in value})
        else:
            raise BackupError(f"unknown Redis type {kind!r} in the backup")
        if row.get("ttl_ms"):
            pipe.pexpire(key, int(row["ttl_ms"]))
        n += 1
        if n % 500 == 0:
            pipe.execute()
    pipe.execute()
    return n


def window_store_is_empty(r: Any) -> bool:
    return not any(next(iter(r.scan_iter(match=p, count=500)), None) is not None for p in WINDOW_DATA_PATTERNS)


# --- the stores, as this process is configured ------------------------------------------------------
def _stores() -> tuple[Any, Any, Any, Any]:
    from vicw import container

    return container.window_store().r, container.vector_store(), container.graph_store(), container.archive()


def _settings() -> Settings:
    from vicw import container

    return container.settings()


def _graph_total(graph: Any, tenant: str | None = None) -> tuple[int, int]:
    c = graph.counts(tenant)
    return int(c.get("nodes") or 0), int(c.get("edges") or 0)


def create_backup(target: str | None = None, *, include_archive: bool = True, qdrant_snapshot: bool = False) -> BackupManifest:
    """Write a backup of every configured store to `target` (default: a new timestamped folder
    under VICW_BACKUP_URL, else VICW_DATA_DIR/backups). Refuses to overwrite an existing backup."""
    import vicw

    s = _settings()
    location = open_location(target or timestamped(default_base(s)))
    if location.exists(MANIFEST):
        raise BackupError(f"{location.url} already holds a backup; choose another target")
    r, vectors, graph, archive = _stores()
    files: dict[str, FileEntry] = {}
    counts: dict[str, int | None] = {}
    skipped: list[str] = []
    snapshot = None
    with tempfile.TemporaryDirectory(prefix="vicw-backup-") as tmp:
        work = Path(tmp)
        files[WINDOW_FILE] = _write_jsonl(work / WINDOW_FILE, dump_redis(r, skipped=skipped))
        counts["redis_keys"] = files[WINDOW_FILE].records
        counts["vectors"] = None
        if vectors is not None:
            files[VECTORS_FILE] = _write_jsonl(work / VECTORS_FILE, vectors.export())
            counts["vectors"] = files[VECTORS_FILE].records
            if qdrant_snapshot and not vectors.local:
                # Server-side snapshot as well (stays on the Qdrant server / its snapshot storage).
                snapshot = vectors.client.create_snapshot(vectors.collection, wait=True).name
        counts["graph_nodes"] = counts["graph_edges"] = None
        if graph is not None:
            data = graph.export()
            path = work / GRAPH_FILE
            with gzip.open(path, "wt", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            files[GRAPH_FILE] = FileEntry(sha256=_sha256(path), bytes=path.stat().st_size, records=len(data["nodes"]))
            counts["graph_nodes"], counts["graph_edges"] = len(data["nodes"]), len(data["edges"])
        counts["archive_objects"] = None
        if include_archive and archive is not None:
            files[ARCHIVE_FILE] = _write_jsonl(work / ARCHIVE_FILE, ({"key": k} for k in archive.iter_keys()))
            counts["archive_objects"] = files[ARCHIVE_FILE].records
        manifest = BackupManifest(
            vicw_version=vicw.__version__,
            created_at=datetime.now(UTC),
            embedding_model=s.embedding_model,
            embedding_dim=s.embedding_dim,
            qdrant_collection=s.qdrant_collection,
            graph_backend=s.graph_backend,
            counts=counts,
            files=files,
            qdrant_snapshot=snapshot,
            redis_skipped=skipped,
        )
        for name in files:
            location.put_file(name, work / name)
        # The manifest goes last: a folder without one is an interrupted backup, never a valid one.
        (work / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        location.put_file(MANIFEST, work / MANIFEST)
    logger.info("backup written", extra={"backup": location.url, "counts": counts})
    return manifest


def read_manifest(source: str) -> BackupManifest:
    location = open_location(source)
    with tempfile.TemporaryDirectory(prefix="vicw-restore-") as tmp:
        path = Path(tmp) / MANIFEST
        try:
            location.get_file(MANIFEST, path)
        except (BackupError, FileNotFoundError):
            raise BackupError(f"{location.url} has no {MANIFEST}: not a VICW backup, or an interrupted one") from None
        try:
            return BackupManifest.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            raise BackupError(f"{location.url}/{MANIFEST} is not a VICW backup manifest: {exc.errors()[0]['msg']}") from None


def check_compatible(manifest: BackupManifest, settings: Settings) -> None:
    """Vectors only mean something to the model that made them: refuse a model or size change."""
    if manifest.embedding_model != settings.embedding_model or manifest.embedding_dim != settings.embedding_dim:
        raise BackupError(
            f"the backup's vectors come from {manifest.embedding_model} ({manifest.embedding_dim} dims) but this "
            f"deployment embeds with {settings.embedding_model} ({settings.embedding_dim} dims) "
            "(EMBEDDING_MODEL / EMBEDDING_DIM). Restore with the old model settings, or restore the window and "
            "rebuild the vectors with `vicw replay archive --target vectors`."
        )


def _not_empty(r: Any, vectors: Any, graph: Any, manifest: BackupManifest) -> list[str]:
    busy = []
    if WINDOW_FILE in manifest.files and not window_store_is_empty(r):
        busy.append("window store (Redis vicw:t:* / vicw:outbox keys)")
    if VECTORS_FILE in manifest.files and vectors is not None and vectors.count() > 0:
        busy.append(f"vector store ({vectors.count()} points)")
    if GRAPH_FILE in manifest.files and graph is not None and _graph_total(graph)[0] > 0:
        busy.append(f"graph ({_graph_total(graph)[0]} nodes)")
    return busy


def _noting_seqs(points: Iterable[dict[str, Any]], highest: dict[tuple[str, str], int]) -> Iterator[dict[str, Any]]:
    """Pass points through, noting the highest conversation seq of each session."""
    for p in points:
        payload = p.get("payload") or {}
        seq, sid = payload.get("seq"), payload.get("session_id")
        if payload.get("kind", "conversation") == "conversation" and isinstance(seq, int) and sid and payload.get("tenant"):
            key = (payload["tenant"], sid)
            highest[key] = max(highest.get(key, -1), seq)
        yield p


def restore_backup(source: str, *, force: bool = False) -> dict[str, Any]:
    """Load a backup into the configured stores. Checks everything before writing anything:
    the manifest, every file's sha256, the embedding model and dimension, and that the stores are
    empty (unless `force`, which merges: same keys and ids are overwritten)."""
    s = _settings()
    manifest = read_manifest(source)
    check_compatible(manifest, s)
    r, vectors, graph, _ = _stores()
    if VECTORS_FILE in manifest.files and vectors is None:
        raise BackupError("the backup holds vectors but no vector store is configured (QDRANT_URL or QDRANT_PATH)")
    if GRAPH_FILE in manifest.files and graph is None:
        raise BackupError("the backup holds a graph but GRAPH_BACKEND=none")
    location = open_location(source)
    with tempfile.TemporaryDirectory(prefix="vicw-restore-") as tmp:
        work = Path(tmp)
        for name, entry in manifest.files.items():
            location.get_file(name, work / name)
            digest = _sha256(work / name)
            if digest != entry.sha256:
                raise BackupError(f"{name} is corrupt: sha256 {digest} does not match the manifest's {entry.sha256}")
        busy = _not_empty(r, vectors, graph, manifest)
        if busy and not force:
            raise BackupError(
                "refusing to restore into stores that hold data: " + "; ".join(busy)
                + ". Restore into empty stores, or pass --force to merge."
            )
        restored: dict[str, int | None] = {}
        if GRAPH_FILE in manifest.files:
            with gzip.open(work / GRAPH_FILE, "rt", encoding="utf-8") as f:
                graph.import_(json.load(f))
            restored["graph_nodes"], restored["graph_edges"] = _graph_total(graph)
        highest: dict[tuple[str, str], int] = {}
        if VECTORS_FILE in manifest.files:
            vectors.import_(_noting_seqs(_read_jsonl(work / VECTORS_FILE), highest))
            restored["vectors"] = vectors.count()
        restored["redis_keys"] = load_redis(r, _read_jsonl(work / WINDOW_FILE))
        # Vectors may be a few jobs ahead of the windows: the counters must pass them (ids are never reused).
        from vicw.replay import advance_counters
        from vicw.window_store import WindowStore

        advance_counters(WindowStore(r), highest)
    expected = {k: v for k, v in manifest.counts.items() if k in restored}
    mismatched = {k: (expected[k], restored[k]) for k in expected if expected[k] != restored[k]}
    result = {
        "source": location.url,
        "created_at": manifest.created_at.isoformat(),
        "restored": restored,
        "expected": expected,
        "verified": not mismatched,
        "forced": force,
    }
    if mismatched and not force:
        raise BackupError(f"restore finished but counts differ from the manifest (expected, found): {mismatched}")
    logger.info("backup restored", extra=result)
    return result


def scheduled_backup() -> dict[str, Any]:
    """The nightly run: a new timestamped folder under VICW_BACKUP_URL (does nothing, and says so,
    when it is not set). Retention is the bucket's lifecycle rule, not this code's job."""
    s = _settings()
    if not s.vicw_backup_url:
        return {"skipped": "VICW_BACKUP_URL is not set"}
    target = timestamped(s.vicw_backup_url)
    manifest = create_backup(target)
    return {"location": target, "created_at": manifest.created_at.isoformat(), "counts": manifest.counts}
