"""What ``spcs-llm local`` prints, without a server: the PAT and doctor commands, labelled DSS settings for every
service, and one caller role everywhere."""

from __future__ import annotations

import json
import shlex

from spcs_llm.deploy.names import DeploymentNames
from spcs_llm.dss.labels import (
    CHAT_COMPONENT,
    EMBEDDING_COMPONENT,
    OAUTH_PRESET,
    SERVICE_PRESET,
    component_form,
    plugin_root,
)
from spcs_standin.commands import dss_settings_text
from spcs_standin.settings import StandinSettings

READY = {"event": "ready", "account_url": "http://127.0.0.1:1",
         "services": {"chat": "http://127.0.0.1:2", "embed": "http://127.0.0.1:3", "textgen": "http://127.0.0.1:4",
                      "embed_predict": "http://127.0.0.1:5"}, "pid": 9}


def test_the_pat_and_the_doctor_commands_come_first():
    text = dss_settings_text(StandinSettings(), json.dumps(READY), "ver:1-hint:1-secret")
    lines = [line.strip() for line in text.splitlines()]
    assert "export SNOWFLAKE_TOKEN=ver:1-hint:1-secret" in lines
    doctors = [shlex.split(line) for line in lines if line.startswith("spcs-llm doctor")]
    assert doctors == [
        ["spcs-llm", "doctor", "--endpoint", "http://127.0.0.1:2", "--auth", "pat", "--account-url",
         "http://127.0.0.1:1", "--role", "SPCS_LLM_USER"],
        ["spcs-llm", "doctor", "--endpoint", "http://127.0.0.1:3", "--kind", "embed", "--auth", "pat",
         "--account-url", "http://127.0.0.1:1", "--role", "SPCS_LLM_USER"],
    ]
    settings_header = next(i for i, line in enumerate(lines) if line.startswith("DSS settings"))
    assert lines.index(shlex.join(doctors[0])) < settings_header


def test_each_service_is_listed_with_its_dss_settings():
    text = dss_settings_text(StandinSettings(), json.dumps(READY))
    assert "export" not in text  # no PAT given, none printed
    chat, embedding = component_form(CHAT_COMPONENT), component_form(EMBEDDING_COMPONENT)
    assert f"textgen — a '{chat.title}' with {chat.label('endpoint')}: http://127.0.0.1:4" in text
    assert (f"{chat.label('protocol')}: {chat.shown('protocol', 'text_generation')} · "
            f"{chat.label('model_family')}: {chat.shown('model_family', 'zephyr')}") in text
    assert f"embed_predict — a '{embedding.title}' with {embedding.label('endpoint')}: http://127.0.0.1:5" in text
    assert "protocol: text_generation" not in text and "model_family" not in text


def test_one_caller_role_in_the_stand_in_the_deploy_flow_and_the_presets():
    role = StandinSettings().role
    assert role == DeploymentNames().user_role
    for preset_name in (OAUTH_PRESET, SERVICE_PRESET):
        preset = json.loads((plugin_root() / "parameter-sets" / preset_name / "parameter-set.json").read_text())
        defaults = {p["name"]: p.get("defaultValue") for p in preset["params"]}
        assert defaults["role"] == role, preset_name
        if "scope" in defaults:
            assert f"session:role:{role}" in defaults["scope"].split()
