"""The DSS side of the "LLM inference in Snowflake" recipe: roles, config and datasets from ``dataiku``, the
Snowpark session from the input's connection, the output schema written back.

DSS APIs (Dataiku docs, "Plugin components: recipes" and the developer guide's datasets and Snowpark pages; used the
same way by Dataiku's ``dss-plugin-visual-snowparkml``): ``dataiku.customrecipe.get_input_names_for_role`` /
``get_output_names_for_role`` / ``get_recipe_config``; ``dataiku.Dataset(name).get_location_info()`` (its
``info``: ``databaseType``, ``schema``, ``table``, ``quotedResolvedTableName``, ``connectionName``),
``get_config()["params"]["connection"]``, ``read_schema()``, ``write_schema(columns)``;
``dataiku.snowpark.DkuSnowpark().get_session(connection_name)``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from spcs_llm.core.redaction import redact
from spcs_llm.recipes.inference import RecipeResult, check_same_connection, location_of, run_inference
from spcs_llm.recipes.settings import read_settings


def _report(line: str) -> None:
    """The recipe's job log shows what it prints."""
    print(redact(line), flush=True)


def _connection(dataset: Any) -> str | None:
    try:
        return str(dataset.get_config()["params"]["connection"])
    except (KeyError, TypeError):
        return None


def run_recipe() -> RecipeResult:
    """Everything ``recipe.py`` does: read DSS's inputs, run inside Snowflake, write the output schema."""
    import dataiku
    from dataiku import customrecipe
    from dataiku.snowpark import DkuSnowpark

    settings = read_settings(customrecipe.get_recipe_config())
    source_name = customrecipe.get_input_names_for_role("input")[0]
    target_name = customrecipe.get_output_names_for_role("output")[0]
    source_ds, target_ds = dataiku.Dataset(source_name), dataiku.Dataset(target_name)
    source = location_of(source_name, source_ds.get_location_info(), _connection(source_ds))
    target = location_of(target_name, target_ds.get_location_info(), _connection(target_ds))
    check_same_connection(source, target)  # before any session is opened
    session = DkuSnowpark().get_session(source.connection)
    current = str(session.get_current_database()).strip('"')
    source, target = (replace(t, database=t.database or current) for t in (source, target))
    result = run_inference(session, settings, source, target, report=_report, input_schema=source_ds.read_schema())
    # inferred: write_schema on a SQL dataset records the schema of the table the recipe wrote and leaves its rows.
    target_ds.write_schema(result.schema)
    return result
