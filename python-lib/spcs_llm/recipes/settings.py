"""The settings of the "LLM inference in Snowflake" recipe, read and checked from its DSS config
(``custom-recipes/spcs-llm-inference/recipe.json`` names the params)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from spcs_llm.core.errors import ConfigurationError
from spcs_llm.recipes.prompts import PromptSource

ModelKind = Literal["spcs", "cortex"]
Task = Literal["chat", "embedding"]


@dataclass(frozen=True)
class RecipeSettings:
    model_kind: ModelKind
    prompt: PromptSource
    # SPCS: the deployed model, as `spcs-llm batch` names it (catalog key or Hub id, registry objects, mode)
    spcs_model: str = ""
    spcs_model_name: str | None = None
    spcs_service_name: str | None = None
    spcs_version: str = "V1"
    registry_database: str = "SPCS_LLM"
    registry_schema: str = "MODELS"
    spcs_mode: Literal["auto", "service", "job"] = "auto"
    compute_pool: str | None = None  # the job's pool; default: the deployment's GPU or CPU pool
    replicas: int = 1
    seconds_per_row: float | None = None
    # Cortex: a model name and its task
    cortex_model: str = ""
    task: Task = "chat"
    input_credits_per_million: float | None = None  # overrides the shipped Cortex rates
    output_credits_per_million: float | None = None
    # generation and cost
    max_tokens: int | None = None
    temperature: float | None = None
    max_cost_credits: float | None = None
    dollars_per_credit: float = 3.0
    max_failed_rows: int = 100
    chunk_rows: int = 1000


def _number(config: dict[str, Any], key: str, kind: type, minimum: float | None = None) -> Any:
    value = config.get(key)
    if value is None or value == "":
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number, not {value!r}.", fix=f"Correct '{key}' in the recipe.") \
            from None
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{key} must be at least {minimum}, not {number}.", fix=f"Correct '{key}'.")
    return number


def _text(config: dict[str, Any], key: str) -> str | None:
    value = config.get(key)
    return str(value).strip() or None if value is not None else None


def read_settings(config: dict[str, Any]) -> RecipeSettings:
    """``get_recipe_config()`` → settings; a missing or wrong value is refused with the param to correct."""
    kind = config.get("model_kind") or "cortex"
    if kind not in ("spcs", "cortex"):
        raise ConfigurationError(f"Unknown model kind {kind!r}.", fix="Choose 'SPCS service' or 'Cortex'.")
    if config.get("input_mode") == "template":
        prompt = PromptSource(template=str(config.get("prompt_template") or ""))
    else:
        column = _text(config, "text_column")
        if column is None:
            raise ConfigurationError("No text column is chosen.", fix="Choose the column holding each row's text.")
        prompt = PromptSource(column=column)
    values: dict[str, Any] = {
        "model_kind": kind, "prompt": prompt,
        "max_tokens": _number(config, "max_tokens", int, 1), "temperature": _number(config, "temperature", float, 0),
        "max_cost_credits": _number(config, "max_cost_credits", float, 0),
        "dollars_per_credit": _number(config, "dollars_per_credit", float, 0) or 3.0,
        "max_failed_rows": _number(config, "max_failed_rows", int, 1) or 100,
        "chunk_rows": _number(config, "chunk_rows", int, 1) or 1000,
    }
    if kind == "spcs":
        model = _text(config, "spcs_model")
        if model is None:
            raise ConfigurationError("No deployed model is named.",
                                     fix="Set 'Model' to the catalog key or Hub id given to `spcs-llm deploy`.")
        values.update(spcs_model=model, spcs_model_name=_text(config, "spcs_model_name"),
                      spcs_service_name=_text(config, "spcs_service_name"),
                      spcs_version=_text(config, "spcs_version") or "V1",
                      registry_database=_text(config, "registry_database") or "SPCS_LLM",
                      registry_schema=_text(config, "registry_schema") or "MODELS",
                      spcs_mode=config.get("spcs_mode") or "auto", compute_pool=_text(config, "compute_pool"),
                      replicas=_number(config, "replicas", int, 1) or 1,
                      seconds_per_row=_number(config, "seconds_per_row", float, 0))
    else:
        model = _text(config, "cortex_model")
        if model is None:
            raise ConfigurationError("No Cortex model is named.", fix="Set 'Cortex model', e.g. llama3.1-8b.")
        task = config.get("task") or "chat"
        if task not in ("chat", "embedding"):
            raise ConfigurationError(f"Unknown task {task!r}.", fix="Choose 'Chat (AI_COMPLETE)' or 'Embedding'.")
        if task == "embedding" and (values["max_tokens"] is not None or values["temperature"] is not None):
            raise ConfigurationError("Max tokens and temperature apply to chat models only.",
                                     fix="Clear them for an embedding model.")
        values.update(cortex_model=model, task=task,
                      input_credits_per_million=_number(config, "input_credits_per_million", float, 0),
                      output_credits_per_million=_number(config, "output_credits_per_million", float, 0))
    return RecipeSettings(**values)
