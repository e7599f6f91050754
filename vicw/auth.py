"""API keys to tenants. Keys are kept only as SHA-256 digests; a missing or unknown key fails closed."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

TENANT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class AuthError(Exception):
    pass


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_table(spec: str) -> dict[str, str]:
    """'<key>:<tenant>,<key>:<tenant>' -> {sha256(key): tenant}. Errors never echo a key."""
    table: dict[str, str] = {}
    for n, item in enumerate(filter(None, (p.strip() for p in spec.replace("\n", ",").split(","))), start=1):
        key, sep, tenant = item.rpartition(":")
        if not sep or len(key) < 8 or not TENANT_RE.fullmatch(tenant):
            raise ValueError(
                f"VICW_API_KEYS entry {n} is malformed: expected <key>:<tenant> with a key of 8+ characters "
                "and a tenant of letters, digits, '.', '_' or '-'"
            )
        table[digest(key)] = tenant
    return table


class KeyTable:
    def __init__(self, table: dict[str, str]) -> None:
        self._table = dict(table)

    @classmethod
    def from_spec(cls, spec: str | None) -> KeyTable:
        return cls(parse_key_table(spec or ""))

    def __len__(self) -> int:
        return len(self._table)

    def tenant_for(self, authorization: str | None) -> str:
        if not authorization:
            raise AuthError("missing Authorization header: send 'Authorization: Bearer <api key>'")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthError("Authorization must be 'Bearer <api key>'")
        wanted = digest(key.strip())
        for known, tenant in self._table.items():
            if hmac.compare_digest(known, wanted):
                return tenant
        raise AuthError("invalid API key")


class RefreshingKeyTable(KeyTable):
    """A key table read from a parameter/secret through `load` (which caches, e.g. for 300 s).

    Every lookup asks `load` for the current spec and rebuilds the table when it changed, so a key
    added or revoked in SSM takes effect within the loader's cache age, without a cold start. If
    a reload fails, the last good table stays in use (and with none, every request is refused).
    """

    def __init__(self, load: Callable[[], str]) -> None:
        super().__init__({})
        self._load = load
        self._spec: str | None = None
        self._refresh(initial=True)

    def _refresh(self, initial: bool = False) -> None:
        try:
            spec = self._load()
        except Exception:
            if initial or self._spec is None:
                raise
            return  # keep the last good table
        if spec != self._spec:
            self._table = parse_key_table(spec)
            self._spec = spec

    def tenant_for(self, authorization: str | None) -> str:
        self._refresh()
        return super().tenant_for(authorization)


def admin_tenants(spec: str | None) -> frozenset[str]:
    """VICW_ADMIN_TENANTS ("ops,root") as a set of tenant names."""
    return frozenset(t.strip() for t in (spec or "").split(",") if t.strip())


def is_admin(tenant: str, spec: str | None) -> bool:
    return tenant in admin_tenants(spec)
