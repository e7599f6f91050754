"""Real local servers that stand in for remote model APIs in tests.

Pytest fixtures (import them into a test module or conftest to use them):

    from tests.fakes import llm_server  # noqa: F401  - fixture

`llm_server` is a fresh, started ScriptedLLM per test (starting one takes about a millisecond).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.llm_server import RecordedRequest, Reply, ScriptedLLM

__all__ = ["RecordedRequest", "Reply", "ScriptedLLM", "llm_server"]


@pytest.fixture()
def llm_server() -> Iterator[ScriptedLLM]:
    with ScriptedLLM() as server:
        yield server
