"""API keys -> tenants: parsing, constant-time lookup of digests, fail-closed errors, admin set."""

from __future__ import annotations

import pytest

from vicw.auth import (
    AuthError,
    KeyTable,
    admin_tenants,
    digest,
    is_admin,
    parse_key_table,
)

KEY_A = "sk-alpha-000000000001"
KEY_B = "sk-bravo-000000000002"


def test_table_holds_digests_only():
    table = parse_key_table(f"{KEY_A}:tenant-a, {KEY_B}:tenant-b\n")
    assert table == {digest(KEY_A): "tenant-a", digest(KEY_B): "tenant-b"}
    assert KEY_A not in repr(KeyTable(table).__dict__)


def test_key_may_contain_colons():
    assert parse_key_table("a:b:c:d:e:f:g:h:tenant") == {digest("a:b:c:d:e:f:g:h"): "tenant"}


@pytest.mark.parametrize("spec", ["short:t", f"{KEY_A}", f"{KEY_A}:", f"{KEY_A}:bad tenant", f"{KEY_A}:t/../x"])
def test_malformed_entries_are_rejected_without_echoing_the_key(spec):
    with pytest.raises(ValueError) as err:
        parse_key_table(spec)
    assert KEY_A not in str(err.value) and "short" not in str(err.value)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", f"Basic {KEY_A}", KEY_A, "Bearer sk-wrong-key-000000"])
def test_fails_closed(header):
    table = KeyTable.from_spec(f"{KEY_A}:tenant-a")
    with pytest.raises(AuthError) as err:
        table.tenant_for(header)
    assert KEY_A not in str(err.value)
    assert "sk-wrong" not in str(err.value)


def test_tenant_comes_from_the_key():
    table = KeyTable.from_spec(f"{KEY_A}:tenant-a,{KEY_B}:tenant-b")
    assert table.tenant_for(f"Bearer {KEY_A}") == "tenant-a"
    assert table.tenant_for(f"bearer  {KEY_B} ") == "tenant-b"
    assert len(table) == 2


def test_empty_table_rejects_everything():
    with pytest.raises(AuthError):
        KeyTable.from_spec("").tenant_for(f"Bearer {KEY_A}")


def test_admin_tenants():
    assert admin_tenants(" ops , root,,") == {"ops", "root"}
    assert is_admin("ops", "ops,root") and not is_admin("op", "ops,root") and not is_admin("ops", "")


def test_key_table_from_ssm_follows_rotation_and_survives_an_outage(moto_endpoint, monkeypatch):
    import uuid

    from vicw import container
    from vicw.auth import RefreshingKeyTable
    from vicw.aws import client
    from vicw.secrets import get_secret_value

    ssm = client("ssm")
    name = f"/vicw/test/api-keys-{uuid.uuid4().hex[:8]}"
    ssm.put_parameter(Name=name, Type="SecureString", Value=f"{KEY_A}:tenant-a")

    monkeypatch.delenv("VICW_API_KEYS", raising=False)
    monkeypatch.setenv("VICW_API_KEYS_PARAMETER", name)
    container.reset()
    try:
        assert container.key_table().tenant_for(f"Bearer {KEY_A}") == "tenant-a"
    finally:
        monkeypatch.undo()
        container.reset()

    table = RefreshingKeyTable(lambda: get_secret_value(name, force=True).get_secret_value())
    assert table.tenant_for(f"Bearer {KEY_A}") == "tenant-a"
    ssm.put_parameter(Name=name, Type="SecureString", Value=f"{KEY_B}:tenant-b", Overwrite=True)  # rotate: A revoked
    assert table.tenant_for(f"Bearer {KEY_B}") == "tenant-b"
    with pytest.raises(AuthError):
        table.tenant_for(f"Bearer {KEY_A}")
    ssm.delete_parameter(Name=name)  # SSM unreachable or the parameter gone: the last good table stays
    assert table.tenant_for(f"Bearer {KEY_B}") == "tenant-b"
