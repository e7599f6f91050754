"""Pick the LLM provider from settings.

VICW_LLM_PROVIDER=auto (the default) chooses, in order:
  1. openai   — VICW_LLM_API_URL is set (any OpenAI-compatible chat/completions URL);
  2. bedrock  — BEDROCK_MODEL_ID is set;
  3. embedded — the offline GGUF model and its runtime are installed;
  4. nothing  — `None`: the API answers 503 "LLM not configured".
An explicit choice whose requirements are missing fails at start with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from vicw.config import Settings, SettingsError
from vicw.llm.base import LLMProvider


def build_provider(settings: Settings) -> LLMProvider | None:
    choice = resolve_provider_name(settings)
    if choice is None:
        return None
    if choice == "openai":
        from vicw.llm.openai_compat import OpenAICompatProvider

        if not settings.vicw_llm_api_url:
            raise SettingsError("VICW_LLM_PROVIDER=openai needs VICW_LLM_API_URL (the full chat/completions URL)")
        return OpenAICompatProvider(
            settings.vicw_llm_api_url,
            api_key=api_key_source(settings),
            model=settings.vicw_llm_model_name,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )
    if choice == "bedrock":
        from vicw.llm.bedrock import BedrockProvider

        if not settings.bedrock_model_id:
            raise SettingsError("VICW_LLM_PROVIDER=bedrock needs BEDROCK_MODEL_ID")
        return BedrockProvider(
            settings.bedrock_model_id,
            region=settings.bedrock_region or settings.aws_region,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )
    from vicw.llm import embedded

    problem = embedded.unavailable_reason(settings.vicw_embedded_model_path)
    if problem:
        raise SettingsError(f"VICW_LLM_PROVIDER=embedded but {problem}")
    return embedded.EmbeddedProvider(
        model_path=embedded.locate_model(settings.vicw_embedded_model_path),
        context_tokens=settings.max_context_tokens,
    )


def resolve_provider_name(settings: Settings) -> str | None:
    """The provider `build_provider` would use ('openai', 'bedrock', 'embedded') or None."""
    choice = settings.vicw_llm_provider
    if choice == "none":
        return None
    if choice != "auto":
        return choice
    if settings.vicw_llm_api_url:
        return "openai"
    if settings.bedrock_model_id:
        return "bedrock"
    from vicw.llm import embedded

    if embedded.unavailable_reason(settings.vicw_embedded_model_path) is None:
        return "embedded"
    return None


def api_key_source(settings: Settings) -> SecretStr | Callable[[], SecretStr | None] | None:
    """The key itself (VICW_LLM_API_KEY, local use) or a cached lookup of VICW_LLM_API_KEY_SECRET (AWS).

    The lookup is a callable so a rotated secret is picked up once the cache expires.
    """
    if settings.vicw_llm_api_key is not None:
        return settings.vicw_llm_api_key
    name = settings.vicw_llm_api_key_secret
    if not name:
        return None

    def lookup() -> SecretStr:
        from vicw.secrets import get_secret_value

        return get_secret_value(name)

    return lookup
