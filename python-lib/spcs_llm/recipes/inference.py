"""LLM inference in Snowflake, as a DSS Flow recipe: a deployed SPCS model or a Cortex model over the input
dataset's table, into the output dataset's table, without any row leaving Snowflake.

Steps, each a SQL statement on the DSS connection's Snowpark session: check the input's columns; build each row's
prompt in a temporary table (``prompts.py``, template text bound, never spliced); count rows and prompt
characters; log the cost estimate and refuse above the recipe's maximum; score every row into a second temporary
table (SPCS: ``deploy/batch``'s service-function or ``run_batch`` job path; Cortex: ``cortex_run.py``); then write
the output table (``output.py``). Identifiers are quoted, values bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from spcs_llm.core.errors import ConfigurationError, SpcsLlmError
from spcs_llm.deploy.batch.sql import BatchTables, quoted
from spcs_llm.deploy.dependencies import sql_error_type
from spcs_llm.deploy.names import DeploymentNames, is_identifier
from spcs_llm.recipes import cortex_run, output
from spcs_llm.recipes.prompts import PROMPT, PromptsTable, prompt_size, resolve_columns
from spcs_llm.recipes.settings import RecipeSettings

Report = Callable[[str], None]


@dataclass(frozen=True)
class TableLocation:
    """Where a DSS dataset's rows are, from ``Dataset.get_location_info()`` (Dataiku developer guide, datasets)."""

    dataset: str
    connection: str
    database: str
    schema: str
    table: str

    @property
    def fqn(self) -> str:
        return ".".join(quoted(part) for part in (self.database, self.schema, self.table))

    def scratch(self, name: str) -> str:
        """A temporary table beside this one (its schema is one the connection's role writes to)."""
        return f"{self.database}.{self.schema}.{name}"


def _split_quoted(name: str) -> list[str]:
    """``"DB"."SCHEMA"."T"`` → its parts, ``""`` unescaped."""
    parts, current, inside, i = [], "", False, 0
    while i < len(name):
        char = name[i]
        if char == '"' and inside and name[i + 1:i + 2] == '"':
            current, i = current + '"', i + 2
            continue
        if char == '"':
            inside = not inside
        elif char == "." and not inside:
            parts.append(current)
            current = ""
        else:
            current += char
        i += 1
    return [*parts, current]


def location_of(dataset: str, location_info: dict[str, Any], connection: str | None) -> TableLocation:
    """The table of a Snowflake dataset (database empty when DSS names none: the session's current one); any
    other dataset is refused with what to do instead."""
    info = location_info.get("info") or {}
    if location_info.get("locationInfoType") != "SQL" or str(info.get("databaseType", "")).lower() != "snowflake":
        raise ConfigurationError(
            f"Dataset {dataset} is not stored in Snowflake "
            f"({info.get('databaseType') or location_info.get('locationInfoType')}).",
            fix="Use Snowflake datasets for input and output (a Sync recipe can copy the input to Snowflake first).")
    parts = _split_quoted(str(info.get("quotedResolvedTableName") or ""))
    database = parts[0] if len(parts) == 3 else ""
    return TableLocation(dataset, str(info.get("connectionName") or connection or ""), database,
                         str(info.get("schema") or parts[-2]), str(info.get("table") or parts[-1]))


def check_same_connection(source: TableLocation, target: TableLocation) -> None:
    """Input and output on one connection: the recipe runs in one Snowflake session, inside the database."""
    if source.connection != target.connection:
        raise ConfigurationError(
            f"The input {source.dataset} is on connection {source.connection!r} and the output {target.dataset} on "
            f"{target.connection!r}: the recipe runs in one Snowflake session, inside the database.",
            fix=f"Store the output dataset on connection {source.connection!r} (output dataset > Settings), or "
                "sync the input to the output's connection first.")


def check_locations(source: TableLocation, target: TableLocation) -> None:
    """One connection for both, and a schema the scratch tables can be named in without quotes."""
    check_same_connection(source, target)
    for what, value in (("database", target.database), ("schema", target.schema)):
        if not is_identifier(value) or value != value.upper():
            raise ConfigurationError(
                f"The output's {what} {value!r} is not an unquoted upper-case name; the recipe's temporary tables "
                "are created beside the output.", fix=f"Use a connection whose {what} is an unquoted name.")


@dataclass(frozen=True)
class RecipeResult:
    rows_total: int
    rows_failed: int
    estimate: str
    schema: list[dict[str, Any]]


def _refuse_above_max(settings: RecipeSettings, credits: tuple[float, float] | None, estimate: str) -> None:
    if settings.max_cost_credits is None:
        return
    if credits is None:
        raise ConfigurationError(f"The cost cannot be checked against the maximum: {estimate}",
                                 fix="Give the model's rates (Cortex) or clear 'Max cost (credits)'.")
    if credits[1] > settings.max_cost_credits:
        raise ConfigurationError(
            f"Not started: the estimate goes up to {credits[1]:.4f} credits, above the maximum of "
            f"{settings.max_cost_credits:g}. {estimate}",
            fix="Raise 'Max cost (credits)', lower 'Max tokens', or run on fewer rows (a Sample/Filter recipe first).")



# The batch library's fixes name `spcs-llm batch` options; in the recipe they are settings.
RECIPE_SETTINGS = {"--mode job": "'Run as' a batch job", "--mode service": "'Run as' the service function",
                   "--compute-pool": "'Compute pool'", "--mode": "'Run as'", "--replicas": "'Job nodes'",
                   "--version": "'Model version'", "--max-tokens": "'Max tokens'", "--temperature": "'Temperature'",
                   "--chunk-rows": "'Rows per statement'", "--seconds-per-row": "'Seconds per row (for the estimate)'",
                   "--dollars-per-credit": "'Dollars per credit'", "--database": "'Registry database'",
                   "--schema": "'Registry schema'", "--model-name": "'Registry model name'",
                   "--service-name": "'Service name'"}
NOT_IN_RECIPE = "options of `spcs-llm batch`, which this recipe does not set"


def _spcs_plan(session: Any, settings: RecipeSettings, prompts: str, scored: str) -> Any:
    from spcs_llm.deploy.batch.plan import BatchRequest, plan_batch_inference

    names = DeploymentNames(database=settings.registry_database, schema=settings.registry_schema)
    request = BatchRequest(
        model=settings.spcs_model, input_table=prompts, text_column=PROMPT, output_table=scored,
        mode=settings.spcs_mode, version=settings.spcs_version, model_name=settings.spcs_model_name,
        compute_pool=settings.compute_pool,
        service_name=settings.spcs_service_name, replicas=settings.replicas, max_tokens=settings.max_tokens,
        temperature=settings.temperature, overwrite=True, seconds_per_row=settings.seconds_per_row,
        dollars_per_credit=settings.dollars_per_credit)
    try:
        plan = plan_batch_inference(session, names, request)
    except SpcsLlmError as error:
        raise error.in_terms_of(RECIPE_SETTINGS, NOT_IN_RECIPE) from None
    # Score the prompts table directly: its ROW_IDs are the ones the output joins on.
    return replace(plan, tables=BatchTables(prompts, PROMPT, prompts, scored))


def _estimate(session: Any, settings: RecipeSettings, prompts: str, scored: str,
              report: Report) -> tuple[Any, str, str]:
    """The SPCS plan (None for Cortex), the task and the estimate text; refuses above the maximum cost."""
    plan, task = None, settings.task
    if settings.model_kind == "spcs":
        plan = _spcs_plan(session, settings, prompts, scored)
        task, text, credits = plan.spec.kind, plan.estimate.text(), plan.estimate.credits_range
    else:
        size = session.sql(prompt_size(prompts)).collect()[0]
        estimate = cortex_run.estimate_cortex(settings, int(size["ROWS_TOTAL"]), int(size["PROMPT_CHARS"]))
        text, credits = estimate.text(), estimate.credits_range
    report(text)
    _refuse_above_max(settings, credits, text)
    return plan, task, text


def _score(session: Any, settings: RecipeSettings, plan: Any, tables: BatchTables, report: Report) -> None:
    """Every prompt scored into ``tables.output_table``, with its RESPONSE or its own ERROR."""
    session.sql(tables.create_output(overwrite=True, temporary=True)).collect()  # scratch: ends with the session
    if plan is None:
        rows = int(session.sql(prompt_size(tables.numbered_table)).collect()[0]["ROWS_TOTAL"])
        cortex_run.score_with_cortex(session, tables, settings, rows, sql_error_type(purpose="The recipe"), report)
        return
    from spcs_llm.deploy.batch import run

    # The batch library's scoring, on the numbered prompts (``execute`` would number them again).
    run_settings = run.RunSettings(chunk_rows=settings.chunk_rows, max_failed_rows=settings.max_failed_rows)
    run.score_numbered(session, plan, run_settings, report=report)


def run_inference(session: Any, settings: RecipeSettings, source: TableLocation, target: TableLocation, *,
                  report: Report, input_schema: list[dict[str, Any]] | None = None,
                  clock: Callable[[], float] = time.time) -> RecipeResult:
    """Check, build the prompts, estimate (refusing above the maximum), score and write the output table."""
    check_locations(source, target)
    table_columns = [str(row["column_name"]) for row in session.sql(f"SHOW COLUMNS IN TABLE {source.fqn}").collect()]
    prompt = resolve_columns(settings.prompt, table_columns, source.fqn)
    rates = cortex_run.cortex_rates(settings)[0] if settings.model_kind == "cortex" else None
    output.check_names(table_columns, [*output.result_columns(settings.model_kind, "chat", rates),
                                       *output.result_columns(settings.model_kind, "embedding", rates)])
    run_id = time.strftime("%Y%m%d_%H%M%S", time.gmtime(clock()))
    prompts = target.scratch(f"SPCS_LLM_RECIPE_PROMPTS_{run_id}")
    scored = target.scratch(f"SPCS_LLM_RECIPE_SCORED_{run_id}")

    prompts_table = PromptsTable(prompts, source.fqn, tuple(table_columns), prompt)
    session.sql(prompts_table.create()).collect()
    statement, params = prompts_table.fill()
    session.sql(statement, params=params).collect()
    plan, task, estimate = _estimate(session, settings, prompts, scored, report)
    _score(session, settings, plan, BatchTables(prompts, PROMPT, prompts, scored), report)

    produced = output.result_columns(settings.model_kind, task, rates)
    create, fill, params = output.create_output(target.fqn, prompts, scored, table_columns, produced)
    session.sql(create).collect()
    session.sql(fill, params=params).collect()
    counts = session.sql(output.summary(target.fqn)).collect()[0]
    result = RecipeResult(int(counts["ROWS_TOTAL"]), int(counts["ROWS_FAILED"]), estimate,
                          output.dss_schema(table_columns, input_schema or [], produced))
    report(f"{result.rows_total:,} rows written to {target.fqn}, {result.rows_failed:,} with an ERROR.")
    return result
