"""Add a deployed model to a DSS Custom LLM connection through DSS's public API, as an option of the deploy macro.

Documented: ``DSSClient.get_connection(name).get_settings()`` returns the connection's settings, ``get_raw()`` its
definition as a dict and ``save()`` writes it back (dataikuapi 15.2 ``dss/admin.py``, ``DSSConnectionSettings``;
``get_definition``/``set_definition`` are its deprecated spelling); inside DSS, ``dataiku.api_client()`` is a client
with the permissions of the user running the macro (Dataiku docs, ``plugins/reference/macros``: "Interacting with DSS
in macros").

Inferred (not documented): how a Custom LLM connection stores its models. dataikuapi says the definition "depends on
the connection type" and documents no Custom LLM shape; its HuggingFaceLocal code reads ``params.models`` as a list
of entries with an ``id``. So this module writes no shape of its own: it copies an entry the admin already added by
hand for the same plugin component (found by the component id in the entry and a nested settings dict with an
``endpoint``), keeping its auth choice and preset, and replaces the settings and the id. Without such an entry it
changes nothing and says to add one model by hand first.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from spcs_llm.core.errors import ConfigurationError

SKIPPED_SETTINGS = ("auth_type",)  # the copied entry keeps its own auth choice and preset


@dataclass(frozen=True)
class AddedModel:
    connection: str
    model_id: str
    replaced: bool  # an entry with this id was there already and got the new settings


def _settings_dict(entry: Any) -> dict[str, Any] | None:
    """The nested dict holding the plugin component's settings: the one with an ``endpoint`` key (inferred)."""
    if isinstance(entry, dict):
        if "endpoint" in entry:
            return entry
        for value in entry.values():
            found = _settings_dict(value)
            if found is not None:
                return found
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return [text for item in items for text in _strings(item)]


def _is_component(entry: Any, component: str) -> bool:
    """True when a string in the entry names the component, alone or at the end of a longer id (inferred)."""
    return isinstance(entry, dict) and any(text == component or text.endswith((f":{component}", f"/{component}"))
                                           for text in _strings(entry))


def add_model(client: Any, connection: str, component: str, model_id: str, settings: dict[str, Any]) -> AddedModel:
    """Copy the connection's first ``component`` model, give it ``model_id`` and ``settings``, and save."""
    handle = client.get_connection(connection).get_settings()
    definition = handle.get_raw()
    models = (definition.get("params") or {}).get("models") if isinstance(definition, dict) else None
    if not isinstance(models, list):
        raise ConfigurationError(
            f"The DSS connection {connection!r} has no list of models where this macro expects one (inferred shape "
            "of a Custom LLM connection); nothing was changed.",
            fix="Choose a Custom LLM connection of the spcs-llm plugin, or enter the settings shown above by hand.")
    same_kind = [entry for entry in models if _is_component(entry, component) and _settings_dict(entry) is not None]
    if not same_kind:
        raise ConfigurationError(
            f"The connection {connection!r} has no {component} model to copy; nothing was changed.",
            fix=f"Add one model of that type by hand first (Administration > Connections > {connection} > Add model), "
                "with its authentication and preset, then run the macro again; or enter the settings shown above.")
    existing = next((entry for entry in same_kind if entry.get("id") == model_id), None)
    entry = existing if existing is not None else copy.deepcopy(same_kind[0])
    target = _settings_dict(entry)
    assert target is not None  # same_kind holds only entries that have one
    target.update({key: value for key, value in settings.items() if key not in SKIPPED_SETTINGS})
    if existing is None:
        entry["id"] = model_id
        models.append(entry)
    handle.save()
    return AddedModel(connection, model_id, replaced=existing is not None)


def api_client() -> Any:
    """DSS's public API client for the user running the macro (only importable inside DSS)."""
    import dataiku

    return dataiku.api_client()
