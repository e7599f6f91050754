"""Provider selection and API-key lookup (Secrets Manager / SSM on the moto server)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from tests.fakes import llm_server  # noqa: F401 - fixture
from vicw.config import SettingsError, load_settings
from vicw.llm import embedded
from vicw.llm.base import CompletionRequest, LLMError
from vicw.llm.bedrock import BedrockProvider
from vicw.llm.factory import build_provider, resolve_provider_name
from vicw.llm.openai_compat import OpenAICompatProvider
from vicw.secrets import SecretUnavailable, get_secret_value

# Every LLM setting spelled out, so variables in the environment cannot leak into a case.
BLANK = {
    "vicw_llm_provider": "auto",
    "vicw_llm_api_url": None,
    "vicw_llm_api_key": None,
    "vicw_llm_api_key_secret": None,
    "bedrock_model_id": None,
    "vicw_embedded_model_path": None,
}


def settings(**overrides):
    return load_settings(**{**BLANK, **overrides})


def ask() -> CompletionRequest:
    return CompletionRequest(messages=[{"role": "user", "content": "hi"}], max_tokens=8, temperature=0)


def test_api_url_selects_openai(llm_server):
    provider = build_provider(settings(vicw_llm_api_url=llm_server.url, vicw_llm_model_name="m1", llm_max_retries=0))
    assert isinstance(provider, OpenAICompatProvider)
    assert provider.check() == {"provider": "openai", "model": "m1", "url_host": "127.0.0.1"}
    assert provider.complete(ask()).text == "ok: hi"


def test_local_api_key_is_sent(llm_server):
    provider = build_provider(settings(vicw_llm_api_url=llm_server.url, vicw_llm_api_key="sk-local-1"))
    provider.complete(ask())
    assert llm_server.chat_requests[-1].headers["Authorization"] == "Bearer sk-local-1"


def test_openai_wins_over_bedrock_in_auto(llm_server):
    chosen = resolve_provider_name(settings(vicw_llm_api_url=llm_server.url, bedrock_model_id="some.model"))
    assert chosen == "openai"


def test_bedrock_model_selects_bedrock():
    provider = build_provider(settings(bedrock_model_id="amazon.nova-micro-v1:0", bedrock_region="eu-west-1"))
    assert isinstance(provider, BedrockProvider)
    assert provider.check()["region"] == "eu-west-1"


def test_nothing_installed_means_not_configured(tmp_path):
    missing = str(tmp_path / "absent.gguf")
    assert build_provider(settings(vicw_embedded_model_path=missing)) is None


def test_none_disables_the_llm(llm_server):
    assert build_provider(settings(vicw_llm_provider="none", vicw_llm_api_url=llm_server.url)) is None


def test_explicit_choice_without_its_settings_fails_clearly(tmp_path):
    with pytest.raises(SettingsError, match="VICW_LLM_API_URL"):
        build_provider(settings(vicw_llm_provider="openai"))
    with pytest.raises(SettingsError, match="BEDROCK_MODEL_ID"):
        build_provider(settings(vicw_llm_provider="bedrock"))
    with pytest.raises(SettingsError, match="does not exist"):
        build_provider(settings(vicw_llm_provider="embedded", vicw_embedded_model_path=str(tmp_path / "x.gguf")))


@pytest.mark.skipif(embedded.unavailable_reason() is not None, reason=f"embedded: {embedded.unavailable_reason()}")
def test_auto_falls_back_to_the_embedded_model():
    provider = build_provider(settings())
    assert provider is not None and provider.name == "embedded"


# --- keys from AWS ---------------------------------------------------------------------------
def _unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def test_secrets_manager_key_is_fetched_and_sent(moto_endpoint, llm_server):
    name = _unique("vicw/llm-key-")
    boto3.client("secretsmanager").create_secret(Name=name, SecretString="sk-from-secrets-manager")
    provider = build_provider(settings(vicw_llm_api_url=llm_server.url, vicw_llm_api_key_secret=name))
    provider.complete(ask())
    assert llm_server.chat_requests[-1].headers["Authorization"] == "Bearer sk-from-secrets-manager"


def test_secret_by_arn_and_json_value(moto_endpoint):
    arn = boto3.client("secretsmanager").create_secret(
        Name=_unique("vicw/json-"), SecretString='{"api_key": "sk-in-json"}'
    )["ARN"]
    assert get_secret_value(arn).get_secret_value() == "sk-in-json"


def test_ssm_securestring_is_decrypted(moto_endpoint):
    name = _unique("/vicw/test/llm-key-")
    boto3.client("ssm").put_parameter(Name=name, Value="sk-from-ssm", Type="SecureString")
    assert get_secret_value(name).get_secret_value() == "sk-from-ssm"


def test_secret_is_cached(moto_endpoint):
    name = _unique("vicw/cached-")
    client = boto3.client("secretsmanager")
    client.create_secret(Name=name, SecretString="first")
    assert get_secret_value(name).get_secret_value() == "first"
    client.put_secret_value(SecretId=name, SecretString="second")
    assert get_secret_value(name).get_secret_value() == "first"  # served from the cache
    assert get_secret_value(name, force=True).get_secret_value() == "second"


def test_missing_secret_fails_with_its_name(moto_endpoint, llm_server):
    name = _unique("vicw/missing-")
    with pytest.raises(SecretUnavailable, match=name):
        get_secret_value(name)
    provider = build_provider(settings(vicw_llm_api_url=llm_server.url, vicw_llm_api_key_secret=name))
    with pytest.raises(LLMError) as caught:
        provider.complete(ask())
    assert caught.value.status_code == 502 and name in str(caught.value)
    assert llm_server.chat_requests == []  # never called the model without its key
