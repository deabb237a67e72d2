"""What DSS calls each plugin setting: the labels of ``python-llms/*/llm.json`` and
``parameter-sets/*/parameter-set.json``, read at run time, so that printed settings (``doctor``, ``local``) name
each field and choice as the DSS forms show them rather than by the plugin's internal parameter names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from spcs_llm.core.resources import resource_dir

CHAT_COMPONENT = "spcs-chat"
EMBEDDING_COMPONENT = "spcs-embeddings"
OAUTH_PRESET = "snowflake-oauth"
SERVICE_PRESET = "snowflake-service-account"


@dataclass(frozen=True)
class SettingsForm:
    """One DSS form (a model type or a preset type): its title, field labels and choice labels.

    A name the form does not know is shown as is, so a missing or older JSON file never hides a setting.
    """

    title: str
    labels: dict[str, str] = field(default_factory=dict)
    choices: dict[str, dict[str, str]] = field(default_factory=dict)

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def shown(self, name: str, value: Any) -> str:
        """The value as the form shows it: a choice's label, a checkbox as ticked or not."""
        if isinstance(value, bool):
            return "ticked" if value else "not ticked"
        return self.choices.get(name, {}).get(str(value), str(value))

    def lines(self, values: dict[str, Any], indent: str = "    ") -> list[str]:
        """One ``Label: value`` line per setting, values aligned."""
        if not values:
            return []
        width = max(len(self.label(name)) for name in values) + 1
        return [f"{indent}{(self.label(name) + ':').ljust(width)} {self.shown(name, value)}"
                for name, value in values.items()]


def plugin_root() -> Path:
    """The plugin's top folder: the parent of its resource folder, in DSS as in a source checkout."""
    return resource_dir().parent


def component_form(component: str) -> SettingsForm:
    """The settings form of a model type (``spcs-chat`` or ``spcs-embeddings``)."""
    return _form(str(plugin_root() / "python-llms" / component / "llm.json"), component)


def preset_form(preset: str) -> SettingsForm:
    """The settings form of a preset type (``snowflake-oauth`` or ``snowflake-service-account``)."""
    return _form(str(plugin_root() / "parameter-sets" / preset / "parameter-set.json"), preset)


@cache
def _form(path: str, fallback_title: str) -> SettingsForm:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return SettingsForm(fallback_title)
    params = [p for p in document.get("params") or [] if isinstance(p, dict) and p.get("name")]
    return SettingsForm(
        title=(document.get("meta") or {}).get("label") or fallback_title,
        labels={p["name"]: p.get("label") or p["name"] for p in params},
        choices={p["name"]: {str(c.get("value")): c.get("label") or str(c.get("value"))
                             for c in p["selectChoices"]} for p in params if p.get("selectChoices")},
    )
