"""Credentials inside URLs never reach `vicw config show` or a log line."""

from __future__ import annotations

import json

import pytest

from vicw.cli import main as cli_main
from vicw.observability import logger
from vicw.redaction import mask_credentials

SECRETS = ["redis-pw-31337", "falkor-pw-4242", "neo4j-pw-7777", "qdrant-key-9999", "llm-token-5555"]
URLS = {
    "REDIS_URL": "redis://:redis-pw-31337@cache.internal:6379/0",
    "FALKORDB_URL": "rediss://default:falkor-pw-4242@graph.internal:6380",
    "NEO4J_URI": "neo4j+s://neo4j:neo4j-pw-7777@db.example.io:7687",
    "QDRANT_URL": "https://qdrant.example.io:6333/?api-key=qdrant-key-9999",
    "VICW_LLM_API_URL": "https://llm.example.io/v1?foo=1&access_token=llm-token-5555",
}


@pytest.mark.parametrize(("text", "masked"), [
    ("redis://:pw@h:6379/0", "redis://:****@h:6379/0"),
    ("neo4j+s://user:p@ss/w0rd@db:7687", "neo4j+s://user:****@db:7687"),
    ("https://h/?api-key=abc&x=1", "https://h/?api-key=****&x=1"),
    ("https://h/path?Token=abc#frag", "https://h/path?Token=****#frag"),
    ("http://127.0.0.1:6379/0 and mail me@example.com", "http://127.0.0.1:6379/0 and mail me@example.com"),
    ('{"url": "redis://u:x@h"}', '{"url": "redis://u:****@h"}'),
])
def test_mask_credentials(text, masked):
    assert mask_credentials(text) == masked


def test_config_show_masks_credentials_in_urls(monkeypatch, capsys):
    for name, url in URLS.items():
        monkeypatch.setenv(name, url)
    assert cli_main(["config", "show"]) == 0
    text = capsys.readouterr().out
    assert cli_main(["config", "show", "--json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert [s for s in SECRETS if s in text or s in json.dumps(as_json)] == []
    assert "redis://:****@cache.internal:6379/0" in text  # still says where it points
    assert as_json["NEO4J_URI"]["value"] == "neo4j+s://neo4j:****@db.example.io:7687"
    assert as_json["QDRANT_URL"]["value"] == "https://qdrant.example.io:6333/?api-key=****"


def test_other_libraries_log_records_are_masked_too(caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").info('HTTP Request: GET %s "HTTP/1.1 200 OK"', URLS["QDRANT_URL"])
    logging.getLogger("botocore.endpoint").debug("Sending to %s", URLS["REDIS_URL"])
    assert [s for s in SECRETS if s in caplog.text] == [] and "api-key=****" in caplog.text


def test_logs_mask_credentials_in_messages_extras_and_tracebacks(caplog):
    url = URLS["REDIS_URL"]
    logger.warning(f"cannot reach {url}", extra={"endpoint": URLS["QDRANT_URL"], "nested": {"uri": URLS["NEO4J_URI"]}})
    try:
        raise ConnectionError(f"Error connecting to {URLS['FALKORDB_URL']}")
    except ConnectionError:
        logger.exception("graph store down", extra={"llm": URLS["VICW_LLM_API_URL"]})
    records = [r for r in caplog.records if r.name == logger.name][-2:]
    # what our handler prints (the JSON line), and what any other handler would see (pytest's here)
    lines = [logger.registered_handler.formatter.format(r) for r in records]
    printed = "\n".join(lines) + caplog.text
    assert "Traceback" in json.loads(lines[1])["exception"] and "Traceback" in caplog.text
    assert [s for s in SECRETS if s in printed] == []
    assert json.loads(lines[0])["message"] == "cannot reach redis://:****@cache.internal:6379/0"
    assert json.loads(lines[0])["nested"] == {"uri": "neo4j+s://neo4j:****@db.example.io:7687"}
