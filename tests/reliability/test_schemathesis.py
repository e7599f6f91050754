"""Property-based requests generated from the app's own OpenAPI spec (schemathesis), sent over HTTP
to a running local stack, so every one goes through the API Gateway event -> Mangum -> FastAPI path.

No generated request may produce a 5xx, and every 4xx must carry an error message. The run is
bounded (a few examples per operation, no shrinking) to stay well under a minute and a half.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from tests.conftest import API_KEY, HTTP_TIMEOUT

MAX_EXAMPLES = int(os.environ.get("VICW_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzz_stack(unlimited_stack):
    return unlimited_stack


@pytest.fixture(scope="module")
def api_schema(fuzz_stack):
    spec = httpx.get(f"{fuzz_stack.url}/openapi.json", timeout=HTTP_TIMEOUT).json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.config.update(base_url=fuzz_stack.url)
    return schema


def test_generated_requests_never_5xx_and_4xx_explain(api_schema):
    # Driven by hand (not @schema.parametrize): the pytest plugin of this schemathesis release does
    # not work with pytest 9. Positive cases follow the spec; negative ones break it on purpose.
    from schemathesis import GenerationMode

    failures: list[str] = []
    calls = {"n": 0}

    def check(case) -> None:
        calls["n"] += 1
        response = case.call(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=HTTP_TIMEOUT)
        label = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.text[:300]}")
        elif response.status_code >= 400:
            try:
                assert response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError, AssertionError):
                failures.append(f"{label} without an error message: {response.text[:200]}")

    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                check(case)

            try:
                run()
            except Unsatisfiable:  # an operation without inputs has no invalid variant
                assert mode == GenerationMode.NEGATIVE, operation.label
    assert calls["n"] > 100
    assert not failures, "\n".join(failures[:20])
