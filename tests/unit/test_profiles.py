"""VICW_PROFILE presets: each applies its values, any single variable overrides its preset, and an
invalid combination fails at start with a message naming the variables."""

from __future__ import annotations

import json

import pytest

from vicw.config import PROFILES, Settings, SettingsError, load_settings

WINDOW_AND_COLD_PATH = ("offload_threshold", "hysteresis_threshold", "target_after_relief", "cold_path_batch_size",
                        "cold_path_workers")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No setting leaks in from the shell or from other tests' servers."""
    for name in (*Settings.model_fields, "aws_region"):
        monkeypatch.delenv(name.upper(), raising=False)


def test_presets_hold_the_documented_values():
    assert PROFILES["aggressive"]["offload_threshold"] == 0.70 and PROFILES["aggressive"]["target_after_relief"] == 0.40
    assert PROFILES["conservative"]["offload_threshold"] == 0.90 and PROFILES["conservative"]["target_after_relief"] == 0.70
    # aggressive offloads early and drains the queues harder; conservative keeps more context and is gentle
    assert PROFILES["aggressive"]["cold_path_batch_size"] > Settings.model_fields["cold_path_batch_size"].default
    assert PROFILES["aggressive"]["cold_path_workers"] > Settings.model_fields["cold_path_workers"].default
    assert PROFILES["conservative"]["cold_path_batch_size"] < Settings.model_fields["cold_path_batch_size"].default
    assert PROFILES["conservative"]["cold_path_workers"] <= Settings.model_fields["cold_path_workers"].default
    assert PROFILES["balanced"] == {}


@pytest.mark.parametrize("profile", ["aggressive", "conservative"])
def test_each_preset_applies(profile, monkeypatch):
    monkeypatch.setenv("VICW_PROFILE", profile)
    s = load_settings()
    assert s.vicw_profile == profile
    for field in WINDOW_AND_COLD_PATH:
        assert getattr(s, field) == PROFILES[profile][field], field
        assert s.source_of(field) == f"profile:{profile}"
    assert s.source_of("max_context_tokens") == "default"


def test_balanced_is_the_default():
    s = load_settings()
    assert s.vicw_profile == "balanced"
    assert (s.offload_threshold, s.hysteresis_threshold, s.target_after_relief) == (0.80, 0.70, 0.60)
    assert all(s.source_of(f) == "default" for f in WINDOW_AND_COLD_PATH)


def test_an_env_var_overrides_its_preset_value_only(monkeypatch):
    monkeypatch.setenv("VICW_PROFILE", "aggressive")
    monkeypatch.setenv("TARGET_AFTER_RELIEF", "0.30")
    monkeypatch.setenv("COLD_PATH_WORKERS", "8")
    s = load_settings()
    assert s.target_after_relief == 0.30 and s.source_of("target_after_relief") == "environment"
    assert s.cold_path_workers == 8 and s.source_of("cold_path_workers") == "environment"
    assert s.offload_threshold == 0.70 and s.source_of("offload_threshold") == "profile:aggressive"
    assert s.cold_path_batch_size == 20


def test_an_invalid_combination_names_the_variables(monkeypatch):
    # conservative's hysteresis (0.80) is above this threshold: the window could never relieve itself
    monkeypatch.setenv("VICW_PROFILE", "conservative")
    monkeypatch.setenv("OFFLOAD_THRESHOLD", "0.75")
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "OFFLOAD_THRESHOLD" in message and "HYSTERESIS_THRESHOLD" in message and "TARGET_AFTER_RELIEF" in message
    assert "0.75" in message


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VICW_PROFILE": "turbo"}, "VICW_PROFILE"),
        ({"VICW_PROFILE": "aggressive", "COLD_PATH_BATCH_SIZE": "0"}, "COLD_PATH_BATCH_SIZE"),
        ({"OFFLOAD_THRESHOLD": "1.5"}, "OFFLOAD_THRESHOLD"),
        ({"MAX_CONTEXT_TOKENS": "2048", "LLM_MAX_TOKENS": "1500"}, "LLM_MAX_TOKENS"),
    ],
)
def test_bad_values_fail_with_the_variable_name(env, named, monkeypatch):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_config_show_reports_the_source(monkeypatch, capsys):
    from vicw.cli import main

    monkeypatch.setenv("VICW_PROFILE", "conservative")
    monkeypatch.setenv("COLD_PATH_WORKERS", "3")
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["OFFLOAD_THRESHOLD"] == {"value": 0.9, "source": "profile:conservative"}
    assert shown["COLD_PATH_WORKERS"] == {"value": 3, "source": "environment"}
    assert shown["MAX_CONTEXT_TOKENS"]["source"] == "default"
    monkeypatch.setenv("OFFLOAD_THRESHOLD", "0.5")
    assert main(["config", "show"]) == 2
    assert "OFFLOAD_THRESHOLD" in capsys.readouterr().err
