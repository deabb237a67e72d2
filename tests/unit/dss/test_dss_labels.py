"""Printed settings name fields and choices as the DSS forms do, read from the plugin's JSON files at run time."""

from __future__ import annotations

import json
import shutil

from spcs_llm.dss.labels import CHAT_COMPONENT, SERVICE_PRESET, component_form, plugin_root, preset_form


def test_labels_and_choices_come_from_llm_json():
    document = json.loads((plugin_root() / "python-llms" / CHAT_COMPONENT / "llm.json").read_text(encoding="utf-8"))
    protocol = next(p for p in document["params"] if p.get("name") == "protocol")
    form = component_form(CHAT_COMPONENT)
    assert form.title == document["meta"]["label"]
    assert form.label("protocol") == protocol["label"]
    choice = protocol["selectChoices"][1]
    assert form.shown("protocol", choice["value"]) == choice["label"]


def test_lines_align_the_values_under_the_labels():
    form = preset_form(SERVICE_PRESET)
    settings = {"role": "SPCS_LLM_USER", "pat_exchange": False, "service_auth": "pat"}
    lines = form.lines(settings, indent="  ")
    shown = ["SPCS_LLM_USER", "not ticked", form.shown("service_auth", "pat")]
    assert len({line.rindex(value) for line, value in zip(lines, shown)}) == 1
    assert all(line.endswith(value) for line, value in zip(lines, shown))
    assert lines[0].startswith(f"  {form.label('role')}:")


def test_a_missing_form_shows_the_internal_names(tmp_path, monkeypatch):
    (tmp_path / "resource").mkdir()
    shutil.copytree(plugin_root() / "parameter-sets", tmp_path / "parameter-sets")
    monkeypatch.setenv("DKU_CUSTOM_RESOURCE_FOLDER", str(tmp_path / "resource"))
    form = component_form(CHAT_COMPONENT)
    assert (form.title, form.label("protocol"), form.shown("protocol", "openai_chat")) == (
        CHAT_COMPONENT, "protocol", "openai_chat")
    assert preset_form(SERVICE_PRESET).label("pat") == "PAT"
