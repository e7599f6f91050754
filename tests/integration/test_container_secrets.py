"""Store credentials named by *_SECRET settings are read from Secrets Manager / SSM at run time."""

from __future__ import annotations

from vicw.aws import client
from vicw.config import load_settings
from vicw.container import with_secrets


def test_unset_credentials_come_from_the_named_secrets(moto_endpoint):
    client("secretsmanager").create_secret(Name="vicw/test/qdrant", SecretString="qdrant-key-value-123")
    client("ssm").put_parameter(Name="/vicw/test/neo4j", Value="neo4j-pass-456", Type="SecureString", Overwrite=True)
    s = load_settings(qdrant_api_key_secret="vicw/test/qdrant", neo4j_password_secret="/vicw/test/neo4j")
    filled = with_secrets(s, qdrant_api_key="qdrant_api_key_secret", neo4j_password="neo4j_password_secret")
    assert filled.qdrant_api_key.get_secret_value() == "qdrant-key-value-123"
    assert filled.neo4j_password.get_secret_value() == "neo4j-pass-456"
    assert "qdrant-key-value-123" not in repr(filled)  # SecretStr keeps it out of reprs and logs


def test_explicit_values_win_and_nothing_is_fetched_without_a_name():
    s = load_settings(qdrant_api_key="explicit-key")
    assert with_secrets(s, qdrant_api_key="qdrant_api_key_secret") is s
    assert with_secrets(load_settings(), neo4j_password="neo4j_password_secret").neo4j_password is None
